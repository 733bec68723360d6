"""Variant assignment, outcome classification and the statistics of the report."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from chatguard.effectiveness import (
    Impression,
    Observation,
    assign_variant,
    classify,
    difference,
    is_edit,
    summarise,
    wilson,
)

VARIANTS = [("a", 1.0), ("b", 1.0)]


def test_variant_assignment_is_stable_per_user_and_banner() -> None:
    first = [assign_variant(f"user{i}", "deterrence", VARIANTS) for i in range(200)]
    again = [assign_variant(f"user{i}", "deterrence", VARIANTS) for i in range(200)]
    assert first == again
    # Another banner is an independent draw for the same people.
    other = [assign_variant(f"user{i}", "other_banner", VARIANTS) for i in range(200)]
    assert other != first


def test_variant_assignment_follows_the_weights() -> None:
    counts = Counter(assign_variant(f"u{i}", "b", [("a", 3.0), ("b", 1.0)]) for i in range(4000))
    assert 0.72 < counts["a"] / 4000 < 0.78
    assert assign_variant("anyone", "b", []) == "default"
    assert assign_variant("anyone", "b", [("only", 2.0)]) == "only"


def impression(kind: str, risky: tuple[str, ...] = ()) -> Impression:
    return Impression(
        "i-1", "b", "a", "sender", "signal:x", "amy", 100.0, kind, "dm:amy:bob", risky
    )


HELD = ("call me 555 123 4567 after school", "555 123 4567")


@pytest.mark.parametrize(
    ("kind", "seen", "closed", "expected"),
    [
        # sender prompts
        ("prompt", [Observation("send", 101)], False, "sent_anyway"),
        ("prompt", [Observation("timeout", 300)], False, "timed_out"),
        ("prompt", [Observation("cancel", 101)], False, None),
        ("prompt", [Observation("cancel", 101)], True, "cancelled"),
        (
            "prompt",
            [Observation("cancel", 101), Observation("message", 102, text="call me after school")],
            False,
            "edited",
        ),
        (
            "prompt",
            [Observation("cancel", 101), Observation("message", 102, text="ok bye")],
            False,
            "cancelled",
        ),
        (
            "prompt",
            [Observation("cancel", 101), Observation("message", 102, text=HELD[0])],
            False,
            "cancelled",  # the same risky text again is not an edit
        ),
        ("prompt", [], True, "timed_out"),
        # recipient warnings
        ("warning", [Observation("message", 101), Observation("report", 102)], False, "reported"),
        ("warning", [Observation("left", 101)], False, "left"),
        ("warning", [Observation("message", 101)], False, None),
        ("warning", [Observation("message", 101)], True, "kept_talking"),
        ("warning", [], True, "no_reply"),
        # deterrence
        ("deterrence", [Observation("signals", 150)], False, "reoffended"),
        ("deterrence", [], False, None),
        ("deterrence", [], True, "desisted"),
        # notices have no outcome
        ("notice", [Observation("report", 101)], True, None),
    ],
)
def test_outcome_classification(
    kind: str, seen: list[Observation], closed: bool, expected: str | None
) -> None:
    assert classify(impression(kind, HELD), seen, window_closed=closed) == expected


def test_an_edit_is_close_to_the_original_without_the_risky_span() -> None:
    assert is_edit("my number is 555 1234", ["555 1234"], "my number is secret")
    assert not is_edit("my number is 555 1234", ["555 1234"], "my number is 555 1234!")
    assert not is_edit("my number is 555 1234", ["555 1234"], "lol")


def test_wilson_interval_matches_published_values() -> None:
    # Newcombe (1998), table I: 81/263 -> 0.2553 to 0.3662.
    low, high = wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert wilson(0, 10)[0] == 0.0
    assert wilson(0, 0) == (0.0, 1.0)


def test_difference_interval_matches_newcombe() -> None:
    # Newcombe (1998), table II, example (a): 56/70 vs 48/80 -> 0.2 (0.0524 to 0.3339).
    d, low, high = difference(48, 80, 56, 70)
    assert math.isclose(d, 0.2)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_summarise_counts_rates_and_differences() -> None:
    events: list[dict[str, object]] = []
    n = 0
    for variant, cancelled, sent in (("a", 3, 7), ("b", 6, 4)):
        for outcome, count in (("cancelled", cancelled), ("sent_anyway", sent)):
            for _ in range(count):
                n += 1
                base = {"id": f"i{n}", "banner": "pi", "variant": variant, "kind": "prompt"}
                events.append({**base, "event": "impression", "at": 10.0})
                events.append({**base, "event": "outcome", "outcome": outcome, "at": 11.0})
    events.append({"event": "impression", "id": "late", "at": 1.0})  # malformed: no banner
    report = summarise(events, since=5.0)
    assert report.skipped == 0  # before `since`: not even read
    a, b = report.variants
    assert (a.variant, a.impressions, a.decided) == ("a", 10, 10)
    assert (b.variant, b.impressions, b.decided) == ("b", 10, 10)
    cancel_a = next(r for r in a.rates if r.outcome == "cancelled")
    assert (cancel_a.count, cancel_a.rate) == (3, 0.3)
    diff = next(d for d in report.differences if d.outcome == "cancelled")
    assert (diff.baseline, diff.variant) == ("a", "b")
    assert math.isclose(diff.difference, 0.3)
    assert diff.low < diff.difference < diff.high
    body = report.to_json()
    assert body["banners"][1]["outcomes"]["cancelled"]["rate"] == 0.6
    assert "pi [b] (prompt): 10 impressions" in report.to_text()
    assert summarise(events).skipped == 1
