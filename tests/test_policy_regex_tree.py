"""The regex tree: character classes exact on ASCII and conservative
elsewhere, widths, and refusal of syntax outside the subset."""

from __future__ import annotations

import pytest
import regex

from chatguard.policy import regex_tree
from chatguard.policy.regex_tree import RegexRefused, leading_looks, parse


def test_classes_are_exact_on_ascii_and_wide_elsewhere() -> None:
    word = parse(r"\w")
    assert isinstance(word, regex_tree.CharSet)
    ascii_word = {chr(c) for c in range(128) if regex.fullmatch(r"\w", chr(c))}
    assert set(regex_tree.chars(word.lower)) == ascii_word
    assert regex_tree.intersects(word.upper, ((0x430, 0x430),))  # may match Cyrillic

    negated = parse(r"[^\w\s]")
    assert isinstance(negated, regex_tree.CharSet)
    assert not regex_tree.intersects(negated.upper, ((ord("a"), ord("a")),))
    assert regex_tree.intersects(negated.lower, ((ord("!"), ord("!")),))

    written = parse("[a-c\u0430]")
    assert isinstance(written, regex_tree.CharSet)
    assert written.lower == written.upper == ((97, 99), (0x430, 0x430))

    dot = parse(".")
    assert isinstance(dot, regex_tree.CharSet)
    assert dot.upper == regex_tree.ALL
    assert not regex_tree.intersects(dot.lower, ((10, 10),))


def test_widths() -> None:
    assert regex_tree.min_width(parse("ab?c{2,3}")) == 3
    assert regex_tree.max_width(parse("ab?c{2,3}")) == 5
    assert regex_tree.max_width(parse("a+")) is None
    assert regex_tree.min_width(parse(r"\bx(?=y)")) == 1


@pytest.mark.parametrize("source", [r"(a)\1", r"(?i)a", r"(?(1)a|b)", r"a{e<=1}", r"(?R)"])
def test_syntax_outside_the_subset_is_refused(source: str) -> None:
    with pytest.raises(RegexRefused):
        parse(source)


def test_a_tree_is_parsed_once_and_shared() -> None:
    assert parse(r"\bsnap(chat)?\b") is parse(r"\bsnap(chat)?\b")


def test_leading_lookaheads_are_cut_where_the_parser_ends_them() -> None:
    source = r"^(?=.*\b(?:a|b)\b)(?!.*[)(])(?=.*\(x\))rest(?:y|z)"
    assert leading_looks(source) == (
        ((False, r".*\b(?:a|b)\b"), (True, r".*[)(]"), (False, r".*\(x\)")),
        "rest(?:y|z)",
    )
    assert leading_looks(r"^(?=a)") == (((False, "a"),), "")
    # Not led by lookaheads, an alternation at the top, a repeated lookahead.
    for other in [r"abc", r"^abc", r"(?=a)b", r"^(?=a)b|c", r"^(?=a)?b", r"^(?=a"]:
        assert leading_looks(other) is None, other
