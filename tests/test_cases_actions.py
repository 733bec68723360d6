"""Live actions: the sanction in the store and the directive on the delivery channel."""

from __future__ import annotations

import asyncio

import pytest

from chatguard.cases.actions import Actions
from chatguard.cases.model import ModeratorAction
from chatguard.metrics import Metrics
from chatguard.relay.delivery import CHANNEL, Deliveries, Directive
from chatguard.stores import MemoryStore, SanctionKind, Subscription
from tests.support.clock import FakeClock
from tests.support.timing import unit


async def next_directive(subscription: Subscription) -> Directive:
    async with asyncio.timeout(unit(1)):
        return Directive.from_json(await anext(aiter(subscription)))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(clock)


@pytest.fixture
def actions(store: MemoryStore, clock: FakeClock) -> Actions:
    return Actions(store, Deliveries(store, lambda: (), Metrics()), clock)


async def test_warn_sends_a_notice(actions: Actions, store: MemoryStore) -> None:
    channel = await store.subscribe(CHANNEL)
    effect = await actions.apply(ModeratorAction("warn", reason="be kind"), "bob", "mod1")
    assert effect.delivered
    directive = await next_directive(channel)
    assert directive.user == "bob"
    assert directive.notice is not None
    assert directive.notice.text == "A moderator warns you: be kind"
    assert directive.close_code is None


async def test_mute_stores_a_timed_sanction_then_tells_the_user(
    actions: Actions, store: MemoryStore, clock: FakeClock
) -> None:
    channel = await store.subscribe(CHANNEL)
    effect = await actions.apply(ModeratorAction("mute", duration=60, reason="spam"), "bob", "m")
    assert effect.until == clock.now + 60
    [sanction] = await store.sanctions("bob", clock.now)
    assert (sanction.kind, sanction.until, sanction.by) == (SanctionKind.MUTE, clock.now + 60, "m")
    directive = await next_directive(channel)
    assert directive.notice is not None
    assert directive.notice.kind == "sanction"
    clock.advance(61)
    assert await store.sanctions("bob", clock.now) == []  # expired by itself


async def test_kick_and_ban_close_with_the_reason(actions: Actions, store: MemoryStore) -> None:
    channel = await store.subscribe(CHANNEL)
    await actions.apply(ModeratorAction("kick", reason="cool off"), "bob", "m")
    kick = await next_directive(channel)
    assert (kick.close_code, kick.close_reason) == (1008, "kicked by a moderator: cool off")
    effect = await actions.apply(ModeratorAction("ban", reason="enticement"), "bob", "m")
    assert effect.until is None
    ban = await next_directive(channel)
    assert (ban.close_code, ban.close_reason) == (1008, "banned permanently: enticement")
    [sanction] = await store.sanctions("bob", 10**12)
    assert sanction.kind is SanctionKind.BAN


async def test_case_only_actions_touch_nothing_live(store: MemoryStore) -> None:
    actions = Actions(store, None)
    for kind in ("dismiss", "escalate"):
        effect = await actions.apply(ModeratorAction(kind), "bob", "m")
        assert effect.target is None
    effect = await actions.apply(ModeratorAction("mute", duration=5), "bob", "m")
    assert not effect.delivered  # no delivery channel: the sanction still holds
    assert await store.sanctions("bob", 0) != []


async def test_a_long_reason_is_cut_to_a_close_frame_on_a_character_boundary(
    actions: Actions, store: MemoryStore
) -> None:
    channel = await store.subscribe(CHANNEL)
    await actions.apply(ModeratorAction("kick", reason="é" * 100), "bob", "m")
    kick = await next_directive(channel)
    assert len(kick.close_reason.encode()) <= 120
    assert kick.close_reason.startswith("kicked by a moderator: éé")
    assert kick.close_reason.endswith("é")
