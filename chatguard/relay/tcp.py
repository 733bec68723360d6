"""The TCP relay for IRC: one client connection to one upstream connection.

What it owns: the IRC listener (plain TCP, or TLS with a configured
certificate and key), the connection to the one configured IRC server (plain
or TLS), limits on connections, the PROXY protocol v1 header from a trusted
load balancer, the idle sweep and draining on stop. The line handling of a
pair is ``lines.LineSession``; this module only opens and tracks pairs.

Invariants:

* The client never chooses the server: every connection goes to
  ``irc.upstream``.
* Limits apply before any upstream work: at ``limits.max_connections`` or
  while draining, a client gets ``ERROR`` and is closed; an unreachable
  server gets the client ``ERROR :Closing link: upstream unavailable``.
* One failing session never affects another: each runs in its own handler
  task, and all its errors end there.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
import time

from ..codecs import Codec
from ..codecs.irc import IrcCodec
from ..config import Config
from ..events import Side
from ..metrics import Metrics
from ..pipeline import Pipeline, SessionContext
from .core import AdmitHook, IdentityHook, SessionCore
from .lines import LineRules, LineSession, TcpLineLeg

log = logging.getLogger(__name__)

#: Longest PROXY protocol v1 header (the spec's own bound).
PROXY_V1_MAX = 107
#: StreamReader buffer bound; lines are framed by ``TcpLineLeg`` in chunks.
CHUNK_LIMIT = 65_536


class UpstreamUnavailable(Exception):
    """The IRC server could not be reached; ``reason`` is a metric label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def client_tls(config: Config) -> ssl.SSLContext | None:
    """The TLS context toward clients, or None for plain TCP."""
    listen = config.irc.listen
    if not listen.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(listen.tls_cert, listen.tls_key)
    return context


