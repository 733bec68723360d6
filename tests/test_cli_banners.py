"""``chatguard banners lint`` and ``chatguard banners report``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from chatguard.cli import main
from chatguard.cli_banners import parse_since
from tests.support.relay import GuardFactory
from tests.support.timing import eventually
from tests.test_steps_speedbumps import connect, dm, guarded, recv_type

ROOT = Path(__file__).resolve().parent.parent
Pack = tuple[Path, Path]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- lint --------------------------------------------------------------------------------


# Loading and safety-checking the whole default pack takes seconds; the fast
# form of this check is in test_banners. Run with `pytest -m slow`.
@pytest.mark.slow
@pytest.mark.skipif("'slow' not in config.getoption('markexpr')", reason="run with -m slow")
def test_the_shipped_catalogue_fits_the_default_pack(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "banners", "lint", str(ROOT / "banners"), "--policy", str(ROOT / "policies")
    )
    assert (code, out.strip()) == (0, f"{ROOT / 'banners'}: 8 banners, ok")


def test_lint_lists_problems_with_file_and_line(
    capsys: pytest.CaptureFixture[str], test_pack: Pack
) -> None:
    policies, banners = test_pack
    (banners / "extra.yaml").write_text(
        "banners:\n"
        "  - id: gifts\n"
        "    trigger: {signals: [gift_lure]}\n"
        "    text: {en: 'Careful with gifts from {other}.'}\n"
        "  - id: broken\n"
        "    text: {en: 'Hello {nobody}'}\n",
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "banners", "lint", str(banners), "--policy", str(policies), "--json")
    body = json.loads(out)
    assert (code, body["ok"]) == (1, False)
    assert body["problems"] == [
        {
            "file": str(banners / "extra.yaml"),
            "line": 6,
            "message": "broken: `text.en`: unknown placeholder {nobody} "
            "(known: {other}, {report}, {resources}, {room}, {rule})",
        }
    ]
    # Fixed, the cross-check with the pack runs: no rule detects gift_lure.
    (banners / "extra.yaml").write_text(
        "banners:\n  - id: gifts\n    trigger: {signals: [gift_lure]}\n    text: {en: x}\n",
        encoding="utf-8",
    )
    code, _, err = run(capsys, "banners", "lint", str(banners), "--policy", str(policies))
    assert code == 1
    assert err.strip() == (
        f"{banners / 'extra.yaml'}:2: gifts: no rule of the pack detects signal 'gift_lure'"
    )
    # Without the pack, the catalogue alone is fine.
    assert run(capsys, "banners", "lint", str(banners))[0] == 0


def test_lint_names_banners_the_pack_needs(
    capsys: pytest.CaptureFixture[str], test_pack: Pack
) -> None:
    policies, banners = test_pack
    text = (banners / "test.yaml").read_text(encoding="utf-8")
    (banners / "test.yaml").write_text(text.split("  - id: deterrence_image_request")[0])
    code, _, err = run(capsys, "banners", "lint", str(banners), "--policy", str(policies))
    assert code == 1
    assert "the pack names banner 'deterrence_image_request', not in the catalogue" in err
    assert "rules.yaml:" in err


# -- report ------------------------------------------------------------------------------


def test_since_accepts_relative_and_absolute_times() -> None:
    assert parse_since("2d", 1000_000.0) == 1000_000.0 - 2 * 86400
    assert parse_since("30m", 5000.0) == 3200.0
    assert parse_since("2026-03-01", 0) == 1772323200.0
    assert parse_since("2026-03-01T01:00:00+01:00", 0) == 1772323200.0


def test_report_without_a_log_fails_clearly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "banners", "report", "--data-dir", str(tmp_path))
    assert code == 1
    assert "no banner event log" in err


async def hold_answer(ws: Any, peer: str, text: str, choice: str | None) -> None:
    await dm(ws, peer, text)
    hold = await recv_type(ws, "chatguard.hold")
    if choice is not None:
        answer = {"type": "chatguard.confirm", "hold": hold["hold"], "choice": choice}
        await ws.send(json.dumps(answer))


async def test_report_figures_on_a_scripted_run(
    chat_service,
    make_guard: GuardFactory,
    test_pack: Pack,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"
    guard = await guarded(
        make_guard,
        chat_service.url,
        test_pack,
        data_dir=str(data),
        banners={"outcome_window": 0.5, "deterrence_window": 0.5},
    )
    users = {
        name: await connect(guard, name, age)
        for name, age in [
            ("amy", 13),
            ("bob", 14),
            ("cat", 12),
            ("dan", 15),
            ("eve", 40),
            ("fay", 38),
        ]
    }
    try:
        await eventually(lambda: len(guard.relay.sessions) == 6)
        # Prompts: one edited, one sent anyway, one cancelled.
        await hold_answer(users["amy"], "bob", "call me 555 123 4567 ok", "cancel")
        await recv_type(users["amy"], "chatguard.banner")  # "not sent"
        await dm(users["amy"], "bob", "call me later ok")
        await hold_answer(users["cat"], "bob", "my number is 555 123 4567", "send")
        await hold_answer(users["dan"], "bob", "555 123 4567", "cancel")
        # Deterrence: eve asks again (reoffended), then stops (desisted).
        await dm(users["eve"], "amy", "send me a pic")
        await recv_type(users["eve"], "chatguard.banner")
        await dm(users["eve"], "amy", "send me a selfie")
        await recv_type(users["eve"], "chatguard.banner")
        # A warning the child reports.
        await dm(users["fay"], "bob", "add me on snap")
        await recv_type(users["bob"], "chatguard.banner")
        await dm(users["bob"], "fay", "/report asked me to move apps")
        await recv_type(users["bob"], "chatguard.banner")

        def outcomes() -> float:
            samples = guard.metrics.registry.get_sample_value
            return sum(
                samples(
                    "chatguard_banner_outcomes_total",
                    {"banner": b, "variant": "default", "outcome": o},
                )
                or 0.0
                for b, o in [
                    ("pi_share_confirm", "edited"),
                    ("pi_share_confirm", "sent_anyway"),
                    ("pi_share_confirm", "cancelled"),
                    ("deterrence_image_request", "reoffended"),
                    ("deterrence_image_request", "desisted"),
                    ("off_platform_warning", "reported"),
                ]
            )

        await eventually(lambda: outcomes() == 6.0, within=5)
    finally:
        for ws in users.values():
            await ws.close()
    await asyncio.sleep(0)
    code, out, _ = run(capsys, "banners", "report", "--data-dir", str(data), "--json")
    assert code == 0
    body = json.loads(out)
    figures = {
        (b["banner"], b["variant"]): (
            b["impressions"],
            {o: v["count"] for o, v in b["outcomes"].items() if v["count"]},
        )
        for b in body["banners"]
    }
    assert figures == {
        ("pi_share_confirm", "default"): (3, {"edited": 1, "sent_anyway": 1, "cancelled": 1}),
        ("deterrence_image_request", "default"): (2, {"reoffended": 1, "desisted": 1}),
        ("off_platform_warning", "default"): (1, {"reported": 1}),
    }
    pi = next(b for b in body["banners"] if b["banner"] == "pi_share_confirm")
    assert pi["outcomes"]["edited"]["rate"] == 0.3333
    assert pi["outcomes"]["edited"]["ci95"] == [0.0615, 0.7923]
    code, out, _ = run(capsys, "banners", "report", "--data-dir", str(data), "--since", "1h")
    assert code == 0
    assert "pi_share_confirm [default] (prompt): 3 impressions, 3 with an outcome" in out
