"""The in-process store: the default for a single replica.

What it owns: one dict of entries (values, counters and sanctions, each under
its own internal namespace so they cannot collide), a heap of expiry times,
and the local pub/sub channels.

Invariants, beyond those in ``base.py``:

* Time comes only from the injected ``clock``; an entry whose expiry is not
  after ``clock()`` is gone, whether or not it has been swept yet.
* Bounded: at most ``max_keys`` entries (each index member counts as one).
  A write that would add an entry to a full store first purges every
  expired entry, then raises ``StoreFull``;
  overwriting an existing entry is always allowed.
* Expired entries do not pile up: each write pops a bounded batch of due
  expiry records off the heap, so no write pays for a large backlog, and
  the heap is rebuilt when stale records (from keys re-set or deleted)
  outnumber live entries.
* Every operation runs without awaiting, so each is atomic on the event loop;
  that is what makes ``set_if_absent`` exact. The store belongs to one event
  loop and is not thread-safe.

It never does I/O and never reads the wall clock directly.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chatguard.stores.base import (
    DEFAULT_MAX_PENDING,
    QueueSubscription,
    Sanction,
    SanctionKind,
    Store,
    StoreError,
    StoreFull,
    StoreUnavailable,
    Subscription,
    check_ttl,
)

#: Default bound on entries (values, counters and sanctions together).
DEFAULT_MAX_KEYS = 1_000_000

#: Expired entries removed per write; bounds the latency a sweep adds.
SWEEP_BATCH = 64


@dataclass(slots=True)
class _Entry:
    value: bytes
    expires_at: float | None


def _key(key: str) -> str:
    return "key:" + key


def _sanction_key(user: str, kind: SanctionKind) -> str:
    # The kind goes first: it never contains ":", so the user part cannot
    # make one sanction's name equal to another's.
    return f"sanction:{kind.value}:{user}"


class MemoryStore(Store):
    """Shared state for one process; TTLs are measured with ``clock``."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys!r}")
        self.max_keys = max_keys
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        # (expires_at, name): a record is stale when the entry has since been
        # deleted or given another expiry; stale records are skipped.
        self._expiries: list[tuple[float, str]] = []
        self._channels: dict[str, set[QueueSubscription]] = {}
        self._indexes: dict[str, dict[str, float]] = {}
        self._index_members = 0
        self._closed = False

    @property
    def size(self) -> int:
        """Entries held, counting expired ones not yet swept."""
        return len(self._entries)

    # -- keys -------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        self._check_open()
        entry = self._live(_key(key))
        return None if entry is None else entry.value

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._check_open()
        check_ttl(ttl)
        self._write(_key(key), value, ttl)

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        self._check_open()
        check_ttl(ttl)
        if self._live(_key(key)) is not None:
            return False
        self._write(_key(key), value, ttl)
        return True

    async def delete(self, key: str) -> bool:
        self._check_open()
        existed = self._live(_key(key)) is not None
        self._entries.pop(_key(key), None)
        return existed

    async def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes | None, ttl: float | None = None
    ) -> bool:
        self._check_open()
        check_ttl(ttl)
        entry = self._live(_key(key))
        current = None if entry is None else entry.value
        if current != expected:
            return False
        if value is None:
            self._entries.pop(_key(key), None)
        else:
            self._write(_key(key), value, ttl)
        return True

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self._check_open()
        found = []
        for key in keys:
            entry = self._live(_key(key))
            found.append(None if entry is None else entry.value)
        return found

    # -- indexes ----------------------------------------------------------
    async def index_add(self, index: str, member: str, score: float) -> None:
        self._check_open()
        members = self._indexes.get(index)
        if members is None or member not in members:
            if len(self._entries) + self._index_members >= self.max_keys:
                self._sweep(self._clock(), None)
                if len(self._entries) + self._index_members >= self.max_keys:
                    raise StoreFull(
                        f"in-process store holds max_keys={self.max_keys} entries; "
                        "raise store.max_keys or use the redis backend"
                    )
            self._index_members += 1
        self._indexes.setdefault(index, {})[member] = score

    async def index_remove(self, index: str, member: str) -> bool:
        self._check_open()
        members = self._indexes.get(index)
        if members is None or member not in members:
            return False
        del members[member]
        self._index_members -= 1
        if not members:
            del self._indexes[index]
        return True

    async def index_members(self, index: str) -> list[tuple[str, float]]:
        self._check_open()
        members = self._indexes.get(index, {})
        return sorted(members.items(), key=lambda item: (item[1], item[0]))

    async def index_size(self, index: str) -> int:
        self._check_open()
        return len(self._indexes.get(index, ()))

    # -- counters ---------------------------------------------------------
    async def incr(self, key: str, by: int = 1, ttl: float | None = None) -> int:
        self._check_open()
        check_ttl(ttl)
        name = _key(key)
        entry = self._live(name)
        if entry is None:
            self._write(name, str(by).encode(), ttl)
            return by
        try:
            value = int(entry.value) + by
        except ValueError:
            raise StoreError(f"value of {key!r} is not an integer") from None
        entry.value = str(value).encode()  # in place: the expiry is the window's
        return value

    # -- sanctions --------------------------------------------------------
    async def put_sanction(self, sanction: Sanction, now: float) -> None:
        self._check_open()
        name = _sanction_key(sanction.user, sanction.kind)
        if sanction.until is None:
            self._write(name, sanction.to_json(), None)
        elif sanction.until > now:
            self._write(name, sanction.to_json(), sanction.until - now)
        else:
            self._entries.pop(name, None)

    async def sanctions(self, user: str, now: float) -> list[Sanction]:
        self._check_open()
        found = []
        for kind in SanctionKind:
            entry = self._live(_sanction_key(user, kind))
            if entry is None:
                continue
            sanction = Sanction.from_json(entry.value)
            if sanction.until is None or sanction.until > now:
                found.append(sanction)
        return found

    async def lift_sanction(self, user: str, kind: SanctionKind) -> bool:
        self._check_open()
        name = _sanction_key(user, kind)
        existed = self._live(name) is not None
        self._entries.pop(name, None)
        return existed

    # -- pub/sub ----------------------------------------------------------
    async def publish(self, channel: str, message: bytes) -> None:
        self._check_open()
        for subscription in tuple(self._channels.get(channel, ())):
            subscription.deliver(message)

    async def subscribe(self, channel: str, max_pending: int = DEFAULT_MAX_PENDING) -> Subscription:
        self._check_open()

        async def unsubscribe(subscription: QueueSubscription) -> None:
            members = self._channels.get(channel)
            if members is not None:
                members.discard(subscription)
                if not members:
                    del self._channels[channel]

        subscription = QueueSubscription(max_pending, unsubscribe)
        self._channels.setdefault(channel, set()).add(subscription)
        return subscription

    # -- health and lifetime ----------------------------------------------
    async def ping(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        self._closed = True
        for members in self._channels.values():
            for subscription in members:
                subscription.detach()
        self._channels.clear()
        self._entries.clear()
        self._expiries.clear()
        self._indexes.clear()
        self._index_members = 0

    # -- internals --------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("store is closed")

    def _live(self, name: str) -> _Entry | None:
        entry = self._entries.get(name)
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= self._clock():
            del self._entries[name]
            return None
        return entry

    def _write(self, name: str, value: bytes, ttl: float | None) -> None:
        now = self._clock()
        self._sweep(now, SWEEP_BATCH)
        if name not in self._entries and len(self._entries) >= self.max_keys:
            self._sweep(now, None)
            if len(self._entries) >= self.max_keys:
                raise StoreFull(
                    f"in-process store holds max_keys={self.max_keys} live entries; "
                    "raise store.max_keys or use the redis backend"
                )
        expires_at = None if ttl is None else now + ttl
        self._entries[name] = _Entry(value, expires_at)
        if expires_at is not None:
            heapq.heappush(self._expiries, (expires_at, name))
            if len(self._expiries) > 2 * len(self._entries) + SWEEP_BATCH:
                self._compact()

    def _sweep(self, now: float, limit: int | None) -> None:
        """Pop up to ``limit`` (None: all) due expiry records, oldest first."""
        popped = 0
        while self._expiries and self._expiries[0][0] <= now:
            if limit is not None and popped >= limit:
                return
            expires_at, name = heapq.heappop(self._expiries)
            popped += 1
            entry = self._entries.get(name)
            if entry is not None and entry.expires_at == expires_at:
                del self._entries[name]

    def _compact(self) -> None:
        self._expiries = [
            (entry.expires_at, name)
            for name, entry in self._entries.items()
            if entry.expires_at is not None
        ]
        heapq.heapify(self._expiries)
