"""Console sessions in the shared store (memory and Redis): random ids, CSRF
tokens, expiry, only hashes in the store, a bound per account."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from chatguard.console.sessions import KEY, Session, Sessions, csrf_ok
from chatguard.stores import MemoryStore, RedisStore, Store
from tests.support.clock import FakeClock


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    made: Store
    if request.param == "memory":
        made = MemoryStore(FakeClock(time.time()))
    else:
        made = RedisStore(
            request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        )
    yield made
    await made.close()


async def test_open_get_expire_close(store: Store) -> None:
    sessions = Sessions(store, ttl=100, per_account=10)
    now = time.time()
    s = await sessions.open("mia", now)
    assert await sessions.get(s.id, now + 50) == s
    assert await sessions.get(s.id, now + 100) is None  # expired
    s2 = await sessions.open("mia", now)
    await sessions.close(s2)
    assert await sessions.get(s2.id, now + 1) is None
    assert await sessions.get(None, now) is None
    assert await sessions.get("guess", now) is None
    assert await sessions.get("x" * 10_000, now) is None


async def test_another_replica_sees_the_session(store: Store) -> None:
    now = time.time()
    s = await Sessions(store, ttl=100, per_account=10).open("mia", now, via="sso")
    assert await Sessions(store, ttl=100, per_account=10).get(s.id, now) == s


async def test_ids_and_csrf_tokens_are_random_and_only_hashes_are_stored(store: Store) -> None:
    sessions = Sessions(store, ttl=100, per_account=100)
    now = time.time()
    opened = [await sessions.open("mia", now) for _ in range(20)]
    values = {s.id for s in opened} | {s.csrf for s in opened}
    assert len(values) == 40
    assert all(len(v) >= 40 for v in values)
    for s in opened:
        assert await store.get(KEY + s.id) is None  # the id itself is never a key


async def test_sessions_per_account_are_bounded_oldest_first(store: Store) -> None:
    sessions = Sessions(store, ttl=100, per_account=3)
    now = time.time()
    first = await sessions.open("mia", now)
    rest = [await sessions.open("mia", now + i + 1) for i in range(3)]
    other = await sessions.open("max", now)
    assert await sessions.get(first.id, now + 5) is None
    for s in rest:
        assert await sessions.get(s.id, now + 5) == s
    assert await sessions.get(other.id, now + 5) == other
    assert await sessions.count("mia", now + 5) == 3


def test_csrf_check() -> None:

    s = Session("id", "a", "token-" + "x" * 40, 1.0)
    assert csrf_ok(s, s.csrf)
    assert not csrf_ok(s, None)
    assert not csrf_ok(s, "")
    assert not csrf_ok(s, s.csrf[:-1])
