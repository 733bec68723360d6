"""PolicyStep: events in, assessments in the findings, conversation state in a real store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio

from chatguard.banners import Catalogue
from chatguard.directory import Directory
from chatguard.events import PASS, ChatEvent, EventKind, Identity, Side
from chatguard.live_policy import LivePolicy
from chatguard.metrics import Metrics
from chatguard.pipeline import Findings, SessionContext
from chatguard.policy.model import ActionType, Assessment
from chatguard.policy.risk import ConversationState
from chatguard.steps.policy import PolicyStep
from chatguard.stores import MemoryStore, RedisStore, Store
from tests.support.pack import POLICY
from tests.support.redis_server import free_port

Pack = tuple[Path, Path]
STATE_TTL = 7 * 24 * 3600.0
HALF_LIFE = 3600.0  # the test pack's


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    step: PolicyStep
    store: Store
    directory: Directory
    metrics: Metrics
    clock: Clock
    live: LivePolicy

    async def run(self, event: ChatEvent, session: SessionContext) -> Findings:
        findings = Findings()
        assert await self.step(event, session, findings) is PASS  # never changes the frame
        return findings

    async def assess(self, event: ChatEvent, session: SessionContext) -> Assessment:
        findings = await self.run(event, session)
        assert isinstance(findings.assessment, Assessment)
        return findings.assessment

    def counted(self, name: str, labels: dict[str, str]) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


def make_rig(
    pack: Pack,
    store: Store,
    clock: Clock,
    *,
    max_recipients: int = 50,
    live: LivePolicy | None = None,
) -> Rig:
    metrics = Metrics()
    if live is None:
        live = LivePolicy(pack[0], pack[1], metrics)
        live.load_now()
    directory = Directory(store)
    step = PolicyStep(
        live,
        store,
        directory,
        metrics,
        state_ttl=STATE_TTL,
        max_recipients=max_recipients,
        clock=clock,
    )
    return Rig(step, store, directory, metrics, clock, live)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, clock: Clock) -> Store:
    if request.param == "memory":
        return MemoryStore(clock)
    redis_store: Store = request.getfixturevalue("redis_store")
    return redis_store


@pytest.fixture
def rig(test_pack: Pack, clock: Clock) -> Rig:
    return make_rig(test_pack, MemoryStore(clock), clock)


def person(user: str, band: str = "unknown", roles: str = "") -> Identity:
    attrs = {"age_band": band}
    if roles:
        attrs["roles"] = roles
    return Identity(user, user.title(), attrs)


def session_of(user: str, band: str = "unknown", roles: str = "") -> SessionContext:
    return SessionContext(f"s-{user}", "127.0.0.1:50000", 0.0, identity=person(user, band, roles))


def dm(sender: str, to: str, text: str, origin: Side = Side.CLIENT) -> ChatEvent:
    raw = json.dumps({"type": "dm", "to": to, "text": text})
    return ChatEvent(EventKind.DIRECT, origin, raw, sender, None, (to,), text)


def say(room: str, sender: str, text: str, origin: Side = Side.CLIENT) -> ChatEvent:
    raw = json.dumps({"type": "message", "room": room, "text": text})
    return ChatEvent(EventKind.MESSAGE, origin, raw, sender, room, (), text)


def presence(kind: EventKind, room: str, user: str, origin: Side = Side.UPSTREAM) -> ChatEvent:
    raw = json.dumps({"type": "joined" if kind is EventKind.JOIN else "left", "room": room})
    return ChatEvent(kind, origin, raw, user, room)


def kinds(assessment: Assessment) -> list[tuple[str, str]]:
    return [(a.type.value, a.reason) for a in assessment.actions]


# -- what is assessed, against whom --------------------------------------------------


@pytest.mark.parametrize(
    ("sender_band", "roles", "recipient_band", "text", "signals", "actions"),
    [
        (
            "adult",
            "",
            "minor",
            "add me on snap",
            ["isolation"],
            [("banner", "t.isolation.move_app")],
        ),
        ("adult", "", "adult", "add me on snap", [], []),
        ("adult", "", None, "add me on snap", [], []),  # recipient's band never attested
        (
            "unknown",
            "",
            "minor",
            "text me on whatsapp",
            ["isolation"],
            [("banner", "t.isolation.move_app")],
        ),
        (
            "minor",
            "",
            "adult",
            "call me 555 123 4567",
            ["pi_share"],
            [("hold", "t.pi_share.phone_minor")],
        ),
        (
            "unknown",
            "",
            "adult",
            "ring 555-123-4567",
            ["pi_share"],
            [("redact", "t.pi_share.phone_unknown")],
        ),
        ("adult", "", "adult", "call me 555 123 4567", [], []),
        ("adult", "moderator", "minor", "send me a pic", [], []),  # moderators are exempt
        ("adult", "", "minor", "hello there", [], []),
    ],
)
async def test_a_direct_message_is_judged_by_the_attested_bands_of_both_sides(
    rig: Rig,
    sender_band: str,
    roles: str,
    recipient_band: str | None,
    text: str,
    signals: list[str],
    actions: list[tuple[str, str]],
) -> None:
    if recipient_band is not None:
        await rig.directory.record(person("amy", recipient_band))
    findings = await rig.run(dm("bob", "amy", text), session_of("bob", sender_band, roles))
    assessment = findings.assessment
    assert isinstance(assessment, Assessment)
    assert assessment.conversation == "dm:amy:bob"
    assert [s.value for s in assessment.signals] == signals
    assert kinds(assessment) == actions
    assert findings.notes["recipients"] == ("amy",)
    assert isinstance(findings.notes["catalogue"], Catalogue)
    current = rig.live.current
    assert current is not None
    assert findings.notes["catalogue"] is current.catalogue
    assert set(findings.notes["rules"]) == set(current.rules)
    assert isinstance(findings.notes["state"], ConversationState)


async def test_a_client_without_an_identity_is_an_unknown_sender(rig: Rig) -> None:
    await rig.directory.record(person("amy", "minor"))
    anonymous = SessionContext("s-anon", "127.0.0.1:50000", 0.0)
    assessment = await rig.assess(dm("bob", "amy", "send me a pic"), anonymous)
    assert ("escalate", "t.image_request.minor") in kinds(assessment)


# -- conversation state in the store ---------------------------------------------------


async def test_risk_accumulates_across_messages_through_the_store(
    test_pack: Pack, store: Store, clock: Clock
) -> None:
    here = make_rig(test_pack, store, clock)
    await here.directory.record(person("amy", "minor"))
    bob = session_of("bob", "adult")
    risks = [(await here.assess(dm("bob", "amy", "add me on snap"), bob)).risk for _ in range(3)]
    assert risks == [3.0, 6.0, 9.0]
    raw = await store.get("conv:dm:amy:bob")
    assert raw is not None
    saved = ConversationState.from_json(raw)
    assert (saved.messages, saved.risk, saved.updated) == (3, 9.0, clock.now)

    # Another replica on the same store carries on from the same state.
    there = make_rig(test_pack, store, clock, live=here.live)
    assessment = await there.assess(dm("amy", "bob", "ok"), session_of("amy", "minor"))
    assert assessment.risk == 9.0
    saved = ConversationState.from_json(await store.get("conv:dm:amy:bob") or b"")
    assert saved.messages == 4


async def test_state_in_redis_expires_after_the_state_ttl(
    test_pack: Pack, redis_store: RedisStore, redis_url: str, redis_prefix: str, clock: Clock
) -> None:
    rig = make_rig(test_pack, redis_store, clock)
    await rig.assess(dm("bob", "amy", "hi"), session_of("bob", "adult"))
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        ttl_ms = await client.pttl(f"{redis_prefix}key:conv:dm:amy:bob")
    finally:
        await client.aclose()
    assert STATE_TTL * 1000 - 60_000 < ttl_ms <= STATE_TTL * 1000


@pytest.mark.parametrize(
    ("elapsed", "risk"),
    [(0.0, 6.0), (HALF_LIFE, 3.0), (2 * HALF_LIFE, 1.5), (STATE_TTL, 0.0)],
)
async def test_risk_decays_by_the_clock_and_state_expires_with_its_ttl(
    rig: Rig, elapsed: float, risk: float
) -> None:
    await rig.directory.record(person("amy", "minor"))
    bob = session_of("bob", "adult")
    for _ in range(2):
        await rig.assess(dm("bob", "amy", "add me on snap"), bob)
    rig.clock.now += elapsed
    assessment = await rig.assess(dm("amy", "bob", "hi"), session_of("amy", "minor"))
    assert assessment.risk == pytest.approx(risk, abs=1e-3)


async def test_conversations_keep_their_own_state(rig: Rig) -> None:
    await rig.directory.record(person("amy", "minor"))
    await rig.directory.record(person("cat", "minor"))
    bob = session_of("bob", "adult")
    await rig.assess(dm("bob", "amy", "add me on snap"), bob)
    other = await rig.assess(dm("bob", "cat", "add me on snap"), bob)
    assert other.conversation == "dm:bob:cat"
    assert other.risk == 3.0


async def test_two_direct_conversations_never_share_state(rig: Rig) -> None:
    await rig.directory.record(person("c", "minor"))
    first = await rig.assess(dm("a:b", "c", "add me on snap"), session_of("a:b", "adult"))
    assert first.risk == 3.0
    second = await rig.assess(dm("b:c", "a", "hello"), session_of("b:c", "adult"))
    assert second.conversation != first.conversation
    assert second.risk == 0.0


async def test_an_unreadable_stored_state_starts_afresh(rig: Rig) -> None:
    await rig.store.set("conv:dm:amy:bob", b'{"v": "from another version"}')
    await rig.directory.record(person("amy", "minor"))
    assessment = await rig.assess(dm("bob", "amy", "add me on snap"), session_of("bob", "adult"))
    assert assessment.risk == 3.0
    saved = ConversationState.from_json(await rig.store.get("conv:dm:amy:bob") or b"")
    assert saved.messages == 1


async def test_a_closed_store_does_not_stop_assessment(rig: Rig) -> None:
    await rig.store.close()
    findings = await rig.run(dm("amy", "bob", "call me 555 123 4567"), session_of("amy", "minor"))
    assert isinstance(findings.assessment, Assessment)
    assert kinds(findings.assessment) == [("hold", "t.pi_share.phone_minor")]
    assert findings.notes["state"].messages == 1


async def test_an_unreachable_redis_does_not_stop_assessment(test_pack: Pack, clock: Clock) -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", "chatguard-test:")
    try:
        rig = make_rig(test_pack, store, clock)
        minor = session_of("amy", "minor")
        risks = []
        for _ in range(2):
            assessment = await rig.assess(dm("amy", "bob", "call me 555 123 4567"), minor)
            assert kinds(assessment) == [("hold", "t.pi_share.phone_minor")]
            risks.append(assessment.risk)
        assert risks[0] > 0
        assert risks[1] == risks[0]  # nothing could be saved, so nothing accumulates
    finally:
        await store.close()


# -- rooms and the directory ---------------------------------------------------------


async def test_upstream_joins_and_leaves_decide_who_a_room_message_reaches(rig: Rig) -> None:
    await rig.directory.record(person("amy", "minor"))
    bob = session_of("bob", "adult")
    for user in ("amy", "bob", "dan"):
        await rig.run(presence(EventKind.JOIN, "lobby", user), session_of(user))
    assert rig.directory.members("lobby") == {"amy", "bob", "dan"}

    findings = await rig.run(say("lobby", "bob", "add me on snap"), bob)
    assert findings.notes["recipients"] == ("amy", "dan")
    assert findings.assessment.conversation == "room:lobby"
    assert kinds(findings.assessment) == [("banner", "t.isolation.move_app")]

    await rig.run(presence(EventKind.LEAVE, "lobby", "amy"), session_of("amy"))
    findings = await rig.run(say("lobby", "bob", "add me on snap"), bob)
    assert findings.notes["recipients"] == ("dan",)
    assert kinds(findings.assessment) == []


async def test_a_client_cannot_claim_membership(rig: Rig) -> None:
    # Only the upstream's join and leave events are trusted.
    await rig.run(presence(EventKind.JOIN, "lobby", "mallory", Side.CLIENT), session_of("mallory"))
    assert rig.directory.members("lobby") == frozenset()
    await rig.run(presence(EventKind.JOIN, "lobby", "amy"), session_of("amy"))
    await rig.run(presence(EventKind.LEAVE, "lobby", "amy", Side.CLIENT), session_of("amy"))
    assert rig.directory.members("lobby") == {"amy"}


async def test_room_recipients_are_bounded(test_pack: Pack, clock: Clock) -> None:
    rig = make_rig(test_pack, MemoryStore(clock), clock, max_recipients=2)
    for user in ("eve", "dan", "cat", "bob", "amy"):
        await rig.run(presence(EventKind.JOIN, "lobby", user), session_of(user))
    findings = await rig.run(say("lobby", "cat", "hello"), session_of("cat"))
    assert findings.notes["recipients"] == ("amy", "bob")


# -- what is not assessed ------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        dm("bob", "amy", "send me a pic", Side.UPSTREAM),  # arriving at amy's session
        say("lobby", "bob", "send me a pic", Side.UPSTREAM),
        presence(EventKind.JOIN, "lobby", "bob"),
        presence(EventKind.JOIN, "lobby", "bob", Side.CLIENT),
        ChatEvent(EventKind.CONTROL, Side.CLIENT, '{"type":"chatguard.confirm"}', "bob"),
        ChatEvent(EventKind.NICK, Side.CLIENT, '{"type":"nick"}', "bob", "lobby", (), "send"),
        say("lobby", "bob", ""),
        ChatEvent(EventKind.MESSAGE, Side.CLIENT, "{}", None, "lobby", (), "send me a pic"),
        ChatEvent(EventKind.MESSAGE, Side.CLIENT, "{}", "bob", None, (), "send me a pic"),
        ChatEvent(EventKind.DIRECT, Side.CLIENT, "{}", "bob", None, (), "send me a pic"),
    ],
    ids=[
        "upstream-dm",
        "upstream-message",
        "upstream-join",
        "client-join",
        "control",
        "nick",
        "empty-text",
        "no-sender",
        "no-conversation",
        "dm-without-recipient",
    ],
)
async def test_only_client_messages_with_text_are_assessed(rig: Rig, event: ChatEvent) -> None:
    await rig.directory.record(person("amy", "minor"))
    findings = await rig.run(event, session_of("bob", "adult"))
    assert findings.assessment is None
    assert findings.notes == {}
    assert await rig.store.get("conv:dm:amy:bob") is None
    assert await rig.store.get("conv:room:lobby") is None
    assert rig.counted("chatguard_policy_signals_total", {"signal": "image_request"}) == 0


async def test_nothing_is_assessed_before_a_pack_is_loaded(test_pack: Pack, clock: Clock) -> None:
    unloaded = LivePolicy(test_pack[0], test_pack[1], Metrics())
    rig = make_rig(test_pack, MemoryStore(clock), clock, live=unloaded)
    findings = await rig.run(dm("bob", "amy", "send me a pic"), session_of("bob", "adult"))
    assert findings.assessment is None


# -- metrics -----------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "counted_as"), [("enforce", "enforce"), ("shadow", "shadow")])
async def test_signals_and_actions_are_counted_by_mode(
    test_pack: Pack, clock: Clock, mode: str, counted_as: str
) -> None:
    (test_pack[0] / "policy.yaml").write_text(POLICY.replace("enforce", mode), encoding="utf-8")
    rig = make_rig(test_pack, MemoryStore(clock), clock)
    await rig.directory.record(person("amy", "minor"))
    assessment = await rig.assess(dm("bob", "amy", "send me a pic"), session_of("bob", "adult"))
    assert all(a.shadow == (mode == "shadow") for a in assessment.actions)
    assert rig.counted("chatguard_policy_signals_total", {"signal": "image_request"}) == 1
    for kind in (ActionType.BANNER, ActionType.CAPTURE, ActionType.ESCALATE):
        labels = {"type": kind.value, "mode": counted_as}
        assert rig.counted("chatguard_policy_actions_total", labels) == 1
