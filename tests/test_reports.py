"""In-chat reports through the real relay: escalated with context, never forwarded."""

from __future__ import annotations

import asyncio
import json

import pytest

from chatguard.cases.model import EscalationSummary
from tests.support.relay import GuardFactory
from tests.support.timing import eventually, unit
from tests.test_steps_event_banners import EVENT_BANNERS
from tests.test_steps_speedbumps import (
    connect,
    dm,
    guarded,
    nothing_of,
    recv_type,
)


async def escalations(guard, count: int | None = None) -> list[tuple[str, EscalationSummary]]:
    """(conversation, escalation) for every escalation the case book holds;
    with ``count``, waits until there are that many."""
    async with asyncio.timeout(unit(3.0)):
        while True:
            found = [(c.conversation, e) for c in await guard.cases.list() for e in c.escalations]
            if count is None or len(found) >= count:
                return found
            await asyncio.sleep(0.01)


def upstream_saw(chat_service, needle: str) -> bool:
    return any(needle in str(f) for f in chat_service.frames_received)


async def test_slash_report_escalates_with_context_and_is_never_forwarded(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    (test_pack[1] / "events.yaml").write_text(EVENT_BANNERS, encoding="utf-8")
    guard = await guarded(make_guard, chat_service.url, test_pack)
    amy, bob = await connect(guard, "amy", 13), await connect(guard, "bob", 41)
    try:
        await eventually(lambda: len(guard.relay.sessions) == 2)
        await dm(bob, "amy", "you are so mature")
        await recv_type(amy, "dm")
        await dm(bob, "amy", "dont tell anyone we talk")
        await recv_type(amy, "dm")
        await dm(amy, "bob", "/report he is making me uncomfortable")
        thanks = await recv_type(amy, "chatguard.banner")
        assert (thanks["banner"], thanks["text"]) == ("thanks", "Thanks, a moderator will look.")
        [(conversation, escalation)] = await escalations(guard, 1)
        assert (escalation.source, escalation.reporter, escalation.sender) == (
            "report",
            "amy",
            "bob",
        )
        assert conversation == "dm:amy:bob"
        assert escalation.severity == "high"  # a child's report
        assert escalation.reason == "he is making me uncomfortable"
        capture = guard.recorded.captures[-1]
        assert capture.trigger == "report"
        assert [m["text"] for m in capture.params["context"]] == [
            "you are so mature",
            "dont tell anyone we talk",
        ]
        assert not upstream_saw(chat_service, "/report")
    finally:
        await amy.close()
        await bob.close()


async def test_a_report_frame_about_a_room_from_an_adult_is_medium(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack)
    cat = await connect(guard, "cat", 30)
    try:
        frame = {"type": "chatguard.report", "room": "games", "with": None, "reason": "spam"}
        await cat.send(json.dumps(frame))
        # No `report` banner in this catalogue: a plain thank-you.
        thanks = await recv_type(cat, "chatguard.banner")
        assert "moderator" in thanks["text"]
        [(conversation, escalation)] = await escalations(guard, 1)
        assert (conversation, escalation.severity, escalation.sender) == (
            "room:games",
            "medium",
            None,
        )
        assert not upstream_saw(chat_service, "chatguard.report")
    finally:
        await cat.close()


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ({"type": "chatguard.report", "room": None, "with": None}, "names a room or a user"),
        ({"type": "chatguard.report", "room": 7, "reason": "x"}, "`room` must be null"),
        ({"type": "chatguard.report", "with": "x" * 500}, "`with` must be null"),
        ({"type": "chatguard.report", "with": "bob", "reason": ["x"]}, "`reason` must be text"),
    ],
)
async def test_forged_report_frames_get_an_error_and_change_nothing(
    chat_service, make_guard: GuardFactory, test_pack, frame: dict[str, object], reason: str
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack)
    eve = await connect(guard, "eve", 30)
    try:
        await eve.send(json.dumps(frame))
        assert reason in (await recv_type(eve, "chatguard.error"))["reason"]
        assert await escalations(guard) == []
        assert not upstream_saw(chat_service, "chatguard.report")
    finally:
        await eve.close()


async def test_a_flood_of_reports_is_limited(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack, reports={"per_minute": 2})
    eve = await connect(guard, "eve", 30)
    try:
        frame = json.dumps({"type": "chatguard.report", "with": "bob", "reason": "x"})
        for _ in range(2):
            await eve.send(frame)
            await recv_type(eve, "chatguard.banner")
        await eve.send(frame)
        assert "too many reports" in (await recv_type(eve, "chatguard.error"))["reason"]
        assert len(await escalations(guard)) == 2
    finally:
        await eve.close()


async def test_a_flood_of_control_frames_gets_errors_and_changes_nothing(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack, limits={"control_per_minute": 3})
    amy, bob = await connect(guard, "amy", 13), await connect(guard, "bob", 14)
    try:
        await dm(amy, "bob", "555 123 4567")
        hold = await recv_type(amy, "chatguard.hold")
        bogus = json.dumps({"type": "chatguard.confirm", "hold": "h-forged", "choice": "send"})
        for _ in range(3):
            await amy.send(bogus)
            assert (await recv_type(amy, "chatguard.error"))["reason"] == "no such hold"
        # Over the limit: even a genuine answer is refused, and nothing is sent.
        real = {"type": "chatguard.confirm", "hold": hold["hold"], "choice": "send"}
        await amy.send(json.dumps(real))
        assert "too many control frames" in (await recv_type(amy, "chatguard.error"))["reason"]
        await nothing_of(bob, "dm")
        # The hold still waits for an answer.
        assert sum(len(s.context.holds) for s in guard.relay.sessions) == 1
    finally:
        await amy.close()
        await bob.close()
