"""State stores: the interface, its two backends, and the factory that picks one.

``open_store`` is the one place configuration (``store.backend``,
``store.redis_url``, ``store.key_prefix``, ``store.max_keys``) becomes a
``Store``. It does no I/O: a Redis store connects on first use, so a Redis
that is down at startup shows up as ``ping() == False`` and
``StoreUnavailable``, not as a crash. This package imports nothing from the
rest of ChatGuard.
"""

from __future__ import annotations

import time
from collections.abc import Callable

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
)
from chatguard.stores.memory import DEFAULT_MAX_KEYS, MemoryStore
from chatguard.stores.redis import DEFAULT_KEY_PREFIX, DEFAULT_REDIS_URL, RedisStore

__all__ = [
    "BACKENDS",
    "DEFAULT_KEY_PREFIX",
    "DEFAULT_MAX_KEYS",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_REDIS_URL",
    "MemoryStore",
    "QueueSubscription",
    "RedisStore",
    "Sanction",
    "SanctionKind",
    "Store",
    "StoreError",
    "StoreFull",
    "StoreUnavailable",
    "Subscription",
    "open_store",
]

BACKENDS = ("memory", "redis")


def open_store(
    backend: str,
    redis_url: str | None = None,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    clock: Callable[[], float] = time.time,
    *,
    max_keys: int = DEFAULT_MAX_KEYS,
) -> Store:
    """Build the configured store.

    ``clock`` and ``max_keys`` apply to the memory backend only (Redis keeps
    time and memory itself); ``redis_url`` and ``key_prefix`` to Redis only (a
    memory store shares nothing, so it needs no namespace).
    """
    if backend == "memory":
        return MemoryStore(clock, max_keys=max_keys)
    if backend == "redis":
        return RedisStore(redis_url or DEFAULT_REDIS_URL, key_prefix)
    raise ValueError(f"store.backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
