"""The client-facing listener: pairing, negotiation, headers, limits, HTTP proxying."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import jwt
import pytest
import websockets
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chatguard.events import PASS, ChatEvent, Side, Verdict
from chatguard.pipeline import Findings, SessionContext
from tests.support.net import free_port
from tests.support.probe import ProbeUpstream
from tests.support.relay import GuardFactory, ws_url
from tests.support.timing import eventually, unit


def sample(guard, name: str, labels: dict[str, str] | None = None) -> float | None:
    value: float | None = guard.metrics.registry.get_sample_value(name, labels or {})
    return value


# -- subprotocols, headers, extensions ---------------------------------------------


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["chat.v1"], "chat.v1"),
        (["chat.v1", "chat.v2"], "chat.v2"),  # the upstream's preference wins
        (["other"], None),
        ([], None),
    ],
)
async def test_subprotocol_is_negotiated_end_to_end(
    probe: ProbeUpstream, make_guard: GuardFactory, offered: list[str], chosen: str | None
) -> None:
    guard = await make_guard(probe.url)
    async with websockets.connect(ws_url(guard), subprotocols=offered or None) as client:
        upstream = await probe.next_connection(unit(3))
        assert client.subprotocol == chosen
        assert upstream.ws.subprotocol == chosen
        if offered:
            forwarded = upstream.headers["Sec-WebSocket-Protocol"].split(",")
            assert [p.strip() for p in forwarded] == offered


async def test_end_to_end_headers_pass_and_hop_by_hop_do_not(
    probe: ProbeUpstream, make_guard: GuardFactory
) -> None:
    guard = await make_guard(probe.url)
    headers = {
        "Cookie": "session=abc",
        "Authorization": "Bearer opaque",
        "Origin": "https://chat.example",
        "X-Custom": "kept",
        "X-Forwarded-For": "203.0.113.9",
        "Keep-Alive": "timeout=5",
        "Proxy-Authorization": "Basic secret",
        "X-Hop": "named in Connection",
    }
    async with websockets.connect(
        ws_url(guard, "/ws/path?room=a&x=1"),
        additional_headers=headers,
        user_agent_header="chat-client/9",
    ) as client:
        upstream = await probe.next_connection(unit(3))
        got = upstream.headers
        assert upstream.path == "/ws/path?room=a&x=1"
        for name in ("Cookie", "Authorization", "Origin", "X-Custom"):
            assert got[name] == headers[name]
        assert got["User-Agent"] == "chat-client/9"
        assert got["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
        assert got["X-Forwarded-Proto"] == "http"
        assert got["X-Forwarded-Host"] == guard.relay_url.removeprefix("http://")
        assert "Keep-Alive" not in got
        assert "Proxy-Authorization" not in got
        # Each leg has its own key.
        assert got["Sec-WebSocket-Key"] != client.request.headers["Sec-WebSocket-Key"]


async def test_connection_named_headers_are_hop_by_hop(
    probe: ProbeUpstream, make_guard: GuardFactory
) -> None:
    guard = await make_guard(probe.url)
    reader, writer = await asyncio.open_connection(*guard.relay_address)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade, X-Hop\r\nX-Hop: secret\r\nX-Kept: yes\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    async with asyncio.timeout(unit(3)):
        status = await reader.readline()
    assert b" 101 " in status
    upstream = await probe.next_connection(unit(3))
    assert upstream.headers["X-Kept"] == "yes"
    assert "X-Hop" not in upstream.headers
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_permessage_deflate_follows_the_client(
    probe: ProbeUpstream, make_guard: GuardFactory, compression: str | None
) -> None:
    guard = await make_guard(probe.url)
    async with websockets.connect(ws_url(guard), compression=compression) as client:
        upstream = await probe.next_connection(unit(3))
        client_ext = [e.name for e in client.protocol.extensions]
        upstream_ext = [e.name for e in upstream.ws.protocol.extensions]
        expected = ["permessage-deflate"] if compression else []
        assert client_ext == expected
        assert upstream_ext == expected
        big = "compressible " * 10000
        await client.send(big)
        async with asyncio.timeout(unit(3)):
            assert await client.recv() == big


# -- the upstream failing ------------------------------------------------------------


async def test_upstream_refusing_gets_the_client_1014(make_guard: GuardFactory) -> None:
    guard = await make_guard(f"ws://127.0.0.1:{free_port()}")
    async with websockets.connect(ws_url(guard)) as client:
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(unit(3)):
                await client.recv()
    assert client.close_code == 1014
    assert client.close_reason == "upstream unavailable"
    labels = {"reason": "refused"}
    assert sample(guard, "chatguard_upstream_connect_failures_total", labels) == 1.0


async def test_upstream_not_answering_times_out_with_1014(make_guard: GuardFactory) -> None:
    # A listening socket that never completes a WebSocket handshake.
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        guard = await make_guard(f"ws://127.0.0.1:{port}", upstream={"connect_timeout": 0.3})
        async with websockets.connect(ws_url(guard)) as client:
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(unit(3)):
                    await client.recv()
        assert client.close_code == 1014
        assert sample(guard, "chatguard_upstream_connect_failures_total", {"reason": "timeout"})
    finally:
        for writer in held:
            writer.close()
        silent.close()
        await silent.wait_closed()


async def test_upstream_handshake_status_is_passed_on(
    probe: ProbeUpstream, make_guard: GuardFactory
) -> None:
    guard = await make_guard(probe.url)
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(ws_url(guard, "/forbidden"))
    assert refused.value.response.status_code == 403


# -- limits ---------------------------------------------------------------------


async def test_connections_over_the_limit_get_503(
    probe: ProbeUpstream, make_guard: GuardFactory
) -> None:
    guard = await make_guard(probe.url, limits={"max_connections": 2})
    async with websockets.connect(ws_url(guard)), websockets.connect(ws_url(guard)):
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(ws_url(guard))
        assert refused.value.response.status_code == 503
        assert sample(guard, "chatguard_connections_refused_total", {"reason": "limit"}) == 1.0
        assert sample(guard, "chatguard_connections_open") == 2.0


async def test_idle_sessions_are_closed_with_1001(
    probe: ProbeUpstream, make_guard: GuardFactory
) -> None:
    guard = await make_guard(probe.url, limits={"idle_timeout": 0.3})
    async with websockets.connect(ws_url(guard), ping_interval=None) as client:
        upstream = await probe.next_connection(unit(3))
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(unit(5)):
                await client.recv()
        assert (client.close_code, client.close_reason) == (1001, "idle timeout")
        async with asyncio.timeout(unit(3)):
            await upstream.closed.wait()
        assert upstream.close_code == 1001


async def test_drain_closes_sessions_with_1001_and_refuses_new_ones(
    probe: ProbeUpstream, make_guard: GuardFactory
) -> None:
    guard = await make_guard(probe.url)
    client = await websockets.connect(ws_url(guard))
    await probe.next_connection(unit(3))
    started = time.monotonic()
    assert await guard.relay.drain(unit(3))
    assert time.monotonic() - started < unit(3)
    assert client.close_code == 1001
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(ws_url(guard))
    assert refused.value.response.status_code == 503


# -- identity ---------------------------------------------------------------------


class RecordSenders:
    """A test pipeline step that records who each client event came from."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, dict[str, str]]] = []

    async def __call__(
        self, event: ChatEvent, session: SessionContext, findings: Findings
    ) -> Verdict:
        if event.origin is Side.CLIENT:
            attrs = dict(session.identity.attrs) if session.identity else {}
            self.seen.append((event.sender, attrs))
        return PASS


