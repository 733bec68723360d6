"""The example chat service, driven by real ``websockets`` clients and raw HTTP.

Other tests use this service as the upstream behind the sidecar, so these tests
pin its wire protocol. To show that a frame did *not* reach a client, the
client sends a probe (an unknown frame type) and the next frame it receives
must be the probe's error: the service keeps each connection's frames in
order, so anything sent to it earlier would have arrived first.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from chatguard_examples.chat_service import ChatRooms, ChatService, Delivery
from tests.support.timing import unit

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
async def service() -> AsyncIterator[ChatService]:
    chat = ChatService()
    await chat.start()
    try:
        yield chat
    finally:
        await chat.stop()


def ws_url(service: ChatService, **query: str) -> str:
    return f"{service.url}/ws?{urlencode(query)}"


@asynccontextmanager
async def signed_in(
    service: ChatService, user: str, **options: Any
) -> AsyncIterator[ClientConnection]:
    """A connection for ``user`` whose welcome frame has been read."""
    async with connect(
        ws_url(service, user=user), open_timeout=unit(2), proxy=None, **options
    ) as ws:
        assert (await recv(ws))["type"] == "welcome"
        yield ws


async def recv(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(unit(2)):
        frame = json.loads(await ws.recv())
    assert isinstance(frame, dict)
    return frame


async def send(ws: ClientConnection, **frame: Any) -> None:
    await ws.send(json.dumps(frame))


async def join(ws: ClientConnection, room: str) -> dict[str, Any]:
    await send(ws, type="join", room=room)
    return await recv(ws)


async def assert_nothing_pending(ws: ClientConnection) -> None:
    await send(ws, type="probe")
    assert await recv(ws) == {"type": "error", "reason": "unknown type: probe"}


async def closed(ws: ClientConnection) -> ConnectionClosed:
    """Read until the connection closes; the exception says how it closed."""

    async def drain() -> None:
        async with asyncio.timeout(unit(2)):
            while True:
                await ws.recv()

    with pytest.raises(ConnectionClosed) as info:
        await drain()
    return info.value


async def eventually(condition: Callable[[], bool]) -> None:
    # The service signals nothing when a connection's cleanup ends, so poll.
    async with asyncio.timeout(unit(2)):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(unit(0.01))


async def http(service: ChatService, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one raw HTTP request; return status, lower-cased headers and body."""
    reader, writer = await asyncio.open_connection(service.host, service.port)
    try:
        writer.write(request)
        async with asyncio.timeout(unit(2)):
            response = await reader.read()  # the service closes after responding
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), headers, body


def get(path: str, *headers: str) -> bytes:
    return "\r\n".join([f"GET {path} HTTP/1.1", "Host: chat.test", *headers, "", ""]).encode()


# --- the pure core, with no event loop --------------------------------------------


def test_the_core_turns_frames_into_deliveries_without_io() -> None:
    rooms = ChatRooms(max_text=100)
    now = datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    for user in ("alice", "bob", "bob"):
        rooms.connect(user)
    rooms.handle("alice", '{"type": "join", "room": "lobby"}', now)
    rooms.handle("bob", '{"type": "join", "room": "lobby"}', now)
    assert rooms.handle("alice", '{"type": "message", "room": "lobby", "text": "hi"}', now) == [
        Delivery(
            {
                "type": "message",
                "id": "m-1",
                "room": "lobby",
                "from": "alice",
                "text": "hi",
                "ts": "2024-05-01T12:30:00.000Z",
            },
            frozenset({"alice", "bob"}),
        )
    ]
    assert rooms.handle("bob", "{", now) == [
        Delivery({"type": "error", "reason": "malformed JSON"})
    ]
    assert rooms.disconnect("bob") == []  # bob has another connection
    assert rooms.disconnect("bob") == [
        Delivery({"type": "left", "room": "lobby", "user": "bob"}, frozenset({"alice", "bob"}))
    ]
    assert rooms.rooms() == [{"room": "lobby", "members": ["alice"]}]
    assert not rooms.is_online("bob")


