"""Directives reach a user's live session on whichever replica holds it."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from chatguard.events import Notice, Severity
from chatguard.relay.delivery import Directive
from tests.support.relay import GuardFactory, ws_url
from tests.support.timing import eventually, unit


async def welcome(ws: websockets.ClientConnection) -> None:
    async with asyncio.timeout(unit(3)):
        assert json.loads(await ws.recv())["type"] == "welcome"


def banner(text: str) -> Notice:
    return Notice("banner", text, banner_id="b-1", severity=Severity.WARNING, room="lobby")


async def test_a_notice_reaches_every_session_of_that_user_only(
    chat_service, make_guard: GuardFactory
) -> None:
    guard = await make_guard(chat_service.url)
    await asyncio.wait_for(guard.deliveries.ready.wait(), unit(3))
    async with (
        websockets.connect(ws_url(guard, "/ws?user=ana")) as ana1,
        websockets.connect(ws_url(guard, "/ws?user=ana")) as ana2,
        websockets.connect(ws_url(guard, "/ws?user=ben")) as ben,
    ):
        for ws in (ana1, ana2, ben):
            await welcome(ws)
        assert await guard.deliveries.send(Directive("ana", notice=banner("Take care")))
        for ws in (ana1, ana2):
            async with asyncio.timeout(unit(3)):
                frame = json.loads(await ws.recv())
            assert frame == {
                "type": "chatguard.banner",
                "banner": "b-1",
                "text": "Take care",
                "severity": "warning",
                "room": "lobby",
                "with": None,
            }
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(unit(0.3)):
                await ben.recv()


async def test_a_close_directive_ends_the_session_with_its_code(
    chat_service, make_guard: GuardFactory
) -> None:
    guard = await make_guard(chat_service.url)
    await asyncio.wait_for(guard.deliveries.ready.wait(), unit(3))
    async with websockets.connect(ws_url(guard, "/ws?user=cy")) as cy:
        await welcome(cy)
        await guard.deliveries.send(Directive("cy", close_code=4003, close_reason="removed"))
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(unit(3)):
                await cy.recv()
    assert (cy.close_code, cy.close_reason) == (4003, "removed")


async def test_directives_cross_replicas_through_redis(
    chat_service, make_guard: GuardFactory, redis_store_factory
) -> None:
    first = await make_guard(chat_service.url, store=redis_store_factory())
    second = await make_guard(chat_service.url, store=redis_store_factory())
    for guard in (first, second):
        await asyncio.wait_for(guard.deliveries.ready.wait(), unit(3))
    async with websockets.connect(ws_url(second, "/ws?user=dee")) as dee:
        await welcome(dee)
        assert await first.deliveries.send(Directive("dee", notice=banner("From afar")))
        async with asyncio.timeout(unit(3)):
            assert json.loads(await dee.recv())["text"] == "From afar"


async def test_malformed_directives_are_counted_and_ignored(
    chat_service, make_guard: GuardFactory
) -> None:
    guard = await make_guard(chat_service.url)
    await asyncio.wait_for(guard.deliveries.ready.wait(), unit(3))
    for bad in (b"not json", b"[]", b'{"user": 5}', b'{"user": "x", "notice": {"kind": "b"}}'):
        await guard.store.publish("deliver", bad)
    await eventually(
        lambda: (
            guard.metrics.registry.get_sample_value(
                "chatguard_deliveries_total", {"outcome": "malformed"}
            )
            == 4.0
        )
    )


def test_directives_round_trip_through_json() -> None:
    notice = Notice("hold", "Sure?", banner_id="b", extra={"hold": "h-1", "choices": ["a"]})
    for directive in (
        Directive("u", notice=notice),
        Directive("u", close_code=4000, close_reason="bye"),
    ):
        assert Directive.from_json(directive.to_json()) == directive
