"""Room-entry and first-contact banners through the real relay."""

from __future__ import annotations

import json

from tests.support.relay import GuardFactory
from tests.support.timing import eventually
from tests.test_steps_speedbumps import connect, dm, guarded, nothing_of, recv, recv_type

# -- room entry and first contact ---------------------------------------------------------

EVENT_BANNERS = """\
banners:
  - id: entry
    purpose: test
    trigger: {events: [room_entry]}
    text: {en: "Welcome to {room}. Type {report} to report."}
    adult_text: {en: "Welcome to {room}. Chats are recorded."}
  - id: new_contact
    purpose: test
    ages: [minor, likely_minor]
    trigger: {events: [first_contact]}
    text: {en: "First message from {other}."}
  - id: thanks
    purpose: test
    trigger: {events: [report]}
    text: {en: "Thanks, a moderator will look."}
"""


async def test_room_entry_notices_show_once_per_session(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    (test_pack[1] / "events.yaml").write_text(EVENT_BANNERS, encoding="utf-8")
    guard = await guarded(make_guard, chat_service.url, test_pack)
    amy, bob = await connect(guard, "amy", 13), await connect(guard, "bob", 41)
    try:
        await amy.send(json.dumps({"type": "join", "room": "games"}))
        await recv_type(amy, "joined")
        notice = await recv_type(amy, "chatguard.banner")
        assert notice["text"] == "Welcome to games. Type /report to report."
        assert (notice["banner"], notice["room"]) == ("entry", "games")
        await bob.send(json.dumps({"type": "join", "room": "games"}))
        assert (await recv_type(bob, "chatguard.banner"))["text"] == (
            "Welcome to games. Chats are recorded."
        )
        # Amy saw bob join: not her entry. Leaving and coming back: not again.
        await amy.send(json.dumps({"type": "leave", "room": "games"}))
        await amy.send(json.dumps({"type": "join", "room": "games"}))
        await nothing_of(amy, "chatguard.banner")
        # A new session is told again.
        await amy.close()
        amy = await connect(guard, "amy", 13)
        await amy.send(json.dumps({"type": "join", "room": "games"}))
        await recv_type(amy, "chatguard.banner")
    finally:
        await amy.close()
        await bob.close()


async def test_a_child_is_told_about_a_first_message_from_a_new_contact(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    (test_pack[1] / "events.yaml").write_text(EVENT_BANNERS, encoding="utf-8")
    guard = await guarded(make_guard, chat_service.url, test_pack)
    amy, bob, cat = (
        await connect(guard, "amy", 13),
        await connect(guard, "bob", 41),
        await connect(guard, "cat", 30),
    )
    try:
        await eventually(lambda: len(guard.relay.sessions) == 3)
        await dm(bob, "amy", "hello there")
        first, second = await recv(amy), await recv(amy)
        assert first["type"] == "dm"
        assert (second["banner"], second["text"], second["with"]) == (
            "new_contact",
            "First message from bob.",
            "bob",
        )
        await dm(bob, "amy", "hello again")
        await recv_type(amy, "dm")
        await dm(amy, "bob", "hi")  # the same pair, either way round
        await nothing_of(amy, "chatguard.banner")
        # Adults get no first-contact banner (ages: minors only).
        await dm(bob, "cat", "hello")
        await recv_type(cat, "dm")
        await nothing_of(cat, "chatguard.banner")
    finally:
        for ws in (amy, bob, cat):
            await ws.close()
