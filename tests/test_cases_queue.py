"""The case queue's store layout and order (memory store, hand-moved clock);
the same operations run on Redis through tests/test_cases_book.py."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from chatguard.cases import workflow
from chatguard.cases.model import DEFAULT_SLA, Case, CaseError, EscalationSummary, Status
from chatguard.cases.queue import BookLimits, CaseQueue, Filters, queue_order, select
from chatguard.stores import MemoryStore
from tests.support.clock import FakeClock


def a_case(case_id: str, sender: str, severity: str, at: float) -> Case:
    s = EscalationSummary(at, "detection", None, sender, severity, "grooming", 1.0, (), "r")
    return workflow.open_case(case_id, f"room:{sender}", s, [sender], [], now=at, sla=DEFAULT_SLA)


def test_queue_order_and_filters() -> None:
    low_old = a_case("c1", "a", "low", 100.0)
    high_new = a_case("c2", "b", "high", 300.0)
    high_old = a_case("c3", "c", "high", 200.0)
    done = replace(a_case("c4", "d", "critical", 50.0), status=Status.CLOSED)
    cases = [low_old, high_new, done, high_old]
    assert [c.id for c in sorted(cases, key=queue_order)] == ["c3", "c2", "c1", "c4"]
    assert [c.id for c in select(cases, Filters(severity="high"), 400.0, 10)] == ["c3", "c2"]
    assert [c.id for c in select(cases, Filters(older_than=150.0), 400.0, 10)] == [
        "c3",
        "c1",
        "c4",
    ]
    assert [c.id for c in select(cases, Filters(status=Status.CLOSED), 400.0, 10)] == ["c4"]
    assert len(select(cases, Filters(), 400.0, 2)) == 2
    assert select(cases, Filters(), 400.0, -1) == []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> CaseQueue:
    return CaseQueue(MemoryStore(clock), BookLimits(closed_ttl=100.0), clock)


async def test_one_case_per_group_however_many_create_it(queue: CaseQueue) -> None:
    contenders = [a_case(f"c{i}", "bob", "high", 0.0) for i in range(5)]
    results = await asyncio.gather(*(queue.create(c) for c in contenders))
    assert results.count(True) == 1
    winner = contenders[results.index(True)]
    assert await queue.group_case(winner.group) == winner.id
    assert [c.id for c in await queue.load(None)] == [winner.id]
    for loser in contenders:
        if loser is not winner:
            assert await queue.get(loser.id) is None  # the loser's record is gone


async def test_a_final_case_expires_from_when_it_ended(queue: CaseQueue, clock: FakeClock) -> None:
    case = a_case("c1", "bob", "high", clock.now)
    assert await queue.create(case)
    await queue.update("c1", lambda c: workflow.claim(c, "m", now=clock.now, lease=60))
    await queue.update("c1", lambda c: workflow.act(c, "m", "dismiss", "", now=clock.now))
    assert await queue.group_case(case.group) is None  # free for a new case
    assert await queue.open_count() == 0
    assert await queue.done_count() == 1
    clock.advance(60)
    # A later note does not extend the retention.
    await queue.update("c1", lambda c: workflow.add_note(c, "m", "late", now=clock.now))
    clock.advance(41)
    assert await queue.get("c1") is None
    assert await queue.load(None) == []
    assert await queue.done_count() == 0  # the expired case left the index when read


async def test_leases_are_exclusive_and_renewable(queue: CaseQueue, clock: FakeClock) -> None:
    assert await queue.take_lease("c1", "ann", 60) is True
    assert await queue.take_lease("c1", "ann", 60) is False  # renewed
    with pytest.raises(CaseError, match="another moderator"):
        await queue.take_lease("c1", "ben", 60)
    await queue.drop_lease("c1", "ben")  # not ben's: nothing happens
    with pytest.raises(CaseError):
        await queue.take_lease("c1", "ben", 60)
    clock.advance(61)
    assert await queue.take_lease("c1", "ben", 60) is True


async def test_update_of_a_missing_case(queue: CaseQueue) -> None:
    with pytest.raises(CaseError, match="no case"):
        await queue.update("nope", lambda c: c)
