"""The Redis store: state shared by every replica that points at one Redis.

Key layout, all under ``key_prefix`` (default ``chatguard:``)::

    {prefix}key:{key}                 values and counters, PX expiry
    {prefix}sanction:{kind}:{user}    one sanction as JSON, PX to its ``until``
    {prefix}channel:{channel}         a pub/sub channel
    {prefix}index:{index}             an index, as a sorted set

Invariants, beyond those in ``base.py``:

* Expiry is Redis's own (PX, in milliseconds rounded up so nothing expires
  early); this module reads no clock. Sanctions get a PX of ``until - now``
  with the ``now`` the caller passes, so replicas whose clocks disagree still
  agree on what is stored.
* ``compare_and_set`` is one Lua script, so it is atomic across replicas.
* ``incr`` is one Lua script, so "the expiry is set only when the counter is
  created" holds however many replicas increment at once.
* One pub/sub connection per store, whatever the number of subscriptions. A
  reader task fans each message out to the local subscriptions of its
  channel. ``subscribe`` returns only once Redis has confirmed the SUBSCRIBE
  (or a local subscription already holds that channel, so it was confirmed).
* When the pub/sub link drops, the reader reconnects with backoff and redis-py
  resubscribes; messages published in between are lost (at-most-once).
* Every Redis failure surfaces as ``StoreUnavailable`` (cannot reach) or
  ``StoreError`` (anything else); ``ping`` returns False instead of raising.
* ``close`` cancels and awaits the reader task and closes both connection
  pools; it leaves no task or socket behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chatguard.stores.base import (
    DEFAULT_MAX_PENDING,
    QueueSubscription,
    Sanction,
    SanctionKind,
    Store,
    StoreError,
    StoreUnavailable,
    Subscription,
    check_ttl,
)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_KEY_PREFIX = "chatguard:"

#: Seconds a command (or a SUBSCRIBE confirmation) may take before the store
#: reports Redis as unavailable.
DEFAULT_TIMEOUT = 2.0

log = logging.getLogger(__name__)

# EXISTS before INCRBY, not "result == by": a counter that went back to ``by``
# after a negative increment must keep its window.
_INCR_SCRIPT = """
local created = redis.call('EXISTS', KEYS[1]) == 0
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if created and ARGV[2] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
"""


# ARGV: expect-present flag, expected value, write flag, new value, PX or ''.
_CAS_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[3] == '0' then
  redis.call('DEL', KEYS[1])
elseif ARGV[5] ~= '' then
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
else
  redis.call('SET', KEYS[1], ARGV[4])
end
return 1
"""


