"""Line-based relayed pairs: IRC over TCP, and IRC over WebSocket to a TCP server.

What it owns: the two kinds of leg a line protocol travels on — a TCP stream
framed into CR LF lines (``TcpLineLeg``) and a WebSocket carrying one line per
message as the IRCv3 WebSocket spec says (``WsLineLeg``) — and ``LineSession``,
the pair of pumps between two legs, which hands every line to the shared core
(``core.py``) after checking it against the line limits.

Invariants:

* A frame is one line without its line ending, as bytes, on every leg; a leg
  adds what its transport needs on the way out (CR LF on TCP).
* Memory per session is bounded: a TCP leg holds at most ``hard_limit`` bytes
  of one unfinished line (a longer line is discarded up to its end, never
  buffered), and a writer waits while its transport buffer is above
  ``limits.write_buffer_bytes``; each pump reads its next line only after the
  previous one was written, so a slow reader slows only its own pair.
* A line over the IRC limits (``problem``) is refused (dropped, counted, the
  client told) or passed on, as configured; either way the session goes on.
* Closing from the sidecar's side tells the client why (``ERROR :Closing
  link: ...``) and the server that the user left (``QUIT``), then closes.
* Nothing that goes wrong in one session escapes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import WSMsgType, web

from ..codecs import CodecSession
from ..codecs.ircline import clean_text, truncate_utf8
from ..events import Frame, Notice, Severity, Side
from ..metrics import Metrics
from ..pipeline import Pipeline, SessionContext
from .core import AdmitHook, IdentityHook, SessionCore

log = logging.getLogger(__name__)

#: Seconds each pump gets to finish once the other side has gone.
LINGER = 2.0
#: Bytes read from a socket at a time.
CHUNK = 16_384


class LineLeg(Protocol):
    """One side of a line-based pair."""

    @property
    def closed(self) -> bool: ...

    async def read(self) -> tuple[bytes, bool] | None:
        """The next line and whether it was cut at the hard limit; None at the end."""

    async def write(self, line: bytes) -> None: ...

    async def finish(self) -> None:
        """The other side has ended: let this leg's peer see the end too."""

    async def close(self) -> None: ...


