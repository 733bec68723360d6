"""The case book: cases kept in the shared store, the queue, and its leases.

What it owns: turning escalations into cases (the escalation sink), the queue
order, claims and their leases, and carrying moderator actions through to the
case, the live chat (``actions.py``) and the audit log. Workflow rules are in
``model.py``; this module only reads, decides with the model, and writes.

Store layout (keys and indexes of the ``Store`` interface)::

    case:<id>            the case as JSON (final cases expire, see below)
    case-lease:<id>      the claimant's name, expiring after the lease
    case-group:<key>     the id of the open case for a conversation + subject
    case-seq             the counter that numbers cases
    index cases:open     open case ids, scored by creation time
    index cases:done     reported and closed case ids, scored by last change

Invariants:

* Several replicas may share one store: every read-modify-write of a case is
  a ``compare_and_set`` retried on conflict, a new case is made visible by
  one ``set_if_absent`` of its group key (so two replicas escalating the same
  conversation at once make one case), and a claim is a ``set_if_absent`` of
  the lease key, so two moderators never hold the same case.
* A lease that runs out returns the case to the queue: it shows as unclaimed
  at once, and the first read after that records the expiry (history and
  audit) — exactly once, because that write is a compare-and-set too.
* Every change writes one audit entry, ``subject="case:<id>"``; creation
  carries the conversation and the evidence ids. Audit entries never carry
  message content.
* Bounded: at most ``max_open`` open cases (a new escalation that would open
  one more is refused with ``CaseError`` and counted; escalations into open
  cases still join them), at most ``max_done`` final cases listed (older ones
  leave the index and expire from the store after ``closed_ttl`` or
  ``reported_ttl``), and per-case bounds from ``model.Bounds``.
"""

from __future__ import annotations

import builtins
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..audit import AuditEntry, AuditSink
from ..metrics import Metrics
from ..steps.handoff import EscalationRequest
from ..stores import Store, StoreError
from . import model
from .actions import Actions, Effect
from .model import (
    DEFAULT_SLA,
    SEVERITIES,
    Bounds,
    Case,
    CaseError,
    EscalationSummary,
    ModeratorAction,
    Status,
)
from .report import ReportInput, checklist, law_enforcement_report

log = logging.getLogger(__name__)

OPEN, DONE = "cases:open", "cases:done"
#: Attempts of one read-modify-write before giving up on a busy case.
MAX_RETRIES = 20


@dataclass(frozen=True, slots=True)
class BookLimits:
    """Bounds and retention of the book (config section ``cases``)."""

    max_open: int = 10_000
    max_done: int = 100_000
    closed_ttl: float = 90 * 86400.0
    reported_ttl: float = 365 * 86400.0
    max_duration: float = 365 * 86400.0
    max_list: int = 1000
    reporting_service: str = "ChatGuard"


def _encode(case: Case) -> bytes:
    return json.dumps(case.to_json(), separators=(",", ":"), sort_keys=True).encode()


def _decode(raw: bytes) -> Case:
    return Case.from_json(json.loads(raw))


