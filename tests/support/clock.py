"""A clock moved by hand: the one thing tests may patch."""

from __future__ import annotations


class FakeClock:
    """Callable like ``time.time``; ``advance`` moves it on."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
