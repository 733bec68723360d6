"""Admin endpoints: health, readiness against real dependencies, metric values."""

from __future__ import annotations

import json

import aiohttp
import websockets

from chatguard.stores import RedisStore
from tests.support.net import free_port
from tests.support.probe import ProbeUpstream
from tests.support.relay import GuardFactory, ws_url
from tests.support.timing import eventually, unit


async def get(url: str) -> tuple[int, str]:
    timeout = aiohttp.ClientTimeout(total=unit(5))
    async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as response:
        return response.status, await response.text()


async def test_healthz_and_readyz(probe: ProbeUpstream, make_guard: GuardFactory) -> None:
    guard = await make_guard(probe.url)
    assert await get(guard.admin_url + "/healthz") == (200, '{"status": "ok"}')
    status, body = await get(guard.admin_url + "/readyz")
    assert status == 200
    assert json.loads(body) == {"status": "ready", "checks": {"upstream": True, "store": True}}


async def test_readyz_fails_when_the_upstream_is_down(make_guard: GuardFactory) -> None:
    guard = await make_guard(f"ws://127.0.0.1:{free_port()}")
    status, body = await get(guard.admin_url + "/readyz")
    assert status == 503
    assert json.loads(body)["checks"]["upstream"] is False


async def test_readyz_fails_when_the_store_is_down(
    probe: ProbeUpstream, make_guard: GuardFactory
) -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    try:
        guard = await make_guard(probe.url, store=store)
        status, body = await get(guard.admin_url + "/readyz")
        assert status == 503
        assert json.loads(body)["checks"] == {"upstream": True, "store": False}
    finally:
        await store.close()


async def test_metrics_count_what_happened(chat_service, make_guard: GuardFactory) -> None:
    guard = await make_guard(chat_service.url)
    async with websockets.connect(ws_url(guard, "/ws?user=mo")) as mo:
        await mo.recv()  # welcome
        await mo.send(json.dumps({"type": "join", "room": "r"}))
        await mo.recv()  # joined
        await mo.send(json.dumps({"type": "message", "room": "r", "text": "hello"}))
        await mo.recv()  # the message back
        _, text = await get(guard.admin_url + "/metrics")
        assert "chatguard_connections_open 1.0" in text
    await eventually(lambda: guard.relay.sessions == set())
    _, text = await get(guard.admin_url + "/metrics")
    lines = set(text.splitlines())
    expected = {
        "chatguard_connections_open 0.0",
        "chatguard_connections_total 1.0",
        'chatguard_frames_total{origin="client"} 2.0',
        'chatguard_frames_total{origin="upstream"} 3.0',
        'chatguard_chat_events_total{kind="join",origin="client"} 1.0',
        'chatguard_chat_events_total{kind="join",origin="upstream"} 1.0',
        'chatguard_chat_events_total{kind="message",origin="client"} 1.0',
        'chatguard_chat_events_total{kind="message",origin="upstream"} 1.0',
        'chatguard_session_closes_total{cause="client_closed"} 1.0',
        # The pass-through pipeline acts on none of these events, so none of
        # them was parsed or run through it (they are still counted above).
        "chatguard_pipeline_seconds_count 0.0",
    }
    assert expected <= lines, sorted(expected - lines)
    sent = guard.metrics.registry.get_sample_value("chatguard_bytes_total", {"origin": "client"})
    assert sent is not None
    assert sent > 50