# --- sign-in and handshake ------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "band"),
    [
        ("12", "minor"),
        ("17", "minor"),
        ("18", "adult"),
        ("34", "adult"),
        (None, "unknown"),
        ("", "unknown"),
        ("twelve", "unknown"),
        ("-3", "unknown"),
        ("1.5", "unknown"),
        ("999", "unknown"),
    ],
)
async def test_welcome_carries_the_age_band(
    service: ChatService, age: str | None, band: str
) -> None:
    query = {"user": "alice"} | ({} if age is None else {"age": age})
    async with connect(ws_url(service, **query), proxy=None) as ws:
        assert await recv(ws) == {
            "type": "welcome",
            "user": {"id": "alice", "name": "alice", "age_band": band},
        }


async def test_welcome_echoes_handshake_headers_on_request(service: ChatService) -> None:
    url = ws_url(service, user="alice", echo_headers="1")
    async with connect(url, proxy=None, additional_headers={"X-Trace-Id": "abc"}) as ws:
        welcome = await recv(ws)
    assert welcome["headers"]["x-trace-id"] == "abc"
    assert welcome["headers"]["upgrade"] == "websocket"
    assert welcome["headers"]["host"] == f"{service.host}:{service.port}"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({}, "missing user"),
        ({"user": ""}, "invalid user"),
        ({"user": "two words"}, "invalid user"),
        ({"user": "x" * 33}, "invalid user"),
    ],
)
async def test_a_missing_or_invalid_user_is_closed_with_1008(
    service: ChatService, query: dict[str, str], reason: str
) -> None:
    async with connect(ws_url(service, **query), proxy=None) as ws:
        error = await closed(ws)
    assert error.rcvd is not None
    assert error.rcvd.code == 1008
    assert error.rcvd.reason.startswith(reason)
    assert service.connections == 0


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["chat.v1", "chat.v2"], "chat.v2"),
        (["chat.v1"], "chat.v1"),
        (["other", "chat.v1"], "chat.v1"),
        (["other"], None),
        (None, None),
    ],
)
async def test_subprotocols_are_negotiated_in_server_preference(
    service: ChatService, offered: list[str] | None, chosen: str | None
) -> None:
    async with signed_in(service, "alice", subprotocols=offered) as ws:
        assert ws.subprotocol == chosen


async def test_permessage_deflate_is_enabled(service: ChatService) -> None:
    async with signed_in(service, "alice") as ws:
        assert ws.response is not None
        assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]


# --- rooms, messages and direct messages ----------------------------------------


async def test_joined_goes_to_every_member_including_the_joiner(service: ChatService) -> None:
    async with signed_in(service, "alice") as alice, signed_in(service, "bob") as bob:
        assert await join(alice, "lobby") == {"type": "joined", "room": "lobby", "user": "alice"}
        assert await join(bob, "lobby") == {"type": "joined", "room": "lobby", "user": "bob"}
        assert await recv(alice) == {"type": "joined", "room": "lobby", "user": "bob"}


async def test_left_goes_to_remaining_members_and_the_leaver(service: ChatService) -> None:
    async with signed_in(service, "alice") as alice, signed_in(service, "bob") as bob:
        await join(alice, "lobby")
        await join(bob, "lobby")
        await recv(alice)  # bob joined
        await send(bob, type="leave", room="lobby")
        left = {"type": "left", "room": "lobby", "user": "bob"}
        assert await recv(bob) == left
        assert await recv(alice) == left
        await send(alice, type="message", room="lobby", text="still here?")
        assert (await recv(alice))["type"] == "message"
        await assert_nothing_pending(bob)


