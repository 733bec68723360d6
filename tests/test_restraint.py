"""Restraint: caps, cooldowns, the per-minute budget and once-per-session marks."""

from __future__ import annotations

import pytest

from chatguard.banners import Banner
from chatguard.events import Severity
from chatguard.restraint import Limits, Restraint, RestraintPolicy, decide, limits_for
from chatguard.stores.memory import MemoryStore
from tests.support.clock import FakeClock

POLICY = RestraintPolicy(cap=2, cap_window=600.0, cooldown=30.0, per_minute=3)


def banner(bid: str = "b", severity: Severity = Severity.INFO, **kw: object) -> Banner:
    return Banner(bid, "", severity, {"en": "x"}, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cooling", "shown", "minute", "expected"),
    [
        (False, 0, 0, None),
        (True, 0, 0, "cooldown"),
        (False, 2, 0, "cap"),
        (False, 1, 3, "per_minute"),
    ],
)
def test_decide(cooling: bool, shown: int, minute: int, expected: str | None) -> None:
    limits = Limits(cap=2, cap_window=60, cooldown=5, per_minute=3)
    assert decide(limits, cooling=cooling, shown=shown, this_minute=minute) == expected


def test_critical_banners_obey_only_their_own_limits() -> None:
    assert limits_for(banner(severity=Severity.CRITICAL), POLICY) == Limits(None, 600.0, 0.0, None)
    own = banner(severity=Severity.CRITICAL, cap=1, cap_window=99.0, cooldown=7.0)
    assert limits_for(own, POLICY) == Limits(1, 99.0, 7.0, None)
    assert limits_for(banner(), POLICY) == Limits(2, 600.0, 30.0, 3)


async def test_cap_cooldown_and_budget_hold_in_the_store() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    restraint = Restraint(store, POLICY)
    b = banner()
    assert await restraint.allow("amy", b) is None
    assert await restraint.allow("amy", b) == "cooldown"
    assert await restraint.allow("bob", b) is None  # per user
    clock.advance(31)
    assert await restraint.allow("amy", b) is None
    clock.advance(31)
    assert await restraint.allow("amy", b) == "cap"
    clock.advance(600)
    assert await restraint.allow("amy", b) is None  # a new window

    # A second replica sharing the store sees the same counters.
    other = Restraint(store, POLICY)
    assert await other.allow("amy", b) == "cooldown"


async def test_the_per_minute_budget_spans_banners() -> None:
    clock = FakeClock()
    restraint = Restraint(MemoryStore(clock), POLICY)
    assert [await restraint.allow("amy", banner(f"b{i}")) for i in range(4)] == [
        None,
        None,
        None,
        "per_minute",
    ]
    # Critical banners are never held back by the budget.
    assert await restraint.allow("amy", banner("help", Severity.CRITICAL)) is None
    clock.advance(61)
    assert await restraint.allow("amy", banner("b9")) is None


async def test_once_per_session() -> None:
    restraint = Restraint(MemoryStore(FakeClock()), POLICY)
    assert await restraint.once_per_session("s1", "entry:games") is True
    assert await restraint.once_per_session("s1", "entry:games") is False
    assert await restraint.once_per_session("s2", "entry:games") is True


async def test_a_store_that_is_down_shows_the_banner() -> None:
    store = MemoryStore(FakeClock())
    await store.close()
    restraint = Restraint(store, POLICY)
    assert await restraint.allow("amy", banner()) is None
    assert await restraint.once_per_session("s1", "x") is True


async def test_user_and_banner_ids_with_colons_never_share_counters() -> None:
    restraint = Restraint(MemoryStore(FakeClock()), POLICY)
    assert await restraint.allow("a:b", banner("c")) is None
    assert await restraint.allow("a", banner("b:c")) is None
