"""Banner history in the shared store: bounded per user, decided once, across replicas.

The pure edits of one user's record are tested directly; the store ring runs
on a memory store and a real Redis; the cross-replica behaviour runs through
two real relays on one Redis with real clients and the example service.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from chatguard import banner_history as history
from chatguard.app import ChatGuard
from chatguard.banner_history import BannerHistory, Change, HistoryConflict
from chatguard.effectiveness import Impression, Observation
from chatguard.metrics import Metrics
from chatguard.outcome_log import OutcomeTracker, _relevant
from chatguard.stores import MemoryStore, RedisStore, Store
from tests.support.relay import GuardFactory
from tests.support.timing import eventually, unit
from tests.test_steps_speedbumps import connect, dm, guarded, recv_type


def imp(iid: str, kind: str = "warning", at: float = 100.0, user: str = "amy") -> Impression:
    return Impression(iid, "b", "a", "recipients", "signal:isolation", user, at, kind, "dm:amy:bob")


def item(iid: str, kind: str = "warning", at: float = 100.0) -> history.Item:
    return history.item_of(imp(iid, kind, at), at + 60.0, None)


# -- pure edits -------------------------------------------------------------------


def test_an_outcome_is_decided_once_and_its_inputs_dropped() -> None:
    items = [history.item_of(imp("p1", "prompt"), 160.0, "h-1")]
    items[0]["risky"] = ["my number is 555 123 4567 call me", "555 123 4567"]
    change = Change()
    history.answer(items, "amy", "p1", "cancel", 101.0, change)
    assert change.decided == []  # a cancel waits: an edit may follow
    history.observe(
        items,
        "amy",
        Observation("message", 102.0, "dm:amy:bob", "my number is secret, call me"),
        _relevant,
        change,
    )
    [(decided, outcome, at)] = change.decided
    assert (outcome, at) == ("edited", 102.0)
    assert set(decided) == {
        "id",
        "banner",
        "variant",
        "audience",
        "trigger",
        "kind",
        "conversation",
        "at",
        "outcome",
        "decided_at",
    }
    again = Change()
    history.observe(items, "amy", Observation("message", 103.0, "dm:amy:bob"), _relevant, again)
    history.sweep(items, "amy", 1000.0, again)
    assert again.decided == []


def test_observations_kept_per_impression_are_bounded() -> None:
    items = [item("w1")]
    change = Change()
    for n in range(3 * history.MAX_SEEN):
        message = Observation("message", 100.0 + n, "dm:amy:bob", "hi")
        history.observe(items, "amy", message, _relevant, change)
    assert len(items[0]["seen"]) == history.MAX_SEEN
    history.sweep(items, "amy", 1000.0, change)
    assert [o for _, o, _ in change.decided] == ["kept_talking"]


def test_acts_in_another_conversation_do_not_decide_a_warning() -> None:
    items = [item("w1")]
    change = Change()
    history.observe(items, "amy", Observation("report", 101.0, "dm:amy:cat"), _relevant, change)
    assert change.decided == []
    assert history.next_deadline(items) == 160.0


# -- the store ring ---------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        memory = MemoryStore()
        yield memory
        await memory.close()
        return
    # Sync fixtures only: they may skip (no Redis) and they clean up keys.
    redis = RedisStore(
        request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
    )
    yield redis
    await redis.close()


async def test_concurrent_writers_lose_nothing(store: Store) -> None:
    replicas = [BannerHistory(store) for _ in range(4)]
    change = history.add

    async def show(n: int) -> None:
        new = item(f"w{n}", at=100.0 + n)
        h = replicas[n % len(replicas)]
        for attempt in range(20):
            try:
                await h.update("amy", lambda items, c: change(items, "amy", new, 50, c))
                return
            except HistoryConflict:
                await asyncio.sleep(0.001 * attempt)
        raise AssertionError("never written")

    await asyncio.gather(*(show(n) for n in range(20)))
    shown = await replicas[0].shown("amy", 50)
    assert sorted(s["id"] for s in shown) == sorted(f"w{n}" for n in range(20))
    assert [s["id"] for s in shown][:2] == ["w19", "w18"]  # newest first
    [(user, deadline)] = await replicas[0].open_users()
    assert (user, deadline) == ("amy", 160.0)


async def test_two_replicas_sweeping_together_decide_each_outcome_once(
    store: Store, tmp_path: Path
) -> None:
    metrics = [Metrics(), Metrics()]
    trackers = [
        OutcomeTracker(m, None, BannerHistory(store), window=60.0, deterrence_window=600.0)
        for m in metrics
    ]
    for n in range(5):
        trackers[0].shown(imp(f"w{n}", user=f"u{n}"))
    await trackers[0].flush()
    await asyncio.gather(
        *(
            t.tick(1000.0, online=set(), instance=f"i{n}", presence_ttl=1.0)
            for n, t in enumerate(trackers)
        )
    )
    decided = [
        m.registry.get_sample_value(
            "chatguard_banner_outcomes_total", {"banner": "b", "variant": "a", "outcome": o}
        )
        or 0.0
        for m in metrics
        for o in ("left", "no_reply")
    ]
    assert sum(decided) == 5.0
    assert await trackers[1].history.open_users() == []


async def test_conversation_history_lists_each_participant_oldest_first(store: Store) -> None:
    h = BannerHistory(store)
    for user, iid, at in [("bob", "d1", 105.0), ("amy", "w1", 101.0), ("cat", "w2", 99.0)]:
        new = history.item_of(imp(iid, at=at, user=user), at + 60, None)
        await h.update(
            user, lambda items, c, new=new, user=user: history.add(items, user, new, 50, c)
        )
    listed = await h.in_conversation(["amy", "bob"], "dm:amy:bob", 10)
    assert [(b["user"], b["id"]) for b in listed] == [("amy", "w1"), ("bob", "d1")]
    assert await h.in_conversation(["amy", "bob"], "dm:amy:bob", 1) == [listed[-1]]


async def test_a_damaged_record_is_replaced_not_fatal(store: Store) -> None:
    await store.set(history.user_key("amy"), b"{not json")
    h = BannerHistory(store)
    new = item("w1")
    await h.update("amy", lambda items, c: history.add(items, "amy", new, 50, c))
    assert [s["id"] for s in await h.shown("amy", 5)] == ["w1"]
    assert json.loads(await store.get(history.user_key("amy")) or b"")["items"][0]["id"] == "w1"


# -- through the relay, across replicas -----------------------------------------------


def outcomes(guard: ChatGuard, outcome: str) -> float:
    value = guard.metrics.registry.get_sample_value(
        "chatguard_banner_outcomes_total",
        {"banner": "off_platform_warning", "variant": "default", "outcome": outcome},
    )
    return value or 0.0


async def warned_on_first(
    make_guard: GuardFactory, upstream: str, pack: Any, redis: Callable[[], RedisStore]
) -> tuple[ChatGuard, Any, Any]:
    first = await guarded(make_guard, upstream, pack, store=redis())
    amy, bob = await connect(first, "amy", 13), await connect(first, "bob", 41)
    await eventually(lambda: len(first.relay.sessions) == 2)
    await dm(bob, "amy", "add me on snap")
    assert (await recv_type(amy, "chatguard.banner"))["banner"] == "off_platform_warning"
    return first, amy, bob


async def reported_from(guard: ChatGuard, user: str) -> None:
    ws = await connect(guard, user, 13)
    try:
        await dm(ws, "bob", "/report he wants me on snap")
        await recv_type(ws, "chatguard.banner")  # thanks
        await eventually(lambda: outcomes(guard, "reported") == 1.0)
    finally:
        await ws.close()


async def test_an_outcome_is_decided_on_the_replica_the_viewer_moved_to(
    chat_service, make_guard: GuardFactory, test_pack, redis_store_factory: Any
) -> None:
    first, amy, bob = await warned_on_first(
        make_guard, chat_service.url, test_pack, redis_store_factory
    )
    second = await guarded(make_guard, chat_service.url, test_pack, store=redis_store_factory())
    try:
        await amy.close()
        await reported_from(second, "amy")
        # Two ticks of the first replica after she left it: she was elsewhere.
        await asyncio.sleep(unit(2.5))
        assert outcomes(first, "left") == 0.0
        assert outcomes(first, "reported") == 0.0
        [shown] = await second.banner_history.shown("amy", 5)
        assert (shown["banner"], shown["outcome"]) == ("off_platform_warning", "reported")
    finally:
        await bob.close()


async def test_an_open_impression_survives_a_restart(
    chat_service, make_guard: GuardFactory, test_pack, redis_store_factory: Any
) -> None:
    first, amy, bob = await warned_on_first(
        make_guard, chat_service.url, test_pack, redis_store_factory
    )
    await bob.close()
    await first.stop()  # amy's session ends with it
    await amy.close()
    restarted = await guarded(make_guard, chat_service.url, test_pack, store=redis_store_factory())
    await reported_from(restarted, "amy")
    [shown] = await restarted.banner_history.shown("amy", 5)
    assert shown["outcome"] == "reported"
