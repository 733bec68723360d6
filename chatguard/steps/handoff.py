"""The ``evidence`` and ``escalate`` steps: handing findings to what keeps them.

What it owns: turning enforced ``capture`` and ``escalate`` actions into
``CaptureRequest`` and ``EscalationRequest`` values and passing them to a
sink. The sinks are interfaces: the evidence log and the case queue implement
them; until they are configured, ``RecordingSink`` keeps the most recent
requests in memory (bounded) so an operator can see that detection works.

Invariants:

* A sink that fails never stops chat: the failure is logged (without message
  content) and counted in ``chatguard_handoffs_total{outcome="failed"}``.
* Shadow actions are not handed off.
* Requests carry what happened (ids, signals, risk, the frame); what to keep
  and for how long is the sink's business.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..events import PASS, ChatEvent, EventKind, Frame, Side, Verdict
from ..metrics import Metrics
from ..pipeline import Findings, SessionContext
from ..policy.model import ActionType, Assessment, PlannedAction

log = logging.getLogger(__name__)

DEFAULT_KEEP = 1000


@dataclass(frozen=True, slots=True)
class CaptureRequest:
    """Keep this event (and its conversation's context) as evidence.

    ``trigger`` says why: ``policy`` (a capture action), ``report`` (a user
    report), ``hold`` (a held message), ``moderator`` (a moderator asked).
    ``assessment`` is None when no policy assessment led here (reports).
    """

    at: float
    conversation: str
    session_id: str
    sender: str | None
    frame: Frame
    assessment: Assessment | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    trigger: str = "policy"
    event: ChatEvent | None = None


@dataclass(frozen=True, slots=True)
class EscalationRequest:
    """Ask a human to look at this conversation.

    ``source`` is ``detection`` (the policy escalated) or ``report`` (a user
    reported; ``reporter`` names them). ``evidence`` lists the ids of the
    evidence records captured for the same event, when any were.
    """

    at: float
    conversation: str
    session_id: str
    sender: str | None
    recipients: tuple[str, ...]
    severity: str
    category: str
    risk: float
    signals: tuple[str, ...]
    reason: str
    assessment: Assessment | None = None
    source: str = "detection"
    reporter: str | None = None
    evidence: tuple[str, ...] = ()


class EvidenceSink(Protocol):
    async def capture(self, request: CaptureRequest) -> str | None:
        """Keep the request; the id of the record written, when there is one."""
        ...


class EscalationSink(Protocol):
    async def escalate(self, request: EscalationRequest) -> None: ...


class RecordingSink:
    """Keeps the last ``keep`` captures and escalations in memory."""

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        self.captures: deque[CaptureRequest] = deque(maxlen=keep)
        self.escalations: deque[EscalationRequest] = deque(maxlen=keep)

    async def capture(self, request: CaptureRequest) -> str | None:
        self.captures.append(request)
        return None

    async def escalate(self, request: EscalationRequest) -> None:
        self.escalations.append(request)
        log.info(
            "escalation: conversation %s severity %s category %s (%s)",
            request.conversation,
            request.severity,
            request.category,
            request.reason,
        )


class _HandoffStep:
    """Hands each enforced action of one type to a sink; ``_send`` says how."""

    kind: ActionType
    interests = frozenset({(Side.CLIENT, EventKind.MESSAGE), (Side.CLIENT, EventKind.DIRECT)})

    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.time) -> None:
        self.metrics = metrics
        self.clock = clock

    async def __call__(
        self, event: ChatEvent, session: SessionContext, findings: Findings
    ) -> Verdict:
        assessment = findings.assessment
        if not isinstance(assessment, Assessment):
            return PASS
        for action in assessment.actions:
            if action.type is not self.kind or action.shadow:
                continue
            try:
                await self._send(action, assessment, event, session, findings)
            except Exception:
                log.exception("%s sink failed", self.kind.value)
                self.metrics.handoffs.labels(kind=self.kind.value, outcome="failed").inc()
            else:
                self.metrics.handoffs.labels(kind=self.kind.value, outcome="ok").inc()
        return PASS

    async def _send(
        self,
        action: PlannedAction,
        assessment: Assessment,
        event: ChatEvent,
        session: SessionContext,
        findings: Findings,
    ) -> None:
        raise NotImplementedError


#: Called with every chat message this step sees, before any capture: the
#: evidence log keeps recent messages per conversation for context windows.
Observer = Callable[[ChatEvent, SessionContext], None]


class CaptureStep(_HandoffStep):
    """Hands captures to the evidence sink.

    With an ``observe`` callback the step also sees every client and upstream
    message (``interests`` widen to both sides) and passes each one to it
    first, so a capture's context window already holds the captured message.
    """

    kind = ActionType.CAPTURE

    def __init__(
        self,
        sink: EvidenceSink,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        observe: Observer | None = None,
    ) -> None:
        super().__init__(metrics, clock)
        self.sink = sink
        self.observe = observe
        if observe is not None:
            self.interests = frozenset(
                (side, kind) for side in Side for kind in (EventKind.MESSAGE, EventKind.DIRECT)
            )

    async def __call__(
        self, event: ChatEvent, session: SessionContext, findings: Findings
    ) -> Verdict:
        if self.observe is not None and event.kind in (EventKind.MESSAGE, EventKind.DIRECT):
            try:
                self.observe(event, session)
            except Exception:
                log.exception("context window update failed")
        return await super().__call__(event, session, findings)

    async def _send(
        self,
        action: PlannedAction,
        assessment: Assessment,
        event: ChatEvent,
        session: SessionContext,
        findings: Findings,
    ) -> None:
        record = await self.sink.capture(
            CaptureRequest(
                at=self.clock(),
                conversation=assessment.conversation,
                session_id=session.session_id,
                sender=event.sender,
                frame=event.raw,
                assessment=assessment,
                params=dict(action.params),
                reason=action.reason,
                event=event,
            )
        )
        if record is not None:
            # The escalate step (later in ORDER) links the case to this record.
            findings.notes.setdefault("evidence", []).append(record)


class EscalateStep(_HandoffStep):
    kind = ActionType.ESCALATE

    def __init__(
        self, sink: EscalationSink, metrics: Metrics, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(metrics, clock)
        self.sink = sink

    async def _send(
        self,
        action: PlannedAction,
        assessment: Assessment,
        event: ChatEvent,
        session: SessionContext,
        findings: Findings,
    ) -> None:
        await self.sink.escalate(
            EscalationRequest(
                at=self.clock(),
                conversation=assessment.conversation,
                session_id=session.session_id,
                sender=event.sender,
                recipients=tuple(findings.notes.get("recipients", ())),
                severity=str(action.params.get("severity", "medium")),
                category=str(action.params.get("category", "grooming")),
                risk=assessment.risk,
                signals=tuple(s.value for s in assessment.signals),
                reason=action.reason,
                assessment=assessment,
                evidence=tuple(findings.notes.get("evidence", ())),
            )
        )