async def test_room_messages_reach_every_member_and_only_members(service: ChatService) -> None:
    async with (
        signed_in(service, "alice") as alice,
        signed_in(service, "bob") as bob,
        signed_in(service, "carol") as carol,
    ):
        await join(alice, "lobby")
        await join(bob, "lobby")
        await recv(alice)  # bob joined
        await send(alice, type="message", room="lobby", text="hello, lobby")
        message = await recv(alice)
        assert await recv(bob) == message
        assert message["type"] == "message"
        assert message["room"] == "lobby"
        assert message["from"] == "alice"
        assert message["text"] == "hello, lobby"
        assert re.fullmatch(r"m-\d+", message["id"])
        assert ISO_UTC.fullmatch(message["ts"])
        await assert_nothing_pending(carol)


async def test_message_and_dm_ids_are_unique(service: ChatService) -> None:
    async with signed_in(service, "alice") as alice, signed_in(service, "bob") as bob:
        await join(alice, "lobby")
        ids = []
        for n in range(5):
            await send(alice, type="message", room="lobby", text=f"line {n}")
            ids.append((await recv(alice))["id"])
            await send(alice, type="dm", to="bob", text=f"psst {n}")
            ids.append((await recv(alice))["id"])
            assert (await recv(bob))["id"] == ids[-1]
        assert len(set(ids)) == len(ids)


async def test_dm_reaches_both_parties_and_no_one_else(service: ChatService) -> None:
    async with (
        signed_in(service, "alice") as alice,
        signed_in(service, "bob") as bob,
        signed_in(service, "carol") as carol,
    ):
        await send(alice, type="dm", to="bob", text="hi bob")
        dm = await recv(alice)
        assert await recv(bob) == dm
        assert {k: dm[k] for k in ("type", "from", "to", "text")} == {
            "type": "dm",
            "from": "alice",
            "to": "bob",
            "text": "hi bob",
        }
        assert re.fullmatch(r"m-\d+", dm["id"])
        assert ISO_UTC.fullmatch(dm["ts"])
        await assert_nothing_pending(carol)


async def test_every_connection_of_a_user_gets_that_users_frames(service: ChatService) -> None:
    async with (
        signed_in(service, "alice") as first,
        signed_in(service, "alice") as second,
        signed_in(service, "bob") as bob,
    ):
        assert service.connections == 3
        joined = await join(first, "lobby")
        assert await recv(second) == joined
        await send(bob, type="dm", to="alice", text="hello both tabs")
        dm = await recv(bob)
        assert await recv(first) == dm
        assert await recv(second) == dm
        # Joining again from the second tab only confirms, to that tab.
        assert await join(second, "lobby") == joined
        await assert_nothing_pending(first)


# --- bad frames ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "malformed JSON"),
        ("[" * 50_000, "malformed JSON"),
        ("[1, 2]", "frame must be a JSON object"),
        ('{"room": "lobby"}', "missing field: type"),
        ('{"type": 5}', "field must be a string: type"),
        ('{"type": "shout"}', "unknown type: shout"),
        ('{"type": "chatguard.confirm", "hold": "h-1", "choice": "send"}', "unknown type"),
        ('{"type": "join"}', "missing field: room"),
        ('{"type": "join", "room": ["lobby"]}', "field must be a string: room"),
        ('{"type": "join", "room": ""}', "empty room name"),
        (json.dumps({"type": "join", "room": "r" * 65}), "room name longer than 64"),
        ('{"type": "leave", "room": "lobby"}', "not in room: lobby"),
        ('{"type": "message", "room": "lobby"}', "missing field: text"),
        ('{"type": "message", "room": "lobby", "text": ""}', "empty text"),
        ('{"type": "message", "room": "lobby", "text": "hi"}', "not in room: lobby"),
        ('{"type": "dm", "text": "hi"}', "missing field: to"),
        ('{"type": "dm", "to": "nobody", "text": "hi"}', "user not online: nobody"),
        (b"\x00\x01", "binary frames are not supported"),
    ],
)
async def test_a_bad_frame_gets_an_error_and_the_connection_survives(
    service: ChatService, frame: str | bytes, reason: str
) -> None:
    async with signed_in(service, "alice") as alice:
        await alice.send(frame)
        error = await recv(alice)
        assert error["type"] == "error"
        assert error["reason"].startswith(reason)
        assert await join(alice, "lobby") == {"type": "joined", "room": "lobby", "user": "alice"}
    assert frame in service.frames_received