async def test_identity_from_the_welcome_frame(chat_service, make_guard: GuardFactory) -> None:
    steps = RecordSenders()
    guard = await make_guard(chat_service.url, steps={"policy": steps})
    async with websockets.connect(ws_url(guard, "/ws?user=zoe&age=14")) as zoe:
        await zoe.recv()
        await zoe.send(json.dumps({"type": "join", "room": "r"}))
        await zoe.recv()
    assert steps.seen == [("zoe", {"age_band": "minor"})]


async def test_identity_from_a_trusted_gateway_header(
    chat_service, make_guard: GuardFactory
) -> None:
    steps = RecordSenders()
    guard = await make_guard(
        chat_service.url,
        steps={"policy": steps},
        identity={"header": {"user": "X-Auth-User", "attrs": {"age_band": "X-Auth-Age"}}},
    )
    headers = {"X-Auth-User": "gw-user-7", "X-Auth-Age": "adult"}
    async with websockets.connect(
        ws_url(guard, "/ws?user=claimed&age=10"), additional_headers=headers
    ) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "join", "room": "r"}))
        await ws.recv()
    # The gateway's word stands over what the upstream's welcome says.
    assert steps.seen == [("gw-user-7", {"age_band": "adult"})]


async def test_identity_from_a_verified_jwt(chat_service, make_guard: GuardFactory) -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    steps = RecordSenders()
    guard = await make_guard(
        chat_service.url,
        steps={"policy": steps},
        identity={
            "jwt": {
                "enabled": True,
                "key": public.decode(),
                "algorithms": ["EdDSA"],
                "audience": "chat",
                "query": "token",
                "attr_claims": {"age_band": "age_band"},
            }
        },
    )
    now = int(time.time())
    claims = {"sub": "u-42", "aud": "chat", "exp": now + 60, "age_band": "minor"}
    good = jwt.encode(claims, key, algorithm="EdDSA")
    async with websockets.connect(
        ws_url(guard, "/ws?user=u42"), additional_headers={"Authorization": f"Bearer {good}"}
    ) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "join", "room": "r"}))
        await ws.recv()
    assert steps.seen == [("u-42", {"age_band": "minor"})]

    expired = jwt.encode({**claims, "exp": now - 3600}, key, algorithm="EdDSA")
    forged = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA")
    for token in (expired, forged, "not-a-token"):
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(ws_url(guard, f"/ws?user=x&token={token}"))
        assert refused.value.response.status_code == 401
    assert sample(guard, "chatguard_connections_refused_total", {"reason": "identity"}) == 3.0


