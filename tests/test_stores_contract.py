"""The contract in ``chatguard/stores/base.py``, checked against every backend.

Each test runs on ``MemoryStore``, whose time a fake clock moves, and on
``RedisStore`` against a real Redis, where time passes for real in short
TTLs scaled by ``unit``. A test that holds for one backend and not the other
is a bug in the backend, never a reason to branch in the test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from chatguard.stores import (
    MemoryStore,
    RedisStore,
    Sanction,
    SanctionKind,
    Store,
    StoreError,
    StoreUnavailable,
    Subscription,
)
from tests.support.clock import FakeClock
from tests.support.timing import unit


@dataclass
class Backend:
    store: Store
    ttl: float  # short, yet long enough to read a key back before it expires
    margin: float  # how far past an expiry to look
    now: Callable[[], float]  # the clock the backend's expiry follows
    pass_time: Callable[[float], Awaitable[None]]

    async def pass_ttl(self) -> None:
        await self.pass_time(self.ttl + self.margin)


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    store: Store
    if request.param == "memory":
        clock = FakeClock()

        async def advance(seconds: float) -> None:
            clock.advance(seconds)

        store = MemoryStore(clock)
        yield Backend(store, ttl=10.0, margin=0.001, now=clock, pass_time=advance)
    else:
        # Sync fixtures only: they may skip (no Redis) and they clean up keys.
        url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
        store = RedisStore(url, prefix)
        yield Backend(store, unit(0.3), unit(0.1), now=time.time, pass_time=asyncio.sleep)
    await store.close()


async def receive(subscription: Subscription, count: int) -> list[bytes]:
    messages = aiter(subscription)
    async with asyncio.timeout(unit(2)):
        return [await anext(messages) for _ in range(count)]


async def eventually(predicate: Callable[[], bool]) -> None:
    # Polling: a backend delivers on its own schedule and offers no event.
    async with asyncio.timeout(unit(2)):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.005)


async def quiet(subscription: Subscription) -> bool:
    """True when nothing arrives for a while."""
    try:
        await receive_within(subscription, unit(0.1))
    except TimeoutError:
        return True
    return False


async def receive_within(subscription: Subscription, seconds: float) -> bytes:
    async with asyncio.timeout(seconds):
        return await anext(aiter(subscription))


# -- keys -----------------------------------------------------------------


async def test_get_set_delete(backend: Backend) -> None:
    store = backend.store
    assert await store.get("k") is None
    await store.set("k", b"v1")
    assert await store.get("k") == b"v1"
    await store.set("k", b"\x00\xffv2")
    assert await store.get("k") == b"\x00\xffv2"
    assert await store.delete("k") is True
    assert await store.get("k") is None
    assert await store.delete("k") is False


async def test_keys_are_opaque_strings(backend: Backend) -> None:
    keys = ["a:b", "a", "a*", "[x]", "ключ", "sanction:ban:alice", "channel:c"]
    for i, key in enumerate(keys):
        await backend.store.set(key, str(i).encode())
    assert [await backend.store.get(key) for key in keys] == [
        str(i).encode() for i in range(len(keys))
    ]


async def test_key_expires_after_ttl(backend: Backend) -> None:
    store = backend.store
    await store.set("k", b"v", ttl=backend.ttl)
    assert await store.get("k") == b"v"
    await backend.pass_ttl()
    assert await store.get("k") is None
    assert await store.delete("k") is False


async def test_set_without_ttl_removes_expiry(backend: Backend) -> None:
    store = backend.store
    await store.set("k", b"v", ttl=backend.ttl)
    await store.set("k", b"w")
    await backend.pass_ttl()
    assert await store.get("k") == b"w"


@pytest.mark.parametrize("ttl", [0, -1.0])
async def test_ttl_must_be_positive(backend: Backend, ttl: float) -> None:
    store = backend.store
    with pytest.raises(ValueError, match="ttl"):
        await store.set("k", b"v", ttl=ttl)
    with pytest.raises(ValueError, match="ttl"):
        await store.set_if_absent("k", b"v", ttl=ttl)
    with pytest.raises(ValueError, match="ttl"):
        await store.incr("k", ttl=ttl)
    assert await store.get("k") is None


async def test_set_if_absent(backend: Backend) -> None:
    store = backend.store
    assert await store.set_if_absent("lease", b"a", ttl=backend.ttl) is True
    assert await store.set_if_absent("lease", b"b", ttl=backend.ttl) is False
    assert await store.get("lease") == b"a"
    await backend.pass_ttl()
    assert await store.set_if_absent("lease", b"c") is True
    assert await store.get("lease") == b"c"
    assert await store.delete("lease") is True
    assert await store.set_if_absent("lease", b"d") is True


async def test_set_if_absent_has_exactly_one_winner(backend: Backend) -> None:
    store = backend.store
    results = await asyncio.gather(
        *(store.set_if_absent("lease", f"caller-{i}".encode(), ttl=60) for i in range(20))
    )
    assert results.count(True) == 1
    assert await store.get("lease") == f"caller-{results.index(True)}".encode()


# -- counters -------------------------------------------------------------


async def test_incr_counts_and_shares_the_keyspace(backend: Backend) -> None:
    store = backend.store
    assert await store.incr("c") == 1
    assert await store.incr("c", by=5) == 6
    assert await store.incr("c", by=-2) == 4
    assert await store.get("c") == b"4"
    await store.set("n", b"41")
    assert await store.incr("n") == 42
    await store.set("word", b"forty-two")
    with pytest.raises(StoreError):
        await store.incr("word")
    assert await store.get("word") == b"forty-two"


async def test_incr_window_starts_at_first_increment(backend: Backend) -> None:
    store, half = backend.store, backend.ttl / 2
    assert await store.incr("c", ttl=backend.ttl) == 1
    await backend.pass_time(half)
    # A later increment must not push the window's end back.
    assert await store.incr("c", ttl=backend.ttl) == 2
    await backend.pass_time(half + backend.margin)
    assert await store.get("c") is None
    assert await store.incr("c", ttl=backend.ttl) == 1


async def test_incr_window_survives_a_return_to_its_first_value(backend: Backend) -> None:
    store = backend.store
    assert await store.incr("c", by=2, ttl=backend.ttl) == 2
    assert await store.incr("c", by=-2, ttl=backend.ttl) == 0
    assert await store.incr("c", by=2, ttl=backend.ttl) == 2  # not a new counter
    await backend.pass_ttl()
    assert await store.get("c") is None


async def test_incr_without_ttl_never_expires(backend: Backend) -> None:
    store = backend.store
    await store.incr("c")
    await backend.pass_ttl()
    assert await store.incr("c") == 2


# -- sanctions ------------------------------------------------------------


def mute(user: str, until: float | None, reason: str = "spam") -> Sanction:
    return Sanction(user, SanctionKind.MUTE, reason, until, by="mod-1")


def ban(user: str, until: float | None, reason: str = "abuse") -> Sanction:
    return Sanction(user, SanctionKind.BAN, reason, until, by="mod-2")


async def test_sanction_put_replace_lift(backend: Backend) -> None:
    store, now = backend.store, backend.now()
    assert await store.sanctions("alice", now) == []
    await store.put_sanction(mute("alice", now + 3600), now)
    assert await store.sanctions("alice", now) == [mute("alice", now + 3600)]
    await store.put_sanction(mute("alice", now + 60, reason="flood"), now)
    await store.put_sanction(ban("alice", None), now)
    assert set(await store.sanctions("alice", now)) == {
        mute("alice", now + 60, reason="flood"),
        ban("alice", None),
    }
    assert await store.sanctions("bob", now) == []
    assert await store.lift_sanction("alice", SanctionKind.MUTE) is True
    assert await store.lift_sanction("alice", SanctionKind.MUTE) is False
    assert await store.sanctions("alice", now) == [ban("alice", None)]
    assert await store.lift_sanction("alice", SanctionKind.BAN) is True
    assert await store.sanctions("alice", now) == []


async def test_sanctions_are_filtered_by_now(backend: Backend) -> None:
    store, now = backend.store, backend.now()
    await store.put_sanction(mute("alice", now + 3600), now)
    await store.put_sanction(ban("alice", None), now)
    assert await store.sanctions("alice", now + 3600) == [ban("alice", None)]
    assert len(await store.sanctions("alice", now + 3599)) == 2


async def test_sanction_expires_by_itself(backend: Backend) -> None:
    store, now = backend.store, backend.now()
    await store.put_sanction(mute("alice", now + backend.ttl), now)
    await store.put_sanction(ban("alice", None), now)
    await backend.pass_ttl()
    # Gone from storage, not only filtered: ask with the old ``now``.
    assert await store.sanctions("alice", now) == [ban("alice", None)]
    assert await store.lift_sanction("alice", SanctionKind.MUTE) is False


async def test_replacing_a_sanction_replaces_its_expiry(backend: Backend) -> None:
    store, now = backend.store, backend.now()
    await store.put_sanction(ban("alice", None), now)
    await store.put_sanction(ban("alice", now + backend.ttl), now)
    await store.put_sanction(mute("alice", now + backend.ttl), now)
    await store.put_sanction(mute("alice", None), now)
    await backend.pass_ttl()
    assert await store.sanctions("alice", now) == [mute("alice", None)]


async def test_sanction_already_over_is_not_stored(backend: Backend) -> None:
    store, now = backend.store, backend.now()
    await store.put_sanction(mute("alice", None), now)
    await store.put_sanction(mute("alice", now), now)
    await store.put_sanction(ban("alice", now - 1), now)
    assert await store.sanctions("alice", now - 10) == []


async def test_sanctions_and_keys_do_not_collide(backend: Backend) -> None:
    store, now = backend.store, backend.now()
    await store.put_sanction(ban("a:ban", None), now)
    await store.put_sanction(mute("a", None), now)
    await store.set("sanction:ban:a", b"value")
    assert await store.sanctions("a", now) == [mute("a", None)]
    assert await store.sanctions("a:ban", now) == [ban("a:ban", None)]
    assert await store.get("sanction:ban:a") == b"value"
    assert await store.delete("sanction:mute:a") is False
    assert await store.sanctions("a", now) == [mute("a", None)]


# -- compare-and-set, get_many, indexes ------------------------------------


async def test_compare_and_set_writes_only_over_the_expected_value(backend: Backend) -> None:
    store = backend.store
    assert await store.compare_and_set("k", None, b"v1") is True  # absent as expected
    assert await store.compare_and_set("k", None, b"v2") is False  # no longer absent
    assert await store.compare_and_set("k", b"other", b"v2") is False
    assert await store.get("k") == b"v1"
    assert await store.compare_and_set("k", b"v1", b"v2") is True
    assert await store.get("k") == b"v2"
    assert await store.compare_and_set("k", b"v1", None) is False
    assert await store.compare_and_set("k", b"v2", None) is True  # delete
    assert await store.get("k") is None


async def test_compare_and_set_ttl(backend: Backend) -> None:
    store = backend.store
    assert await store.compare_and_set("k", None, b"v", ttl=backend.ttl)
    assert await store.get("k") == b"v"
    await backend.pass_ttl()
    assert await store.get("k") is None
    assert await store.compare_and_set("k", None, b"again")  # expired counts as absent
    with pytest.raises(ValueError, match="ttl"):
        await store.compare_and_set("k", b"again", b"x", ttl=0)


async def test_compare_and_set_has_exactly_one_winner(backend: Backend) -> None:
    store = backend.store
    await store.set("k", b"0")
    results = await asyncio.gather(
        *(store.compare_and_set("k", b"0", str(i).encode()) for i in range(1, 11))
    )
    assert results.count(True) == 1
    winner = results.index(True) + 1
    assert await store.get("k") == str(winner).encode()


async def test_get_many_in_order(backend: Backend) -> None:
    store = backend.store
    await store.set("a", b"1")
    await store.set("c", b"3")
    assert await store.get_many(["a", "b", "c"]) == [b"1", None, b"3"]
    assert await store.get_many([]) == []


async def test_index_orders_by_score_then_member(backend: Backend) -> None:
    store = backend.store
    await store.index_add("queue", "b", 2.0)
    await store.index_add("queue", "a", 2.0)
    await store.index_add("queue", "c", 1.5)
    assert await store.index_members("queue") == [("c", 1.5), ("a", 2.0), ("b", 2.0)]
    await store.index_add("queue", "c", 3.0)  # re-adding replaces the score
    assert await store.index_members("queue") == [("a", 2.0), ("b", 2.0), ("c", 3.0)]
    assert await store.index_size("queue") == 3
    assert await store.index_remove("queue", "a") is True
    assert await store.index_remove("queue", "a") is False
    assert await store.index_members("queue") == [("b", 2.0), ("c", 3.0)]
    assert await store.index_members("empty") == []
    assert await store.index_size("empty") == 0


async def test_indexes_and_keys_do_not_collide(backend: Backend) -> None:
    store = backend.store
    await store.index_add("q", "m", 1.0)
    await store.set("index:q", b"value")
    assert await store.get("q") is None
    assert await store.index_members("q") == [("m", 1.0)]
    assert await store.index_members("index:q") == []


# -- pub/sub --------------------------------------------------------------


async def test_subscription_is_active_when_subscribe_returns(backend: Backend) -> None:
    subscription = await backend.store.subscribe("control")
    await backend.store.publish("control", b"first")
    assert await receive(subscription, 1) == [b"first"]


async def test_messages_arrive_in_publish_order(backend: Backend) -> None:
    subscription = await backend.store.subscribe("control")
    sent = [f"m{i}".encode() for i in range(50)]
    for message in sent:
        await backend.store.publish("control", message)
    assert await receive(subscription, 50) == sent


async def test_fan_out_to_every_subscription_of_the_channel(backend: Backend) -> None:
    store = backend.store
    first = await store.subscribe("control")
    second = await store.subscribe("control")
    elsewhere = await store.subscribe("other")
    await store.publish("control", b"a")
    await store.publish("control", b"b")
    await store.publish("other", b"z")
    assert await receive(first, 2) == [b"a", b"b"]
    assert await receive(second, 2) == [b"a", b"b"]
    assert await receive(elsewhere, 1) == [b"z"]  # not a or b
    await store.publish("nobody-listens", b"x")


async def test_closing_a_subscription_ends_it_and_spares_the_others(backend: Backend) -> None:
    store = backend.store
    closing = await store.subscribe("control")
    staying = await store.subscribe("control")
    received: list[bytes] = []

    async def consume() -> None:
        async for message in closing:
            received.append(message)

    consumer = asyncio.create_task(consume())
    await store.publish("control", b"before")
    await eventually(lambda: received == [b"before"])
    await closing.close()
    await closing.close()  # idempotent
    async with asyncio.timeout(unit(1)):
        await consumer  # the consumer's loop has ended
    await store.publish("control", b"after")
    assert await receive(staying, 2) == [b"before", b"after"]
    assert received == [b"before"]

    await staying.close()
    again = await store.subscribe("control")
    await store.publish("control", b"again")
    assert await receive(again, 1) == [b"again"]


async def test_pending_queue_is_bounded_and_drops_oldest(backend: Backend) -> None:
    store = backend.store
    subscription = await store.subscribe("control", max_pending=3)
    for i in range(10):
        await store.publish("control", str(i).encode())
    await eventually(lambda: subscription.dropped == 7)
    assert await receive(subscription, 3) == [b"7", b"8", b"9"]
    assert await quiet(subscription)
    assert subscription.dropped == 7


async def test_max_pending_must_be_positive(backend: Backend) -> None:
    with pytest.raises(ValueError, match="max_pending"):
        await backend.store.subscribe("control", max_pending=0)


# -- health and lifetime --------------------------------------------------


async def test_ping_and_close(backend: Backend) -> None:
    store = backend.store
    assert await store.ping() is True
    subscription = await store.subscribe("control")
    await store.close()
    await store.close()  # idempotent
    assert await store.ping() is False
    async with asyncio.timeout(unit(1)):
        assert [message async for message in subscription] == []
    with pytest.raises(StoreUnavailable):
        await store.get("k")
    with pytest.raises(StoreUnavailable):
        await store.set("k", b"v")
    with pytest.raises(StoreUnavailable):
        await store.publish("control", b"x")
    with pytest.raises(StoreUnavailable):
        await store.subscribe("control")
    with pytest.raises(StoreUnavailable):
        await store.sanctions("alice", backend.now())
