"""One relayed WebSocket pair: a client leg and its upstream leg.

What it owns: the two pumps that move frames between the legs, handing each
frame to the shared core (``core.py``: decode, pipeline, verdict), plus
relaying the liveness (ping/pong) and closing handshakes end to end.

Invariants:

* Each pump reads its next frame only after the previous one was written to
  the other leg, and aiohttp's writer waits while a leg's write buffer is over
  its limit; so a slow reader slows only its own pair and memory stays bounded
  (``limits.write_buffer_bytes`` per leg plus one frame).
* A frame the codec cannot map is forwarded exactly as received, unless the
  codec judged it bad input (``CodecSession.bad``): then it is counted and,
  when configured to refuse, dropped with an error notice to the client.
* Close codes and reasons cross in both directions; codes that must not be
  sent on the wire (1005, 1006, 1015) become 1000. If the upstream vanishes
  without a closing handshake the client gets 1011; if the client vanishes the
  upstream gets 1001.
* Nothing that goes wrong in one session escapes it: errors end this session
  only.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import ClientWebSocketResponse, WSMsgType, web

from ..codecs import CodecSession
from ..events import Frame, Side
from ..metrics import Metrics
from ..pipeline import Pipeline, SessionContext
from .core import CLOSE_POLICY_VIOLATION, AdmitHook, IdentityHook, SessionCore

log = logging.getLogger(__name__)

#: Close codes reserved for local use (RFC 6455 §7.4.1): never sent on the wire.
_UNSENDABLE = frozenset({0, 1005, 1006, 1015})
CLOSE_GOING_AWAY = 1001
CLOSE_INTERNAL_ERROR = 1011
CLOSE_BAD_GATEWAY = 1014

Leg = web.WebSocketResponse | ClientWebSocketResponse
__all__ = [
    "CLOSE_POLICY_VIOLATION",
    "AdmitHook",
    "IdentityHook",
    "Leg",
    "RelaySession",
    "wire_code",
]


def wire_code(code: int | None) -> int:
    return 1000 if code is None or code in _UNSENDABLE else code


class RelaySession(SessionCore):
    """Pumps frames between ``client`` and ``upstream`` until either closes."""

    def __init__(
        self,
        client: web.WebSocketResponse,
        upstream: ClientWebSocketResponse,
        codec: CodecSession,
        pipeline: Pipeline,
        context: SessionContext,
        metrics: Metrics,
        on_identity: IdentityHook | None = None,
        admit: AdmitHook | None = None,
    ) -> None:
        super().__init__(codec, pipeline, context, metrics, on_identity, admit)
        self.legs: dict[Side, Leg] = {Side.CLIENT: client, Side.UPSTREAM: upstream}
        # Set once either side, or the sidecar, has begun closing: from then
        # on a leg reporting itself gone is the handshake finishing, not a loss.
        self._ending = False
        # Pre-bound metric children: label lookups cost more than increments.
        self._frames = {s: metrics.frames.labels(origin=s.value) for s in Side}
        self._bytes = {s: metrics.bytes.labels(origin=s.value) for s in Side}

    async def run(self) -> None:
        """Relay until the session ends; never raises for session-level errors."""
        pumps = [asyncio.create_task(self._pump(side)) for side in Side]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            # One side finished (closed, vanished, or was closed by us): give
            # the other pump a moment to finish its half of the handshake.
            await asyncio.wait(pumps, timeout=5.0)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for leg in self.legs.values():
                if not leg.closed:
                    await leg.close(code=CLOSE_GOING_AWAY)

    async def close(self, code: int, reason: str, cause: str) -> None:
        """Close both legs from the sidecar's side (idle timeout, drain, kick)."""
        self._ending = True
        if self.close_cause is None:
            self.close_cause = cause
        message = reason.encode()[:120]
        await asyncio.gather(
            self.legs[Side.CLIENT].close(code=code, message=message),
            self.legs[Side.UPSTREAM].close(code=CLOSE_GOING_AWAY, message=message),
            return_exceptions=True,
        )

    async def _pump(self, origin: Side) -> None:
        source = self.legs[origin]
        target = self.legs[origin.other]
        frames = self._frames[origin]
        nbytes = self._bytes[origin]
        try:
            while True:
                msg = await source.receive()
                kind = msg.type
                if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                    self.last_activity = time.monotonic()
                    frames.inc()
                    nbytes.inc(len(msg.data))
                    await self.relay_frame(msg.data, origin)
                elif kind is WSMsgType.PING:
                    self.last_activity = time.monotonic()
                    await target.ping(msg.data)
                elif kind is WSMsgType.PONG:
                    await target.pong(msg.data)
                elif kind is WSMsgType.CLOSE:
                    await self._relay_close(origin, msg.data, msg.extra or "")
                    return
                else:  # CLOSING, CLOSED, ERROR: this leg is gone
                    await self._leg_lost(origin)
                    return
        except (ConnectionResetError, ConnectionError, RuntimeError) as exc:
            # Writing to a leg that just went away; the other pump or run()
            # finishes the session.
            log.debug("session %s: %s pump ended: %s", self.context.session_id, origin.value, exc)

    async def send(self, toward: Side, frame: Frame) -> None:
        await _send(self.legs[toward], frame)

    def leg_open(self, side: Side) -> bool:
        return not self.legs[side].closed

    async def _relay_close(self, origin: Side, code: int | None, reason: str) -> None:
        """Carry a closing handshake from ``origin`` to the other leg and back."""
        self._ending = True
        if self.close_cause is None:
            self.close_cause = f"{origin.value}_closed"
        source, target = self.legs[origin], self.legs[origin.other]
        code = wire_code(code)
        if not target.closed:
            await target.close(code=code, message=reason.encode()[:123])
        # Answer the initiator with what the other side answered, as a direct
        # connection would have.
        answered = wire_code(target.close_code) if target.close_code else code
        await source.close(code=answered)

    async def _leg_lost(self, origin: Side) -> None:
        if self._ending:
            return
        self._ending = True
        if self.close_cause is None:
            self.close_cause = f"{origin.value}_lost"
        target = self.legs[origin.other]
        if target.closed:
            return
        if origin is Side.UPSTREAM:
            await target.close(code=CLOSE_INTERNAL_ERROR, message=b"upstream connection lost")
        else:
            await target.close(code=CLOSE_GOING_AWAY, message=b"client connection lost")


async def _send(leg: Leg, frame: Frame) -> None:
    if isinstance(frame, str):
        await leg.send_str(frame)
    else:
        await leg.send_bytes(frame)
