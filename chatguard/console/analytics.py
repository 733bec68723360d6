"""Figures for leads: detections by category, time to claim and to action,
and banner effectiveness when the banner report is wired.

What it owns: pure summaries of a list of cases (time is passed in).
Invariants: no message content; medians over at most the cases given
(the caller bounds the list).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ..cases.model import Case


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarise(
    cases: Iterable[Case], now: float, banners: Mapping[str, Any] | None
) -> dict[str, Any]:
    by_category: Counter[str] = Counter()
    by_severity: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    to_claim: list[float] = []
    to_action: list[float] = []
    total = 0
    for case in cases:
        total += 1
        by_category.update(case.categories)
        by_severity[str(case.severity)] += 1
        by_status[case.status.value] += 1
        if case.first_claimed_at is not None:
            to_claim.append(case.first_claimed_at - case.created_at)
        if case.first_actioned_at is not None:
            to_action.append(case.first_actioned_at - case.created_at)
    return {
        "at": now,
        "cases": total,
        "by_category": dict(by_category.most_common()),
        "by_severity": dict(by_severity),
        "by_status": dict(by_status),
        "median_time_to_claim": _median(to_claim),
        "median_time_to_action": _median(to_action),
        "banners": dict(banners) if banners is not None else None,
    }
