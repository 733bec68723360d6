"""A regex led by lookaheads, confirmed part by part, gives the whole regex's spans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ahocorasick
import pytest
import regex

from chatguard.policy import prefilter, safety
from chatguard.policy.lookahead_confirm import LeadingLooks
from chatguard.policy.normalise import normalise
from chatguard.policy.rules import load_policy

EVAL = Path(__file__).parent / "eval"


def whole(source: str, text: str) -> list[tuple[int, int]]:
    compiled = regex.compile(source, safety.FLAGS)
    return [m.span() for m in compiled.finditer(text) if m.end() > m.start()]


def parts(source: str, probed: int | None = None) -> LeadingLooks:
    looks = LeadingLooks.build(source, probed)
    assert looks is not None, source
    return looks


CASES = [
    # Two parts somewhere, then the rest from the start.
    (
        r"^(?=.*\b(?:pics?|videos?)\b)(?=.*\b(?:pay|venmo)\b).*?\b(?:or|unless)\b",
        [
            "pay me or i post the pics",
            "pics pics",
            "pay or else",
            "or pay the videos",
            "unless you pay for pics",
            "",
        ],
    ),
    # A negative part.
    (
        r"^(?!.*\b(?:homework|receipt)\b)(?=.*\bsend\b).*\bpic\b",
        ["send me a pic", "send a pic of the receipt", "pic send", "send the homework pic"],
    ),
    # A lookahead that does not begin with ".*" is matched at the start.
    (r"^(?=hey\b).*\bcome\b", ["hey come over", "oh hey come over", "hey", "heya come"]),
    # An alternation inside the lookahead: its second branch holds only at 0.
    (r"^(?=.*snap|add)\w+", ["add me", "my snap", "please add", "snap"]),
    # Possessive: does not back off, so never finds the word after it.
    (r"^(?=.*+x)a", ["ax", "a"]),
    # Lazy lead.
    (
        r"^(?=.*?\bcam\b)(?:turn|put)",
        ["turn on ur cam", "put the cam on", "turn it up", "cam turn"],
    ),
    # A lazy rest: the span runs from 0 to the end of the first match after it.
    (r"^(?=.*\bpay\b).*?\b(?:or|unless)\b", ["pay or else", "or pay", "pay", "unless you pay or"]),
    (r"^(?=.*\bpay\b).*?(?:a|pay)", ["pay", "b pay", "b"]),
]


@pytest.mark.parametrize(("source", "texts"), CASES)
@pytest.mark.parametrize("probed", [None, 0, 1])
def test_the_same_spans_as_the_whole_regex(
    source: str, texts: list[str], probed: int | None
) -> None:
    looks = parts(source, probed)
    for text in texts:
        assert looks.spans(text, None) == whole(source, text), (source, text)


def test_only_regexes_led_by_lookaheads() -> None:
    # Nor one whose rest may match nothing: after an empty match at 0,
    # finditer looks at 0 again for a longer one ("p" in "pay" below).
    assert [m.span() for m in regex.finditer(r"^(?=.*\bpay\b).*?x?", "pay")] == [(0, 0), (0, 1)]
    others = [r"\bsnap\b", r"^snap", r"^(?=a)b|c", r"(?=a)b", r"^(?:(?=a)b)", r"^(?=a)*b"]
    for source in [*others, r"^(?=.*\bpay\b).*?x?", r"^(?=.*a)(?=.*b)"]:
        assert LeadingLooks.build(source) is None, source


def test_a_text_with_a_newline_is_left_to_the_whole_regex() -> None:
    # "(?=.*b)" does not see past the newline; a search would.
    source = r"^(?=.*b)a"
    assert whole(source, "a\nb") == []
    assert not LeadingLooks.applies("a\nb")
    assert LeadingLooks.applies("a b")


def test_each_part_runs_under_the_timeout() -> None:
    slow = r"^(?=.*(?:\w+\s?)+(?<!a)$)x"
    with pytest.raises(TimeoutError):
        parts(slow).spans("x " + "aa " * 2000 + "a", 0.001)


def test_every_regex_of_the_pack_on_the_evaluation_messages(pack_cache: Path) -> None:
    """On every evaluation message that holds a literal the regex needs (the
    others are never candidates), part by part equals the whole regex."""
    policy = load_policy(Path(__file__).parent.parent / "policies", cache_dir=pack_cache)
    sources = {
        p.expression
        for r in policy.rules
        for p in (*r.patterns, *r.unless, *r.signal_unless)
        if p.literal is None and p.expression.startswith(("^(?=", "^(?!"))
    }
    texts = sorted(
        {
            normalise(json.loads(line)["text"]).folded
            for f in sorted(EVAL.glob("*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines()
        }
    )
    # Which texts hold one of a regex's literals: one automaton for them all.
    finder = ahocorasick.Automaton()
    cases: list[tuple[str, LeadingLooks, Any]] = []
    always: list[int] = []
    for source in sorted(sources):
        root = safety.parse(source)
        looks = LeadingLooks.build(source, prefilter.probed_look(root))
        if looks is None:
            continue
        keys = prefilter.regex_keys(root)
        if keys is None:
            always.append(len(cases))
        for key in keys or ():
            finder.add_word(key, (*finder.get(key, ()), len(cases)))
        cases.append((source, looks, regex.compile(source, safety.FLAGS)))
    finder.make_automaton()
    checked = 0
    for text in texts:
        for i in sorted({i for _, ids in finder.iter(text) for i in ids} | set(always)):
            source, looks, compiled = cases[i]
            expected = [m.span() for m in compiled.finditer(text) if m.end() > m.start()]
            assert looks.spans(text, None) == expected, (source, text)
            checked += 1
    assert len(cases) > 200
    assert checked > 10_000
