"""Line legs over real sockets: framing, bounds on a line, writing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio

from chatguard.relay.lines import LineRules, TcpLineLeg
from tests.support.timing import unit


@pytest_asyncio.fixture
async def pair() -> AsyncIterator[tuple[TcpLineLeg, asyncio.StreamWriter]]:
    """A leg reading what a plain socket writes to it, with a 64-byte hard limit."""
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await accepted.put((r, w))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client_reader, writer = await asyncio.open_connection("127.0.0.1", port)
    reader, server_writer = await accepted.get()
    leg = TcpLineLeg(reader, server_writer, hard_limit=64, write_buffer=1024)
    leg.peer_reader = client_reader  # type: ignore[attr-defined]
    try:
        yield leg, writer
    finally:
        writer.close()
        await leg.close()
        server.close()
        await server.wait_closed()


async def read(leg: TcpLineLeg) -> tuple[bytes, bool] | None:
    async with asyncio.timeout(unit(2)):
        return await leg.read()


async def test_lines_end_in_lf_or_crlf_and_empty_lines_are_skipped(
    pair: tuple[TcpLineLeg, asyncio.StreamWriter],
) -> None:
    leg, writer = pair
    writer.write(b"ONE a\r\n\r\nTWO b\nTHR")
    await writer.drain()
    assert await read(leg) == (b"ONE a", False)
    assert await read(leg) == (b"TWO b", False)
    writer.write(b"EE c\r\n")
    assert await read(leg) == (b"THREE c", False)


async def test_a_line_over_the_hard_limit_is_cut_and_discarded_to_its_end(
    pair: tuple[TcpLineLeg, asyncio.StreamWriter],
) -> None:
    leg, writer = pair
    for _ in range(50):  # arrives in many pieces, never held whole
        writer.write(b"x" * 1000)
    writer.write(b"\r\nNEXT ok\r\n")
    await writer.drain()
    line, cut = await read(leg) or (b"", False)
    assert cut
    assert line == b"x" * 64
    assert len(leg._buffer) <= 64 + 16_384
    assert await read(leg) == (b"NEXT ok", False)


async def test_the_end_of_the_stream_ends_the_leg(
    pair: tuple[TcpLineLeg, asyncio.StreamWriter],
) -> None:
    leg, writer = pair
    writer.write(b"LAST words")
    writer.close()
    assert await read(leg) == (b"LAST words", False)
    assert await read(leg) is None


async def test_writes_end_in_crlf(pair: tuple[TcpLineLeg, asyncio.StreamWriter]) -> None:
    leg, _ = pair
    await leg.write(b"PING :x")
    async with asyncio.timeout(unit(2)):
        assert await leg.peer_reader.readline() == b"PING :x\r\n"  # type: ignore[attr-defined]
    assert not leg.closed
    await leg.close()
    assert leg.closed


def test_line_rules_choose_the_action_by_problem() -> None:
    rules = LineRules(problem=lambda line: None, on_long_line="pass", on_bad_byte="refuse")
    assert rules.action("too_long") == "pass"
    assert rules.action("bad_byte") == "refuse"
    assert rules.reserved(b"NICK x") is None
