"""Sign-in rate limiting in the shared store (memory with a moved clock, and
Redis): per account, per address, a fixed window, shared by replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from chatguard.console.limits import PREFIX, SignInLimits
from chatguard.stores import MemoryStore, RedisStore, Store
from tests.support.clock import FakeClock
from tests.support.timing import unit

KEYS = ("account:mia", "address:10.0.0.1")


@dataclass
class Setup:
    store: Store
    clock: FakeClock | None  # None: real Redis, real time


@pytest.fixture(params=["memory", "redis"])
async def setup(request: pytest.FixtureRequest) -> AsyncIterator[Setup]:
    if request.param == "memory":
        clock = FakeClock()
        memory = MemoryStore(clock)
        yield Setup(memory, clock)
        await memory.close()
    else:
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        redis = RedisStore(url, prefix)
        yield Setup(redis, None)
        await redis.close()


async def test_refused_after_max_failures_until_the_window_passes(setup: Setup) -> None:
    limits = SignInLimits(setup.store, max_failures=3, window=60 if setup.clock else 0.5)
    for _ in range(3):
        assert await limits.retry_after(KEYS) == 0
        await limits.failed(KEYS)
    assert await limits.retry_after(KEYS) == limits.window
    if setup.clock is not None:
        setup.clock.advance(61)
    else:
        await asyncio.sleep(unit(0.6))  # Redis expires the counter on its own clock
    assert await limits.retry_after(KEYS) == 0


async def test_the_address_is_limited_across_accounts(setup: Setup) -> None:
    limits = SignInLimits(setup.store, max_failures=2, window=60)
    await limits.failed(("account:a", "address:1.2.3.4"))
    await limits.failed(("account:b", "address:1.2.3.4"))
    assert await limits.retry_after(("account:c", "address:1.2.3.4")) > 0
    assert await limits.retry_after(("account:c", "address:5.6.7.8")) == 0


async def test_the_account_is_limited_across_addresses_and_replicas(setup: Setup) -> None:
    one = SignInLimits(setup.store, max_failures=2, window=60)
    two = SignInLimits(setup.store, max_failures=2, window=60)  # another replica
    await one.failed(("account:a", "address:1.1.1.1"))
    await two.failed(("account:a", "address:2.2.2.2"))
    assert await one.retry_after(("account:a", "address:3.3.3.3")) > 0
    assert await two.retry_after(("account:a", "address:3.3.3.3")) > 0


async def test_success_clears_the_account_but_not_the_address(setup: Setup) -> None:
    limits = SignInLimits(setup.store, max_failures=2, window=60)
    await limits.failed(KEYS)
    await limits.failed(KEYS)
    await limits.succeeded(KEYS[0])
    assert await limits.retry_after((KEYS[0],)) == 0
    assert await limits.retry_after((KEYS[1],)) > 0


async def test_store_keys_are_short_hashes_that_expire(setup: Setup) -> None:
    limits = SignInLimits(setup.store, max_failures=2, window=60)
    huge = "account:" + "x" * 100_000
    await limits.failed((huge,))
    assert await limits.retry_after((huge,)) == 0
    await limits.failed((huge,))
    assert await limits.retry_after((huge,)) > 0
    assert await setup.store.get(PREFIX + huge) is None  # never the raw key
