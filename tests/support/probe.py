"""A probe upstream: a real ``websockets`` server that records what reaches it.

Relay tests need to see exactly what the upstream receives (headers, frames,
close codes) and to make the upstream misbehave on purpose (drop the TCP
connection, refuse the handshake, flood a slow client). The example chat
service is kept clean of such hooks; this probe is the independent peer for
those tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus

import pytest_asyncio
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

SUBPROTOCOLS = (Subprotocol("chat.v2"), Subprotocol("chat.v1"))


@dataclass
class ProbeConnection:
    ws: ServerConnection
    path: str
    headers: Headers
    frames: list[str | bytes] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    close_reason: str | None = None
    received: asyncio.Queue[str | bytes] = field(default_factory=asyncio.Queue)


class ProbeUpstream:
    """Echoes every frame back unless ``echo`` is False; records everything."""

    def __init__(self, *, echo: bool = True, max_size: int | None = 2**24) -> None:
        self.echo = echo
        self.max_size = max_size
        self.connections: list[ProbeConnection] = []
        self._new: asyncio.Queue[ProbeConnection] = asyncio.Queue()
        self._server: Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            select_subprotocol=self._select,
            max_size=self.max_size,
            ping_interval=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def next_connection(self, within: float) -> ProbeConnection:
        async with asyncio.timeout(within):
            return await self._new.get()

    def _select(
        self, connection: ServerConnection, offered: list[Subprotocol]
    ) -> Subprotocol | None:
        for proto in SUBPROTOCOLS:
            if proto in offered:
                return proto
        return None

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.startswith("/forbidden"):
            return connection.respond(HTTPStatus.FORBIDDEN, "forbidden\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        conn = ProbeConnection(ws, ws.request.path, ws.request.headers)
        self.connections.append(conn)
        self._new.put_nowait(conn)
        try:
            async for frame in ws:
                conn.frames.append(frame)
                conn.received.put_nowait(frame)
                if self.echo:
                    await ws.send(frame)
        except ConnectionClosed:
            pass
        finally:
            conn.close_code = ws.close_code
            conn.close_reason = ws.close_reason
            conn.closed.set()


@pytest_asyncio.fixture
async def probe() -> AsyncIterator[ProbeUpstream]:
    upstream = ProbeUpstream()
    await upstream.start()
    try:
        yield upstream
    finally:
        await upstream.stop()