async def test_text_longer_than_the_limit_is_refused() -> None:
    chat = ChatService(max_text=10)
    await chat.start()
    try:
        async with signed_in(chat, "alice") as alice:
            await join(alice, "lobby")
            await send(alice, type="message", room="lobby", text="x" * 11)
            assert await recv(alice) == {
                "type": "error",
                "reason": "text longer than 10 characters",
            }
            await send(alice, type="dm", to="alice", text="x" * 11)
            assert (await recv(alice))["type"] == "error"
            await send(alice, type="message", room="lobby", text="x" * 10)
            assert (await recv(alice))["text"] == "x" * 10
    finally:
        await chat.stop()


async def test_a_frame_over_the_size_limit_closes_only_that_connection_with_1009() -> None:
    chat = ChatService(max_frame=1024)
    await chat.start()
    try:
        async with signed_in(chat, "alice") as alice, signed_in(chat, "bob") as bob:
            await join(alice, "lobby")
            await send(bob, type="message", room="lobby", text="y" * 2000)
            error = await closed(bob)
            assert isinstance(error, ConnectionClosedError)
            assert error.rcvd is not None
            assert error.rcvd.code == 1009
            await send(alice, type="message", room="lobby", text="unaffected")
            assert (await recv(alice))["text"] == "unaffected"
    finally:
        await chat.stop()


async def test_a_reader_too_slow_for_its_send_queue_is_closed_with_1013() -> None:
    chat = ChatService(send_queue=1)
    await chat.start()
    try:
        async with signed_in(chat, "alice") as alice:
            # The burst is read at once, so its errors are queued faster than sent.
            for _ in range(20):
                await alice.send("not json")
            error = await closed(alice)
            assert error.rcvd is not None
            assert (error.rcvd.code, error.rcvd.reason) == (1013, "send queue full")
            await eventually(lambda: chat.connections == 0)
    finally:
        await chat.stop()


# --- test aids -----------------------------------------------------------------


async def test_frames_received_keeps_the_raw_frames(service: ChatService) -> None:
    raw = '{ "type" : "join",  "room": "lobby" }'
    async with signed_in(service, "alice") as alice:
        await alice.send(raw)
        await recv(alice)
    assert list(service.frames_received) == [raw]


async def test_close_user_sends_the_code_and_reason_to_each_connection(
    service: ChatService,
) -> None:
    async with signed_in(service, "alice") as first, signed_in(service, "alice") as second:
        assert await service.close_user("alice", 4001, "policy says bye") == 2
        for ws in (first, second):
            error = await closed(ws)
            assert error.rcvd is not None
            assert (error.rcvd.code, error.rcvd.reason) == (4001, "policy says bye")
        assert service.connections == 0
    assert await service.close_user("nobody") == 0


async def test_stop_closes_clients_with_1001() -> None:
    chat = ChatService()
    await chat.start()
    async with signed_in(chat, "alice") as alice:
        await chat.stop()
        error = await closed(alice)
    assert error.rcvd is not None
    assert error.rcvd.code == 1001


# --- disconnects ---------------------------------------------------------------


async def test_a_users_last_disconnect_leaves_their_rooms(service: ChatService) -> None:
    async with signed_in(service, "alice") as alice:
        await join(alice, "lobby")
        async with signed_in(service, "bob") as bob, signed_in(service, "bob") as bob_again:
            await join(bob, "lobby")
            await recv(bob_again)  # bob joined, seen by both of bob's tabs
            assert await recv(alice) == {"type": "joined", "room": "lobby", "user": "bob"}
            await bob_again.close()
            await assert_nothing_pending(alice)  # bob still has a connection
        assert await recv(alice) == {"type": "left", "room": "lobby", "user": "bob"}
        assert service.connections == 1
        await send(alice, type="dm", to="bob", text="gone?")
        assert await recv(alice) == {"type": "error", "reason": "user not online: bob"}


