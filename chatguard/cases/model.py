"""Cases: what moderators work on.

What it owns: the ``Case`` record and its JSON form, statuses, severities
and their order, the SLA due time, the grouping key of escalations, bounds,
and the ``ModeratorAction`` a moderator asks for. The transitions between
statuses are pure functions in ``workflow.py``.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
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


DEFAULT_BOUNDS = Bounds()


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
    finished_at: float | None = None  # when it became reported or closed
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
            "finished_at": self.finished_at,
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
            finished_at=d.get("finished_at"),
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
