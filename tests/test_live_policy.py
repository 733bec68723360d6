"""LivePolicy: the pack in force, reloads that swap it atomically or are refused."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from chatguard.banners import BannerError
from chatguard.live_policy import LivePolicy, Loaded
from chatguard.metrics import Metrics
from chatguard.policy.engine import MessageContext
from chatguard.policy.model import Mode, Where
from chatguard.policy.rules import PolicyError
from tests.support.pack import BANNERS, POLICY, RULES
from tests.support.timing import eventually, unit

Pack = tuple[Path, Path]

EXTRA_RULE = """
  - id: t.meeting.meet_up
    description: Asks to meet
    signal: meeting
    weight: 1
    patterns:
      - phrase: lets meet up
    examples:
      match: [lets meet up]
      no_match: [we met]
"""


def live_policy(
    pack: Pack, tmp_path: Path, backend: str = "auto", *, settle_heap: bool = False
) -> LivePolicy:
    policies, banners = pack
    return LivePolicy(
        policies,
        banners,
        Metrics(),
        backend=backend,
        cache_dir=tmp_path / "cache",
        settle_heap=settle_heap,
    )


def reloads(live: LivePolicy, outcome: str) -> float:
    value = live.metrics.registry.get_sample_value(
        "chatguard_policy_reloads_total", {"outcome": outcome}
    )
    return value or 0.0


def matched(loaded: Loaded, text: str) -> list[str]:
    """The rules an adult's message to a child matches under ``loaded``."""
    message = MessageContext(
        text=text,
        conversation="dm:amy:bob",
        sender="bob",
        recipients=("amy",),
        where=Where.DIRECT,
        sender_age="adult",
        recipient_ages={"amy": "minor"},
    )
    assessment, _ = loaded.engine.assess(message, None, 1000.0)
    return [m.rule_id for m in assessment.matches]


