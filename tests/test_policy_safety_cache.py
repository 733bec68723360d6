"""Remembered regex verdicts: a second load skips the checks of regexes it
accepted before, and accepts and refuses exactly what a first load does."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from chatguard.policy.rules import PolicyError, load_policy, regex_pattern
from chatguard.policy.safety_cache import FILE_NAME, MAX_ENTRIES, SafetyCache, verdict_key

SLOW = r"\bor\b.*?\b(?:send|post)\b"  # passes the shape checks, fails the probes
SAFE = [r"\bsnap(?:chat)?\b", r"\bdiscord\b", r"\bkik\b"]


def pack(directory: Path, *regexes: str) -> Path:
    patterns = "".join(f"      - regex: '{r}'\n" for r in regexes)
    (directory / "en").mkdir(parents=True, exist_ok=True)
    (directory / "en" / "contact.yaml").write_text(
        textwrap.dedent(
            """\
            language: en
            rules:
              - id: en.isolation.apps
                description: names an app
                signal: isolation
                patterns:
            """
        )
        + patterns
        + "    examples: {match: [add me on snap]}\n",
        encoding="utf-8",
    )
    return directory


def saved(cache_dir: Path) -> set[str]:
    return set(json.loads((cache_dir / FILE_NAME).read_text())["safe"])


def test_a_second_load_knows_the_verdicts_of_the_first(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = load_policy(pack(tmp_path / "p", *SAFE), cache_dir=cache)
    assert saved(cache) == {verdict_key(s) for s in SAFE}
    warm = SafetyCache(cache)
    for source in SAFE:
        regex_pattern(source, verdicts=warm)
    assert (warm.hits, warm.misses) == (3, 0)  # nothing was checked again
    second = load_policy(tmp_path / "p", cache_dir=cache)
    assert second == first


def test_without_a_cache_dir_nothing_is_written(tmp_path: Path) -> None:
    load_policy(pack(tmp_path / "p", *SAFE))
    assert not any(tmp_path.rglob(FILE_NAME))


def test_an_unsafe_pattern_is_refused_the_same_way_warm_and_is_never_remembered(
    tmp_path: Path,
) -> None:
    directory = pack(tmp_path / "p", *SAFE, SLOW)
    cache = tmp_path / "cache"
    errors = []
    for _ in range(2):  # cold, then with the safe verdicts remembered
        with pytest.raises(PolicyError) as e:
            load_policy(directory, cache_dir=cache)
        # The measured milliseconds vary from run to run; the rest may not.
        errors.append([str(i).rsplit(" (", 1)[0] for i in e.value.errors])
    assert errors[0] == errors[1]
    assert len(errors[0]) == 1
    assert errors[0][0].startswith(f"{directory / 'en' / 'contact.yaml'}:10: unsafe regex: ")
    assert saved(cache) == {verdict_key(s) for s in SAFE}  # the good ones are kept


def test_the_key_covers_the_pattern_text() -> None:
    keys = {verdict_key(s) for s in [*SAFE, SAFE[0] + " ", SAFE[0].upper()]}
    assert len(keys) == len(SAFE) + 2
    assert all(len(k) == 32 for k in keys)


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"[]", b'{"format": 2, "safe": []}', b'{"format": 1, "safe": "x"}',
     b'{"format": 1}', b"\xff\xfe"],
)  # fmt: skip
def test_a_broken_cache_file_is_an_empty_cache(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / FILE_NAME).write_bytes(content)
    load_policy(pack(tmp_path / "p", *SAFE), cache_dir=tmp_path / "cache")
    assert saved(tmp_path / "cache") == {verdict_key(s) for s in SAFE}


def test_a_cache_dir_that_cannot_be_written_is_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    load_policy(pack(tmp_path / "p", *SAFE), cache_dir=blocker / "cache")


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    others = [f"{i:032x}" for i in range(MAX_ENTRIES)]
    (cache / FILE_NAME).write_text(json.dumps({"format": 1, "safe": others}))
    load_policy(pack(tmp_path / "p", *SAFE), cache_dir=cache)
    # Full: only the verdicts of the pack just loaded are kept.
    assert saved(cache) == {verdict_key(s) for s in SAFE}
    (cache / FILE_NAME).write_text(json.dumps({"format": 1, "safe": [*others, "0" * 32]}))
    assert not SafetyCache(cache).known_safe(SAFE[0])  # over the bound: read as empty