def upstream_tls(config: Config) -> ssl.SSLContext | None:
    up = config.irc.upstream
    if not up.tls:
        return None
    context = ssl.create_default_context(cafile=up.tls_ca_file or None)
    if not up.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class IrcUpstream:
    """Opens connections to the configured IRC server."""

    def __init__(self, config: Config, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self.tls = upstream_tls(config)

    async def connect(self) -> TcpLineLeg:
        up = self.config.irc.upstream
        try:
            async with asyncio.timeout(self.config.upstream.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    up.host,
                    up.port,
                    ssl=self.tls,
                    server_hostname=(up.tls_server_name or up.host) if self.tls else None,
                    limit=CHUNK_LIMIT,
                )
        except TimeoutError:
            self.metrics.upstream_connect_failures.labels(reason="timeout").inc()
            raise UpstreamUnavailable("timeout") from None
        except (OSError, ssl.SSLError):
            self.metrics.upstream_connect_failures.labels(reason="refused").inc()
            raise UpstreamUnavailable("refused") from None
        return self.leg(reader, writer)

    def leg(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> TcpLineLeg:
        return TcpLineLeg(
            reader,
            writer,
            self.config.irc.hard_line_bytes,
            self.config.limits.write_buffer_bytes,
        )

    async def reachable(self) -> bool:
        """True when a connection to the server opens (for /readyz)."""
        try:
            leg = await self.connect()
        except UpstreamUnavailable:
            return False
        await leg.close()
        return True


def line_rules(config: Config, codec: Codec) -> LineRules:
    if not isinstance(codec, IrcCodec):
        return LineRules(problem=lambda line: None)
    return LineRules(
        problem=codec.problem,
        on_long_line=config.irc.on_long_line,
        on_bad_byte=config.irc.on_bad_byte,
        reserved=codec.reserved,
    )


def parse_proxy_v1(line: bytes) -> str | None:
    """The source address of a PROXY protocol v1 header, or None if it is not one."""
    parts = line.decode("ascii", errors="replace").split(" ")
    if len(parts) < 2 or parts[0] != "PROXY":
        return None
    if parts[1] == "UNKNOWN":
        return ""
    if parts[1] not in ("TCP4", "TCP6") or len(parts) != 6:
        return None
    return parts[2]


class TcpRelay:
    """The IRC listener and its live sessions."""

    def __init__(
        self,
        config: Config,
        codec: Codec,
        pipeline: Pipeline,
        metrics: Metrics,
        on_identity: IdentityHook | None = None,
        admit: AdmitHook | None = None,
    ) -> None:
        self.config = config
        self.admit = admit
        self.codec = codec
        self.pipeline = pipeline
        self.metrics = metrics
        self.on_identity = on_identity
        self.upstream = IrcUpstream(config, metrics)
        self.rules = line_rules(config, codec)
        self.sessions: set[SessionCore] = set()
        self._no_sessions = asyncio.Event()
        self._no_sessions.set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.draining = False
        self._ids = itertools.count(1)
        self._instance = f"irc{id(self):x}"
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.address: tuple[str, int] | None = None

    async def start(self) -> tuple[str, int]:
        listen = self.config.irc.listen
        self._server = await asyncio.start_server(
            self._accept,
            listen.host,
            listen.port,
            ssl=client_tls(self.config),
            reuse_address=True,
            backlog=1024,
            limit=CHUNK_LIMIT,
        )
        sock = self._server.sockets[0].getsockname()
        self.address = (str(sock[0]), int(sock[1]))
        self._sweeper = asyncio.create_task(self._sweep_idle())
        return self.address

    async def stop(self, within: float) -> bool:
        """Stop accepting, close sessions, wait up to ``within`` seconds; True if all ended."""
        self.draining = True
        if self._server is not None:
            self._server.close()
        await asyncio.gather(
            *(s.close(1001, "server shutting down", "drain") for s in list(self.sessions)),
            return_exceptions=True,
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._no_sessions.wait()
        drained = not self.sessions
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._server.wait_closed()
        return drained

    async def _sweep_idle(self) -> None:
        idle = self.config.limits.idle_timeout
        if idle <= 0:
            return
        while True:
            await asyncio.sleep(min(idle / 4, 5.0))
            cutoff = time.monotonic() - idle
            for session in list(self.sessions):
                if session.last_activity < cutoff:
                    await session.close(1001, "idle timeout", "idle")

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except Exception:
            log.exception("IRC connection handler failed")
        finally:
            self._handlers.discard(task)
            if not writer.is_closing():
                writer.close()

    async def _refuse(self, writer: asyncio.StreamWriter, reason: str) -> None:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.write(f"ERROR :Closing link: {reason}\r\n".encode())
            async with asyncio.timeout(2.0):
                await writer.drain()
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        limits = self.config.limits
        if self.draining:
            self.metrics.connections_refused.labels(reason="draining").inc()
            await self._refuse(writer, "server shutting down")
            return
        if len(self.sessions) >= limits.max_connections:
            self.metrics.connections_refused.labels(reason="limit").inc()
            await self._refuse(writer, "too many connections")
            return
        client = self.upstream.leg(reader, writer)
        peer_info = writer.get_extra_info("peername")
        peer = str(peer_info[0]) if isinstance(peer_info, tuple) and peer_info else ""
        if self.config.irc.listen.proxy_protocol:
            try:
                async with asyncio.timeout(self.config.upstream.connect_timeout):
                    first = await client.read()
            except TimeoutError:
                first = None
            source = parse_proxy_v1(first[0][:PROXY_V1_MAX]) if first else None
            if source is None:
                self.metrics.connections_refused.labels(reason="proxy_header").inc()
                await self._refuse(writer, "expected a PROXY header")
                return
            peer = source or peer
        try:
            upstream = await self.upstream.connect()
        except UpstreamUnavailable:
            self.metrics.closes.labels(cause="upstream_unavailable").inc()
            await self._refuse(writer, "upstream unavailable")
            return
        context = SessionContext(
            session_id=f"{self._instance}-{next(self._ids)}",
            peer=peer,
            connected_at=time.time(),
            identity=None,
        )
        codec = self.codec.open(None, use_welcome=True)
        context.codec = codec
        session = LineSession(
            client,
            upstream,
            codec,
            self.pipeline,
            context,
            self.metrics,
            self.rules,
            self.on_identity,
            self.admit,
        )
        await run_tracked(session, self.sessions, self._no_sessions, self.metrics)


async def run_tracked(
    session: LineSession,
    sessions: set[SessionCore],
    no_sessions: asyncio.Event,
    metrics: Metrics,
) -> None:
    """Run one session as a live, counted member of ``sessions``."""
    sessions.add(session)
    no_sessions.clear()
    metrics.connections_total.inc()
    metrics.connections_open.inc()
    try:
        await session.run()
    except Exception:
        log.exception("session %s failed", session.context.session_id)
        session.close_cause = session.close_cause or "error"
    finally:
        sessions.discard(session)
        if not sessions:
            no_sessions.set()
        metrics.connections_open.dec()
        metrics.closes.labels(cause=session.close_cause or "unknown").inc()
        for side in Side:
            await session.legs[side].close()
