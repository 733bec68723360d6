"""Retention plans: categories, periods, legal holds — table-driven, no clock."""

from __future__ import annotations

from typing import Any

import pytest

from chatguard.evidence import records
from chatguard.evidence.retention import DAY, HOLD_PLACE, HOLD_RELEASE, plan_purge

T0 = 1_700_000_000.0


def capture(rid: str, at: float = T0, escalated: bool = False, trigger: str = "policy") -> Any:
    return {
        "kind": "capture",
        "id": rid,
        "recorded_at": records.iso(at),
        "conversation": "dm:a:b",
        "escalated": escalated,
        "trigger": trigger,
    }


def context(rid: str, of: str, at: float = T0) -> Any:
    return {
        "kind": "context",
        "id": rid,
        "capture": of,
        "recorded_at": records.iso(at),
        "conversation": "dm:a:b",
    }


def audit(action: str, subject: str, at: float = T0, **details: Any) -> Any:
    return {
        "kind": "audit",
        "id": f"a-{action}-{at}",
        "recorded_at": records.iso(at),
        "action": action,
        "subject": subject,
        "details": details,
    }


def plan(entries: list[Any], days_later: float) -> tuple[list[int], list[int]]:
    result = plan_purge(
        list(enumerate(entries)),
        now=T0 + days_later * DAY,
        captured_days=30,
        escalated_days=365,
    )
    return result.purge, result.held


@pytest.mark.parametrize(
    ("entries", "days", "purged", "held"),
    [
        # Captured, not escalated: 30 days; its context record goes with it.
        ([capture("c"), context("x", "c")], 29.9, [], []),
        ([capture("c"), context("x", "c")], 30, [0, 1], []),
        # Escalated at capture: a year.
        ([capture("c", escalated=True), context("x", "c")], 300, [], []),
        ([capture("c", escalated=True), context("x", "c")], 365, [0, 1], []),
        # A user report is a report: a year.
        ([capture("c", trigger="report")], 100, [], []),
        # A case naming the record escalates it from the case's time.
        ([capture("c"), audit("case.opened", "case:1", T0 + 10 * DAY, evidence=["c"])], 40, [], []),
        (
            [capture("c"), audit("case.opened", "case:1", T0 + 10 * DAY, evidence=["c"])],
            375,
            [0],
            [],
        ),
        # Reported a year after capture: kept for a year after the report.
        (
            [capture("c"), audit("report.filed", "case:1", T0 + 200 * DAY, conversation="dm:a:b")],
            500,
            [],
            [],
        ),
        (
            [capture("c"), audit("report.filed", "case:1", T0 + 200 * DAY, conversation="dm:a:b")],
            565,
            [0],
            [],
        ),
        # Legal hold on the conversation, on the record, on a case naming it.
        ([capture("c"), audit(HOLD_PLACE, "conversation:dm:a:b")], 1000, [], [0]),
        ([capture("c"), context("x", "c"), audit(HOLD_PLACE, "record:c")], 1000, [], [0, 1]),
        (
            [
                capture("c"),
                audit("case.opened", "case:9", evidence=["c"]),
                audit(HOLD_PLACE, "case:9"),
            ],
            1000,
            [],
            [0],
        ),
        # A released hold no longer protects.
        (
            [
                capture("c"),
                audit(HOLD_PLACE, "record:c"),
                audit(HOLD_RELEASE, "record:c", T0 + 1),
            ],
            31,
            [0],
            [],
        ),
        # Audit records are never purged.
        ([audit("export", "case:1")], 10_000, [], []),
    ],
)
def test_retention_plans(
    entries: list[Any], days: float, purged: list[int], held: list[int]
) -> None:
    assert plan(entries, days) == (purged, held)


def test_what_stays_is_counted_by_category() -> None:
    result = plan_purge(
        list(enumerate([capture("a"), capture("b", escalated=True), capture("c")])),
        now=T0 + DAY,
        captured_days=30,
        escalated_days=365,
    )
    assert result.kept == {"captured": 2, "escalated": 1}
