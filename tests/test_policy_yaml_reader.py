"""Tests for ``chatguard.policy.yaml_reader``: every problem becomes an issue
with its file and line, and reading goes on."""

from __future__ import annotations

import enum

import pytest
import yaml

from chatguard.policy.yaml_reader import PolicyError, PolicyIssue, Reader, kind, suggest


def reader() -> Reader:
    return Reader("pack/en.yaml", [])


def lines(r: Reader) -> list[str]:
    return [str(i) for i in r.issues]


def test_a_syntax_error_names_its_line() -> None:
    r = reader()
    assert r.compose("a: 1\nb: [unclosed\nc: 2\n") is None
    assert len(r.issues) == 1
    assert r.issues[0].line in (2, 3)
    assert "YAML syntax error" in r.issues[0].reason


def test_unknown_duplicate_and_missing_keys_are_each_reported() -> None:
    r = reader()
    node = r.compose("id: x\nsignl: secrecy\nid: y\n")
    assert node is not None
    fields = r.mapping(node, "a rule", ["id", "signal"], required=["signal"])
    assert fields is not None
    assert set(fields) == {"id"}
    assert lines(r) == [
        "pack/en.yaml:2: unknown key 'signl' in a rule (did you mean 'signal'?)",
        "pack/en.yaml:3: duplicate key 'id' in a rule (first at line 1)",
        "pack/en.yaml:1: a rule is missing 'signal'",
    ]


@pytest.mark.parametrize(
    ("text", "read", "expected", "issue"),
    [
        ("on", "text", "on", None),  # as written, not YAML's True
        ("''", "text", None, "'w' is empty"),
        ("[a]", "text", None, "'w' must be text, not a list"),
        ("2.5", "number", 2.5, None),
        ("-1", "number", None, "'w' must be at least 0"),
        (".nan", "number", None, "'w' must be a number"),
        ("true", "number", None, "'w' must be a number"),
        ("7", "integer", 7, None),
        ("70", "integer", None, "'w' must be a whole number from 1 to 10"),
        ("false", "boolean", False, None),
        ("no way", "boolean", None, "'w' must be true or false"),
    ],
)
def test_scalars(text: str, read: str, expected: object, issue: str | None) -> None:
    r = reader()
    node = r.compose(f"w: {text}\n")
    assert isinstance(node, yaml.MappingNode)
    value = node.value[0][1]
    if read == "integer":
        got = r.integer(value, "w", 1, 10)
    elif read == "number":
        got = r.number(value, "w")
    else:
        got = getattr(r, read)(value, "w")
    assert got == expected
    assert [i.reason for i in r.issues] == ([issue] if issue else [])


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


def test_choices_and_members_suggest_the_closest() -> None:
    r = reader()
    node = r.compose("[blue, rde, 5]")
    assert isinstance(node, yaml.SequenceNode)
    items = r.items(node, "colours")
    assert [r.member(n, "colour", Colour) for n in items] == [Colour.BLUE, None, None]
    assert lines(r) == [
        "pack/en.yaml:1: unknown colour 'rde' (did you mean 'red'?)",
        "pack/en.yaml:1: unknown colour '5' (allowed: red, blue)",
    ]


def test_a_single_text_reads_as_a_list_of_one_and_empty_lists_are_named() -> None:
    r = reader()
    node = r.compose("a: snap\nb: []\n")
    assert isinstance(node, yaml.MappingNode)
    (_, a), (_, b) = node.value
    assert r.texts(a, "words") == ["snap"]
    assert r.texts(b, "words") == []
    assert r.texts(b, "unless", empty_ok=True) == []
    assert lines(r) == ["pack/en.yaml:2: 'words' is empty"]


def test_kinds_and_suggestions() -> None:
    r = reader()
    node = r.compose("a: {x: 1}\nb: [1]\nc:\nd: t\n")
    assert isinstance(node, yaml.MappingNode)
    assert [kind(v) for _, v in node.value] == ["a mapping", "a list", "empty", "text"]
    assert suggest("regx", ["regex", "phrase"]) == "did you mean 'regex'?"
    assert suggest("zzz", ["regex", "phrase"]) == "allowed: regex, phrase"


def test_a_policy_error_lists_every_issue_one_per_line() -> None:
    error = PolicyError([PolicyIssue("a.yaml", 3, "bad"), PolicyIssue("b.yaml", 0, "unreadable")])
    assert str(error) == "a.yaml:3: bad\nb.yaml: unreadable"
    assert isinstance(error, ValueError)