# -- plain HTTP -------------------------------------------------------------------


async def test_http_requests_are_reverse_proxied(chat_service, make_guard: GuardFactory) -> None:
    guard = await make_guard(chat_service.url)
    async with aiohttp.ClientSession() as http:
        async with http.get(guard.relay_url + "/") as page:
            assert page.status == 200
            assert "<html" in (await page.text()).lower()
        async with http.get(guard.relay_url + "/api/rooms") as rooms:
            assert await rooms.json() == {"rooms": []}
        async with http.get(
            guard.relay_url + "/api/echo-headers",
            headers={"Cookie": "a=b", "X-Custom": "c", "Proxy-Authorization": "no"},
        ) as echoed:
            seen = await echoed.json()
        assert seen["cookie"] == "a=b"
        assert seen["x-custom"] == "c"
        assert seen["x-forwarded-for"] == "127.0.0.1"
        assert "proxy-authorization" not in seen


async def test_http_bodies_are_streamed_both_ways(chat_service, make_guard: GuardFactory) -> None:
    guard = await make_guard(chat_service.url)
    payload = bytes(range(256)) * 200  # 51 kB, under the example service's limit

    async def chunks():
        for i in range(0, len(payload), 4096):
            yield payload[i : i + 4096]

    async with (
        aiohttp.ClientSession() as http,
        http.post(
            guard.relay_url + "/api/echo",
            data=chunks(),
            # The example service needs a length; the body still streams.
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(len(payload)),
            },
        ) as echoed,
    ):
        assert echoed.status == 200
        assert echoed.headers["Content-Type"] == "application/octet-stream"
        assert await echoed.read() == payload


async def test_http_body_over_the_limit_gets_413(chat_service, make_guard: GuardFactory) -> None:
    guard = await make_guard(chat_service.url, limits={"max_http_body_bytes": 1000})
    async with aiohttp.ClientSession() as http:
        async with http.post(guard.relay_url + "/api/echo", data=b"x" * 2000) as refused:
            assert refused.status == 413

        async def chunked():
            for _ in range(4):
                yield b"y" * 500

        async with http.post(guard.relay_url + "/api/echo", data=chunked()) as refused:
            assert refused.status == 413


async def test_http_to_a_dead_upstream_gets_502(make_guard: GuardFactory) -> None:
    guard = await make_guard(f"ws://127.0.0.1:{free_port()}")
    async with aiohttp.ClientSession() as http, http.get(guard.relay_url + "/") as response:
        assert response.status == 502
    assert sample(guard, "chatguard_http_requests_total", {"status": "5xx"}) == 1.0


async def test_http_passthrough_can_be_turned_off(chat_service, make_guard: GuardFactory) -> None:
    guard = await make_guard(chat_service.url, upstream={"http": False})
    async with aiohttp.ClientSession() as http, http.get(guard.relay_url + "/") as response:
        assert response.status == 404


async def test_the_client_cannot_choose_the_upstream(
    probe: ProbeUpstream, make_guard: GuardFactory
) -> None:
    """Absolute-form targets and odd Host headers still go to the configured upstream."""
    guard = await make_guard(probe.url)
    reader, writer = await asyncio.open_connection(*guard.relay_address)
    writer.write(
        b"GET http://evil.example:81/ws HTTP/1.1\r\nHost: evil.example:81\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    async with asyncio.timeout(unit(3)):
        status = await reader.readline()
    assert b" 101 " in status
    upstream = await probe.next_connection(unit(3))
    assert upstream.path == "/ws"
    writer.close()
    await writer.wait_closed()
    await eventually(lambda: len(probe.connections) == 1)
