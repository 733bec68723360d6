"""Speed bumps in a live chat: real clients, the real relay, the real example service."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import websockets

from chatguard.app import ChatGuard
from chatguard.events import Notice
from chatguard.following import message_key
from chatguard.relay.delivery import Directive
from tests.support.relay import GuardFactory, ws_url
from tests.support.timing import eventually, unit

Client = websockets.ClientConnection


async def recv(ws: Client, within: float = 3.0) -> dict[str, Any]:
    async with asyncio.timeout(unit(within)):
        frame = json.loads(await ws.recv())
    assert isinstance(frame, dict)
    return frame


async def recv_type(ws: Client, kind: str, within: float = 3.0) -> dict[str, Any]:
    """The next frame of type ``kind``, skipping others."""
    async with asyncio.timeout(unit(within)):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("type") == kind:
                assert isinstance(frame, dict)
                return frame


async def nothing_of(ws: Client, kind: str, within: float = 0.4) -> None:
    with pytest.raises(TimeoutError):
        await recv_type(ws, kind, within)


async def guarded(
    make_guard: GuardFactory, upstream: str, pack: tuple[Path, Path], **extra: Any
) -> ChatGuard:
    policies, banners = pack
    extra["banners"] = {"directory": str(banners), **extra.get("banners", {})}
    guard = await make_guard(upstream, policy={"directory": str(policies), "watch": False}, **extra)
    await asyncio.wait_for(guard.deliveries.ready.wait(), unit(3))
    return guard


async def connect(
    guard: ChatGuard, user: str, age: int | None = None, locale: str | None = None
) -> Client:
    query = f"/ws?user={user}" + (f"&age={age}" if age is not None else "")
    query += f"&locale={locale}" if locale else ""
    ws = await websockets.connect(ws_url(guard, query))
    assert (await recv(ws))["type"] == "welcome"
    return ws


async def dm(ws: Client, to: str, text: str) -> None:
    await ws.send(json.dumps({"type": "dm", "to": to, "text": text}))


async def test_a_child_is_warned_when_an_adult_asks_to_move_apps(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack)
    amy, bob = await connect(guard, "amy", 13), await connect(guard, "bob", 41)
    try:
        await eventually(lambda: len(guard.relay.sessions) == 2)
        await dm(bob, "amy", "add me on snap")
        # The banner travels beside the message, not through the upstream,
        # and waits for it: the message first, then the warning.
        first, second = await recv(amy), await recv(amy)
        assert (first["type"], first["text"]) == ("dm", "add me on snap")
        banner = second
        assert banner == {
            "type": "chatguard.banner",
            "banner": "off_platform_warning",
            "text": "Someone is asking you to chat somewhere else.",
            "severity": "warning",
            "room": None,
            "with": "bob",
        }
        # The adult is not told which rule fired.
        await nothing_of(bob, "chatguard.banner")
    finally:
        await amy.close()
        await bob.close()


async def test_the_same_words_between_adults_show_no_banner(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack)
    cat, dan = await connect(guard, "cat", 35), await connect(guard, "dan", 41)
    try:
        await dm(dan, "cat", "add me on snap")
        assert (await recv_type(cat, "dm"))["text"] == "add me on snap"
        await nothing_of(cat, "chatguard.banner")
    finally:
        await cat.close()
        await dan.close()


@pytest.mark.parametrize("how", ["confirm", "command"])
async def test_a_held_phone_number_is_sent_when_the_child_confirms(
    chat_service, make_guard: GuardFactory, test_pack, how: str
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack)
    amy, bob = await connect(guard, "amy", 13), await connect(guard, "bob", 14)
    try:
        await dm(amy, "bob", "call me 555 123 4567")
        hold = await recv_type(amy, "chatguard.hold")
        assert hold["banner"] == "pi_share_confirm"
        assert hold["text"] == "Are you sure you want to send this number?"
        assert hold["choices"] == ["send", "cancel"]
        await nothing_of(bob, "dm")
        if how == "confirm":
            await amy.send(
                json.dumps({"type": "chatguard.confirm", "hold": hold["hold"], "choice": "send"})
            )
        else:
            await dm(amy, "bob", "/send")
        assert (await recv_type(bob, "dm"))["text"] == "call me 555 123 4567"
        assert not any('"/send"' in str(f) for f in chat_service.frames_received)
        sent = guard.metrics.registry.get_sample_value("chatguard_holds_total", {"outcome": "sent"})
        assert sent == 1.0
    finally:
        await amy.close()
        await bob.close()


async def test_a_cancelled_hold_is_never_delivered(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack)
    amy, bob = await connect(guard, "amy", 13), await connect(guard, "bob", 14)
    try:
        await dm(amy, "bob", "my number is 555.123.4567")
        hold = await recv_type(amy, "chatguard.hold")
        await amy.send(
            json.dumps({"type": "chatguard.confirm", "hold": hold["hold"], "choice": "cancel"})
        )
        assert (await recv_type(amy, "chatguard.banner"))["text"] == "Your message was not sent."
        await nothing_of(bob, "dm")
        assert not any("555.123.4567" in str(f) for f in chat_service.frames_received)
    finally:
        await amy.close()
        await bob.close()


async def test_an_unanswered_hold_gets_the_default_outcome(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack, holds={"timeout": 0.2})
    amy, bob = await connect(guard, "amy", 13), await connect(guard, "bob", 14)
    try:
        await dm(amy, "bob", "555 123 4567")
        await recv_type(amy, "chatguard.hold")
        notice = await recv_type(amy, "chatguard.banner", within=4)
        assert notice["text"] == "Your message was not sent."
        await nothing_of(bob, "dm")
        expired = guard.metrics.registry.get_sample_value(
            "chatguard_holds_total", {"outcome": "expired_cancelled"}
        )
        assert expired == 1.0
    finally:
        await amy.close()
        await bob.close()


async def test_forged_confirmations_change_nothing(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack)
    amy, bob, eve = (
        await connect(guard, "amy", 13),
        await connect(guard, "bob", 14),
        await connect(guard, "eve", 30),
    )
    try:
        await dm(amy, "bob", "555 123 4567")
        hold = await recv_type(amy, "chatguard.hold")
        # Another session cannot release amy's hold, even knowing its id.
        await eve.send(
            json.dumps({"type": "chatguard.confirm", "hold": hold["hold"], "choice": "send"})
        )
        assert (await recv_type(eve, "chatguard.error"))["reason"] == "no such hold"
        await amy.send(
            json.dumps({"type": "chatguard.confirm", "hold": hold["hold"], "choice": "yes!"})
        )
        assert "send or cancel" in (await recv_type(amy, "chatguard.error"))["reason"]
        await nothing_of(bob, "dm")
        # The hold is still there for amy's real answer.
        await amy.send(
            json.dumps({"type": "chatguard.confirm", "hold": hold["hold"], "choice": "send"})
        )
        assert (await recv_type(bob, "dm"))["text"] == "555 123 4567"
    finally:
        for ws in (amy, bob, eve):
            await ws.close()


async def test_redaction_masks_exactly_the_number(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack)
    anon, bob = await connect(guard, "anon"), await connect(guard, "bob", 30)
    try:
        await dm(anon, "bob", "ring 555-123-4567 today")
        delivered = await recv_type(bob, "dm")
        assert delivered["text"] == "ring ████████████ today"
    finally:
        await anon.close()
        await bob.close()


async def test_blocked_messages_are_not_delivered_and_the_sender_is_told(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack)
    cat, dan = await connect(guard, "cat", 30), await connect(guard, "dan", 30)
    try:
        await dm(cat, "dan", "forbiddenword")
        assert (await recv_type(cat, "chatguard.banner"))[
            "text"
        ] == "Not delivered by the test pack."
        await nothing_of(dan, "dm")
    finally:
        await cat.close()
        await dan.close()


async def test_deterrence_capture_and_escalation(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack)
    amy, bob = await connect(guard, "amy", 12), await connect(guard, "bob", 45)
    try:
        await dm(bob, "amy", "send me a pic")
        banner = await recv_type(bob, "chatguard.banner")
        assert banner["banner"] == "deterrence_image_request"
        assert banner["severity"] == "critical"
        async with asyncio.timeout(unit(3)):
            while not (cases := await guard.cases.list()):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        [case] = cases
        escalation = case.escalations[0]
        assert (escalation.severity, escalation.sender, case.participants) == (
            "high",
            "bob",
            ("bob", "amy"),
        )
        assert case.conversation == "dm:amy:bob"
        assert len(guard.recorded.captures) == 1
        assert guard.recorded.captures[0].frame == json.dumps(
            {"type": "dm", "to": "amy", "text": "send me a pic"}
        )
    finally:
        await amy.close()
        await bob.close()


async def test_a_room_message_warns_the_minors_in_the_room(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack)
    amy, bob, cat = (
        await connect(guard, "amy", 13),
        await connect(guard, "bob", 40),
        await connect(guard, "cat", 30),
    )
    try:
        for ws in (amy, cat, bob):
            await ws.send(json.dumps({"type": "join", "room": "games"}))
            await recv_type(ws, "joined")
        await bob.send(
            json.dumps({"type": "message", "room": "games", "text": "text me on telegram"})
        )
        banner = await recv_type(amy, "chatguard.banner")
        assert (banner["banner"], banner["room"], banner["with"]) == (
            "off_platform_warning",
            "games",
            None,
        )
        await nothing_of(cat, "chatguard.banner")
    finally:
        for ws in (amy, bob, cat):
            await ws.close()


@pytest.mark.parametrize(
    "frame",
    [
        {"meta": {"type": "x"}, "type": "dm", "to": "amy", "text": "add me on snap"},
        '{"\\u0074ype":"dm","to":"amy","text":"add me on snap"}',
        '{"type":"x","type":"dm","to":"amy","text":"add me on snap"}',
    ],
)
async def test_frames_shaped_to_dodge_the_fast_path_are_still_assessed(
    chat_service, make_guard: GuardFactory, test_pack, frame: object
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack)
    amy, bob = await connect(guard, "amy", 13), await connect(guard, "bob", 41)
    try:
        await bob.send(frame if isinstance(frame, str) else json.dumps(frame))
        banner = await recv_type(amy, "chatguard.banner")
        assert banner["banner"] == "off_platform_warning"
    finally:
        await amy.close()
        await bob.close()


# -- ordering, restraint, locale ----------------------------------------------------------


async def test_recipient_banners_always_follow_their_message(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    # A recipient's banner reaches their session before the message (the store
    # is quicker than the chat service here): it must still be shown after it.
    guard = await guarded(
        make_guard,
        chat_service.url,
        test_pack,
        banners={"cooldown": 0, "per_minute": 0, "cap": 100},
    )
    amy, bob = await connect(guard, "amy", 13), await connect(guard, "bob", 41)
    try:
        await eventually(lambda: len(guard.relay.sessions) == 2)
        for i in range(5):
            await dm(bob, "amy", f"add me on snap {i}")
            first, second = await recv(amy), await recv(amy)
            assert (first["type"], first["text"]) == ("dm", f"add me on snap {i}")
            assert second["type"] == "chatguard.banner"
    finally:
        await amy.close()
        await bob.close()


async def test_a_warning_whose_message_never_arrives_is_shown_anyway(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack, banners={"recipient_wait": 0.3})
    amy = await connect(guard, "amy", 13)
    try:
        await eventually(lambda: len(guard.relay.sessions) == 1)
        key = message_key("dm:amy:bob", "bob", "never sent")
        await guard.deliveries.send(Directive("amy", notice=Notice("banner", "late"), after=key))
        await nothing_of(amy, "chatguard.banner", within=0.15)
        assert (await recv_type(amy, "chatguard.banner", within=3))["text"] == "late"
    finally:
        await amy.close()


async def test_caps_stop_repeated_banners(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await guarded(
        make_guard, chat_service.url, test_pack, banners={"cooldown": 0, "cap": 2}
    )
    amy, bob = await connect(guard, "amy", 13), await connect(guard, "bob", 41)
    try:
        await eventually(lambda: len(guard.relay.sessions) == 2)
        for i in range(4):
            await dm(bob, "amy", f"text me on telegram {i}")
            assert (await recv_type(amy, "dm"))["text"].endswith(str(i))
        await nothing_of(amy, "nothing", within=0.4)  # let every banner arrive
    finally:
        await amy.close()
        await bob.close()
    suppressed = guard.metrics.registry.get_sample_value(
        "chatguard_banners_suppressed_total", {"reason": "cap"}
    )
    assert suppressed == 2.0
    shown = guard.metrics.registry.get_sample_value(
        "chatguard_banner_impressions_total",
        {
            "banner": "off_platform_warning",
            "variant": "default",
            "audience": "recipients",
            "trigger": "signal:isolation",
        },
    )
    assert shown == 2.0


async def test_a_cooldown_holds_back_the_same_banner(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack)  # default cooldown 60 s
    amy, bob = await connect(guard, "amy", 13), await connect(guard, "bob", 41)
    try:
        await eventually(lambda: len(guard.relay.sessions) == 2)
        await dm(bob, "amy", "add me on snap")
        await recv_type(amy, "chatguard.banner")
        await dm(bob, "amy", "add me on kik")
        await recv_type(amy, "dm")
        await nothing_of(amy, "chatguard.banner")
    finally:
        await amy.close()
        await bob.close()


async def test_caps_hold_across_replicas_sharing_redis(
    chat_service, make_guard: GuardFactory, test_pack, redis_store_factory
) -> None:
    # amy is on one replica, bob on the other; the cooldown is counted in Redis,
    # so a second banner within it is held back whichever replica decides.
    first = await guarded(make_guard, chat_service.url, test_pack, store=redis_store_factory())
    second = await guarded(make_guard, chat_service.url, test_pack, store=redis_store_factory())
    amy, bob = await connect(first, "amy", 13), await connect(second, "bob", 41)
    dan = await connect(first, "dan", 40)
    try:
        await eventually(lambda: len(first.relay.sessions) == 2 and len(second.relay.sessions) == 1)
        await dm(bob, "amy", "add me on snap")
        assert (await recv_type(amy, "chatguard.banner"))["banner"] == "off_platform_warning"
        await dm(dan, "amy", "text me on telegram")  # decided on the first replica
        assert (await recv_type(amy, "dm"))["from"] == "dan"
        await nothing_of(amy, "chatguard.banner")
        suppressed = first.metrics.registry.get_sample_value(
            "chatguard_banners_suppressed_total", {"reason": "cooldown"}
        )
        assert suppressed == 1.0
    finally:
        for ws in (amy, bob, dan):
            await ws.close()
