"""Sign-in rate limiting: per account, per address, sliding window, bounded."""

from __future__ import annotations

from chatguard.console.limits import LoginLimiter

KEYS = ("account:mia", "address:10.0.0.1")


def test_refused_after_max_failures_until_the_window_passes() -> None:
    limiter = LoginLimiter(max_failures=3, window=60, tracked=100)
    for t in range(3):
        assert limiter.retry_after(KEYS, 100 + t) == 0
        limiter.failed(KEYS, 100 + t)
    assert limiter.retry_after(KEYS, 103) == 57
    assert limiter.retry_after(KEYS, 159.5) > 0
    assert limiter.retry_after(KEYS, 160) == 0  # the first failure left the window


def test_the_address_is_limited_across_accounts() -> None:
    limiter = LoginLimiter(max_failures=2, window=60, tracked=100)
    limiter.failed(("account:a", "address:1.2.3.4"), 0)
    limiter.failed(("account:b", "address:1.2.3.4"), 1)
    assert limiter.retry_after(("account:c", "address:1.2.3.4"), 2) > 0
    assert limiter.retry_after(("account:c", "address:5.6.7.8"), 2) == 0


def test_the_account_is_limited_across_addresses() -> None:
    limiter = LoginLimiter(max_failures=2, window=60, tracked=100)
    limiter.failed(("account:a", "address:1.1.1.1"), 0)
    limiter.failed(("account:a", "address:2.2.2.2"), 1)
    assert limiter.retry_after(("account:a", "address:3.3.3.3"), 2) > 0


def test_success_clears_the_account_but_not_the_address() -> None:
    limiter = LoginLimiter(max_failures=2, window=60, tracked=100)
    limiter.failed(KEYS, 0)
    limiter.failed(KEYS, 1)
    limiter.succeeded(KEYS[0])
    assert limiter.retry_after((KEYS[0],), 2) == 0
    assert limiter.retry_after((KEYS[1],), 2) > 0


def test_state_is_bounded() -> None:
    limiter = LoginLimiter(max_failures=5, window=60, tracked=10)
    for i in range(1000):
        limiter.failed((f"address:{i}",), 0)
    assert len(limiter) == 10
    # Per key, only the last max_failures times are kept.
    for t in range(50):
        limiter.failed(("account:x",), t * 0.01)
    assert limiter.retry_after(("account:x",), 1) > 0
