"""The one interface for state that sidecar replicas may need to share.

What it owns: keys with optional expiry (per-conversation state, leases,
"shown once" markers), counters with expiry (frequency caps, rate windows),
sanctions (mute, ban) that expire by themselves, and pub/sub channels for
control messages between replicas (a moderator's action reaching whichever
replica holds the user's session).

Invariants every backend keeps (the contract tests in
``tests/test_stores_contract.py`` check each one against every backend):

* Values are ``bytes``; callers serialise. Keys are ``str``.
* ``ttl`` is in seconds (float); ``None`` means no expiry. Expired entries are
  never returned.
* ``incr`` sets the expiry only when it creates the counter, so a counter is a
  fixed window that starts at its first increment.
* ``set_if_absent`` is atomic across replicas: of several concurrent callers
  exactly one gets ``True``.
* A message published on a channel reaches every subscription that existed
  when it was published, in publish order per publisher.
* Every operation is bounded: a subscription's undelivered queue holds at most
  ``max_pending`` messages and drops the oldest beyond that (counted in
  ``Subscription.dropped``).
* A ``ttl`` that is given must be positive; ``ValueError`` otherwise (Redis
  rejects a zero expiry, so no backend accepts one).
* Counters share the keyspace of values: ``get`` on a counter returns its
  decimal value as ASCII bytes, and ``incr`` on a value that is not a decimal
  integer raises ``StoreError``.
* Sanctions are not keys: ``get``/``set`` never see them. Replacing a
  sanction also replaces its expiry (a permanent one replaced by a timed one
  expires, and the other way round). A sanction whose ``until`` is not after
  ``now`` is not stored, and removes the one it would replace.
* Failures are typed: a backend that cannot be reached raises
  ``StoreUnavailable``, a full in-process store raises ``StoreFull``; both are
  ``StoreError``, which callers catch so that chat keeps flowing. ``ping``
  never raises. After ``close`` (idempotent) ``ping`` is False, open
  subscriptions have ended, and every other call raises ``StoreUnavailable``.
* Pub/sub is at-most-once: a message published while a subscriber's link to
  the backend is down is lost, never replayed.
* ``compare_and_set`` is atomic across replicas: it writes (or, with
  ``value=None``, deletes) only when the key's current value equals
  ``expected`` (``None``: the key is absent), so read-modify-write cycles on
  shared records (cases) cannot lose a concurrent update.
* Indexes are named sets of string members, each with a float score, kept in
  their own namespace (``get`` never sees them). ``index_members`` returns
  members in ascending score order (ties by member). Adding a member that is
  there already replaces its score. Indexes have no expiry; callers bound
  their size.

This module never does I/O; backends live in ``memory.py`` and ``redis.py``.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

#: Default bound on a subscription's queue of undelivered messages.
DEFAULT_MAX_PENDING = 1000


class StoreError(Exception):
    """A store operation failed; callers catch this so chat keeps flowing."""


class StoreUnavailable(StoreError):
    """The backend cannot be reached (or the store is closed)."""


class StoreFull(StoreError):
    """An in-process store is at its ``max_keys`` bound and refuses a new key."""


def check_ttl(ttl: float | None) -> None:
    """Reject a ``ttl`` that no backend can honour (see the module doc)."""
    if ttl is not None and not ttl > 0:
        raise ValueError(f"ttl must be positive seconds or None, got {ttl!r}")


class SanctionKind(enum.Enum):
    MUTE = "mute"
    BAN = "ban"


@dataclass(frozen=True, slots=True)
class Sanction:
    """A sanction on a user. ``until`` is a UNIX time, ``None`` for permanent."""

    user: str
    kind: SanctionKind
    reason: str
    until: float | None = None
    by: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "user": self.user,
                "kind": self.kind.value,
                "reason": self.reason,
                "until": self.until,
                "by": self.by,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Sanction:
        d = json.loads(data)
        return cls(d["user"], SanctionKind(d["kind"]), d["reason"], d["until"], d["by"])


class Subscription(abc.ABC):
    """An open subscription to one channel; iterate to receive messages."""

    dropped: int = 0

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[bytes]: ...

    @abc.abstractmethod
    async def close(self) -> None: ...


class QueueSubscription(Subscription):
    """A subscription whose backend pushes messages into a bounded local queue.

    ``deliver`` never blocks and never grows the queue past ``max_pending``:
    the oldest undelivered message makes room and ``dropped`` counts it, so a
    slow consumer costs memory in proportion to ``max_pending``, not to
    traffic. Once closed (by the consumer, or by the store via ``detach``),
    iteration ends and undelivered messages are discarded.
    """

    def __init__(
        self,
        max_pending: int = DEFAULT_MAX_PENDING,
        on_close: Callable[[QueueSubscription], Awaitable[None]] | None = None,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending!r}")
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: deque[bytes] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._on_close = on_close

    @property
    def closed(self) -> bool:
        return self._closed

    def deliver(self, message: bytes) -> None:
        if self._closed:
            return
        if len(self._pending) >= self.max_pending:
            self._pending.popleft()
            self.dropped += 1
        self._pending.append(message)
        self._ready.set()

    def detach(self) -> None:
        """End the subscription without telling the backend (it is going away)."""
        self._closed = True
        self._pending.clear()
        self._ready.set()  # wake a consumer blocked in __anext__ so it sees the end

    def __aiter__(self) -> QueueSubscription:
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._pending:
                return self._pending.popleft()
            self._ready.clear()
            await self._ready.wait()

    async def close(self) -> None:
        if self._closed:
            return
        self.detach()
        if self._on_close is not None:
            await self._on_close(self)


class Store(abc.ABC):
    """Shared state behind one interface: memory (default) or Redis."""

    # -- keys -------------------------------------------------------------
    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abc.abstractmethod
    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...

    @abc.abstractmethod
    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Set ``key`` only if it does not exist; True when this call set it."""

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove ``key``; True when it existed."""

    @abc.abstractmethod
    async def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes | None, ttl: float | None = None
    ) -> bool:
        """Atomically: if ``key`` holds ``expected`` (None: absent), set it to
        ``value`` (None: delete it); True when this call changed it."""

    @abc.abstractmethod
    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys``, in order (None where absent)."""

    # -- indexes ----------------------------------------------------------
    @abc.abstractmethod
    async def index_add(self, index: str, member: str, score: float) -> None: ...

    @abc.abstractmethod
    async def index_remove(self, index: str, member: str) -> bool:
        """Remove ``member``; True when it was there."""

    @abc.abstractmethod
    async def index_members(self, index: str) -> list[tuple[str, float]]:
        """Every (member, score), ascending by score then member."""

    @abc.abstractmethod
    async def index_size(self, index: str) -> int: ...

    # -- counters ---------------------------------------------------------
    @abc.abstractmethod
    async def incr(self, key: str, by: int = 1, ttl: float | None = None) -> int:
        """Add ``by`` to the counter and return the new value (see module doc)."""

    # -- sanctions --------------------------------------------------------
    @abc.abstractmethod
    async def put_sanction(self, sanction: Sanction, now: float) -> None:
        """Store (or replace) the user's sanction of that kind; expires at ``until``."""

    @abc.abstractmethod
    async def sanctions(self, user: str, now: float) -> list[Sanction]:
        """The user's sanctions still in force at ``now``."""

    @abc.abstractmethod
    async def lift_sanction(self, user: str, kind: SanctionKind) -> bool: ...

    # -- pub/sub ----------------------------------------------------------
    @abc.abstractmethod
    async def publish(self, channel: str, message: bytes) -> None: ...

    @abc.abstractmethod
    async def subscribe(self, channel: str, max_pending: int = DEFAULT_MAX_PENDING) -> Subscription:
        """Subscribe; the subscription is active when this returns."""

    # -- health and lifetime ----------------------------------------------
    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the backend answers."""

    @abc.abstractmethod
    async def close(self) -> None: ...