def rewrite(path: Path, text: str) -> None:
    """Write ``text`` and move the modification time on, so any watcher sees a change."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 10**9, before + 10**9))


@contextlib.asynccontextmanager
async def watching(live: LivePolicy, interval: float = 0.02) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(live.watch(interval))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# -- loading at start-up -------------------------------------------------------------


async def test_load_now_puts_one_consistent_generation_in_force(
    test_pack: Pack, tmp_path: Path
) -> None:
    live = live_policy(test_pack, tmp_path)
    assert live.current is None
    loaded = live.load_now()
    assert live.current is loaded
    assert loaded.engine.policy is loaded.policy
    assert sorted(loaded.rules) == sorted(r.id for r in loaded.policy.rules)
    assert len(loaded.rules) == 5
    assert sorted(loaded.catalogue.banners) == [
        "deterrence_image_request",
        "off_platform_warning",
        "pi_share_confirm",
        "safeguarding_help",
    ]
    assert matched(loaded, "add me on snap") == ["t.isolation.move_app"]
    assert reloads(live, "loaded") == 1
    assert reloads(live, "refused") == 0


@pytest.mark.parametrize("backend", ["fallback", "hyperscan"])
async def test_both_matcher_backends_load_the_same_pack(
    test_pack: Pack, tmp_path: Path, backend: str
) -> None:
    loaded = live_policy(test_pack, tmp_path, backend=backend).load_now()
    assert matched(loaded, "ok, add me on snap") == ["t.isolation.move_app"]
    assert matched(loaded, "send me a pic") == ["t.image_request.minor"]
    assert matched(loaded, "i deleted snapchat") == []


async def test_an_invalid_pack_stops_start_up(test_pack: Pack, tmp_path: Path) -> None:
    policies, _ = test_pack
    (policies / "en" / "rules.yaml").write_text("rules:\n  - id: [\n", encoding="utf-8")
    live = live_policy(test_pack, tmp_path)
    with pytest.raises(PolicyError, match=r"rules\.yaml:\d+"):
        live.load_now()
    assert live.current is None


async def test_a_pack_naming_a_banner_missing_from_the_catalogue_stops_start_up(
    test_pack: Pack, tmp_path: Path
) -> None:
    policies, _ = test_pack
    rewrite(policies / "en" / "rules.yaml", RULES.replace("pi_share_confirm", "no_such_banner"))
    live = live_policy(test_pack, tmp_path)
    with pytest.raises(BannerError, match="no_such_banner"):
        live.load_now()
    assert live.current is None


async def test_a_pack_that_shows_banners_needs_a_catalogue(test_pack: Pack, tmp_path: Path) -> None:
    """Without `banners.directory` every banner would silently go missing: refuse."""
    policies, _ = test_pack
    live = LivePolicy(policies, None, Metrics())
    with pytest.raises(BannerError, match=r"banners.directory \(not set\).*off_platform_warning"):
        live.load_now()
    assert live.current is None


async def test_a_trigger_banner_missing_from_the_catalogue_stops_start_up(
    test_pack: Pack, tmp_path: Path
) -> None:
    policies, _ = test_pack
    settings = "settings:\n  risk:\n    safeguarding:\n      banner: no_such_banner\n"
    rewrite(policies / "policy.yaml", POLICY + settings)
    live = live_policy(test_pack, tmp_path)
    with pytest.raises(BannerError, match="no_such_banner"):
        live.load_now()


# -- reloading ---------------------------------------------------------------------


async def test_a_valid_reload_swaps_the_whole_generation(test_pack: Pack, tmp_path: Path) -> None:
    policies, _ = test_pack
    live = live_policy(test_pack, tmp_path)
    before = live.load_now()
    rewrite(policies / "en" / "rules.yaml", RULES + EXTRA_RULE)
    rewrite(policies / "policy.yaml", POLICY.replace("mode: enforce", "mode: shadow"))

    reload = asyncio.create_task(live.reload())
    await asyncio.sleep(0)
    assert live.current is before  # the old pack is in force while the new one loads
    assert await reload is True

    after = live.current
    assert after is not None
    assert after is not before
    assert after.policy.version != before.policy.version
    assert (after.policy.mode, before.policy.mode) == (Mode.SHADOW, Mode.ENFORCE)
    assert after.engine.policy is after.policy
    assert "t.meeting.meet_up" in after.rules
    assert matched(after, "lets meet up") == ["t.meeting.meet_up"]
    # A message that already read the old generation finishes with it, unchanged.
    assert before.engine.policy is before.policy
    assert "t.meeting.meet_up" not in before.rules
    assert matched(before, "lets meet up") == []
    assert (reloads(live, "loaded"), reloads(live, "refused")) == (2, 0)


async def test_a_reload_picks_up_a_changed_catalogue(test_pack: Pack, tmp_path: Path) -> None:
    _, banners = test_pack
    live = live_policy(test_pack, tmp_path)
    live.load_now()
    rewrite(banners / "test.yaml", BANNERS.replace("Are you sure", "Really"))
    assert await live.reload() is True
    assert live.current is not None
    banner = live.current.catalogue.get("pi_share_confirm")
    assert banner is not None
    assert banner.text["en"] == "Really you want to send this number?"


def break_rules(pack: Pack) -> str:
    rewrite(pack[0] / "en" / "rules.yaml", RULES + "  - id: [broken\n")
    return "rules.yaml:"


def unknown_banner(pack: Pack) -> str:
    rewrite(pack[0] / "en" / "rules.yaml", RULES.replace("pi_share_confirm", "no_such_banner"))
    return "no_such_banner"


def banner_removed(pack: Pack) -> str:
    trimmed = BANNERS.split("  - id: deterrence_image_request")[0]
    rewrite(pack[1] / "test.yaml", trimmed)
    return "deterrence_image_request"


def catalogue_without_english(pack: Pack) -> str:
    rewrite(pack[1] / "test.yaml", BANNERS.replace("en: Someone", "fr: Someone"))
    return "off_platform_warning: `text` needs an `en` entry"


def catalogue_missing_a_declared_locale(pack: Pack) -> str:
    # The file promises English and Spanish; one banner has only English.
    rewrite(pack[1] / "test.yaml", "locales: [en, es]\n" + BANNERS)
    return "pi_share_confirm: `text` is missing locale(s) es"


def catalogue_missing_a_pack_language(pack: Pack) -> str:
    # The pack gains a Spanish rule; the catalogue has no Spanish for most banners.
    spanish = RULES.replace("language: en", "language: es").replace("id: t.", "id: t_es.")
    (pack[0] / "es").mkdir()
    rewrite(pack[0] / "es" / "rules.yaml", spanish)
    return "pi_share_confirm: `text` has no text in the pack's language(s) es"


def catalogue_with_an_unknown_signal(pack: Pack) -> str:
    rewrite(
        pack[1] / "test.yaml",
        BANNERS.replace(
            "    purpose: test\n", "    purpose: test\n    trigger: {signals: [telepathy]}\n", 1
        ),
    )
    return "off_platform_warning: `trigger.signals`: unknown signal 'telepathy'"


def catalogue_with_a_signal_the_pack_never_detects(pack: Pack) -> str:
    rewrite(
        pack[1] / "test.yaml",
        BANNERS.replace(
            "    purpose: test\n", "    purpose: test\n    trigger: {signals: [gift_lure]}\n", 1
        ),
    )
    return "off_platform_warning: no rule of the pack detects signal 'gift_lure'"


def bad_setting(pack: Pack) -> str:
    rewrite(pack[0] / "policy.yaml", POLICY + "settings:\n  risk:\n    not_a_setting: 1\n")
    return "settings.risk.not_a_setting"


def pack_removed(pack: Pack) -> str:
    for path in sorted(pack[0].rglob("*.yaml"), reverse=True):
        path.unlink()
    (pack[0] / "en").rmdir()
    pack[0].rmdir()
    return "not a directory"


@pytest.mark.parametrize(
    "spoil",
    [
        break_rules,
        unknown_banner,
        banner_removed,
        catalogue_without_english,
        catalogue_missing_a_declared_locale,
        catalogue_missing_a_pack_language,
        catalogue_with_an_unknown_signal,
        catalogue_with_a_signal_the_pack_never_detects,
        bad_setting,
        pack_removed,
    ],
)
async def test_an_invalid_reload_is_refused_and_the_old_pack_stays(
    test_pack: Pack,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    spoil: Callable[[Pack], str],
) -> None:
    live = live_policy(test_pack, tmp_path)
    before = live.load_now()
    reason = spoil(test_pack)
    with caplog.at_level(logging.ERROR, logger="chatguard.live_policy"):
        assert await live.reload() is False
    assert live.current is before
    assert matched(before, "add me on snap") == ["t.isolation.move_app"]
    assert (reloads(live, "loaded"), reloads(live, "refused")) == (1, 1)
    assert "previous pack stays in force" in caplog.text
    assert reason in caplog.text


# -- watching the files ------------------------------------------------------------


async def test_watch_reloads_after_a_file_changes(test_pack: Pack, tmp_path: Path) -> None:
    policies, _ = test_pack
    live = live_policy(test_pack, tmp_path)
    before = live.load_now()
    async with watching(live):
        await asyncio.sleep(unit(0.1))
        assert live.current is before  # nothing changed, nothing reloaded
        rewrite(policies / "en" / "rules.yaml", RULES + EXTRA_RULE)
        await eventually(lambda: live.current is not before)
    assert live.current is not None
    assert "t.meeting.meet_up" in live.current.rules
    assert reloads(live, "loaded") == 2


async def test_watch_notices_a_new_file(test_pack: Pack, tmp_path: Path) -> None:
    policies, _ = test_pack
    live = live_policy(test_pack, tmp_path)
    before = live.load_now()
    async with watching(live):
        (policies / "en" / "meeting.yaml").write_text(
            "language: en\nrules:" + EXTRA_RULE, encoding="utf-8"
        )
        await eventually(lambda: live.current is not before)
    assert live.current is not None
    assert "t.meeting.meet_up" in live.current.rules


async def test_watch_refuses_a_bad_change_once_then_loads_the_fix(
    test_pack: Pack, tmp_path: Path
) -> None:
    policies, _ = test_pack
    live = live_policy(test_pack, tmp_path)
    before = live.load_now()
    async with watching(live):
        break_rules(test_pack)
        await eventually(lambda: reloads(live, "refused") == 1)
        await asyncio.sleep(unit(0.15))  # several intervals: an unchanged bad pack is not retried
        assert reloads(live, "refused") == 1
        assert live.current is before
        rewrite(policies / "en" / "rules.yaml", RULES + EXTRA_RULE)
        await eventually(lambda: live.current is not before)
    assert (reloads(live, "loaded"), reloads(live, "refused")) == (2, 1)


async def test_a_settled_pack_leaves_the_collector_and_a_reload_releases_the_old_one(
    test_pack: Pack, tmp_path: Path
) -> None:
    policies, _ = test_pack
    live = live_policy(test_pack, tmp_path, settle_heap=True)
    try:
        first = live.load_now()
        assert gc.get_freeze_count() > 0
        # The pack in force is no longer walked by the collector.
        assert not any(o is first.policy.rules for o in gc.get_objects())
        old_engine = weakref.ref(first.engine)
        del first
        rewrite(policies / "en" / "rules.yaml", RULES + EXTRA_RULE)
        assert await live.reload() is True
        current = live.current
        assert current is not None
        assert "t.meeting.meet_up" in current.rules
        # The new pack is settled in its turn, and the old one is gone.
        assert not any(o is current.policy.rules for o in gc.get_objects())
        assert old_engine() is None
    finally:
        gc.unfreeze()


async def test_without_settling_nothing_is_frozen(test_pack: Pack, tmp_path: Path) -> None:
    gc.unfreeze()
    live_policy(test_pack, tmp_path).load_now()
    assert gc.get_freeze_count() == 0
