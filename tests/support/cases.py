"""Cases for tests: builders of case values, and waiting for the case book
(escalations become cases asynchronously)."""

from __future__ import annotations

import asyncio
from typing import Any

from chatguard.cases import workflow
from chatguard.cases.model import DEFAULT_SLA, Case, EscalationSummary
from tests.support.timing import unit


async def cases_of(guard: Any, count: int = 1, within: float = 3.0) -> list[Case]:
    """The guard's cases once there are at least ``count`` (failing after ``within``)."""
    async with asyncio.timeout(unit(within)):
        # Polling is the point: cases live in the store, which has no events.
        while len(cases := await guard.cases.list()) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    return cases


T0 = 1_700_000_000.0


def summary(
    severity: str = "medium", category: str = "grooming", at: float = T0
) -> EscalationSummary:
    """What one detection tells a case (never message content)."""
    return EscalationSummary(
        at=at,
        source="detection",
        reporter=None,
        sender="adult",
        severity=severity,
        category=category,
        risk=9.5,
        signals=("secrecy", "contact_move"),
        reason="grooming risk 8",
    )


def new_case(severity: str = "medium") -> Case:
    """A fresh case about ``adult`` in their direct messages with ``kid``."""
    return workflow.open_case(
        "case-1",
        "dm:adult:kid",
        summary(severity),
        ["adult", "kid"],
        ["rec-1"],
        now=T0,
        sla=DEFAULT_SLA,
    )
