"""The client-facing listener: WebSocket pairing and HTTP reverse proxy.

What it owns: accepting client requests, opening the paired upstream
connection to the one configured upstream (the client never chooses the
target, so this is not an open proxy), refusing what is over a limit, and
draining on shutdown.

Invariants:

* Every request goes to ``upstream.url`` joined with the request's own path
  and query; nothing in the request can change the host, port or scheme.
* Limits are enforced before any upstream work: at ``max_connections``
  upgrades get HTTP 503; a draining relay accepts nothing new.
* An upstream that refuses or times out gets the client a WebSocket close
  with 1014 (bad gateway), counted in ``upstream_connect_failures``; an
  upstream that rejects the handshake with an HTTP status passes that status
  on, as a direct connection would have seen it.
* One failing session never affects another: every session runs in its own
  handler task and all its errors end there.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from yarl import URL

from ..codecs import Codec
from ..config import Config
from ..identity import IdentityError, IdentityResolver
from ..metrics import Metrics
from ..pipeline import Pipeline, SessionContext
from . import headers as hdr
from .core import SessionCore
from .ircws import IrcWebSocketBridge
from .session import CLOSE_BAD_GATEWAY, CLOSE_GOING_AWAY, AdmitHook, IdentityHook, RelaySession

log = logging.getLogger(__name__)


class Relay:
    """The relay's aiohttp application and its live sessions."""

    def __init__(
        self,
        config: Config,
        codec: Codec,
        pipeline: Pipeline,
        metrics: Metrics,
        identity: IdentityResolver,
        on_identity: IdentityHook | None = None,
        admit: AdmitHook | None = None,
        bridge: IrcWebSocketBridge | None = None,
    ) -> None:
        self.config = config
        self.admit = admit
        self.on_identity = on_identity
        # Set for codec.type irc: WebSocket clients are bridged to the IRC
        # server over TCP instead of paired with a WebSocket upstream.
        self.bridge = bridge
        self.codec = codec
        self.pipeline = pipeline
        self.metrics = metrics
        self.identity = identity
        self.sessions: set[SessionCore] = set()
        self._no_sessions = asyncio.Event()
        self._no_sessions.set()
        self.draining = False
        self._ids = itertools.count(1)
        self._instance = f"{id(self):x}"
        upstream = URL(config.upstream.url)
        self.ws_base = upstream
        self.http_base = upstream.with_scheme("https" if upstream.scheme == "wss" else "http")
        self._ssl: ssl.SSLContext | bool = bool(config.upstream.tls_verify)
        self._ws_client: aiohttp.ClientSession | None = None
        self._http_client: aiohttp.ClientSession | None = None
        self.app = web.Application(
            client_max_size=config.limits.max_http_body_bytes,
            handler_args={"max_field_size": 16384},
        )
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self.app.cleanup_ctx.append(self._clients)

    # -- lifetime -------------------------------------------------------------

    async def _clients(self, app: web.Application) -> AsyncIterator[None]:
        """Upstream client sessions live exactly as long as the application."""
        connector = aiohttp.TCPConnector(limit=0, ssl=self._ssl)
        self._ws_client = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        self._http_client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, ssl=self._ssl),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, connect=self.config.upstream.connect_timeout),
        )
        sweeper = asyncio.create_task(self._sweep_idle())
        yield
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await self.close_all(CLOSE_GOING_AWAY, "server shutting down", "shutdown")
        await self._ws_client.close()
        await self._http_client.close()

    async def close_all(self, code: int, reason: str, cause: str) -> None:
        """Close every live session (drain, shutdown)."""
        await asyncio.gather(
            *(s.close(code, reason, cause) for s in list(self.sessions)), return_exceptions=True
        )

    async def drain(self, within: float) -> bool:
        """Stop accepting, close sessions with 1001, wait up to ``within`` seconds.

        True when every session ended in time.
        """
        self.draining = True
        await self.close_all(CLOSE_GOING_AWAY, "server shutting down", "drain")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._no_sessions.wait()
        return not self.sessions

    async def _sweep_idle(self) -> None:
        idle = self.config.limits.idle_timeout
        if idle <= 0:
            return
        while True:
            await asyncio.sleep(min(idle / 4, 5.0))
            cutoff = time.monotonic() - idle
            for session in list(self.sessions):
                if session.last_activity < cutoff:
                    await session.close(CLOSE_GOING_AWAY, "idle timeout", "idle")

    async def upstream_reachable(self) -> bool:
        """True when a TCP connection to the upstream opens (for /readyz)."""
        parts = urlsplit(self.config.upstream.url)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        try:
            async with asyncio.timeout(self.config.upstream.connect_timeout):
                _, writer = await asyncio.open_connection(parts.hostname, port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    # -- requests -------------------------------------------------------------

    def _target(self, base: URL, request: web.Request) -> URL:
        # Join the configured base path with the request's path; the request
        # can only ever choose the path and query, never the host.
        path = base.path.rstrip("/") + request.rel_url.path
        return base.with_path(path, encoded=False).with_query(request.rel_url.query)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if upgrade:
            return await self._websocket(request)
        if not self.config.upstream.http:
            return web.Response(status=404, text="not found\n")
        return await self._http(request)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        limits = self.config.limits
        if self.draining:
            self.metrics.connections_refused.labels(reason="draining").inc()
            return web.Response(status=503, text="shutting down\n")
        if len(self.sessions) >= limits.max_connections:
            self.metrics.connections_refused.labels(reason="limit").inc()
            return web.Response(status=503, text="too many connections\n")
        try:
            identity = self.identity.resolve(request.headers, request.query, request.cookies)
        except IdentityError as exc:
            self.metrics.connections_refused.labels(reason="identity").inc()
            return web.Response(status=401, text=f"{exc}\n")
        if identity is not None and self.admit is not None:
            refusal = await self.admit(identity)
            if refusal is not None:
                # Known before the upstream is dialled: refuse the upgrade itself.
                self.metrics.connections_refused.labels(reason="sanctioned").inc()
                return web.Response(status=403, text=f"{refusal}\n")

        peer = _peer(request)
        if self.bridge is not None:
            return await self.bridge.handle(self, request, identity, peer or "")
        offered = hdr.offered_subprotocols(request.headers)
        deflate = hdr.offers_deflate(request.headers)
        forward = hdr.request_headers(
            request.headers,
            peer=peer,
            scheme="https" if request.secure else "http",
            host=request.host,
            websocket=True,
            forwarded=self.config.upstream.forwarded_headers,
        )
        assert self._ws_client is not None
        heartbeat = limits.heartbeat or None
        try:
            async with asyncio.timeout(self.config.upstream.connect_timeout):
                upstream = await self._ws_client.ws_connect(
                    self._target(self.ws_base, request),
                    protocols=offered,
                    headers=forward,
                    compress=15 if deflate else 0,
                    autoclose=False,
                    autoping=False,
                    heartbeat=heartbeat,
                    max_msg_size=limits.max_frame_bytes,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
                )
        except aiohttp.WSServerHandshakeError as exc:
            self.metrics.upstream_connect_failures.labels(reason="handshake").inc()
            return web.Response(status=exc.status or 502, text="upstream refused the handshake\n")
        except TimeoutError:
            self.metrics.upstream_connect_failures.labels(reason="timeout").inc()
            return await self._refuse(request, "upstream timed out")
        except (aiohttp.ClientError, OSError):
            self.metrics.upstream_connect_failures.labels(reason="refused").inc()
            return await self._refuse(request, "upstream unavailable")

        client = web.WebSocketResponse(
            protocols=(upstream.protocol,) if upstream.protocol else (),
            autoclose=False,
            autoping=False,
            heartbeat=heartbeat,
            compress=deflate,
            max_msg_size=limits.max_frame_bytes,
            writer_limit=limits.write_buffer_bytes,
        )
        try:
            await client.prepare(request)
        except (ConnectionError, RuntimeError):
            await upstream.close(code=CLOSE_GOING_AWAY)
            return client

        context = SessionContext(
            session_id=f"{self._instance}-{next(self._ids)}",
            peer=peer or "",
            connected_at=time.time(),
            user_agent=request.headers.get("User-Agent", ""),
            identity=identity,
        )
        codec = self.codec.open(identity, use_welcome=self.config.identity.welcome)
        context.codec = codec
        session = RelaySession(
            client,
            upstream,
            codec,
            self.pipeline,
            context,
            self.metrics,
            self.on_identity,
            self.admit,
        )
        if identity is not None and self.on_identity is not None:
            await self.on_identity(identity)
        self.sessions.add(session)
        self._no_sessions.clear()
        self.metrics.connections_total.inc()
        self.metrics.connections_open.inc()
        try:
            await session.run()
        except Exception:
            log.exception("session %s failed", context.session_id)
            session.close_cause = session.close_cause or "error"
        finally:
            self.sessions.discard(session)
            if not self.sessions:
                self._no_sessions.set()
            self.metrics.connections_open.dec()
            self.metrics.closes.labels(cause=session.close_cause or "unknown").inc()
            if not upstream.closed:
                await upstream.close(code=CLOSE_GOING_AWAY)
        return client

    async def _refuse(self, request: web.Request, reason: str) -> web.StreamResponse:
        """Accept the upgrade only to close it with 1014, so the client sees why."""
        client = web.WebSocketResponse(autoping=False)
        await client.prepare(request)
        await client.close(code=CLOSE_BAD_GATEWAY, message=reason.encode())
        self.metrics.closes.labels(cause="upstream_unavailable").inc()
        return client

    async def _http(self, request: web.Request) -> web.StreamResponse:
        assert self._http_client is not None
        limit = self.config.limits.max_http_body_bytes
        if request.content_length is not None and request.content_length > limit:
            self.metrics.http_requests.labels(status="4xx").inc()
            return web.Response(status=413, text="request body too large\n")
        forward = hdr.request_headers(
            request.headers,
            peer=_peer(request),
            scheme="https" if request.secure else "http",
            host=request.host,
            websocket=False,
            forwarded=self.config.upstream.forwarded_headers,
            keep_length=True,
        )
        body = _LimitedBody(request, limit) if request.body_exists else None
        try:
            async with self._http_client.request(
                request.method,
                self._target(self.http_base, request),
                headers=forward,
                data=body.__aiter__() if body is not None else None,
                allow_redirects=False,
            ) as upstream:
                response = web.StreamResponse(
                    status=upstream.status,
                    reason=upstream.reason,
                    headers=hdr.response_headers(upstream.headers),
                )
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                self.metrics.http_requests.labels(status=f"{upstream.status // 100}xx").inc()
                return response
        except TimeoutError:
            self.metrics.http_requests.labels(status="5xx").inc()
            return web.Response(status=504, text="upstream timed out\n")
        except (aiohttp.ClientError, OSError, ValueError):
            if body is not None and body.exceeded:
                self.metrics.http_requests.labels(status="4xx").inc()
                return web.Response(status=413, text="request body too large\n")
            self.metrics.http_requests.labels(status="5xx").inc()
            return web.Response(status=502, text="upstream unavailable\n")


class _LimitedBody:
    """The request body as a stream that stops once it passes ``limit`` bytes.

    The HTTP client wraps whatever the body iterator raises, so the
    reason is kept here for the handler to find.
    """

    def __init__(self, request: web.Request, limit: int) -> None:
        self.request = request
        self.limit = limit
        self.exceeded = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self.request.content.iter_any():
            seen += len(chunk)
            if seen > self.limit:
                self.exceeded = True
                raise ValueError("request body over the limit")
            yield chunk


def _peer(request: web.Request) -> str | None:
    return request.remote
