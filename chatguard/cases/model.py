"""Cases: what moderators work, and the rules of how a case may change.

What it owns: the ``Case`` record, its status workflow, severities and their
order, the SLA due time, the grouping key of escalations, and every
transition as a pure function ``(case, ..., now) -> case``.

The workflow::

    new ──claim──▶ in_review ──warn/mute/kick/ban──▶ actioned ──report──▶ reported
     ▲                 │  ▲                              │
     └──release/expiry─┘  └──────── claim ───────────────┤
                       dismiss (from new, in_review, actioned) ──▶ closed

Invariants:

* Pure: no I/O, no clock reads (``now`` is passed in), no randomness.
* A ``Case`` is frozen; a transition returns a new one and never changes its
  argument. An illegal move raises ``CaseError`` with the reason.
* ``reported`` and ``closed`` are final; nothing changes a final case except
  a note.
* Only the holder of a live claim acts on a case: a claim is live while
  ``claim_expires > now``. A claim that has run out counts as released
  (``effective`` shows the case as it really stands).
* Bounded: ``history`` keeps the last ``max_history`` entries, ``notes`` the
  last ``max_notes``, ``escalations`` the last ``max_escalations``,
  ``participants``/``evidence``/``categories`` at most ``max_items`` each
  (``Bounds``, with documented defaults); a case never grows without limit.
* No message content is stored in a case: escalations carry ids, signals,
  scores and the policy's reason; the conversation itself lives in the
  evidence log.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

SEVERITIES = ("low", "medium", "high", "critical")
#: Default SLA: seconds from creation until a case is due, by severity.
DEFAULT_SLA: Mapping[str, float] = {
    "low": 72 * 3600.0,
    "medium": 24 * 3600.0,
    "high": 4 * 3600.0,
    "critical": 3600.0,
}
LIVE_ACTIONS = frozenset({"warn", "mute", "kick", "ban"})
ACTION_TYPES = ("warn", "mute", "kick", "ban", "dismiss", "escalate", "report")


class CaseError(Exception):
    """An illegal move on a case; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Status(enum.Enum):
    NEW = "new"
    IN_REVIEW = "in_review"
    ACTIONED = "actioned"
    REPORTED = "reported"
    CLOSED = "closed"

    @property
    def open(self) -> bool:
        return self not in (Status.REPORTED, Status.CLOSED)


