"""The case book: escalations into cases, and moderators' work on them.

What it owns: the escalation sink (grouping escalations into cases), the
operations the console and API call (``list``, ``get``, ``claim``,
``release``, ``note``, ``act``, ``link_evidence``, ``counts``), carrying actions through to the
live chat (``actions.py``), the audit entry of every change, and the case
metrics. Workflow rules are in ``model.py``, the store layout and queue order
in ``queue.py``; this module reads, decides with the model, and writes.

Invariants:

* Several replicas may share one store (see ``queue.py``): two replicas
  escalating the same conversation at once make one case, and two
  moderators never hold the same case.
* A lease that runs out returns the case to the queue: it shows as unclaimed
  at once, and the first read after that records the expiry (history and
  audit) — exactly once, because that write is a compare-and-set too.
* Every change writes one audit entry, ``subject="case:<id>"``; creation
  carries the conversation and the evidence ids; a report carries
  ``reported_at``. Audit entries never carry message or note text.
* A live action is checked against the case before it reaches the chat, and
  recorded on the case only after its effect was applied.
* Bounded: at most ``max_open`` open cases (a new escalation that would open
  one more is refused with ``CaseError`` and counted; escalations into open
  cases still join them); per-case bounds from ``model.Bounds``.
"""

from __future__ import annotations

import builtins
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from ..audit import AuditEntry, AuditSink
from ..metrics import Metrics
from ..steps.handoff import EscalationRequest
from ..stores import Store, StoreError
from . import model, workflow
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
from .queue import MAX_RETRIES, BookLimits, CaseQueue, Filters, select
from .report import ReportInput, checklist, law_enforcement_report

__all__ = ["BookLimits", "CaseBook", "CaseError", "ModeratorAction"]

