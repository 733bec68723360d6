"""Sign-in rate limiting: failed attempts per account and per address.

What it owns: a sliding window of failure times per key (``account:<id>`` and
``address:<ip>``). A key with ``max_failures`` failures inside ``window``
seconds is refused until the oldest of them leaves the window.

Invariants: pure (time is passed in); bounded — at most ``tracked`` keys,
the least recently touched forgotten first, and at most ``max_failures``
times per key.
"""

from __future__ import annotations

from collections import OrderedDict, deque


class LoginLimiter:
    def __init__(self, max_failures: int, window: float, tracked: int) -> None:
        self.max_failures = max(1, max_failures)
        self.window = window
        self.tracked = tracked
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _live(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, keys: tuple[str, ...], now: float) -> float:
        """Seconds until these keys may try again; 0 when they may now."""
        wait = 0.0
        for key in keys:
            times = self._live(key, now)
            if times is not None and len(times) >= self.max_failures:
                wait = max(wait, times[0] + self.window - now)
        return wait

    def failed(self, keys: tuple[str, ...], now: float) -> None:
        for key in keys:
            times = self._failures.pop(key, None) or deque(maxlen=self.max_failures)
            times.append(now)
            self._failures[key] = times
            while len(self._failures) > self.tracked:
                self._failures.popitem(last=False)

    def succeeded(self, account_key: str) -> None:
        """A right password clears the account's failures (not the address's)."""
        self._failures.pop(account_key, None)

    def __len__(self) -> int:
        return len(self._failures)
