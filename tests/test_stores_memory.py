"""What only the memory store promises: its bound, its sweep, its clock.

The shared contract is in ``test_stores_contract.py``; time here moves only
by a fake clock passed to the store.
"""

from __future__ import annotations

import math

import pytest

from chatguard.stores import (
    DEFAULT_MAX_KEYS,
    MemoryStore,
    Sanction,
    SanctionKind,
    StoreError,
    StoreFull,
    open_store,
)
from chatguard.stores.memory import SWEEP_BATCH
from tests.support.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_default_bound_is_a_million_keys() -> None:
    assert DEFAULT_MAX_KEYS == 1_000_000
    assert MemoryStore().max_keys == DEFAULT_MAX_KEYS


def test_max_keys_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_keys"):
        MemoryStore(max_keys=0)


async def test_full_store_refuses_new_keys_but_not_updates(clock: FakeClock) -> None:
    store = MemoryStore(clock, max_keys=3)
    for key in ("a", "b", "c"):
        await store.set(key, b"v")
    with pytest.raises(StoreFull, match="max_keys=3"):
        await store.set("d", b"v")
    with pytest.raises(StoreFull):
        await store.incr("d")
    with pytest.raises(StoreFull):
        await store.set_if_absent("d", b"v")
    with pytest.raises(StoreFull):
        await store.put_sanction(Sanction("u", SanctionKind.MUTE, "r"), clock())
    assert issubclass(StoreFull, StoreError)  # callers' catch-all keeps chat flowing

    await store.set("a", b"updated")  # existing entries can still change
    await store.set("c", b"1")
    assert await store.incr("c") == 2
    assert await store.set_if_absent("a", b"v") is False
    assert await store.get("d") is None
    assert await store.delete("a") is True
    await store.set("d", b"v")
    assert store.size == 3


async def test_expired_entries_make_room_in_a_full_store(clock: FakeClock) -> None:
    store = MemoryStore(clock, max_keys=100)
    for i in range(100):
        await store.set(f"old{i}", b"v", ttl=60)
    clock.advance(61)
    for i in range(100):
        await store.set(f"new{i}", b"v")
    with pytest.raises(StoreFull):
        await store.set("one-too-many", b"v")


async def test_full_store_purges_everything_expired_before_refusing(clock: FakeClock) -> None:
    store = MemoryStore(clock, max_keys=2)
    # Re-setting "a" leaves stale expiry records that fill a whole sweep
    # batch, so only the full purge can find the room.
    for i in range(SWEEP_BATCH + 1):
        await store.set("a", b"v", ttl=1 + i / 1000)
    await store.set("b", b"v", ttl=2)
    clock.advance(3)
    await store.set("c", b"v")
    assert store.size == 1


async def test_expiry_is_exact_on_the_clock(clock: FakeClock) -> None:
    store = MemoryStore(clock)
    await store.set("k", b"v", ttl=10)
    clock.advance(9.999)
    assert await store.get("k") == b"v"
    clock.advance(0.001)
    assert await store.get("k") is None


async def test_writes_sweep_expired_entries_in_bounded_batches(clock: FakeClock) -> None:
    store = MemoryStore(clock)
    expiring = 3 * SWEEP_BATCH + 10
    for i in range(expiring):
        await store.set(f"old{i}", b"v", ttl=1)
    await store.set("forever", b"v")
    clock.advance(2)
    assert store.size == expiring + 1  # nothing swept without a write

    await store.set("new0", b"v")
    assert store.size == expiring + 1 - SWEEP_BATCH + 1  # one batch, no more
    writes = math.ceil(expiring / SWEEP_BATCH)
    for i in range(1, writes):
        await store.set(f"new{i}", b"v")
    assert store.size == 1 + writes  # "forever" and the new keys
    assert await store.get("forever") == b"v"


async def test_re_setting_a_key_keeps_only_its_latest_expiry(clock: FakeClock) -> None:
    store = MemoryStore(clock)
    for _ in range(10 * SWEEP_BATCH):
        await store.set("k", b"v", ttl=5)
        clock.advance(1)
    await store.set("k", b"last", ttl=5)
    clock.advance(4)
    await store.set("other", b"v")  # sweeps every older expiry record of "k"
    assert await store.get("k") == b"last"


async def test_sanction_expiry_follows_the_clock(clock: FakeClock) -> None:
    store = MemoryStore(clock)
    now = clock()
    await store.put_sanction(Sanction("u", SanctionKind.BAN, "r", until=now + 5), now)
    assert store.size == 1
    clock.advance(5)
    assert await store.sanctions("u", now) == []
    assert store.size == 0


async def test_delivery_to_a_slow_subscriber_never_blocks_publish(clock: FakeClock) -> None:
    store = MemoryStore(clock)
    subscription = await store.subscribe("control", max_pending=1)
    for i in range(10_000):
        await store.publish("control", str(i).encode())
    assert subscription.dropped == 9_999


def test_open_store_builds_the_configured_backend(clock: FakeClock) -> None:
    store = open_store("memory", None, "ignored:", clock, max_keys=5)
    assert isinstance(store, MemoryStore)
    assert store.max_keys == 5
    with pytest.raises(ValueError, match="memory, redis"):
        open_store("etcd", None, "chatguard:", clock)


async def test_index_members_count_toward_max_keys() -> None:
    store = MemoryStore(max_keys=2)
    await store.set("k", b"v")
    await store.index_add("q", "a", 1.0)
    await store.index_add("q", "a", 2.0)  # replacing a member adds nothing
    with pytest.raises(StoreFull):
        await store.index_add("q", "b", 1.0)
    assert await store.index_remove("q", "a")
    await store.index_add("q", "b", 1.0)