class TcpLineLeg:
    """A TCP (or TLS) stream framed into lines ending in LF (CR LF on the way out)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        hard_limit: int,
        write_buffer: int,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.hard_limit = hard_limit
        self._buffer = bytearray()
        self._eof = False
        self._closed = False
        transport = writer.transport
        if transport is not None:
            # drain() waits while more than this is queued toward a slow reader.
            transport.set_write_buffer_limits(high=write_buffer)

    @property
    def closed(self) -> bool:
        return self._closed or self.writer.is_closing()

    async def read(self) -> tuple[bytes, bool] | None:
        discarding = False
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                if discarding:
                    # The end of an over-long line: report the cut line once.
                    return line[: self.hard_limit], True
                if line.endswith(b"\r"):
                    line = line[:-1]
                if not line:
                    continue  # empty lines mean nothing in IRC
                return line, False
            if len(self._buffer) > self.hard_limit and not discarding:
                # Keep only the head of an over-long line (for the log and the
                # refusal), never the rest of it.
                discarding = True
                del self._buffer[self.hard_limit :]
            if self._eof:
                if self._buffer and not discarding:
                    line = bytes(self._buffer).rstrip(b"\r")
                    self._buffer.clear()
                    return line, False
                return None
            try:
                chunk = await self.reader.read(CHUNK)
            except (ConnectionError, OSError):
                chunk = b""
            if not chunk:
                self._eof = True
                continue
            if discarding:
                newline = chunk.find(b"\n")
                if newline < 0:
                    continue  # still inside the over-long line: drop it
                self._buffer += b"\n" + chunk[newline + 1 :]
                continue
            self._buffer += chunk

    async def write(self, line: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("leg closed")
        self.writer.write(line + b"\r\n")
        await self.writer.drain()

    async def finish(self) -> None:
        # Half-close, as a direct connection would: the peer sees the end at
        # once and may still answer (a server's last ERROR) before it closes.
        try:
            if self.writer.can_write_eof() and not self.closed:
                self.writer.write_eof()
                return
        except (ConnectionError, OSError, RuntimeError):
            pass
        await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            self.writer.close()
            async with asyncio.timeout(2.0):
                await self.writer.wait_closed()


class WsLineLeg:
    """A WebSocket carrying one IRC line per message (IRCv3 WebSocket spec).

    ``binary`` (subprotocol ``binary.ircv3.net``) sends lines as binary
    messages, byte for byte; otherwise (``text.ircv3.net``) as text, where a
    line that is not UTF-8 is sent with replacement characters, as the spec
    asks of servers.
    """

    def __init__(self, ws: web.WebSocketResponse, *, binary: bool) -> None:
        self.ws = ws
        self.binary = binary

    @property
    def closed(self) -> bool:
        return self.ws.closed

    async def read(self) -> tuple[bytes, bool] | None:
        while True:
            msg = await self.ws.receive()
            if msg.type is WSMsgType.TEXT:
                data = msg.data.encode("utf-8")
            elif msg.type is WSMsgType.BINARY:
                data = msg.data
            elif msg.type in (WSMsgType.PING, WSMsgType.PONG):
                continue
            else:
                return None
            # Clients should not, but some do, end a message with CR LF.
            if data.endswith(b"\n"):
                data = data[:-1]
            if data.endswith(b"\r"):
                data = data[:-1]
            if data:
                return data, False

    async def write(self, line: bytes) -> None:
        if self.binary:
            await self.ws.send_bytes(line)
        else:
            await self.ws.send_str(line.decode("utf-8", errors="replace"))

    async def finish(self) -> None:
        await self.close()

    async def close(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close()


@dataclass(frozen=True, slots=True)
class LineRules:
    """What to do with lines the protocol's limits refuse.

    ``problem`` names what is wrong with a line (``too_long``, ``bad_byte``)
    or returns None; ``on_long_line`` and ``on_bad_byte`` say ``refuse`` (drop
    it, tell the client) or ``pass`` (forward it as received). A line cut at a
    leg's hard limit is always refused: it cannot be passed on whole.
    """

    problem: Callable[[bytes], str | None]
    on_long_line: str = "refuse"
    on_bad_byte: str = "refuse"
    #: A client line the sidecar answers itself instead of forwarding
    #: (``IrcCodec.reserved``: a NICK of the service name).
    reserved: Callable[[bytes], bytes | None] = lambda line: None

    def action(self, problem: str) -> str:
        return self.on_long_line if problem == "too_long" else self.on_bad_byte


class LineSession(SessionCore):
    """Pumps lines between a client leg and an upstream leg until either ends."""

    def __init__(
        self,
        client: LineLeg,
        upstream: LineLeg,
        codec: CodecSession,
        pipeline: Pipeline,
        context: SessionContext,
        metrics: Metrics,
        rules: LineRules,
        on_identity: IdentityHook | None = None,
        admit: AdmitHook | None = None,
    ) -> None:
        super().__init__(codec, pipeline, context, metrics, on_identity, admit)
        self.legs: dict[Side, LineLeg] = {Side.CLIENT: client, Side.UPSTREAM: upstream}
        self.rules = rules
        self._frames = {s: metrics.frames.labels(origin=s.value) for s in Side}
        self._bytes = {s: metrics.bytes.labels(origin=s.value) for s in Side}
        self._closing = False

    async def send(self, toward: Side, frame: Frame) -> None:
        line = frame if isinstance(frame, bytes) else frame.encode("utf-8")
        await self.legs[toward].write(line)

    def leg_open(self, side: Side) -> bool:
        return not self.legs[side].closed

    async def run(self) -> None:
        """Relay until either side ends; never raises for session-level errors."""
        pumps = [asyncio.create_task(self._pump(side)) for side in Side]
        try:
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            side = Side.CLIENT if pumps[0] in done else Side.UPSTREAM
            if self.close_cause is None:
                self.close_cause = f"{side.value}_closed"
            # Pass the end on at once: a server must not keep counting a
            # client that has gone while the sidecar waits.
            await self.legs[side.other].finish()
            # Whoever ended, the other direction may still hold lines in
            # flight (a server's last ERROR): give it a moment.
            await asyncio.wait(pumps, timeout=LINGER)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            await asyncio.gather(*(leg.close() for leg in self.legs.values()))

    async def close(self, code: int, reason: str, cause: str) -> None:
        if self._closing:
            return
        self._closing = True
        if self.close_cause is None:
            self.close_cause = cause
        # Last words, each bounded: a client that stopped reading must not
        # keep its session (and a drain) waiting.
        with contextlib.suppress(ConnectionError, RuntimeError, OSError, TimeoutError):
            async with asyncio.timeout(LINGER):
                if self.leg_open(Side.CLIENT):
                    await self.send(Side.CLIENT, self.codec.render(Notice("close", reason)))
        with contextlib.suppress(ConnectionError, RuntimeError, OSError, TimeoutError):
            async with asyncio.timeout(LINGER):
                if self.leg_open(Side.UPSTREAM):
                    # The reason may come from a moderator: one line, whatever it holds.
                    quit_line = "QUIT :" + truncate_utf8(clean_text(reason), 200)
                    await self.send(Side.UPSTREAM, quit_line.encode())
        await asyncio.gather(*(leg.close() for leg in self.legs.values()))

    async def _pump(self, origin: Side) -> None:
        source = self.legs[origin]
        frames, nbytes = self._frames[origin], self._bytes[origin]
        try:
            while True:
                got = await source.read()
                if got is None:
                    return
                line, cut = got
                self.last_activity = time.monotonic()
                frames.inc()
                nbytes.inc(len(line))
                problem = "too_long" if cut else self.rules.problem(line)
                if problem is not None:
                    action = "refuse" if cut else self.rules.action(problem)
                    self.metrics.bad_lines.labels(
                        origin=origin.value, problem=problem, action=action
                    ).inc()
                    if action == "refuse":
                        await self._refused(origin, problem)
                        continue
                if origin is Side.CLIENT and (reply := self.rules.reserved(line)) is not None:
                    await self.send(Side.CLIENT, reply)
                    continue
                await self.relay_frame(line, origin)
        except (ConnectionError, OSError, RuntimeError) as exc:
            log.debug("session %s: %s pump ended: %s", self.context.session_id, origin.value, exc)

    async def _refused(self, origin: Side, problem: str) -> None:
        if origin is not Side.CLIENT:
            return  # the server's own lines are dropped quietly (counted)
        text = "line too long, not sent" if problem == "too_long" else "line refused: bad byte"
        notice = Notice("error", text, severity=Severity.WARNING)
        await self.send(Side.CLIENT, self.codec.render(notice))