# --- plain HTTP on the same port -----------------------------------------------


async def test_get_root_serves_the_browser_page(service: ChatService) -> None:
    status, headers, body = await http(service, get("/"))
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert int(headers["content-length"]) == len(body)
    page = body.decode()
    assert "<html" in page
    assert "chatguard.banner" in page
    assert "chatguard.hold" in page
    assert "chatguard.confirm" in page
    assert "chatguard.report" in page
    assert "location.host" in page
    assert not re.search(r"""(src|href)=["']?https?:""", page)  # self-contained


async def test_api_rooms_lists_rooms_and_members(service: ChatService) -> None:
    async with signed_in(service, "bob") as bob, signed_in(service, "alice") as alice:
        await join(bob, "lobby")
        await join(alice, "lobby")
        await join(alice, "books")
        status, headers, body = await http(service, get("/api/rooms"))
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {
        "rooms": [
            {"room": "books", "members": ["alice"]},
            {"room": "lobby", "members": ["alice", "bob"]},
        ]
    }
    _, _, body = await http(service, get("/api/rooms"))
    assert json.loads(body) == {"rooms": []}


async def test_api_echo_headers_returns_lower_cased_request_headers(service: ChatService) -> None:
    request = get("/api/echo-headers", "X-Forwarded-For: 10.0.0.7", "X-Repeat: a", "X-Repeat: b")
    status, _, body = await http(service, request)
    assert status == 200
    assert json.loads(body) == {
        "host": "chat.test",
        "x-forwarded-for": "10.0.0.7",
        "x-repeat": "a, b",
    }


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"hello": "world"}', "application/json"),
        (bytes(range(256)) * 4, "application/octet-stream"),
        (b"", "text/plain"),
    ],
)
async def test_post_api_echo_returns_the_body_and_content_type(
    service: ChatService, body: bytes, content_type: str
) -> None:
    request = (
        "POST /api/echo HTTP/1.1\r\nHost: chat.test\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    status, headers, echoed = await http(service, request)
    assert (status, headers["content-type"], echoed) == (200, content_type, body)


async def test_post_api_echo_waits_for_a_body_sent_in_pieces(service: ChatService) -> None:
    reader, writer = await asyncio.open_connection(service.host, service.port)
    writer.write(b"POST /api/echo HTTP/1.1\r\nHost: chat.test\r\nContent-Length: 10\r\n\r\n01234")
    await writer.drain()
    await asyncio.sleep(unit(0.05))  # let the service see the partial body
    writer.write(b"56789")
    async with asyncio.timeout(unit(2)):
        response = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(b"\r\n\r\n0123456789")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (get("/nowhere"), 404),
        (get("/ws"), 426),  # a GET to /ws without an upgrade
        (b"DELETE /api/rooms HTTP/1.1\r\nHost: chat.test\r\n\r\n", 405),
        (b"POST /api/rooms HTTP/1.1\r\nHost: chat.test\r\nContent-Length: 2\r\n\r\n{}", 404),
        (b"PUT /api/echo HTTP/1.1\r\nHost: chat.test\r\nContent-Length: 2\r\n\r\n{}", 405),
        (
            b"POST /api/echo HTTP/1.1\r\nHost: chat.test\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\n{}\r\n0\r\n\r\n",
            411,
        ),
        (b"POST /api/echo HTTP/1.1\r\nHost: chat.test\r\nContent-Length: 99999\r\n\r\n", 413),
        (b"POST /api/echo HTTP/1.1\r\nHost: chat.test\r\nContent-Length: ten\r\n\r\n", 400),
    ],
)
async def test_http_errors(service: ChatService, request_bytes: bytes, status: int) -> None:
    assert (await http(service, request_bytes))[0] == status