def severity_rank(severity: str) -> int:
    """0 for low ... 3 for critical; an unknown severity ranks as medium."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return SEVERITIES.index("medium")


def normal_severity(severity: str) -> str:
    return severity if severity in SEVERITIES else "medium"


@dataclass(frozen=True, slots=True)
class Bounds:
    """Per-case bounds (see the module docstring)."""

    max_history: int = 200
    max_notes: int = 100
    max_escalations: int = 100
    max_items: int = 100
    max_note_chars: int = 4000


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: float
    actor: str
    action: str
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "actor": self.actor, "action": self.action, "detail": self.detail}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> HistoryEntry:
        return cls(float(d["at"]), str(d["actor"]), str(d["action"]), str(d.get("detail", "")))


@dataclass(frozen=True, slots=True)
class Note:
    at: float
    author: str
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "author": self.author, "text": self.text}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Note:
        return cls(float(d["at"]), str(d["author"]), str(d["text"]))


@dataclass(frozen=True, slots=True)
class EscalationSummary:
    """What one escalation told the case (never message content)."""

    at: float
    source: str  # detection | report
    reporter: str | None
    sender: str | None
    severity: str
    category: str
    risk: float
    signals: tuple[str, ...]
    reason: str
    session_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "source": self.source,
            "reporter": self.reporter,
            "sender": self.sender,
            "severity": self.severity,
            "category": self.category,
            "risk": self.risk,
            "signals": list(self.signals),
            "reason": self.reason,
            "session_id": self.session_id,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> EscalationSummary:
        return cls(
            at=float(d["at"]),
            source=str(d["source"]),
            reporter=d.get("reporter"),
            sender=d.get("sender"),
            severity=str(d["severity"]),
            category=str(d["category"]),
            risk=float(d["risk"]),
            signals=tuple(d.get("signals", ())),
            reason=str(d.get("reason", "")),
            session_id=str(d.get("session_id", "")),
        )


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    status: Status
    severity: str
    categories: tuple[str, ...]
    conversation: str
    participants: tuple[str, ...]
    created_at: float
    updated_at: float
    due_at: float
    subject: str | None = None  # the person whose messages were flagged or reported
    assignee: str | None = None
    claim_expires: float | None = None
    notes: tuple[Note, ...] = ()
    evidence: tuple[str, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    escalations: tuple[EscalationSummary, ...] = ()
    external_ref: str | None = None
    reported_at: float | None = None
    escalated_to_lead: bool = False
    first_claimed_at: float | None = None
    first_actioned_at: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return group_key(self.conversation, self.subject)

    def claimed_by(self, now: float) -> str | None:
        """Who holds a live claim at ``now``, if anyone."""
        expires = self.claim_expires
        if self.assignee is not None and expires is not None and expires > now:
            return self.assignee
        return None

    def overdue(self, now: float) -> bool:
        return self.status.open and now >= self.due_at

    def to_json(self) -> dict[str, Any]:
        """The API shape (and the stored form)."""
        return {
            "id": self.id,
            "status": self.status.value,
            "severity": self.severity,
            "categories": list(self.categories),
            "conversation": self.conversation,
            "participants": list(self.participants),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "assignee": self.assignee,
            "claim_expires": self.claim_expires,
            "due_at": self.due_at,
            "subject": self.subject,
            "notes": [n.to_json() for n in self.notes],
            "evidence": list(self.evidence),
            "history": [h.to_json() for h in self.history],
            "escalations": [e.to_json() for e in self.escalations],
            "external_ref": self.external_ref,
            "reported_at": self.reported_at,
            "escalated_to_lead": self.escalated_to_lead,
            "first_claimed_at": self.first_claimed_at,
            "first_actioned_at": self.first_actioned_at,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Case:
        return cls(
            id=str(d["id"]),
            status=Status(d["status"]),
            severity=str(d["severity"]),
            categories=tuple(d["categories"]),
            conversation=str(d["conversation"]),
            participants=tuple(d["participants"]),
            created_at=float(d["created_at"]),
            updated_at=float(d["updated_at"]),
            due_at=float(d["due_at"]),
            subject=d.get("subject"),
            assignee=d.get("assignee"),
            claim_expires=d.get("claim_expires"),
            notes=tuple(Note.from_json(n) for n in d.get("notes", ())),
            evidence=tuple(d.get("evidence", ())),
            history=tuple(HistoryEntry.from_json(h) for h in d.get("history", ())),
            escalations=tuple(EscalationSummary.from_json(e) for e in d.get("escalations", ())),
            external_ref=d.get("external_ref"),
            reported_at=d.get("reported_at"),
            escalated_to_lead=bool(d.get("escalated_to_lead", False)),
            first_claimed_at=d.get("first_claimed_at"),
            first_actioned_at=d.get("first_actioned_at"),
            extra=dict(d.get("extra") or {}),
        )


def group_key(conversation: str, subject: str | None) -> str:
    """Escalations with the same key join one open case.

    The key is the conversation plus the person flagged (the sender of the
    flagged message, or the reported user). In a direct conversation that is
    the same as "conversation and participants"; in a room it keeps one case
    per flagged person, however the room's membership changes between
    messages. Hashed so that any user-chosen characters make a safe key.
    """
    raw = json.dumps([conversation, subject])  # unambiguous, whatever the names hold
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def due_at(created_at: float, severity: str, sla: Mapping[str, float]) -> float:
    return created_at + sla.get(severity, DEFAULT_SLA.get(severity, DEFAULT_SLA["medium"]))


def _merge(items: tuple[str, ...], new: Iterable[str], limit: int) -> tuple[str, ...]:
    out = list(items)
    for item in new:
        if item and item not in out:
            out.append(item)
    return tuple(out[-limit:]) if len(out) > limit else tuple(out)


def _log(case: Case, bounds: Bounds, entry: HistoryEntry) -> tuple[HistoryEntry, ...]:
    history = (*case.history, entry)
    return history[-bounds.max_history :]


# -- transitions -------------------------------------------------------------


def open_case(
    case_id: str,
    conversation: str,
    summary: EscalationSummary,
    participants: Iterable[str],
    evidence: Iterable[str],
    *,
    now: float,
    sla: Mapping[str, float],
    bounds: Bounds = Bounds(),
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
    bounds: Bounds = Bounds(),
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


def effective(case: Case, now: float, bounds: Bounds = Bounds()) -> Case:
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
    case: Case, moderator: str, *, now: float, lease: float, bounds: Bounds = Bounds()
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


def release(case: Case, moderator: str, *, now: float, bounds: Bounds = Bounds()) -> Case:
    _require_claim(case, moderator, now)
    return replace(
        case,
        status=Status.NEW if case.status is Status.IN_REVIEW else case.status,
        assignee=None,
        claim_expires=None,
        updated_at=now,
        history=_log(case, bounds, HistoryEntry(now, moderator, "released")),
    )


def add_note(case: Case, author: str, text: str, *, now: float, bounds: Bounds = Bounds()) -> Case:
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
    bounds: Bounds = Bounds(),
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
        assignee=None,
        claim_expires=None,
        updated_at=now,
        history=history,
        first_actioned_at=first_actioned,
    )


def _require_claim(case: Case, moderator: str, now: float) -> None:
    if not case.status.open:
        raise CaseError(f"case {case.id} is {case.status.value}")
    holder = case.claimed_by(now)
    if holder is None:
        raise CaseError(f"claim case {case.id} first")
    if holder != moderator:
        raise CaseError(f"case {case.id} is claimed by another moderator")


#: Longest reason a moderator may give (it reaches the user and the audit log).
MAX_REASON_CHARS = 500


@dataclass(frozen=True, slots=True)
class ModeratorAction:
    """One moderator action on a case (the API's ``POST /actions`` body).

    ``duration`` is seconds: required for ``mute``; for ``ban`` None means
    permanent; ignored otherwise. ``target`` defaults to the case's subject
    and must be one of its participants. ``external_ref`` is required for
    ``report``.
    """

    type: str
    duration: float | None = None
    reason: str = ""
    external_ref: str | None = None
    target: str | None = None

    def check(self, max_duration: float) -> None:
        """Raise ``CaseError`` when the action cannot be valid on any case."""
        if self.type not in ACTION_TYPES:
            raise CaseError(f"unknown action {self.type!r} (known: {', '.join(ACTION_TYPES)})")
        if len(self.reason) > MAX_REASON_CHARS:
            raise CaseError(f"a reason is at most {MAX_REASON_CHARS} characters")
        if self.duration is not None:
            if not self.duration > 0:
                raise CaseError("a duration must be a positive number of seconds")
            if self.duration > max_duration:
                raise CaseError(f"a duration is at most {max_duration:g} seconds")
        if self.type == "mute" and self.duration is None:
            raise CaseError("a mute needs a duration")
        if self.type == "report" and not (self.external_ref and self.external_ref.strip()):
            raise CaseError("marking a case reported needs the external reference")

    def target_in(self, case: Case) -> str:
        """The user a live action reaches: the named target or the case's subject."""
        target = self.target or case.subject
        if target is None:
            raise CaseError("this case has no subject; name the target user")
        if target != case.subject and target not in case.participants:
            raise CaseError(f"{target!r} is not a participant of case {case.id}")
        return target
