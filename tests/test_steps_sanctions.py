"""Sanctions in the live chat: real relays, the real example chat service, real
websockets clients, and (for replicas) two relays on one real Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import websockets

from chatguard.app import ChatGuard
from chatguard.cases.model import Case, ModeratorAction
from chatguard.events import ChatEvent, EventKind, Identity, Side
from chatguard.metrics import Metrics
from chatguard.pipeline import Findings, SessionContext
from chatguard.steps.handoff import EscalationRequest
from chatguard.steps.sanctions import SanctionsStep
from chatguard.stores import MemoryStore, RedisStore, Sanction, SanctionKind
from tests.support.relay import GuardFactory, ws_url
from tests.support.timing import eventually, unit

Client = websockets.ClientConnection


async def recv_type(ws: Client, kind: str, within: float = 3.0) -> dict[str, Any]:
    async with asyncio.timeout(unit(within)):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("type") == kind:
                assert isinstance(frame, dict)
                return frame


async def nothing_of(ws: Client, kind: str, within: float = 0.4) -> None:
    with pytest.raises(TimeoutError):
        await recv_type(ws, kind, within)


async def connect(guard: ChatGuard, user: str, age: int | None = None) -> Client:
    query = f"/ws?user={user}" + (f"&age={age}" if age is not None else "")
    ws = await websockets.connect(ws_url(guard, query))
    assert (await recv_type(ws, "welcome"))["type"] == "welcome"
    return ws


async def closed(ws: Client) -> tuple[int | None, str | None]:
    async with asyncio.timeout(unit(3)):
        await ws.wait_closed()
    return ws.close_code, ws.close_reason


async def dm(ws: Client, to: str, text: str) -> None:
    await ws.send(json.dumps({"type": "dm", "to": to, "text": text}))


async def started(
    make_guard: GuardFactory, upstream: str, pack: tuple[Path, Path] | None = None, **extra: Any
) -> ChatGuard:
    if pack is not None:
        # The sanctions step runs with a policy pack (without one nothing escalates).
        extra["policy"] = {"directory": str(pack[0]), "watch": False}
        extra["banners"] = {"directory": str(pack[1])}
    guard = await make_guard(upstream, **extra)
    await asyncio.wait_for(guard.deliveries.ready.wait(), unit(3))
    return guard


async def claimed_case(guard: ChatGuard, sender: str, recipient: str) -> Case:
    """A case about ``sender`` (as the escalate step would open it), claimed by mod1."""
    case = await guard.cases.add(
        EscalationRequest(
            at=time.time(),
            conversation=f"dm:{min(sender, recipient)}:{max(sender, recipient)}",
            session_id="s",
            sender=sender,
            recipients=(recipient,),
            severity="high",
            category="grooming",
            risk=12.0,
            signals=("image_request",),
            reason="test",
        )
    )
    return await guard.cases.claim(case.id, "mod1")


async def test_a_muted_user_is_told_and_their_next_message_is_dropped(
    chat_service, make_guard: GuardFactory, test_pack: tuple[Path, Path]
) -> None:
    guard = await started(make_guard, chat_service.url, test_pack)
    amy, bob = await connect(guard, "amy", 12), await connect(guard, "bob", 45)
    try:
        await eventually(lambda: len(guard.relay.sessions) == 2)
        case = await claimed_case(guard, "bob", "amy")
        await guard.cases.act(
            case.id, "mod1", ModeratorAction("mute", duration=600, reason="image request")
        )
        notice = await recv_type(bob, "chatguard.sanction")
        assert notice["sanction"] == "mute"
        assert "image request" in notice["text"]
        await dm(bob, "amy", "are you there")
        again = await recv_type(bob, "chatguard.sanction")
        assert "muted" in again["text"]
        await nothing_of(amy, "dm")
        # Others still talk.
        await dm(amy, "bob", "bye")
        assert (await recv_type(bob, "dm"))["text"] == "bye"
        assert guard.metrics.sanctions_enforced.labels(kind="mute")._value.get() == 1
    finally:
        await amy.close()
        await bob.close()


async def test_kick_closes_the_session_with_the_reason(
    chat_service, make_guard: GuardFactory, test_pack: tuple[Path, Path]
) -> None:
    guard = await started(make_guard, chat_service.url, test_pack)
    amy, bob = await connect(guard, "amy", 12), await connect(guard, "bob", 45)
    try:
        await eventually(lambda: len(guard.relay.sessions) == 2)
        case = await claimed_case(guard, "bob", "amy")
        await guard.cases.act(case.id, "mod1", ModeratorAction("kick", reason="cool off"))
        assert await closed(bob) == (1008, "kicked by a moderator: cool off")
        # A kick is not a ban: bob may come back, and amy was never touched.
        bob = await connect(guard, "bob", 45)
        await dm(amy, "bob", "hi")
        assert (await recv_type(bob, "dm"))["text"] == "hi"
    finally:
        await amy.close()
        await bob.close()


async def test_two_relays_on_one_redis_share_the_queue_and_a_ban(
    chat_service,
    make_guard: GuardFactory,
    test_pack: tuple[Path, Path],
    redis_store_factory: Callable[..., RedisStore],
) -> None:
    # Each replica has its own connection to one Redis, under one key prefix.
    one = await started(make_guard, chat_service.url, test_pack, store=redis_store_factory())
    two = await started(make_guard, chat_service.url, test_pack, store=redis_store_factory())
    amy, bob = await connect(one, "amy", 12), await connect(one, "bob", 45)
    cat, dan = await connect(two, "cat", 12), await connect(two, "dan", 40)
    try:
        # Real detections on both replicas feed one queue.
        await dm(bob, "amy", "send me a pic")
        await dm(dan, "cat", "send me a pic")

        async def both_listed() -> list[Case]:
            while len(cases := await one.cases.list()) < 2:  # noqa: ASYNC110 - polling the store
                await asyncio.sleep(0.02)
            return cases

        async with asyncio.timeout(unit(5)):
            cases = await both_listed()
        assert {c.subject for c in cases} == {"bob", "dan"}
        assert [c.id for c in await two.cases.list()] == [c.id for c in cases]

        # A moderator on replica two bans bob, whose session is on replica one.
        bobs = next(c for c in cases if c.subject == "bob")
        await two.cases.claim(bobs.id, "mod1")
        with pytest.raises(Exception, match="another moderator"):
            await one.cases.claim(bobs.id, "mod2")
        await two.cases.act(bobs.id, "mod1", ModeratorAction("ban", reason="enticement"))
        code, reason = await closed(bob)
        assert code == 1008
        assert reason is not None
        assert reason.startswith("banned permanently")

        # Reconnects are refused on either replica, once the upstream attests who it is.
        for guard in (one, two):
            again = await websockets.connect(ws_url(guard, "/ws?user=bob&age=45"))
            assert (await closed(again))[0] == 1008
        # dan, on replica two and not banned, still chats.
        await dm(dan, "cat", "hello")
        async with asyncio.timeout(unit(3)):
            while (await recv_type(cat, "dm"))["text"] != "hello":
                pass
    finally:
        for ws in (amy, bob, cat, dan):
            await ws.close()


async def test_a_banned_gateway_identity_is_refused_before_the_upstream(
    chat_service, make_guard: GuardFactory
) -> None:
    guard = await started(
        make_guard,
        chat_service.url,
        identity={"welcome": False, "header": {"user": "X-User"}},
    )
    case = await claimed_case(guard, "eve", "amy")
    await guard.cases.act(case.id, "mod1", ModeratorAction("ban", duration=3600, reason="x"))
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(
            ws_url(guard, "/ws?user=eve"), additional_headers={"X-User": "eve"}
        )
    assert refused.value.response.status_code == 403
    assert b"banned until" in refused.value.response.body
    assert guard.metrics.connections_refused.labels(reason="sanctioned")._value.get() == 1
    # Someone else behind the same gateway connects as usual.
    ok = await websockets.connect(
        ws_url(guard, "/ws?user=fay"), additional_headers={"X-User": "fay"}
    )
    await ok.close()


async def test_the_step_fails_open_when_the_store_is_down() -> None:
    store = MemoryStore()
    metrics = Metrics()
    step = SanctionsStep(store, metrics)
    await store.close()
    session = SessionContext("s", "peer", 0.0, identity=Identity("bob", "bob"))
    event = ChatEvent(EventKind.DIRECT, Side.CLIENT, "{}", sender="bob", recipients=("amy",))
    verdict = await step(event, session, Findings())
    assert verdict.forward
    assert metrics.sanctions_enforced.labels(kind="unchecked")._value.get() == 1


async def test_a_ban_whose_directive_was_lost_still_ends_the_next_message(
    chat_service, make_guard: GuardFactory, test_pack: tuple[Path, Path]
) -> None:
    guard = await started(make_guard, chat_service.url, test_pack)
    amy, bob = await connect(guard, "amy", 12), await connect(guard, "bob", 45)
    try:
        await eventually(lambda: len(guard.relay.sessions) == 2)
        # Written to the store only: as if this replica missed the close directive.
        await guard.store.put_sanction(
            Sanction("bob", SanctionKind.BAN, "enticement", None, "mod1"), time.time()
        )
        await dm(bob, "amy", "still here?")
        assert await closed(bob) == (1008, "banned permanently: enticement")
        await nothing_of(amy, "dm")
        assert guard.metrics.sanctions_enforced.labels(kind="ban")._value.get() == 1
    finally:
        await amy.close()
        await bob.close()
