"""The work bound of a rule regex: never below what an exhaustive
backtracking search does, growing with the text, and enormous for the
patterns the timeout is there for."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatguard.policy import regex_tree as tree
from chatguard.policy.regex_tree import parse
from chatguard.policy.regex_work import CAP, longest_text, search_steps
from tests.support.regexes import regexes

# --- A backtracking search that counts its steps ---------------------------------------


class _TooMany(Exception):
    pass


class Search:
    """Every way of matching a tree at every position, one step per class or
    assertion tested and per way a lookaround or the whole regex succeeds, as
    a backtracking engine does at worst: each class may match any
    character of its ``upper`` set, each assertion but ``^``/``\\A`` holds,
    and every lookaround is tried to the end and holds."""

    def __init__(self, text: str, limit: int) -> None:
        self.text, self.limit, self.steps = text, limit, 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.limit:
            raise _TooMany

    def ways(self, node: tree.Node, pos: int) -> Iterator[int]:
        match node:
            case tree.CharSet(_, upper, _):
                self.step()
                if pos < len(self.text) and any(a <= ord(self.text[pos]) <= b for a, b in upper):
                    yield pos + 1
            case tree.Assert(kind):
                self.step()
                if kind not in ("^", "\\A") or pos == 0:
                    yield pos
            case tree.Look(_, _, body):
                for _ in self.ways(body, pos):
                    self.step()
                yield pos
            case tree.Seq(items):
                yield from self.seq(items, pos)
            case tree.Alt(branches):
                for branch in branches:
                    yield from self.ways(branch, pos)
            case tree.Repeat(body, lo, hi):
                yield from self.repeat(body, lo, hi, 0, pos)

    def seq(self, items: tuple[tree.Node, ...], pos: int) -> Iterator[int]:
        if not items:
            yield pos
            return
        for end in self.ways(items[0], pos):
            yield from self.seq(items[1:], end)

    def repeat(self, body: tree.Node, lo: int, hi: int | None, j: int, pos: int) -> Iterator[int]:
        if (hi is None or j < hi) and j <= len(self.text):
            for end in self.ways(body, pos):
                if end > pos or j < lo:  # an empty iteration past lo ends the loop
                    yield from self.repeat(body, lo, hi, j + 1, end)
        if j >= lo:
            yield pos

    def run(self, node: tree.Node) -> int:
        for start in range(len(self.text) + 1):
            for _ in self.ways(node, start):
                self.step()
        return self.steps


ATOMS = ["a", "b", "é", " ", "[ab]", "[^a]", r"\w", r"\d", r"\s", ".", r"\b", "^", "$"]
ATOMS += ["(?=a)", "(?<!b)", "(?=a|ab)", "ab", "(?:a|ab|abc)", "(?:ab|ab)", "(?:|a|)"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=regexes(ATOMS), text=st.text("ab é1", max_size=7))
def test_the_bound_is_never_below_an_exhaustive_search(source: str, text: str) -> None:
    node = parse(source)
    bound = search_steps(node, len(text))
    try:
        steps = Search(text, limit=50_000).run(node)
    except _TooMany:
        assert bound > 50_000, source
        return
    assert steps <= bound, (source, text, steps, bound)


@settings(max_examples=200, deadline=None)
@given(source=regexes(ATOMS))
def test_the_bound_grows_with_the_text(source: str) -> None:
    node = parse(source)
    bounds = [search_steps(node, n) for n in (0, 1, 2, 5, 17, 100, 1000, 4096)]
    assert bounds == sorted(bounds)
    assert all(0 < b <= CAP for b in bounds)


def test_plain_words_and_phrases_are_linear_or_close() -> None:
    word = parse(r"\bsnap\b")
    assert search_steps(word, 1000) == 1001 * search_steps(word, 0)
    phrase = parse(r"\badd\s+me\b")  # \s+ may take the whole text
    assert search_steps(phrase, 100) < 10 * search_steps(phrase, 10) ** 2


def test_alternatives_that_are_plain_strings_count_their_longest_prefix_chain() -> None:
    # At one position at most one of "you", "u", "ya" matches; "in" and
    # "in front of" can both match.
    plain, one_class = parse("(?:you|u|ya)x"), parse("(?:you|u|y[ab])x")
    assert search_steps(plain, 0) < search_steps(one_class, 0)
    chain, no_chain = parse("(?:in|in front of)x"), parse("(?:in|on front of)x")
    assert search_steps(chain, 0) > search_steps(no_chain, 0)


def test_a_leading_anchor_is_tried_past_at_one_position_only() -> None:
    anchored, floating = parse(r"^\w+x"), parse(r"\w+x")
    assert search_steps(anchored, 1000) * 100 < search_steps(floating, 1000)


@pytest.mark.parametrize("source", [r"(\w+\s?)+$", r"(?:a|a)+b", r"(?:\w+\w+)+!"])
def test_catastrophic_patterns_are_unbounded_on_any_real_text(source: str) -> None:
    assert longest_text(parse(source), budget=500_000, limit=65_536) < 20


def test_longest_text_is_the_last_length_within_the_budget() -> None:
    node = parse(r"\bsend\s+me\b")
    n = longest_text(node, budget=100_000, limit=65_536)
    assert search_steps(node, n) <= 100_000 < search_steps(node, n + 1)
    assert longest_text(node, budget=10**18, limit=300) == 300
    assert longest_text(node, budget=1, limit=300) == -1
