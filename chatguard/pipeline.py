"""The order of steps on every chat event — written down once, here.

Every frame a codec decodes into a ``ChatEvent``, from either side, runs
through one ``Pipeline``. The pipeline asks each step in ``ORDER`` for a
``Verdict`` and combines them:

1. ``control``   — ChatGuard control frames from the client are consumed here
                   and never forwarded (hold confirmations, reports, ...).
2. ``sanctions`` — muted or banned users' messages stop here.
3. ``policy``    — normalise, match rules, update conversation risk.
4. ``banners``   — speed bumps chosen from the policy's signals.
5. ``evidence``  — capture when an action asks for it.
6. ``escalate``  — open or update a case for moderators.

Only ``control`` exists in the pass-through default; later parts register
their steps under these names and the order stays the one above, whatever
order they are registered in.

Combining rule (like an Envoy filter chain): steps run in order; each
returns a verdict; injections accumulate; a replacement is seen by later
steps as the frame to forward; the first verdict that drops the frame stops
the chain, except for steps that keep records (``after_drop = True``: evidence
and escalation), so a message that is held or blocked can still be captured
and escalated. A step that declares ``interests`` (a set of (side, kind) pairs)
sees only those events; one without sees every event. A step that raises is
counted and skipped: a policy bug must never stop chat from flowing. The one
exception: a client control frame is never forwarded, even when the step
handling it fails.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .codecs.base import SERVICE_COMMAND, CodecSession
from .events import PASS, ChatEvent, EventKind, Identity, Inject, Notice, Severity, Side, Verdict
from .following import SessionSeen
from .holds import HoldBook
from .metrics import Metrics

log = logging.getLogger(__name__)

#: The order of steps. Steps not configured are skipped.
ORDER = ("control", "sanctions", "policy", "banners", "evidence", "escalate")


@dataclass(slots=True)
class SessionContext:
    """What a step may know about the session an event belongs to.

    Owned and updated by the relay (the identity becomes known when the
    upstream attests it); steps read it and never hold on to it. ``codec``
    lets a step rewrite a frame in the session's own protocol; ``holds`` are
    the messages this session's user was asked to confirm.
    """

    session_id: str
    peer: str
    connected_at: float
    user_agent: str = ""
    identity: Identity | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    codec: CodecSession | None = None
    holds: HoldBook = field(default_factory=HoldBook)
    # What the client saw: notices waiting for their message, report context.
    seen: SessionSeen = field(default_factory=SessionSeen)


@dataclass(slots=True)
class Findings:
    """What earlier steps found about the event now in the pipeline.

    One is made per event, so steps can hand results on (the policy step's
    assessment, read by the banner, evidence and escalation steps) without
    sharing state between events, even when both directions of a session run
    the pipeline at the same time.
    """

    assessment: Any = None
    notes: dict[str, Any] = field(default_factory=dict)
    #: The step whose verdict dropped the frame (held, blocked, muted, a
    #: command), once one has; later steps run only if they keep records.
    dropped_by: str | None = None
    #: The event as it arrived, once a step has replaced its frame (redaction):
    #: evidence keeps what the user sent, not the masked copy.
    original: ChatEvent | None = None


Interest = frozenset[tuple[Side, EventKind]]


class Step(Protocol):
    """One pipeline step. Return ``PASS`` to leave the frame alone.

    A step may have an ``interests`` attribute: the (origin, kind) pairs it
    acts on. The relay skips decoding frames no step is interested in; a step
    without the attribute is interested in everything.
    """

    async def __call__(
        self, event: ChatEvent, session: SessionContext, findings: Findings
    ) -> Verdict: ...


ControlHandler = Callable[[ChatEvent, SessionContext], Awaitable[Verdict]]
_FLOODING = "too many control frames; slow down"
#: Bound on the sessions whose recent control frames are remembered.
_MAX_TRACKED_SESSIONS = 100_000


class ControlStep:
    """Consumes client control frames; dispatches the known ones by type.

    Unknown control types are answered with an error notice so a client (or a
    forger) gets a clear answer; nothing is forwarded upstream either way.

    Clients that only speak chat use text commands instead (``/send``,
    ``/report ...``): a message whose text starts with ``/`` and a registered
    command name is consumed the same way. Any other text, including other
    ``/`` words, is ordinary chat.
    """

    def __init__(
        self,
        type_field: str = "type",
        per_minute: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # The same dotted field path the codec mapping uses (``meta.type``).
        self.type_path = tuple(type_field.split("."))
        self.handlers: dict[str, ControlHandler] = {}
        self.commands: dict[str, ControlHandler] = {}
        self.interests: Interest = frozenset({(Side.CLIENT, EventKind.CONTROL)})
        # Protocols whose clients can only message a service name (XMPP's
        # service JID) send their text commands as this control type.
        self.handlers[SERVICE_COMMAND] = self.service_command
        # Flooding: at most ``per_minute`` control frames and commands per
        # session (0 = no limit); beyond it each gets an error and does nothing.
        self.per_minute = per_minute
        self.clock = clock
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()

    def _flooding(self, session: SessionContext) -> bool:
        if not self.per_minute:
            return False
        now = self.clock()
        times = self._recent.pop(session.session_id, None) or deque(maxlen=self.per_minute)
        self._recent[session.session_id] = times
        while len(self._recent) > _MAX_TRACKED_SESSIONS:
            self._recent.popitem(last=False)
        if len(times) >= self.per_minute and now - times[0] < 60.0:
            return True
        times.append(now)
        return False

    def register(self, control_type: str, handler: ControlHandler) -> None:
        self.handlers[control_type] = handler

    def register_command(self, name: str, handler: ControlHandler) -> None:
        self.commands[name.lower()] = handler
        # Text commands arrive as ordinary messages.
        self.interests = self.interests | {
            (Side.CLIENT, EventKind.MESSAGE),
            (Side.CLIENT, EventKind.DIRECT),
        }

    def _command(self, event: ChatEvent) -> ControlHandler | None:
        if not self.commands or event.origin is not Side.CLIENT or not event.text:
            return None
        if event.kind not in (EventKind.MESSAGE, EventKind.DIRECT):
            return None
        text = event.text.lstrip()
        if not text.startswith("/"):
            return None
        name = text[1:].split(maxsplit=1)[0].lower() if len(text) > 1 else ""
        return self.commands.get(name)

    async def service_command(self, event: ChatEvent, session: SessionContext) -> Verdict:
        """A text command sent to the service name (``send``, ``report ...``).

        Dispatched to the same handlers as ``/send`` typed in a chat; an
        empty one (a typing notification, a receipt) is dropped quietly.
        """
        text = (event.text or "").strip().lstrip("/")
        if not text:
            return Verdict(forward=False, reason="control")
        name = text.split(maxsplit=1)[0].lower()
        handler = self.commands.get(name)
        if handler is None:
            known = ", ".join(sorted(self.commands)) or "none"
            return Verdict(
                forward=False,
                inject=(error_notice(f"unknown command {name!r} (known: {known})"),),
                reason="control",
            )
        event = replace(event, text="/" + text)
        # A command that names a conversation (IRC: ``report #room ...``,
        # ``report nick ...``) is shown to its handler as if typed there.
        if event.room is not None:
            event = replace(event, kind=EventKind.MESSAGE)
        elif event.recipients:
            event = replace(event, kind=EventKind.DIRECT)
        return await handler(event, session)

    async def __call__(
        self, event: ChatEvent, session: SessionContext, findings: Findings
    ) -> Verdict:
        if event.kind is not EventKind.CONTROL:
            command = self._command(event)
            if command is None:
                return PASS
            if self._flooding(session):
                return Verdict(forward=False, inject=(error_notice(_FLOODING),), reason="control")
            try:
                verdict = await command(event, session)
            except Exception:
                # A command is never chat: even when its handler fails, the
                # text does not go upstream.
                log.exception("command handler failed")
                verdict = Verdict(inject=(error_notice("that command failed"),))
            return replace(verdict, forward=False, replacement=None)
        if self._flooding(session):
            return Verdict(forward=False, inject=(error_notice(_FLOODING),), reason="control")
        kind: Any = event.control or {}
        for part in self.type_path:
            kind = kind.get(part) if isinstance(kind, Mapping) else None
        handler = self.handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return Verdict(
                forward=False,
                inject=(error_notice(f"unknown control frame type {kind!r}"),),
                reason="control",
            )
        verdict = await handler(event, session)
        # Whatever the handler says, a control frame never goes upstream.
        return replace(verdict, forward=False, replacement=None)


def error_notice(text: str) -> Inject:
    return Inject(Side.CLIENT, Notice(kind="error", text=text, severity=Severity.WARNING))


class Pipeline:
    """Runs the configured steps in ``ORDER`` on each event."""

    def __init__(
        self,
        steps: Mapping[str, Step],
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        unknown = set(steps) - set(ORDER)
        if unknown:
            raise ValueError(f"unknown pipeline steps: {', '.join(sorted(unknown))}")
        self.steps: tuple[tuple[str, Step], ...] = tuple(
            (name, steps[name]) for name in ORDER if name in steps
        )
        self.metrics = metrics
        self.clock = clock

    def wants(self, origin: Side, kind: EventKind) -> bool:
        """Whether any step acts on events of ``kind`` from ``origin``."""
        for _, step in self.steps:
            interests: Interest | None = getattr(step, "interests", None)
            if interests is None or (origin, kind) in interests:
                return True
        return False

    @classmethod
    def pass_through(cls, metrics: Metrics | None = None) -> Pipeline:
        """The default pipeline: control frames are consumed, all else passes."""
        return cls({"control": ControlStep()}, metrics)

    async def run(self, event: ChatEvent, session: SessionContext) -> Verdict:
        started = self.clock()
        result = PASS
        findings = Findings()
        wanted = (event.origin, event.kind)
        for name, step in self.steps:
            # A step sees only the events it declares an interest in, so a
            # step written for client messages never acts on upstream frames
            # that another step asked the relay to decode.
            interests: Interest | None = getattr(step, "interests", None)
            if interests is not None and wanted not in interests:
                continue
            if findings.dropped_by is not None and not getattr(step, "after_drop", False):
                continue
            try:
                verdict = await step(event, session, findings)
            except Exception:
                log.exception("pipeline step %s failed; frame passed on", name)
                if self.metrics is not None:
                    self.metrics.pipeline_errors.labels(step=name).inc()
                if event.kind is EventKind.CONTROL:
                    # Whatever failed, a control frame never goes upstream.
                    result = Verdict(forward=False, inject=result.inject, reason="control")
                    break
                continue
            if verdict is PASS:
                continue
            if findings.dropped_by is not None:
                # Record-keeping after a drop may say something to the user,
                # never bring the frame back.
                result = result.also(*verdict.inject)
                continue
            result = _combine(result, verdict)
            if not result.forward:
                findings.dropped_by = name
                continue
            if verdict.replacement is not None:
                findings.original = findings.original or event
                event = replace(event, raw=verdict.replacement)
        if self.metrics is not None:
            self.metrics.pipeline_seconds.observe(self.clock() - started)
        return result


def _combine(before: Verdict, after: Verdict) -> Verdict:
    return Verdict(
        forward=after.forward,
        replacement=after.replacement if after.replacement is not None else before.replacement,
        inject=before.inject + after.inject,
        reason=after.reason or before.reason,
    )
