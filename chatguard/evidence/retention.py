"""Retention and legal hold: which evidence payloads are due for purge.

What it owns: the retention categories, when each record's period ends, and
which legal holds are in force — read from the log's own records, so the
decision can be re-derived by anyone holding the log.

Categories (periods from ``config.EvidenceConfig``):

* ``captured``  — captured but neither escalated nor reported: purged
  ``captured_days`` (default 30) after capture.
* ``escalated`` — the capture escalated to moderators, or a case names it:
  purged ``escalated_days`` (default 365) after the latest escalation.
* ``reported``  — a case naming it was reported (an audit record whose action
  starts with ``report``, e.g. ``report.filed``): purged ``escalated_days``
  after the latest report — one year, the US preservation period of
  18 U.S.C. 2258A(h).

Legal holds are audit records with action ``legal_hold.place`` /
``legal_hold.release`` and subject ``conversation:<id>``, ``case:<id>`` or
``record:<id>``; while a hold is in force on a record, its conversation or a
case naming it, nothing of it is purged.

Only ``capture`` and ``context`` records carry message content and are ever
purged; audit, checkpoint, tombstone and repair records stay for ever.

Invariant: pure — records and ``now`` in, a ``Plan`` out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["DAY", "HOLD_PLACE", "HOLD_RELEASE", "Plan", "plan_purge"]

DAY = 86_400.0
HOLD_PLACE = "legal_hold.place"
HOLD_RELEASE = "legal_hold.release"


@dataclass(slots=True)
class Plan:
    """What a purge run would remove, and why the rest stays."""

    purge: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)


def _time(text: Any) -> float:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def plan_purge(
    entries: Iterable[tuple[int, Mapping[str, Any]]],
    *,
    now: float,
    captured_days: float,
    escalated_days: float,
) -> Plan:
    """Decide, from every readable record in log order, which payloads to purge."""
    content: list[tuple[int, Mapping[str, Any]]] = []
    # Keyed by "record:<id>", "conversation:<id>": when it was escalated / reported.
    escalated: dict[str, float] = {}
    reported: dict[str, float] = {}
    case_of: dict[str, set[str]] = {}  # case id -> record ids and conversations
    holds: dict[str, bool] = {}
    capture_of: dict[str, str] = {}  # context record id -> its capture id
    for index, record in entries:
        kind = record.get("kind")
        at = _time(record.get("recorded_at"))
        if kind == "capture":
            content.append((index, record))
            if record.get("escalated") or record.get("trigger") == "report":
                escalated["record:" + str(record["id"])] = at
        elif kind == "context":
            content.append((index, record))
            capture_of[str(record["id"])] = str(record.get("capture"))
        elif kind == "audit":
            action, subject = str(record.get("action", "")), str(record.get("subject", ""))
            details = record.get("details") or {}
            if action in (HOLD_PLACE, HOLD_RELEASE):
                holds[subject] = action == HOLD_PLACE
                continue
            if subject.startswith("case:"):
                names = case_of.setdefault(subject, set())
                if isinstance(details.get("conversation"), str):
                    names.add("conversation:" + details["conversation"])
                names.update("record:" + str(e) for e in details.get("evidence") or ())
                target = reported if action.startswith("report") else escalated
                for name in names:
                    target[name] = max(target.get(name, 0.0), at)
    held_names = {s for s, on in holds.items() if on}
    for case, names in case_of.items():
        if case in held_names:
            held_names |= names
    plan = Plan()
    for index, record in content:
        record_id = str(record["id"])
        anchor = capture_of.get(record_id, record_id)
        names = {"record:" + record_id, "record:" + anchor}
        if isinstance(record.get("conversation"), str):
            names.add("conversation:" + record["conversation"])
        if names & held_names:
            plan.held.append(index)
            continue
        since_report = max((reported.get(n, 0.0) for n in names), default=0.0)
        since_escalation = max((escalated.get(n, 0.0) for n in names), default=0.0)
        if since_report:
            category, until = "reported", since_report + escalated_days * DAY
        elif since_escalation:
            category, until = "escalated", since_escalation + escalated_days * DAY
        else:
            category, until = "captured", _time(record.get("recorded_at")) + captured_days * DAY
        if until <= now:
            plan.purge.append(index)
        else:
            plan.kept[category] = plan.kept.get(category, 0) + 1
    return plan
