"""The scripted bots, run against the real example chat service.

A watcher client in the lobby sees what the bots do; the service's ``close_user``
test aid drops a bot to exercise reconnection.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from chatguard_examples.bots import BOTS, SCRIPT, run_bots
from chatguard_examples.chat_service import ChatService
from tests.support.timing import unit


@pytest.fixture
async def service() -> AsyncIterator[ChatService]:
    chat = ChatService()
    await chat.start()
    try:
        yield chat
    finally:
        await chat.stop()


@pytest.fixture
async def watcher(service: ChatService) -> AsyncIterator[ClientConnection]:
    async with connect(f"{service.url}/ws?user=watcher", proxy=None) as ws:
        await ws.recv()  # welcome
        await ws.send(json.dumps({"type": "join", "room": "lobby"}))
        await ws.recv()  # joined
        yield ws


async def wait_for(ws: ClientConnection, matches: Callable[[dict[str, Any]], bool]) -> None:
    async with asyncio.timeout(unit(3)):
        while not matches(json.loads(await ws.recv())):
            pass


def is_joined(user: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame["type"] == "joined" and frame["user"] == user


def is_left(user: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame["type"] == "left" and frame["user"] == user


def all_seen(kind: str, *users: str) -> Callable[[dict[str, Any]], bool]:
    """True once ``kind`` frames about each of ``users`` have gone by, in any order."""
    seen: set[str] = set()

    def matches(frame: dict[str, Any]) -> bool:
        if frame["type"] == kind:
            seen.add(frame["user"])
        return seen >= set(users)

    return matches


def is_message_from(user: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame["type"] == "message" and frame["from"] == user


async def stop_bots(stop: asyncio.Event, bots: asyncio.Task[None]) -> None:
    stop.set()
    async with asyncio.timeout(unit(2)):
        await bots


def test_the_script_alternates_between_the_two_bots() -> None:
    speakers = [bot for bot, _ in SCRIPT]
    assert {bot.name: bot.age for bot in BOTS} == {"maya": 13, "sam": 34}
    assert all(a != b for a, b in zip(speakers, speakers[1:] + speakers[:1], strict=True))


async def test_bots_join_the_lobby_and_talk(
    service: ChatService, watcher: ClientConnection
) -> None:
    stop = asyncio.Event()
    bots = asyncio.create_task(
        run_bots(service.url, stop=stop, interval=unit(0.02), rng=random.Random(1))
    )
    try:
        seen: list[dict[str, Any]] = []

        def conversation_heard(frame: dict[str, Any]) -> bool:
            seen.append(frame)
            joined = {f["user"] for f in seen if f["type"] == "joined"}
            spoke = {f["from"] for f in seen if f["type"] == "message"}
            return joined == spoke == {"maya", "sam"}

        await wait_for(watcher, conversation_heard)
        texts = [f["text"] for f in seen if f["type"] == "message"]
        assert texts == [text for _, text in SCRIPT[: len(texts)]]
    finally:
        await stop_bots(stop, bots)
    await wait_for(watcher, all_seen("left", "maya", "sam"))
    assert service.connections == 1  # only the watcher


async def test_a_dropped_bot_reconnects_rejoins_and_resumes(
    service: ChatService, watcher: ClientConnection
) -> None:
    stop = asyncio.Event()
    bots = asyncio.create_task(
        run_bots(service.url, stop=stop, interval=unit(0.02), rng=random.Random(2))
    )
    try:
        await wait_for(watcher, is_message_from("maya"))
        await service.close_user("maya", 1012, "service restart")
        await wait_for(watcher, is_left("maya"))
        await wait_for(watcher, is_joined("maya"))
        await wait_for(watcher, is_message_from("maya"))
    finally:
        await stop_bots(stop, bots)


async def test_bots_join_every_given_room(service: ChatService) -> None:
    stop = asyncio.Event()
    async with connect(f"{service.url}/ws?user=gamer", proxy=None) as gamer:
        await gamer.recv()  # welcome
        await gamer.send(json.dumps({"type": "join", "room": "games"}))
        await gamer.recv()  # joined
        bots = asyncio.create_task(
            run_bots(service.url, ("lobby", "games"), stop=stop, interval=unit(10))
        )
        try:
            await wait_for(gamer, all_seen("joined", "maya", "sam"))
        finally:
            await stop_bots(stop, bots)


async def test_bots_stop_promptly_while_the_service_is_unreachable() -> None:
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = asyncio.Event()
    bots = asyncio.create_task(run_bots(f"ws://127.0.0.1:{port}", stop=stop, interval=unit(0.02)))
    await asyncio.sleep(unit(0.3))  # long enough to fail and back off a few times
    assert not bots.done()
    await stop_bots(stop, bots)
