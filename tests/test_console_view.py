"""Pure view helpers: filter parsing, span highlighting, durations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatguard.console.view import (
    MAX_LIMIT,
    FilterError,
    Filters,
    age,
    highlight,
    parse_duration,
    parse_filters,
)


def test_filters_parse() -> None:
    f = parse_filters(
        {"status": "new", "severity": "high", "category": "grooming", "older_than": "60"}
    )
    assert f == Filters("new", "high", "grooming", None, 60.0)
    assert parse_filters({}) == Filters()
    assert parse_filters({"status": "", "limit": "5"}) == Filters(limit=5)


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"status": "open"}, "status"),
        ({"severity": "urgent"}, "severity"),
        ({"older_than": "soon"}, "older_than"),
        ({"older_than": "-5"}, "older_than"),
        ({"limit": "0"}, "limit"),
        ({"limit": str(MAX_LIMIT + 1)}, "limit"),
        ({"sort": "x"}, "sort"),
        ({"lead": "yes"}, "lead"),
    ],
)
def test_bad_filters_name_the_parameter(query: dict[str, str], parameter: str) -> None:
    with pytest.raises(FilterError) as err:
        parse_filters(query)
    assert err.value.parameter == parameter


def test_highlight_marks_spans_in_the_original_text() -> None:
    pieces = highlight("send me a pic pls", [(10, 13, "image-request")])
    assert pieces == [("send me a ", None), ("pic", "image-request"), (" pls", None)]


def test_overlapping_spans_merge_and_out_of_range_is_clipped() -> None:
    pieces = highlight("abcdef", [(1, 3, "r1"), (2, 5, "r2"), (4, 99, "r2"), (10, 12, "r3")])
    assert pieces == [("a", None), ("bcdef", "r1, r2")]


@given(
    st.text(max_size=40),
    st.lists(st.tuples(st.integers(-5, 50), st.integers(-5, 50), st.sampled_from("ab"))),
)
def test_highlight_never_loses_or_adds_text(text: str, spans: list[tuple[int, int, str]]) -> None:
    assert "".join(t for t, _ in highlight(text, spans)) == text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, None), ("", None), ("permanent", None), (60, 60.0), ("3600", 3600.0)],
)
def test_durations(raw: object, expected: float | None) -> None:
    assert parse_duration(raw) == expected


@pytest.mark.parametrize("raw", [0, -1, "x", True, [1]])
def test_bad_durations(raw: object) -> None:
    with pytest.raises(FilterError):
        parse_duration(raw)


def test_age() -> None:
    assert [age(s) for s in (5, 125, 7300, 200000, -3)] == ["5s", "2m", "2h", "2d", "0s"]
