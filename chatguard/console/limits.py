"""Sign-in rate limiting: failed attempts per account and per address,
counted in the shared store so that every replica enforces one limit.

What it owns: a counter per key (``account:<id>``, ``address:<ip>``) that
the first failure starts and that expires ``window`` seconds later (a fixed
window). A key with ``max_failures`` failures in its window is refused until
the window ends.

Invariants: bounded — each counter is one small store key that expires by
itself, named by a hash of the key (so a long or odd account id cannot make
a long store key); a right password clears the account's counter, never the
address's; a store failure refuses sign-in (fail closed) rather than letting
guesses through uncounted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ..stores import Store

PREFIX = "console-login-failures:"


def _key(key: str) -> str:
    return PREFIX + hashlib.sha256(key.encode()).hexdigest()[:32]


class SignInLimits:
    def __init__(self, store: Store, max_failures: int, window: float) -> None:
        self.store = store
        self.max_failures = max(1, max_failures)
        self.window = window

    async def retry_after(self, keys: Sequence[str]) -> float:
        """Seconds until these keys may try again (at most the window); 0 when they may now."""
        values = await self.store.get_many([_key(k) for k in keys])
        if any(int(v) >= self.max_failures for v in values if v is not None):
            return self.window
        return 0.0

    async def failed(self, keys: Sequence[str]) -> None:
        for key in keys:
            await self.store.incr(_key(key), ttl=self.window)

    async def succeeded(self, account_key: str) -> None:
        await self.store.delete(_key(account_key))
