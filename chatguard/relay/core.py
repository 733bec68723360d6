"""What every relayed session does with a frame, whatever carries it.

What it owns: the transport-neutral core of one client/upstream pair —
sniffing and decoding a frame, running the pipeline, carrying out its verdict
(forward, replace, drop, inject), noticing a new upstream-attested identity —
so the WebSocket pair (``session.py``) and the line-based pair
(``lines.py``: IRC over TCP or over WebSocket) share one implementation.

Invariants:

* A frame the codec cannot map, or that no step wants, is forwarded exactly
  as received.
* Subclasses only move frames: ``send`` writes one frame toward a side,
  ``leg_open`` says whether that side can still take one, ``close`` ends the
  session from the sidecar's side.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Awaitable, Callable

from ..codecs import CodecSession
from ..codecs.base import UNSURE, BadFrame
from ..events import ChatEvent, Frame, Identity, Inject, Notice, Severity, Side, Verdict
from ..metrics import Metrics
from ..pipeline import Pipeline, SessionContext

log = logging.getLogger(__name__)

#: Told of each identity the upstream attests; may return that identity
#: enriched (an IRC nick with the age band the directory holds for it).
IdentityHook = Callable[[Identity], Awaitable[Identity | None]]
#: Whether an identity may have a session: None, or the reason it may not.
AdmitHook = Callable[[Identity], Awaitable[str | None]]
CLOSE_POLICY_VIOLATION = 1008


class SessionCore(abc.ABC):
    """One relayed pair, seen from the pipeline: frames in, verdicts carried out."""

    def __init__(
        self,
        codec: CodecSession,
        pipeline: Pipeline,
        context: SessionContext,
        metrics: Metrics,
        on_identity: IdentityHook | None = None,
        admit: AdmitHook | None = None,
    ) -> None:
        self.admit = admit
        self.codec = codec
        self.pipeline = pipeline
        self.context = context
        self.metrics = metrics
        self.on_identity = on_identity
        self.last_activity = time.monotonic()
        self.close_cause: str | None = None
        self._attested = codec.identity

    @abc.abstractmethod
    async def send(self, toward: Side, frame: Frame) -> None:
        """Write one frame to the leg on side ``toward``."""

    @abc.abstractmethod
    def leg_open(self, side: Side) -> bool:
        """Whether the leg on ``side`` can still take a frame."""

    @abc.abstractmethod
    async def close(self, code: int, reason: str, cause: str) -> None:
        """End the session from the sidecar's side (idle timeout, drain, kick)."""

    async def relay_frame(self, data: Frame, origin: Side) -> None:
        """Carry one frame from ``origin`` to the other side, through the pipeline."""
        toward = origin.other
        kind = self.codec.sniff(data, origin)
        if kind is None:
            await self.send(toward, data)
            return
        if kind is not UNSURE and not self.pipeline.wants(origin, kind):
            # Nothing acts on this kind: count it and pass it on unparsed.
            self.metrics.event_counter(kind.value, origin.value).inc()
            await self.send(toward, data)
            return
        event = self.codec.decode(data, origin)
        if origin is Side.UPSTREAM and self.codec.identity is not self._attested:
            # The upstream just attested who this connection is.
            self._attested = self.context.identity = self.codec.identity
            if self.on_identity is not None and self._attested is not None:
                enriched = await self.on_identity(self._attested)
                if enriched is not None:
                    self.context.identity = enriched
            if self.admit is not None and self.context.identity is not None:
                refusal = await self.admit(self.context.identity)
                if refusal is not None:
                    # Refused (banned): the welcome frame is not passed on.
                    self.metrics.connections_refused.labels(reason="sanctioned").inc()
                    await self.close(CLOSE_POLICY_VIOLATION, refusal, "sanctioned")
                    return
        if event is None:
            bad = self.codec.bad
            if bad is not None:
                await self._bad_frame(bad, data, origin, toward)
                return
            await self.send(toward, data)
            return
        self.metrics.event_counter(event.kind.value, origin.value).inc()
        verdict = await self.pipeline.run(event, self.context)
        await self.apply(verdict, event, toward)

    async def _bad_frame(self, bad: BadFrame, data: Frame, origin: Side, toward: Side) -> None:
        """Count a frame the codec judged bad; refuse it (telling the client) or pass it."""
        action = "refused" if bad.refuse else "passed"
        self.metrics.bad_frames.labels(origin=origin.value, reason=bad.reason, action=action).inc()
        log.info(
            "session %s: %s frame %s (%s)",
            self.context.session_id,
            origin.value,
            action,
            bad.detail or bad.reason,
        )
        if not bad.refuse:
            await self.send(toward, data)
            return
        side = "your" if origin is Side.CLIENT else "a server"
        text = f"ChatGuard refused {side} frame: {bad.reason}"
        await self.inject(Inject(Side.CLIENT, Notice("error", text, severity=Severity.WARNING)))

    async def apply(self, verdict: Verdict, event: ChatEvent, toward: Side) -> None:
        if verdict.forward:
            if verdict.replacement is not None:
                self.metrics.verdicts.labels(effect="replaced").inc()
                await self.send(toward, verdict.replacement)
            else:
                await self.send(toward, event.raw)
        else:
            self.metrics.verdicts.labels(effect="dropped").inc()
        for item in verdict.inject:
            self.metrics.verdicts.labels(effect="injected").inc()
            await self.inject(item)

    async def inject(self, item: Inject) -> None:
        """Send an injected frame or notice toward one side."""
        payload = item.payload
        frame = self.codec.render(payload) if isinstance(payload, Notice) else payload
        if self.leg_open(item.toward):
            await self.send(item.toward, frame)
