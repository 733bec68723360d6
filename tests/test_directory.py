"""Directory: attested age bands in a real store, and room membership (bounded)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis.asyncio

from chatguard.directory import MAX_MEMBERS, MAX_ROOMS, USER_TTL, Directory
from chatguard.events import Identity
from chatguard.stores import MemoryStore, RedisStore, Store
from tests.support.redis_server import free_port


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def person(user: str, band: str | None) -> Identity:
    attrs = {} if band is None else {"age_band": band}
    return Identity(user, user.title(), attrs)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "memory":
        return MemoryStore(Clock())
    redis_store: Store = request.getfixturevalue("redis_store")
    return redis_store


# -- attested age bands ------------------------------------------------------------


@pytest.mark.parametrize(
    ("recorded", "user", "expected"),
    [
        ([("amy", "minor")], "amy", "minor"),
        ([("bob", "adult")], "bob", "adult"),
        ([("cat", None)], "cat", "unknown"),  # no attested band is "unknown"
        ([("amy", "minor")], "bob", "unknown"),  # never recorded
        ([("amy", "unknown"), ("amy", "minor")], "amy", "minor"),  # the newest wins
        ([("amy", "minor"), ("amy", "adult")], "amy", "adult"),  # a new band replaces the old
        # An attestation without a band says nothing about age: it keeps the known one.
        ([("amy", "minor"), ("amy", None)], "amy", "minor"),
        ([("amy", "minor"), ("amy", "unknown")], "amy", "minor"),
        ([("amy", "minor"), ("bob", "adult")], "amy", "minor"),  # users kept apart
    ],
)
async def test_an_attested_band_is_read_back_from_the_store(
    store: Store, recorded: list[tuple[str, str | None]], user: str, expected: str
) -> None:
    directory = Directory(store)
    for name, band in recorded:
        await directory.record(person(name, band))
    assert await directory.age_band(user) == expected


async def test_a_band_learned_on_one_replica_is_known_on_another(
    redis_store_factory: Callable[..., RedisStore],
) -> None:
    here, there = Directory(redis_store_factory()), Directory(redis_store_factory())
    await here.record(person("amy", "minor"))
    assert await there.age_band("amy") == "minor"


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [(0.0, "minor"), (USER_TTL - 1.0, "minor"), (USER_TTL, "unknown"), (USER_TTL * 2, "unknown")],
)
async def test_a_band_expires_after_the_user_ttl(elapsed: float, expected: str) -> None:
    clock = Clock()
    directory = Directory(MemoryStore(clock))
    await directory.record(person("amy", "minor"))
    clock.now += elapsed
    assert await directory.age_band("amy") == expected


async def test_a_band_in_redis_carries_the_user_ttl(
    redis_store: RedisStore, redis_url: str, redis_prefix: str
) -> None:
    await Directory(redis_store).record(person("amy", "minor"))
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        ttl_ms = await client.pttl(f"{redis_prefix}key:user:amy:age_band")
    finally:
        await client.aclose()
    assert USER_TTL * 1000 - 60_000 < ttl_ms <= USER_TTL * 1000


async def test_an_unreachable_redis_degrades_to_unknown() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", "chatguard-test:")
    try:
        directory = Directory(store)
        await directory.record(person("amy", "minor"))  # does not raise
        assert await directory.age_band("amy") == "unknown"
    finally:
        await store.close()


async def test_a_closed_store_degrades_to_unknown() -> None:
    store = MemoryStore(Clock())
    directory = Directory(store)
    await directory.record(person("amy", "minor"))
    await store.close()
    await directory.record(person("bob", "adult"))  # does not raise
    assert await directory.age_band("amy") == "unknown"


async def test_a_full_store_drops_the_write_and_keeps_chat_going() -> None:
    store = MemoryStore(Clock(), max_keys=1)
    directory = Directory(store)
    await directory.record(person("amy", "minor"))
    await directory.record(person("bob", "adult"))  # store full: dropped, no error
    assert await directory.age_band("amy") == "minor"
    assert await directory.age_band("bob") == "unknown"
    await store.close()


# -- room membership ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "room", "expected"),
    [
        ([], "lobby", set()),
        ([("join", "lobby", "amy"), ("join", "lobby", "bob")], "lobby", {"amy", "bob"}),
        ([("join", "lobby", "amy"), ("join", "lobby", "amy")], "lobby", {"amy"}),
        ([("join", "lobby", "amy"), ("join", "games", "bob")], "lobby", {"amy"}),
        (
            [("join", "lobby", "amy"), ("join", "lobby", "bob"), ("leave", "lobby", "amy")],
            "lobby",
            {"bob"},
        ),
        ([("leave", "lobby", "amy")], "lobby", set()),  # leaving unseen is harmless
        ([("join", "lobby", "amy"), ("leave", "lobby", "cat")], "lobby", {"amy"}),
        ([("join", "lobby", "amy"), ("leave", "lobby", "amy")], "lobby", set()),
        (
            [("join", "lobby", "amy"), ("leave", "lobby", "amy"), ("join", "lobby", "amy")],
            "lobby",
            {"amy"},
        ),
    ],
)
def test_room_membership_follows_joins_and_leaves(
    events: list[tuple[str, str, str]], room: str, expected: set[str]
) -> None:
    directory = Directory(MemoryStore(Clock()))
    for kind, where, user in events:
        if kind == "join":
            directory.joined(where, user)
        else:
            directory.left(where, user)
    assert directory.members(room) == frozenset(expected)


def test_the_room_table_forgets_the_least_recently_joined_room_first() -> None:
    directory = Directory(MemoryStore(Clock()))
    for n in range(MAX_ROOMS):
        directory.joined(f"room-{n}", "amy")
    directory.joined("room-0", "bob")  # room-0 is fresh again; room-1 is now the oldest
    directory.joined("one-more", "cat")
    assert directory.members("room-0") == {"amy", "bob"}
    assert directory.members("room-1") == frozenset()
    assert directory.members("room-2") == {"amy"}
    assert directory.members("one-more") == {"cat"}


def test_an_emptied_room_gives_its_place_back() -> None:
    directory = Directory(MemoryStore(Clock()))
    for n in range(MAX_ROOMS):
        directory.joined(f"room-{n}", "amy")
    directory.left("room-5", "amy")
    directory.joined("one-more", "cat")
    assert directory.members("room-0") == {"amy"}  # nothing had to be evicted
    assert directory.members("one-more") == {"cat"}


def test_a_room_keeps_at_most_max_members() -> None:
    directory = Directory(MemoryStore(Clock()))
    for n in range(MAX_MEMBERS + 10):
        directory.joined("stadium", f"user-{n}")
    members = directory.members("stadium")
    assert len(members) == MAX_MEMBERS
    assert "user-0" in members
    assert f"user-{MAX_MEMBERS}" not in members
    directory.left("stadium", "user-0")
    directory.joined("stadium", f"user-{MAX_MEMBERS}")  # a place came free
    assert f"user-{MAX_MEMBERS}" in directory.members("stadium")
