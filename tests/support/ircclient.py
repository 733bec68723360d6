"""IRC users for the tests: the real ``irc`` library's asyncio client, and raw lines.

``IrcUser`` is a client built on ``irc.client_aio`` that keeps every event it
receives, so a test can wait for "a notice from ChatGuard" or "bob's message
in #kids". ``RawIrc`` writes and reads raw bytes for the bad-input tests,
where the library would refuse to send what the test needs to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest_asyncio
from irc.client import Event, ServerConnection
from irc.client_aio import AioConnection, AioReactor
from irc.connection import AioFactory

from tests.support.timing import eventually, unit


@dataclass
class IrcUser:
    nick: str
    connection: AioConnection
    events: list[Event] = field(default_factory=list)

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.type == kind]

    def texts(self, kind: str, source: str | None = None) -> list[str]:
        return [
            str(e.arguments[0])
            for e in self.of(kind)
            if e.arguments and (source is None or str(e.source).split("!")[0] == source)
        ]

    async def wait_for(
        self, kind: str, predicate: Callable[[Event], bool] = lambda e: True, within: float = 5.0
    ) -> Event:
        found: list[Event] = []

        def seen() -> bool:
            found[:] = [e for e in self.of(kind) if predicate(e)]
            return bool(found)

        await eventually(seen, within)
        return found[0]

    async def sync(self) -> None:
        """Wait until the server has answered everything sent before this call."""
        token = f"sync{len(self.events)}"
        self.connection.send_raw(f"PING {token}")
        await self.wait_for("pong", lambda e: token in " ".join(map(str, e.arguments)))


UserFactory = Callable[..., Awaitable[IrcUser]]


@pytest_asyncio.fixture
async def irc_user() -> AsyncIterator[UserFactory]:
    """Connect named IRC users to host:port; all disconnect at teardown."""
    loop = asyncio.get_running_loop()
    users: list[IrcUser] = []

    async def connect(
        host: str, port: int, nick: str, *, tls: ssl.SSLContext | None = None, join: str = ""
    ) -> IrcUser:
        reactor = AioReactor(loop=loop)
        factory = AioFactory(ssl=tls) if tls is not None else AioFactory()
        connection = reactor.server()
        user = IrcUser(nick, connection)

        def record(_: ServerConnection, event: Event) -> None:
            user.events.append(event)

        reactor.add_global_handler("all_events", record, -10)
        async with asyncio.timeout(unit(5)):
            await connection.connect(host, port, nick, connect_factory=factory)
        users.append(user)
        await user.wait_for("welcome")
        if join:
            connection.join(join)
            await user.wait_for("join", lambda e: str(e.source).split("!")[0] == nick)
        return user

    try:
        yield connect
    finally:
        for user in users:
            with contextlib.suppress(Exception):
                user.connection.disconnect("bye")


class RawIrc:
    """A plain socket speaking raw IRC lines (bytes), for what a library refuses to send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.lines: list[bytes] = []

    @classmethod
    async def connect(cls, host: str, port: int, nick: str = "") -> RawIrc:
        reader, writer = await asyncio.open_connection(host, port)
        raw = cls(reader, writer)
        if nick:
            await raw.send(f"NICK {nick}".encode(), f"USER {nick} 0 * :{nick}".encode())
            await raw.expect(lambda line: b" 001 " in line)
        return raw

    async def send(self, *lines: bytes) -> None:
        self.writer.write(b"".join(line + b"\r\n" for line in lines))
        await self.writer.drain()

    async def send_bytes(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def expect(self, predicate: Callable[[bytes], bool], within: float = 5.0) -> bytes:
        """The first line (seen before or arriving now) that satisfies ``predicate``."""
        for line in self.lines:
            if predicate(line):
                return line
        async with asyncio.timeout(unit(within)):
            while True:
                line = await self.reader.readline()
                if not line:
                    raise ConnectionResetError("closed before the expected line")
                line = line.rstrip(b"\r\n")
                self.lines.append(line)
                if line.startswith(b"PING "):
                    await self.send(b"PONG " + line[5:])
                if predicate(line):
                    return line

    async def sync(self, token: str = "sync") -> None:
        await self.send(f"PING :{token}".encode())
        await self.expect(lambda line: b"PONG" in line and token.encode() in line)

    async def closed(self, within: float = 5.0) -> bool:
        """True when the connection ends within ``within`` seconds."""
        try:
            async with asyncio.timeout(unit(within)):
                while True:
                    line = await self.reader.readline()
                    if not line:
                        return True
                    self.lines.append(line.rstrip(b"\r\n"))
        except TimeoutError:
            return False

    def close(self) -> None:
        self.writer.close()
