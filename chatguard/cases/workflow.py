"""The case workflow: every change to a case as a pure function.

Each transition takes a case (and ``now``) and returns a new one, or raises
``CaseError`` with the reason the move is illegal. See ``model.py`` for the
workflow diagram and the invariants these functions keep.

Pure: no I/O, no clock reads, no randomness; arguments are never changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from .model import (
    ACTION_TYPES,
    DEFAULT_BOUNDS,
    LIVE_ACTIONS,
    Bounds,
    Case,
    CaseError,
    EscalationSummary,
    HistoryEntry,
    Note,
    Status,
    due_at,
    normal_severity,
    severity_rank,
)


def _merge(items: tuple[str, ...], new: Iterable[str], limit: int) -> tuple[str, ...]:
    out = list(items)
    for item in new:
        if item and item not in out:
            out.append(item)
    return tuple(out[-limit:]) if len(out) > limit else tuple(out)


def _log(case: Case, bounds: Bounds, entry: HistoryEntry) -> tuple[HistoryEntry, ...]:
    history = (*case.history, entry)
    return history[-bounds.max_history :]


def open_case(
    case_id: str,
    conversation: str,
    summary: EscalationSummary,
    participants: Iterable[str],
    evidence: Iterable[str],
    *,
    now: float,
    sla: Mapping[str, float],
    bounds: Bounds = DEFAULT_BOUNDS,
) -> Case:
    severity = normal_severity(summary.severity)
    case = Case(
        id=case_id,
        status=Status.NEW,
        severity=severity,
        categories=(summary.category,),
        conversation=conversation,
        participants=_merge((), participants, bounds.max_items),
        created_at=now,
        updated_at=now,
        due_at=due_at(now, severity, sla),
        subject=summary.sender,
        evidence=_merge((), evidence, bounds.max_items),
        escalations=(summary,),
    )
    detail = f"{summary.source}: {summary.category} ({severity})"
    return replace(case, history=(HistoryEntry(now, "chatguard", "opened", detail),))


def add_escalation(
    case: Case,
    summary: EscalationSummary,
    participants: Iterable[str],
    evidence: Iterable[str],
    *,
    now: float,
    sla: Mapping[str, float],
    bounds: Bounds = DEFAULT_BOUNDS,
) -> Case:
    """A further escalation joins an open case and may raise its severity.

    A raised severity brings the due time forward (never back): the SLA of
    the new severity counted from the case's creation.
    """
    if not case.status.open:
        raise CaseError(f"case {case.id} is {case.status.value}; a new escalation opens a new case")
    severity = normal_severity(summary.severity)
    raised = severity_rank(severity) > severity_rank(case.severity)
    new_severity = severity if raised else case.severity
    detail = f"{summary.source}: {summary.category} ({severity})"
    if raised:
        detail += f"; severity {case.severity} -> {severity}"
    return replace(
        case,
        severity=new_severity,
        due_at=min(case.due_at, due_at(case.created_at, new_severity, sla)),
        categories=_merge(case.categories, (summary.category,), bounds.max_items),
        participants=_merge(case.participants, participants, bounds.max_items),
        evidence=_merge(case.evidence, evidence, bounds.max_items),
        escalations=(*case.escalations, summary)[-bounds.max_escalations :],
        updated_at=now,
        history=_log(case, bounds, HistoryEntry(now, "chatguard", "escalated", detail)),
    )


def effective(case: Case, now: float, bounds: Bounds = DEFAULT_BOUNDS) -> Case:
    """The case with a run-out claim released (an abandoned claim returns it to the queue)."""
    if case.assignee is None or case.claimed_by(now) is not None:
        return case
    return replace(
        case,
        status=Status.NEW if case.status is Status.IN_REVIEW else case.status,
        assignee=None,
        claim_expires=None,
        updated_at=now,
        history=_log(
            case, bounds, HistoryEntry(now, "chatguard", "claim_expired", f"was {case.assignee}")
        ),
    )


def claim(
    case: Case, moderator: str, *, now: float, lease: float, bounds: Bounds = DEFAULT_BOUNDS
) -> Case:
    """Take (or renew) the claim; refused while another moderator holds a live one."""
    if not case.status.open:
        raise CaseError(f"case {case.id} is {case.status.value}")
    holder = case.claimed_by(now)
    if holder is not None and holder != moderator:
        raise CaseError(f"case {case.id} is claimed by another moderator")
    case = effective(case, now, bounds)
    action = "claim_renewed" if holder == moderator else "claimed"
    return replace(
        case,
        status=Status.IN_REVIEW if case.status is Status.NEW else case.status,
        assignee=moderator,
        claim_expires=now + lease,
        updated_at=now,
        first_claimed_at=case.first_claimed_at if case.first_claimed_at is not None else now,
        history=_log(case, bounds, HistoryEntry(now, moderator, action)),
    )


def release(case: Case, moderator: str, *, now: float, bounds: Bounds = DEFAULT_BOUNDS) -> Case:
    _require_claim(case, moderator, now)
    return replace(
        case,
        status=Status.NEW if case.status is Status.IN_REVIEW else case.status,
        assignee=None,
        claim_expires=None,
        updated_at=now,
        history=_log(case, bounds, HistoryEntry(now, moderator, "released")),
    )


def add_note(
    case: Case, author: str, text: str, *, now: float, bounds: Bounds = DEFAULT_BOUNDS
) -> Case:
    """Anyone may note any case, even a final one (notes do not change its outcome)."""
    text = text.strip()
    if not text:
        raise CaseError("a note needs text")
    if len(text) > bounds.max_note_chars:
        raise CaseError(f"a note is at most {bounds.max_note_chars} characters")
    return replace(
        case,
        notes=(*case.notes, Note(now, author, text))[-bounds.max_notes :],
        updated_at=now,
        history=_log(case, bounds, HistoryEntry(now, author, "noted")),
    )


def act(
    case: Case,
    moderator: str,
    action_type: str,
    detail: str,
    *,
    now: float,
    external_ref: str | None = None,
    bounds: Bounds = DEFAULT_BOUNDS,
) -> Case:
    """The case after ``moderator`` took ``action_type`` (its live effect is elsewhere).

    * warn, mute, kick, ban: ``in_review``/``actioned`` -> ``actioned``.
    * dismiss: -> ``closed``; the claim ends.
    * escalate: flags the case for a lead and releases the claim so a lead
      can take it.
    * report: ``actioned``/``in_review`` -> ``reported`` with the external
      reference; starts the retention clock (``reported_at``). The report
      checklist is checked by the caller (``report.checklist``) first.
    """
    if action_type not in ACTION_TYPES:
        raise CaseError(f"unknown action {action_type!r} (known: {', '.join(ACTION_TYPES)})")
    _require_claim(case, moderator, now)
    entry = HistoryEntry(now, moderator, action_type, detail)
    history = _log(case, bounds, entry)
    first_actioned = case.first_actioned_at if case.first_actioned_at is not None else now
    if action_type in LIVE_ACTIONS:
        return replace(
            case,
            status=Status.ACTIONED,
            updated_at=now,
            history=history,
            first_actioned_at=first_actioned,
        )
    if action_type == "dismiss":
        return replace(
            case,
            status=Status.CLOSED,
            assignee=None,
            claim_expires=None,
            finished_at=now,
            updated_at=now,
            history=history,
            first_actioned_at=first_actioned,
        )
    if action_type == "escalate":
        return replace(
            case,
            status=Status.NEW if case.status is Status.IN_REVIEW else case.status,
            escalated_to_lead=True,
            assignee=None,
            claim_expires=None,
            updated_at=now,
            history=history,
        )
    # report
    if not external_ref or not external_ref.strip():
        raise CaseError("marking a case reported needs the external reference")
    return replace(
        case,
        status=Status.REPORTED,
        external_ref=external_ref.strip(),
        reported_at=now,
        finished_at=now,
        assignee=None,
        claim_expires=None,
        updated_at=now,
        history=history,
        first_actioned_at=first_actioned,
    )


def link_evidence(
    case: Case,
    moderator: str,
    evidence: Iterable[str],
    *,
    now: float,
    reason: str = "",
    bounds: Bounds = DEFAULT_BOUNDS,
) -> Case:
    """The case with evidence a moderator captured linked to it.

    Needs the moderator's claim on an open case (as acting does); the status
    does not change. Ids already linked are not repeated; at most
    ``bounds.max_items`` are kept (the newest).
    """
    require_claim(case, moderator, now=now)
    new = [e for e in evidence if e]
    if not new:
        raise CaseError("no evidence to link")
    detail = ", ".join(new) + (f"; {reason}" if reason else "")
    return replace(
        case,
        evidence=_merge(case.evidence, new, bounds.max_items),
        updated_at=now,
        history=_log(case, bounds, HistoryEntry(now, moderator, "captured", detail)),
    )


def require_claim(case: Case, moderator: str, *, now: float) -> None:
    """Raise ``CaseError`` unless ``moderator`` holds a live claim on an open case."""
    _require_claim(case, moderator, now)


def _require_claim(case: Case, moderator: str, now: float) -> None:
    if not case.status.open:
        raise CaseError(f"case {case.id} is {case.status.value}")
    holder = case.claimed_by(now)
    if holder is None:
        raise CaseError(f"claim case {case.id} first")
    if holder != moderator:
        raise CaseError(f"case {case.id} is claimed by another moderator")
