"""What only the Redis store promises: replicas share it, and it fails softly.

Several ``RedisStore`` instances on one prefix stand for several sidecar
replicas. Everything runs against a real Redis (see
``tests/support/redis_server.py``); a private ``redis-server`` is started
where a test must stop and restart Redis.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio

from chatguard.stores import (
    RedisStore,
    Sanction,
    SanctionKind,
    StoreUnavailable,
    Subscription,
    open_store,
)
from tests.support.redis_server import RedisServer, free_port
from tests.support.timing import unit

MakeStore = Callable[..., RedisStore]


async def receive(subscription: Subscription, count: int) -> list[bytes]:
    messages = aiter(subscription)
    async with asyncio.timeout(unit(2)):
        return [await anext(messages) for _ in range(count)]


async def test_replicas_on_one_prefix_share_keys_and_counters(
    redis_store_factory: MakeStore,
) -> None:
    one, two = redis_store_factory(), redis_store_factory()
    await one.set("k", b"v")
    assert await two.get("k") == b"v"
    assert await two.delete("k") is True
    assert await one.get("k") is None
    await asyncio.gather(*(store.incr("c") for store in (one, two) for _ in range(10)))
    assert await one.get("c") == b"20"


async def test_replicas_race_for_a_lease_and_one_wins(redis_store_factory: MakeStore) -> None:
    replicas = [redis_store_factory() for _ in range(4)]
    results = await asyncio.gather(
        *(store.set_if_absent("lease", b"x", ttl=60) for store in replicas for _ in range(5))
    )
    assert results.count(True) == 1


async def test_replicas_share_sanctions(redis_store_factory: MakeStore) -> None:
    one, two = redis_store_factory(), redis_store_factory()
    now = time.time()
    ban = Sanction("alice", SanctionKind.BAN, "abuse", None, by="mod")
    await one.put_sanction(ban, now)
    assert await two.sanctions("alice", now) == [ban]
    assert await two.lift_sanction("alice", SanctionKind.BAN) is True
    assert await one.sanctions("alice", now) == []


async def test_a_message_reaches_subscriptions_on_every_replica(
    redis_store_factory: MakeStore,
) -> None:
    one, two = redis_store_factory(), redis_store_factory()
    on_one = await one.subscribe("control")
    on_two = await two.subscribe("control")
    await two.publish("control", b"from two")
    await one.publish("control", b"from one")
    assert await receive(on_one, 2) == [b"from two", b"from one"]
    assert await receive(on_two, 2) == [b"from two", b"from one"]


async def test_prefixes_keep_deployments_apart(
    redis_store_factory: MakeStore, redis_prefix: str
) -> None:
    ours = redis_store_factory()
    theirs = redis_store_factory(key_prefix=redis_prefix + "other:")
    mine = await ours.subscribe("control")
    await theirs.set("k", b"theirs")
    await theirs.publish("control", b"theirs")
    await ours.publish("control", b"ours")
    assert await ours.get("k") is None
    assert await receive(mine, 1) == [b"ours"]


async def test_keys_follow_the_documented_layout(
    redis_store: RedisStore, redis_url: str, redis_prefix: str
) -> None:
    await redis_store.set("k", b"v", ttl=30)
    await redis_store.incr("c")
    await redis_store.put_sanction(Sanction("alice", SanctionKind.MUTE, "spam", None), 0.0)
    now = time.time()
    await redis_store.put_sanction(Sanction("bob", SanctionKind.BAN, "abuse", now + 60), now)
    async with redis.asyncio.Redis.from_url(redis_url) as raw:
        assert 0 < await raw.pttl(f"{redis_prefix}key:k") <= 30_000
        assert await raw.pttl(f"{redis_prefix}key:c") == -1
        assert await raw.pttl(f"{redis_prefix}sanction:mute:alice") == -1
        assert 0 < await raw.pttl(f"{redis_prefix}sanction:ban:bob") <= 60_000


async def test_subscriptions_share_one_redis_subscription_per_channel(
    redis_store: RedisStore, redis_url: str, redis_prefix: str
) -> None:
    channel = f"{redis_prefix}channel:control"
    subscriptions = await asyncio.gather(*(redis_store.subscribe("control") for _ in range(5)))
    async with redis.asyncio.Redis.from_url(redis_url) as raw:
        assert await raw.pubsub_numsub(channel) == [(channel.encode(), 1)]
        await redis_store.publish("control", b"m")
        for subscription in subscriptions:
            assert await receive(subscription, 1) == [b"m"]
            await subscription.close()
        # UNSUBSCRIBE is sent when the last one closes; Redis applies it soon after.
        async with asyncio.timeout(unit(2)):
            while True:
                if await raw.pubsub_numsub(channel) == [(channel.encode(), 0)]:
                    break
                await asyncio.sleep(0.01)


async def test_unreachable_redis_is_unavailable_not_a_crash() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    try:
        assert await store.ping() is False
        with pytest.raises(StoreUnavailable):
            await store.get("k")
        with pytest.raises(StoreUnavailable):
            await store.incr("c", ttl=1)
        with pytest.raises(StoreUnavailable):
            await store.publish("control", b"x")
        with pytest.raises(StoreUnavailable):
            await store.subscribe("control")
    finally:
        await store.close()


async def test_open_store_builds_a_redis_store(redis_url: str, redis_prefix: str) -> None:
    store = open_store("redis", redis_url, redis_prefix)
    try:
        assert isinstance(store, RedisStore)
        assert store.key_prefix == redis_prefix
        assert await store.ping() is True
    finally:
        await store.close()


async def test_close_leaves_no_task_behind(redis_store_factory: MakeStore) -> None:
    store = redis_store_factory()
    await store.subscribe("control")
    before = asyncio.all_tasks()
    await store.close()
    assert not [task for task in asyncio.all_tasks() - before if not task.done()]
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "chatguard-redis-pubsub"]


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
async def test_store_recovers_when_redis_restarts(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    await asyncio.to_thread(server.start)
    store = RedisStore(server.url)
    try:
        subscription = await store.subscribe("control")
        await store.set("k", b"v")

        await asyncio.to_thread(server.stop)
        assert await store.ping() is False
        with pytest.raises(StoreUnavailable):
            await store.get("k")

        await asyncio.to_thread(server.start)
        assert await store.ping() is True
        assert await store.get("k") is None  # no persistence: Redis came back empty
        # The reader resubscribes on its own; publish until it is back.
        async with asyncio.timeout(unit(5)):
            while True:
                await store.publish("control", b"after restart")
                try:
                    async with asyncio.timeout(unit(0.2)):
                        assert await anext(aiter(subscription)) == b"after restart"
                    break
                except TimeoutError:
                    continue
    finally:
        await store.close()
        await asyncio.to_thread(server.stop)
