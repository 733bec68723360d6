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
* Requests carry what happened (ids, signals, risk, the frame, the banners
  shown in the conversation); what to keep and for how long is the sink's
  business.
* A banner history that cannot be read leaves ``banners`` None (unknown);
  the capture itself still goes ahead.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..events import PASS, ChatEvent, EventKind, Frame, Side, Verdict
from ..metrics import Metrics
from ..pipeline import Findings, SessionContext
from ..policy.model import ActionType, Assessment, PlannedAction
from ..stores import StoreError

log = logging.getLogger(__name__)

DEFAULT_KEEP = 1000
#: Banners a capture lists at most (the newest are kept).
MAX_BANNERS = 50


class ConversationBanners(Protocol):
    async def in_conversation(
        self, users: Iterable[str], conversation: str, limit: int
    ) -> list[dict[str, Any]]:
        """Banners shown to ``users`` in ``conversation``, oldest first."""
        ...


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
    #: Banners shown to the participants in this conversation, oldest first,
    #: with outcomes where decided; None when no banner history is wired.
    banners: tuple[Mapping[str, Any], ...] | None = None


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
    # A held or blocked message is exactly what may need keeping: these steps
    # run even after an earlier step dropped the frame.
    after_drop = True

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
        history: ConversationBanners | None = None,
    ) -> None:
        super().__init__(metrics, clock)
        self.sink = sink
        self.observe = observe
        self.history = history
        if observe is not None:
            self.interests = frozenset(
                (side, kind) for side in Side for kind in (EventKind.MESSAGE, EventKind.DIRECT)
            )

    async def __call__(
        self, event: ChatEvent, session: SessionContext, findings: Findings
    ) -> Verdict:
        # Context is chat as people typed it: not commands or a muted user's
        # lines (dropped before the policy saw them), but held or blocked
        # messages the policy assessed, and the original of a redacted one.
        chat = findings.dropped_by is None or findings.assessment is not None
        if (
            self.observe is not None
            and chat
            and event.kind in (EventKind.MESSAGE, EventKind.DIRECT)
        ):
            try:
                self.observe(findings.original or event, session)
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
        # What the user sent, even when a later copy was redacted.
        event = findings.original or event
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
                banners=await self._banners(event, assessment.conversation, findings),
            )
        )
        if record is not None:
            # The escalate step (later in ORDER) links the case to this record.
            findings.notes.setdefault("evidence", []).append(record)

    async def _banners(
        self, event: ChatEvent, conversation: str, findings: Findings
    ) -> tuple[Mapping[str, Any], ...] | None:
        """Earlier banners from the history, then those this message showed."""
        if self.history is None:
            return None
        users = {u for u in (event.sender, *event.recipients) if u}
        try:
            earlier = await self.history.in_conversation(users, conversation, MAX_BANNERS)
        except StoreError:
            return None
        now: list[dict[str, Any]] = findings.notes.get("banners_shown", [])
        known = {b["id"] for b in earlier if b.get("id")}
        fresh = [b for b in now if b.get("id") is None or b["id"] not in known]
        return tuple([*earlier, *fresh][-MAX_BANNERS:])


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