class CaseBook:
    """Cases in a ``Store``; implements ``EscalationSink``."""

    def __init__(
        self,
        store: Store,
        audit: AuditSink,
        *,
        clock: Callable[[], float] = time.time,
        sla: Mapping[str, float] = DEFAULT_SLA,
        lease: float = 900.0,
        bounds: Bounds | None = None,
        limits: BookLimits | None = None,
        actions: Actions | None = None,
        metrics: Metrics | None = None,
        on_new: Callable[[Case], object] | None = None,
    ) -> None:
        if not lease > 0:
            raise ValueError("lease must be positive seconds")
        self.store = store
        self.audit = audit
        self.clock = clock
        self.sla = dict(sla)
        self.lease = lease
        self.bounds = bounds or Bounds()
        self.limits = limits or BookLimits()
        self.actions = actions or Actions(store, None, clock)
        self.metrics = metrics
        self.on_new = on_new

    # -- the escalation sink ----------------------------------------------

    async def escalate(self, request: EscalationRequest) -> None:
        """Open a case for the request, or add it to the open case of its group."""
        await self.add(request)

    async def add(self, request: EscalationRequest) -> Case:
        summary = EscalationSummary(
            at=request.at,
            source=request.source,
            reporter=request.reporter,
            sender=request.sender,
            severity=request.severity,
            category=request.category,
            risk=request.risk,
            signals=request.signals,
            reason=request.reason,
            session_id=request.session_id,
        )
        people = [p for p in (request.sender, *request.recipients, request.reporter) if p]
        group = model.group_key(request.conversation, request.sender)
        group_key = f"case-group:{group}"
        for _ in range(MAX_RETRIES):
            now = self.clock()
            existing = await self.store.get(group_key)
            if existing is not None:
                case_id = existing.decode()

                def join(case: Case, now: float = now) -> Case:
                    return model.add_escalation(
                        case,
                        summary,
                        people,
                        request.evidence,
                        now=now,
                        sla=self.sla,
                        bounds=self.bounds,
                    )

                try:
                    before, after = await self._update(case_id, join)
                except CaseError:
                    # The group's case was closed (or has expired) meanwhile:
                    # forget it, and open a new one on the next pass.
                    await self.store.compare_and_set(group_key, existing, None)
                    continue
                await self._audit(
                    now,
                    "chatguard",
                    "case.escalated",
                    after,
                    request.reason,
                    {
                        "conversation": after.conversation,
                        "evidence": list(request.evidence),
                        "severity": after.severity,
                        "raised": after.severity != before.severity,
                    },
                )
                return after
            if await self.store.index_size(OPEN) >= self.limits.max_open:
                if self.metrics is not None:
                    self.metrics.cases_refused.inc()
                raise CaseError(f"the queue holds max_open={self.limits.max_open} open cases")
            case_id = f"case-{await self.store.incr('case-seq')}"
            case = model.open_case(
                case_id,
                request.conversation,
                summary,
                people,
                request.evidence,
                now=now,
                sla=self.sla,
                bounds=self.bounds,
            )
            # The record first, then the group key: a group key always names a
            # written case, and only the replica that sets it publishes the case.
            await self.store.set(f"case:{case_id}", _encode(case))
            if not await self.store.set_if_absent(group_key, case_id.encode()):
                await self.store.delete(f"case:{case_id}")
                continue
            await self.store.index_add(OPEN, case_id, case.created_at)
            await self._audit(
                now,
                "chatguard",
                "case.opened",
                case,
                request.reason,
                {
                    "conversation": case.conversation,
                    "evidence": list(case.evidence),
                    "severity": case.severity,
                    "category": summary.category,
                    "source": summary.source,
                },
            )
            if self.metrics is not None:
                self.metrics.cases_opened.labels(severity=case.severity).inc()
            if self.on_new is not None:
                self.on_new(case)
            return case
        raise CaseError("the case queue is busy; escalation not recorded")

    # -- reading ------------------------------------------------------------

    async def get(self, case_id: str) -> Case | None:
        raw = await self.store.get(f"case:{case_id}")
        if raw is None:
            return None
        return await self._settle(_decode(raw))

    async def list(
        self,
        status: str | None = None,
        severity: str | None = None,
        category: str | None = None,
        assignee: str | None = None,
        older_than: float | None = None,
        limit: int = 100,
    ) -> builtins.list[Case]:
        """Cases matching every filter given: open ones first, by severity then age
        (highest severity, oldest first); then final ones, latest change first."""
        wanted = Status(status) if status is not None else None
        cases = await self._load(wanted)
        now = self.clock()
        out = []
        for case in cases:
            if wanted is not None and case.status is not wanted:
                continue
            if severity is not None and case.severity != severity:
                continue
            if category is not None and category not in case.categories:
                continue
            if assignee is not None and case.assignee != assignee:
                continue
            if older_than is not None and now - case.created_at < older_than:
                continue
            out.append(case)
        out.sort(key=queue_order)
        return out[: max(0, min(limit, self.limits.max_list))]

    async def counts(self) -> dict[str, Any]:
        """Live counts for the console and the queue-depth gauge."""
        cases = await self._load(None, done=False)
        now = self.clock()
        by_status = Counter(c.status.value for c in cases)
        by_severity = Counter(c.severity for c in cases)
        counts: dict[str, Any] = {
            "open": len(cases),
            "by_status": {s.value: by_status.get(s.value, 0) for s in Status if s.open},
            "by_severity": {s: by_severity.get(s, 0) for s in SEVERITIES},
            "unclaimed": sum(1 for c in cases if c.claimed_by(now) is None),
            "overdue": sum(1 for c in cases if c.overdue(now)),
            "escalated_to_lead": sum(1 for c in cases if c.escalated_to_lead),
            "done": await self.store.index_size(DONE),
        }
        if self.metrics is not None:
            for sev in SEVERITIES:
                self.metrics.case_queue_depth.labels(severity=sev).set(by_severity.get(sev, 0))
        return counts

    # -- moderator operations ---------------------------------------------

    async def claim(self, case_id: str, moderator: str) -> Case:
        now = self.clock()
        lease_key = f"case-lease:{case_id}"
        took = await self.store.set_if_absent(lease_key, moderator.encode(), ttl=self.lease)
        if not took:
            holder = await self.store.get(lease_key)
            if holder is not None and holder.decode() != moderator:
                raise CaseError(f"case {case_id} is claimed by another moderator")
            await self.store.set(lease_key, moderator.encode(), ttl=self.lease)
        try:
            before, after = await self._update(
                case_id,
                lambda c: model.claim(c, moderator, now=now, lease=self.lease, bounds=self.bounds),
            )
        except CaseError:
            if took:
                await self.store.compare_and_set(lease_key, moderator.encode(), None)
            raise
        await self._audit(now, moderator, "case.claimed", after, "", {"lease": self.lease})
        if before.first_claimed_at is None and self.metrics is not None:
            self.metrics.case_time_to_claim.observe(max(0.0, now - after.created_at))
        return after

    async def release(self, case_id: str, moderator: str) -> Case:
        now = self.clock()
        _, after = await self._update(
            case_id, lambda c: model.release(c, moderator, now=now, bounds=self.bounds)
        )
        await self.store.compare_and_set(f"case-lease:{case_id}", moderator.encode(), None)
        await self._audit(now, moderator, "case.released", after, "", {})
        return after

    async def note(self, case_id: str, moderator: str, text: str) -> Case:
        now = self.clock()
        _, after = await self._update(
            case_id, lambda c: model.add_note(c, moderator, text, now=now, bounds=self.bounds)
        )
        # The note's text stays in the case; the audit log records only that one was added.
        await self._audit(now, moderator, "case.noted", after, "", {"notes": len(after.notes)})
        return after

    async def act(
        self,
        case_id: str,
        moderator: str,
        action: ModeratorAction,
        *,
        report_input: ReportInput | None = None,
    ) -> Case:
        """Take ``action``: check it against the case, apply its live effect, record it.

        A ``report`` is refused unless the report built from the case (and the
        evidence in ``report_input``) passes the checklist.
        """
        action.check(self.limits.max_duration)
        now = self.clock()
        current = await self.get(case_id)
        if current is None:
            raise CaseError(f"no case {case_id}")
        # Validate against the case as it stands before anything reaches the chat.
        model.act(current, moderator, action.type, "", now=now, external_ref=action.external_ref)
        details: dict[str, Any] = {"conversation": current.conversation}
        effect = Effect(None)
        if action.type in model.LIVE_ACTIONS:
            target = action.target_in(current)
            effect = await self.actions.apply(action, target, moderator)
            details.update(effect.details())
            if action.duration is not None:
                details["duration"] = action.duration
        elif action.type == "report":
            report = law_enforcement_report(
                current,
                report_input or ReportInput(),
                service=self.limits.reporting_service,
                now=now,
            )
            missing = [item for item, ok, _ in checklist(report) if not ok]
            if missing:
                raise CaseError("the report checklist is not complete: " + ", ".join(missing))
            details["external_ref"] = action.external_ref
            details["evidence"] = list(current.evidence)
        detail = _history_detail(action, effect)
        before, after = await self._update(
            case_id,
            lambda c: model.act(
                c,
                moderator,
                action.type,
                detail,
                now=now,
                external_ref=action.external_ref,
                bounds=self.bounds,
            ),
        )
        if action.type in ("dismiss", "escalate", "report"):
            await self.store.compare_and_set(f"case-lease:{case_id}", moderator.encode(), None)
        if action.type == "report":
            # The evidence branch reads the retention start from this entry.
            details["reported_at"] = after.reported_at
        await self._audit(now, moderator, f"case.{action.type}", after, action.reason, details)
        if self.metrics is not None:
            self.metrics.case_actions.labels(type=action.type).inc()
            if before.first_actioned_at is None and after.first_actioned_at is not None:
                self.metrics.case_time_to_action.observe(max(0.0, now - after.created_at))
        return after

    # -- internals ------------------------------------------------------------

    async def _load(self, wanted: Status | None, *, done: bool = True) -> builtins.list[Case]:
        ids: builtins.list[str] = []
        if wanted is None or wanted.open:
            ids += [m for m, _ in await self.store.index_members(OPEN)]
        if done and (wanted is None or not wanted.open):
            ids += [m for m, _ in await self.store.index_members(DONE)]
        raws = await self.store.get_many([f"case:{i}" for i in ids])
        cases = []
        for case_id, raw in zip(ids, raws, strict=True):
            if raw is None:
                # Expired final case (or one lost mid-creation): drop it from the index.
                await self.store.index_remove(DONE, case_id)
                continue
            cases.append(await self._settle(_decode(raw)))
        return cases

    async def _settle(self, case: Case) -> Case:
        """The case with a run-out claim released, recorded once."""
        now = self.clock()
        if model.effective(case, now, self.bounds) is case:
            return case
        try:
            before, after = await self._update(
                case.id, lambda c: model.effective(c, now, self.bounds)
            )
        except (CaseError, StoreError):
            return model.effective(case, now, self.bounds)
        if after is not before:
            await self._audit(
                now, "chatguard", "case.claim_expired", after, "", {"was": before.assignee}
            )
        return after

    async def _update(self, case_id: str, change: Callable[[Case], Case]) -> tuple[Case, Case]:
        """Apply ``change`` atomically (compare-and-set, retried on conflict)."""
        key = f"case:{case_id}"
        for _ in range(MAX_RETRIES):
            raw = await self.store.get(key)
            if raw is None:
                raise CaseError(f"no case {case_id}")
            before = _decode(raw)
            after = change(before)
            if after is before:
                return before, after
            ttl = self._ttl(after)
            if await self.store.compare_and_set(key, raw, _encode(after), ttl):
                if before.status.open and not after.status.open:
                    await self._finish(after)
                return before, after
        raise CaseError(f"case {case_id} is busy; try again")

    def _ttl(self, case: Case) -> float | None:
        if case.status is Status.REPORTED:
            return self.limits.reported_ttl or None
        if case.status is Status.CLOSED:
            return self.limits.closed_ttl or None
        return None

    async def _finish(self, case: Case) -> None:
        """A case became final: out of the queue, its group free for a new case."""
        await self.store.index_remove(OPEN, case.id)
        await self.store.index_add(DONE, case.id, case.updated_at)
        await self.store.compare_and_set(f"case-group:{case.group}", case.id.encode(), None)
        excess = await self.store.index_size(DONE) - self.limits.max_done
        if excess > 0:
            for member, _ in (await self.store.index_members(DONE))[:excess]:
                await self.store.index_remove(DONE, member)

    async def _audit(
        self,
        now: float,
        actor: str,
        action: str,
        case: Case,
        reason: str,
        details: dict[str, Any],
    ) -> None:
        details.setdefault("conversation", case.conversation)
        details.setdefault("status", case.status.value)
        await self.audit.audit(
            AuditEntry(
                at=now,
                actor=actor,
                action=action,
                subject=f"case:{case.id}",
                reason=reason,
                details=details,
            )
        )


def queue_order(case: Case) -> tuple[int, float, float, str]:
    """Open cases first, by severity (highest first) then age (oldest first);
    final cases after, latest change first."""
    if case.status.open:
        return (0, -model.severity_rank(case.severity), case.created_at, case.id)
    return (1, 0, -case.updated_at, case.id)


def _history_detail(action: ModeratorAction, effect: Effect) -> str:
    parts = []
    if effect.target:
        parts.append(f"target {effect.target}")
    if action.type in ("mute", "ban"):
        parts.append("permanent" if effect.until is None else f"until {effect.until:.0f}")
    if action.external_ref:
        parts.append(f"ref {action.external_ref}")
    if action.reason:
        parts.append(action.reason)
    return "; ".join(parts)
