"""IRC over WebSocket (IRCv3 WebSocket spec) bridged to a real ngIRCd over TCP."""

from __future__ import annotations

import asyncio
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from chatguard.app import ChatGuard
from chatguard.relay.ircws import BINARY, TEXT, choose_subprotocol
from tests.support.ircclient import UserFactory
from tests.support.ngircd import Ngircd
from tests.support.relay import GuardFactory, ws_url
from tests.support.timing import unit


async def irc_guard(make_guard: GuardFactory, server: Ngircd, **irc: Any) -> ChatGuard:
    settings: dict[str, Any] = {
        "upstream": {"host": server.host, "port": server.port},
        "listen": {"host": "127.0.0.1", "port": 0},
        **irc,
    }
    return await make_guard("ws://127.0.0.1:9", codec={"type": "irc"}, irc=settings)


async def until(ws: ClientConnection, predicate: Any) -> str | bytes:
    async with asyncio.timeout(unit(5)):
        while True:
            message = await ws.recv()
            line = message if isinstance(message, bytes) else message.encode()
            if line.startswith(b"PING "):
                await ws.send(
                    b"PONG " + line[5:] if isinstance(message, bytes) else "PONG " + message[5:]
                )
            if predicate(line):
                return message


async def register(ws: ClientConnection, nick: str, binary: bool = False) -> None:
    for line in (f"NICK {nick}", f"USER {nick} 0 * :{nick}"):
        await ws.send(line.encode() if binary else line)
    await until(ws, lambda line: b" 001 " in line)


def test_subprotocol_choice_prefers_binary() -> None:
    assert choose_subprotocol(("text.ircv3.net", "binary.ircv3.net")) == BINARY
    assert choose_subprotocol(("text.ircv3.net",)) == TEXT
    assert choose_subprotocol(("xmpp",)) is None


async def test_text_subprotocol_one_line_per_message_to_a_tcp_user(
    make_guard: GuardFactory, ngircd: Ngircd, irc_user: UserFactory
) -> None:
    guard = await irc_guard(make_guard, ngircd)
    assert guard.irc_address is not None
    tcp = await irc_user(*guard.irc_address, "tcpuser", join="#both")
    async with websockets.connect(ws_url(guard, "/"), subprotocols=[TEXT]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == TEXT
        await register(ws, "webuser")
        await ws.send("JOIN #both")
        await until(ws, lambda line: b"JOIN" in line and line.startswith(b":webuser!"))
        await ws.send("PRIVMSG #both :hello from the web")
        await tcp.wait_for("pubmsg", lambda e: e.arguments == ["hello from the web"])
        tcp.connection.privmsg("webuser", "hello back")
        got = await until(ws, lambda line: b"PRIVMSG webuser" in line)
        assert isinstance(got, str)
        assert got.startswith(":tcpuser!")
        assert got.endswith(":hello back")
        assert "\r" not in got
        assert "\n" not in got


async def test_binary_subprotocol_keeps_bytes_and_commands_stay_with_the_sidecar(
    make_guard: GuardFactory, ngircd: Ngircd
) -> None:
    guard = await irc_guard(make_guard, ngircd)
    url = ws_url(guard, "/")
    async with (
        websockets.connect(url, subprotocols=[TEXT, BINARY]) as one,  # type: ignore[list-item]
        websockets.connect(url, subprotocols=[BINARY]) as two,  # type: ignore[list-item]
    ):
        assert one.subprotocol == BINARY
        await register(one, "binone", binary=True)
        await register(two, "bintwo", binary=True)
        await one.send(b"PRIVMSG bintwo :na\xefve latin-1")
        got = await until(two, lambda line: b"PRIVMSG bintwo" in line)
        assert isinstance(got, bytes)
        assert got.startswith(b":binone!")
        assert got.endswith(b" PRIVMSG bintwo :na\xefve latin-1")
        await one.send(b"PRIVMSG ChatGuard :whoami")
        notice = await until(one, lambda line: line.startswith(b":ChatGuard!"))
        assert b"unknown command" in notice
        # A frame carrying two lines is refused, not split into two commands.
        await one.send(b"PRIVMSG bintwo :a\r\nPRIVMSG bintwo :smuggled")
        await one.send(b"PRIVMSG bintwo :b\nPRIVMSG bintwo :smuggled")
        await until(one, lambda line: b"bad byte" in line)
        await one.send(b"PING :after")
        await until(one, lambda line: b"PONG" in line and b"after" in line)
        seen: list[bytes] = []
        await two.send(b"PING :two")
        await until(two, lambda line: seen.append(line) or (b"PONG" in line and b"two" in line))
        assert not any(b"smuggled" in line for line in seen)
    sample = guard.metrics.registry.get_sample_value
    labels = {"origin": "client", "problem": "bad_byte", "action": "refuse"}
    assert sample("chatguard_irc_bad_lines_total", labels) == 2