log = logging.getLogger(__name__)


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
        self.queue = CaseQueue(store, self.limits, clock)

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
        for _ in range(MAX_RETRIES):
            now = self.clock()
            case_id = await self.queue.group_case(group)
            if case_id is not None:

                def join(case: Case, now: float = now) -> Case:
                    return workflow.add_escalation(
                        case,
                        summary,
                        people,
                        request.evidence,
                        now=now,
                        sla=self.sla,
                        bounds=self.bounds,
                    )

                try:
                    before, after = await self.queue.update(case_id, join)
                except CaseError:
                    current = await self.queue.get(case_id)
                    if current is not None and current.status.open:
                        raise  # busy, not gone: never open a second case for the group
                    # The group's case was closed (or has expired) meanwhile:
                    # forget it, and open a new one on the next pass.
                    await self.queue.forget_group(group, case_id)
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
            if await self.queue.open_count() >= self.limits.max_open:
                if self.metrics is not None:
                    self.metrics.cases_refused.inc()
                raise CaseError(f"the queue holds max_open={self.limits.max_open} open cases")
            case = workflow.open_case(
                await self.queue.next_id(),
                request.conversation,
                summary,
                people,
                request.evidence,
                now=now,
                sla=self.sla,
                bounds=self.bounds,
            )
            if not await self.queue.create(case):
                continue  # another replica opened the group's case first: join it
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
        case = await self.queue.get(case_id)
        return None if case is None else await self._settle(case)

    async def list(
        self,
        status: str | None = None,
        severity: str | None = None,
        category: str | None = None,
        assignee: str | None = None,
        older_than: float | None = None,
        limit: int = 100,
        escalated_to_lead: bool | None = None,
    ) -> builtins.list[Case]:
        """Cases matching every filter given: open ones first, by severity then age
        (highest severity, oldest first); then final ones, latest change first.
        ``older_than`` is an age in seconds; ``limit`` is capped at ``max_list``."""
        try:
            wanted = Status(status) if status is not None else None
        except ValueError:
            known = ", ".join(s.value for s in Status)
            raise CaseError(f"unknown status {status!r} (known: {known})") from None
        cases = [await self._settle(c) for c in await self.queue.load(wanted)]
        filters = Filters(wanted, severity, category, assignee, older_than, escalated_to_lead)
        return select(cases, filters, self.clock(), min(limit, self.limits.max_list))

    async def counts(self) -> dict[str, Any]:
        """Live counts for the console and the queue-depth gauge."""
        cases = [await self._settle(c) for c in await self.queue.load(None, done=False)]
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
            "done": await self.queue.done_count(),
        }
        if self.metrics is not None:
            for sev in SEVERITIES:
                self.metrics.case_queue_depth.labels(severity=sev).set(by_severity.get(sev, 0))
        return counts

    # -- moderator operations ---------------------------------------------

    async def claim(self, case_id: str, moderator: str) -> Case:
        now = self.clock()
        took = await self.queue.take_lease(case_id, moderator, self.lease)
        try:
            before, after = await self.queue.update(
                case_id,
                lambda c: workflow.claim(
                    c, moderator, now=now, lease=self.lease, bounds=self.bounds
                ),
            )
        except CaseError:
            if took:
                await self.queue.drop_lease(case_id, moderator)
            raise
        await self._audit(now, moderator, "case.claimed", after, "", {"lease": self.lease})
        if before.first_claimed_at is None and self.metrics is not None:
            self.metrics.case_time_to_claim.observe(max(0.0, now - after.created_at))
        return after

    async def release(self, case_id: str, moderator: str) -> Case:
        now = self.clock()
        _, after = await self.queue.update(
            case_id, lambda c: workflow.release(c, moderator, now=now, bounds=self.bounds)
        )
        await self.queue.drop_lease(case_id, moderator)
        await self._audit(now, moderator, "case.released", after, "", {})
        return after

    async def note(self, case_id: str, moderator: str, text: str) -> Case:
        now = self.clock()
        _, after = await self.queue.update(
            case_id, lambda c: workflow.add_note(c, moderator, text, now=now, bounds=self.bounds)
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
        workflow.act(current, moderator, action.type, "", now=now, external_ref=action.external_ref)
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
        try:
            before, after = await self.queue.update(
                case_id,
                lambda c: workflow.act(
                    c,
                    moderator,
                    action.type,
                    detail,
                    now=now,
                    external_ref=action.external_ref,
                    bounds=self.bounds,
                ),
            )
        except CaseError as exc:
            if action.type in model.LIVE_ACTIONS:
                # The effect reached the chat but the case moved on meanwhile
                # (the claim ran out): the action is still on the record.
                details["case_updated"] = False
                details["error"] = exc.reason
                await self._audit(
                    now, moderator, f"case.{action.type}", current, action.reason, details
                )
            raise
        if action.type in ("dismiss", "escalate", "report"):
            await self.queue.drop_lease(case_id, moderator)
        if action.type == "report":
            # The evidence branch reads the retention start from this entry.
            details["reported_at"] = after.reported_at
        await self._audit(now, moderator, f"case.{action.type}", after, action.reason, details)
        if self.metrics is not None:
            self.metrics.case_actions.labels(type=action.type).inc()
            if before.first_actioned_at is None and after.first_actioned_at is not None:
                self.metrics.case_time_to_action.observe(max(0.0, now - after.created_at))
        return after

    async def link_evidence(
        self, case_id: str, moderator: str, evidence: builtins.list[str], reason: str = ""
    ) -> Case:
        """Link evidence a moderator captured to the case (needs their claim).

        The audit entry names the conversation and the new evidence ids, so an
        export of the case (``ledger.case``) finds them.
        """
        now = self.clock()
        _, after = await self.queue.update(
            case_id,
            lambda c: workflow.link_evidence(
                c, moderator, evidence, now=now, reason=reason, bounds=self.bounds
            ),
        )
        await self._audit(
            now,
            moderator,
            "case.captured",
            after,
            reason,
            {"conversation": after.conversation, "evidence": list(evidence)},
        )
        return after

    # -- internals ------------------------------------------------------------

    async def _settle(self, case: Case) -> Case:
        """The case with a run-out claim released, recorded once."""
        now = self.clock()
        if workflow.effective(case, now, self.bounds) is case:
            return case
        try:
            before, after = await self.queue.update(
                case.id, lambda c: workflow.effective(c, now, self.bounds)
            )
        except (CaseError, StoreError):
            return workflow.effective(case, now, self.bounds)
        if after is not before:
            await self._audit(
                now, "chatguard", "case.claim_expired", after, "", {"was": before.assignee}
            )
        return after

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