def _px(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _bytes(value: bytes | str | None) -> bytes | None:
    # redis-py types replies as bytes | str; without decode_responses they are
    # always bytes, and this says so to the type checker.
    return value.encode() if isinstance(value, str) else value


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        # OSError covers the builtin TimeoutError that asyncio.timeout raises.
        raise StoreUnavailable(f"redis unavailable: {exc}") from exc
    except RedisError as exc:
        raise StoreError(f"redis error: {exc}") from exc


class RedisStore(Store):
    """Shared state in Redis; any number of replicas may share one prefix."""

    def __init__(
        self,
        url: str = DEFAULT_REDIS_URL,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.key_prefix = key_prefix
        self._timeout = timeout
        # Two retries absorb a pooled connection that a Redis restart broke,
        # without making ping() on a dead Redis slow.
        retry = Retry(ExponentialBackoff(cap=0.2, base=0.02), 2)
        self._redis = Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=retry
        )
        # The pub/sub connection has its own pool with no read timeout: it
        # waits for messages indefinitely, which a command timeout would cut.
        self._pubsub_redis = Redis.from_url(
            url,
            socket_timeout=None,
            socket_connect_timeout=timeout,
            socket_keepalive=True,
            retry=retry,
        )
        self._pubsub: PubSub = self._pubsub_redis.pubsub()
        self._incr = self._redis.register_script(_INCR_SCRIPT)
        self._cas = self._redis.register_script(_CAS_SCRIPT)
        self._local: dict[bytes, set[QueueSubscription]] = {}
        self._confirmations: dict[bytes, asyncio.Future[None]] = {}
        self._subscribe_lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    # -- names ------------------------------------------------------------
    def _key(self, key: str) -> str:
        return f"{self.key_prefix}key:{key}"

    def _sanction_key(self, user: str, kind: SanctionKind) -> str:
        # The kind goes first: it never contains ":", so a user name cannot
        # make one sanction's key equal to another's.
        return f"{self.key_prefix}sanction:{kind.value}:{user}"

    def _index(self, index: str) -> str:
        return f"{self.key_prefix}index:{index}"

    def _channel(self, channel: str) -> bytes:
        return f"{self.key_prefix}channel:{channel}".encode()

    # -- keys -------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        self._check_open()
        with _translated():
            return _bytes(await self._redis.get(self._key(key)))

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._check_open()
        check_ttl(ttl)
        with _translated():
            await self._redis.set(self._key(key), value, px=None if ttl is None else _px(ttl))

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        self._check_open()
        check_ttl(ttl)
        px = None if ttl is None else _px(ttl)
        with _translated():
            return bool(await self._redis.set(self._key(key), value, px=px, nx=True))

    async def delete(self, key: str) -> bool:
        self._check_open()
        with _translated():
            return bool(await self._redis.delete(self._key(key)))

    async def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes | None, ttl: float | None = None
    ) -> bool:
        self._check_open()
        check_ttl(ttl)
        args = [
            "0" if expected is None else "1",
            expected if expected is not None else b"",
            "0" if value is None else "1",
            value if value is not None else b"",
            "" if ttl is None else str(_px(ttl)),
        ]
        with _translated():
            return bool(await self._cas(keys=[self._key(key)], args=args))

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self._check_open()
        if not keys:
            return []
        with _translated():
            values = await self._redis.mget([self._key(k) for k in keys])
        return [_bytes(v) for v in values]

    # -- indexes ----------------------------------------------------------
    async def index_add(self, index: str, member: str, score: float) -> None:
        self._check_open()
        with _translated():
            await self._redis.zadd(self._index(index), {member: score})

    async def index_remove(self, index: str, member: str) -> bool:
        self._check_open()
        with _translated():
            return bool(await self._redis.zrem(self._index(index), member))

    async def index_members(self, index: str) -> list[tuple[str, float]]:
        self._check_open()
        with _translated():
            rows = await self._redis.zrange(self._index(index), 0, -1, withscores=True)
        members: list[tuple[str, float]] = []
        for row in rows:
            member, score = row[0], row[1]
            name = member.decode() if isinstance(member, bytes) else str(member)
            members.append((name, float(score)))
        # Redis orders ties by the member's bytes; sort again so both backends agree.
        return sorted(members, key=lambda item: (item[1], item[0]))

    async def index_size(self, index: str) -> int:
        self._check_open()
        with _translated():
            return int(await self._redis.zcard(self._index(index)))

    # -- counters ---------------------------------------------------------
    async def incr(self, key: str, by: int = 1, ttl: float | None = None) -> int:
        self._check_open()
        check_ttl(ttl)
        px = "" if ttl is None else str(_px(ttl))
        with _translated():
            return int(await self._incr(keys=[self._key(key)], args=[by, px]))

    # -- sanctions --------------------------------------------------------
    async def put_sanction(self, sanction: Sanction, now: float) -> None:
        self._check_open()
        key = self._sanction_key(sanction.user, sanction.kind)
        with _translated():
            if sanction.until is None:
                # A plain SET drops any expiry the replaced sanction had.
                await self._redis.set(key, sanction.to_json())
            elif sanction.until > now:
                await self._redis.set(key, sanction.to_json(), px=_px(sanction.until - now))
            else:
                await self._redis.delete(key)

    async def sanctions(self, user: str, now: float) -> list[Sanction]:
        self._check_open()
        with _translated():
            values = await self._redis.mget(
                [self._sanction_key(user, kind) for kind in SanctionKind]
            )
        found = [Sanction.from_json(raw) for raw in map(_bytes, values) if raw is not None]
        return [s for s in found if s.until is None or s.until > now]

    async def lift_sanction(self, user: str, kind: SanctionKind) -> bool:
        self._check_open()
        with _translated():
            return bool(await self._redis.delete(self._sanction_key(user, kind)))

    # -- pub/sub ----------------------------------------------------------
    async def publish(self, channel: str, message: bytes) -> None:
        self._check_open()
        with _translated():
            await self._redis.publish(self._channel(channel), message)

    async def subscribe(self, channel: str, max_pending: int = DEFAULT_MAX_PENDING) -> Subscription:
        self._check_open()
        name = self._channel(channel)

        async def unsubscribe(subscription: QueueSubscription) -> None:
            await self._unsubscribe(name, subscription)

        subscription = QueueSubscription(max_pending, unsubscribe)
        async with self._subscribe_lock:
            self._check_open()
            members = self._local.get(name)
            if members:
                members.add(subscription)
                return subscription
            # Registered before SUBSCRIBE is sent: Redis sends the
            # confirmation before any message, and the reader may fan a
            # message out before this coroutine resumes.
            self._local[name] = {subscription}
            try:
                await self._confirm_subscribe(name)
            except BaseException:
                del self._local[name]
                subscription.detach()
                raise
        return subscription

    async def _confirm_subscribe(self, name: bytes) -> None:
        confirmed = asyncio.get_running_loop().create_future()
        self._confirmations[name] = confirmed
        try:
            with _translated():
                async with asyncio.timeout(self._timeout):
                    await self._pubsub.subscribe(name)
                    self._start_reader()
                    await confirmed
        finally:
            # On failure redis-py may still hold the channel and resubscribe
            # to it later; the reader drops messages for channels without
            # local subscriptions, so that costs traffic, not correctness.
            self._confirmations.pop(name, None)

    async def _unsubscribe(self, name: bytes, subscription: QueueSubscription) -> None:
        async with self._subscribe_lock:
            members = self._local.get(name)
            if members is None:
                return
            members.discard(subscription)
            if members:
                return
            del self._local[name]
            if self._closed:
                return
            # Closing a subscription must not fail because Redis is down; if
            # this is lost, the stray channel is dropped by the reader.
            with contextlib.suppress(RedisError, OSError):
                async with asyncio.timeout(self._timeout):
                    await self._pubsub.unsubscribe(name)

    def _start_reader(self) -> None:
        if self._reader is None:
            self._reader = asyncio.create_task(self._read(), name="chatguard-redis-pubsub")

    async def _read(self) -> None:
        backoff: float | None = None  # None while the link is up
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except (RedisError, OSError) as exc:
                if backoff is None:
                    # Once per outage, not once per retry: a long outage
                    # must not flood the log.
                    log.warning("redis pub/sub link lost, reconnecting: %s", exc)
                    backoff = 0.05
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            if backoff is not None:
                log.warning("redis pub/sub link restored; messages sent meanwhile are lost")
                backoff = None
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind, name = message["type"], message["channel"]
        if kind == "message":
            for subscription in tuple(self._local.get(name, ())):
                subscription.deliver(message["data"])
        elif kind == "subscribe":
            confirmed = self._confirmations.get(name)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)

    # -- health and lifetime ----------------------------------------------
    async def ping(self) -> bool:
        if self._closed:
            return False
        try:
            async with asyncio.timeout(self._timeout):
                return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for members in self._local.values():
            for subscription in members:
                subscription.detach()
        self._local.clear()
        if self._reader is not None:
            self._reader.cancel()
            # wait(), not await: the reader's CancelledError is expected and
            # must not be confused with a cancellation of close() itself.
            await asyncio.wait({self._reader})
            self._reader = None
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped upstream
        await self._pubsub_redis.aclose(close_connection_pool=True)
        await self._redis.aclose(close_connection_pool=True)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("store is closed")
