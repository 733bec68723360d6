"""Rule regexes: the supported subset, and refusal of patterns that could
take unbounded time."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import regex  # type: ignore[import-untyped, unused-ignore]

from chatguard.policy import safety
from chatguard.policy.safety import RegexRefused, check_regex

REFUSED = [
    # (pattern, reason)
    ("(add", "bad regex: missing ) at position 4"),
    ("(a+)+b", "unsafe regex: nested repetition"),
    ("(a*)*b", "unsafe regex: nested repetition"),
    (r"(\w+\s?)+$", "unsafe regex: nested repetition"),
    ("(?:x{1,3})+y", "unsafe regex: nested repetition"),
    ("(a|aa)+b", "unsafe regex: alternatives inside an unlimited repetition"),
    ("(?:ab|a)*c", "unsafe regex: alternatives inside an unlimited repetition"),
    ("(?:a|)+b", "unsafe regex: alternatives inside an unlimited repetition"),
    (r"(\b)+x", "unsafe regex: a repetition repeats something that can match nothing"),
    (r"(a)\1", "backreferences are not allowed at position 3"),
    ("(?P<w>a)(?P=w)", "backreferences are not allowed at position 8"),
    ("(?<=a+)b", "unsafe regex: a lookbehind must have a bounded width"),
    ("a?", "regex matches the empty string, so it would fire on every message"),
    (r"\b", "regex matches the empty string, so it would fire on every message"),
    ("(?i)snap", "inline flags are not supported"),
    ("snap{e<=1}", "fuzzy constraints are not supported in regex (use fuzzy:)"),
    ("a{1", "write \\{ for a literal '{'"),
    ("a}", "write \\} for a literal '}'"),
    ("[[]", "write \\[ for a '[' inside a set"),
    (r"\G", "unsupported escape"),
    ("(?|a|b)", "unsupported group syntax"),
    ("(?#note)a", "comments are not supported"),
    # Slow only when run: the generated worst-case inputs find it.
    (r"(\w+\s?){1,10}$", "unsafe regex: "),
    (r"\bsinon\b[^.!?]*?\b(?:envoyer|publier)\b", "unsafe regex: "),
    (r"\bor\b.*?\b(?:send|post)\b", "unsafe regex: "),
]


@pytest.mark.parametrize(
    ("source", "probe"),
    [
        (r"\bsinon\b[^.!?]*?\b(?:envoyer|publier)\b", "'sinon ' repeated"),
        (r"\bor\b.*?\b(?:send|post)\b", "'or ' repeated"),
    ],
)
def test_a_slow_pattern_is_refused_naming_the_input_that_shows_it(source: str, probe: str) -> None:
    with pytest.raises(RegexRefused) as e:
        check_regex(source)
    assert probe in str(e.value)


def test_an_ordinary_pattern_is_accepted() -> None:
    """Judged on CPU time, so this passes however busy the machine is."""
    check_regex(r"\b(?:snap|snapchat|whatsapp|telegram|kik|discord|insta)\b")


@pytest.mark.parametrize(("source", "reason"), REFUSED)
def test_refused(source: str, reason: str) -> None:
    with pytest.raises(RegexRefused) as e:
        check_regex(source)
    assert str(e.value).startswith(reason)


ACCEPTED = [
    r"\b(add|text|msg|message|hit) me (up )?on (snap(chat)?|whatsapp|telegram|kik)\b",
    r"\bsend (?:\w+ ){0,3}pics?\b",
    r"\b\d{3}[-. ]?\d{4}\b",
    r"\b(?:ab|cd)+\b",
    r"[^\w\s]snap",
    r"[a-z\u0430-\u044f]+x",
    r"\p{L}+ \p{N}+",
    r"[[:alpha:]]+x",
    r".*send.*pics",
    r"\bsinon\b[^.!?]{0,40}?\b(?:envoyer|publier)\b",
    r"(?<=my )snap",
    r"(?<!no )snap(?!shot)",
    r"\bi(?:'|\s)?m \d{1,2}\b",
    r"\x41?\u00e9?\N{LATIN SMALL LETTER A}",
    r"a++b|(?>c)d|ef*?g",
]


@pytest.mark.parametrize("source", ACCEPTED)
def test_accepted(source: str) -> None:
    check_regex(source)


@pytest.fixture
def slow_machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This thread's CPU clock running four times as fast: every pattern,
    the reference too, seems to cost four times as much, as on a slow CPU."""
    real = time.thread_time
    start = real()
    monkeypatch.setattr(safety.time, "thread_time", lambda: start + 4 * (real() - start))
    safety.slow_limit.cache_clear()
    yield
    safety.slow_limit.cache_clear()


def test_the_time_limit_is_at_least_the_fixed_one_and_bounded() -> None:
    assert safety.SLOW_SECONDS <= safety.slow_limit() <= safety.MAX_SLOW_SECONDS


@pytest.mark.usefixtures("slow_machine")
def test_on_a_slow_machine_the_limit_follows_the_reference() -> None:
    limit = safety.slow_limit()
    assert limit >= safety.SLOW_SECONDS
    compiled = regex.compile(safety.REFERENCE_PATTERN, safety.FLAGS)
    reference = safety._cpu_seconds(compiled, safety.REFERENCE_TEXT)
    # The limit is the reference's cost times SLOW_REFERENCES (measured on
    # the fastest of five runs, so within the spread of one more run).
    assert limit == safety.MAX_SLOW_SECONDS or limit <= safety.SLOW_REFERENCES * reference * 1.5


@pytest.mark.usefixtures("slow_machine")
def test_on_a_slow_machine_linear_patterns_pass_and_quadratic_ones_are_still_refused() -> None:
    # Shaped like the pack's slowest (a lookbehind and bounded gaps).
    check_regex(
        r"(?<!\b(?:nao|n|nunca|jamais|proibido)\b[^.!?]{0,20})\b(?:vem|venha|vens)\b"
        r"[^.!?]{0,40}?\b(?:sozinha|sozinho|so)\b"
    )
    check_regex(r"\bsinon\b[^.!?]{0,40}?\b(?:envoyer|publier)\b")
    for source, probe in [
        (r"\bsinon\b[^.!?]*?\b(?:envoyer|publier)\b", "'sinon ' repeated"),
        (r"\bor\b.*?\b(?:send|post)\b", "'or ' repeated"),
    ]:
        with pytest.raises(RegexRefused) as e:
            check_regex(source)
        assert probe in str(e.value)
