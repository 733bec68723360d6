"""The case book on a real store: memory (fake clock) and a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from chatguard.audit import MemoryAudit
from chatguard.cases.actions import Actions
from chatguard.cases.book import BookLimits, CaseBook
from chatguard.cases.model import CaseError, ModeratorAction, Status, group_key
from chatguard.cases.report import IpCapture, ReportInput, TranscriptLine
from chatguard.metrics import Metrics
from chatguard.steps.handoff import EscalationRequest
from chatguard.stores import MemoryStore, RedisStore, SanctionKind, Store
from tests.support.clock import FakeClock
from tests.support.timing import unit


@dataclass
class Setup:
    store: Store
    clock: Callable[[], float]
    audit: MemoryAudit
    metrics: Metrics

    def book(self, **kwargs: object) -> CaseBook:
        return CaseBook(
            self.store,
            self.audit,
            clock=self.clock,
            metrics=self.metrics,
            **kwargs,  # type: ignore[arg-type]
        )


@pytest.fixture(params=["memory", "redis"])
async def setup(request: pytest.FixtureRequest) -> AsyncIterator[Setup]:
    store: Store
    clock: Callable[[], float]
    if request.param == "memory":
        clock = FakeClock()
        store = MemoryStore(clock)
    else:
        url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
        store = RedisStore(url, prefix)
        clock = time.time
    yield Setup(store, clock, MemoryAudit(), Metrics())
    await store.close()


def escalation(
    sender: str = "adult",
    conversation: str = "dm:adult:kid",
    severity: str = "medium",
    category: str = "grooming",
    evidence: tuple[str, ...] = ("rec-1",),
    recipients: tuple[str, ...] = ("kid",),
) -> EscalationRequest:
    return EscalationRequest(
        at=time.time(),
        conversation=conversation,
        session_id="s-1",
        sender=sender,
        recipients=recipients,
        severity=severity,
        category=category,
        risk=8.0,
        signals=("secrecy",),
        reason="grooming risk 8",
        evidence=evidence,
    )


def audits(setup: Setup, subject: str) -> list[str]:
    return [e.action for _, e in setup.audit.entries if e.subject == subject]


async def test_escalations_group_into_one_case_and_raise_severity(setup: Setup) -> None:
    book = setup.book()
    first = await book.add(escalation())
    second = await book.add(
        escalation(severity="critical", category="sextortion", evidence=("rec-2",))
    )
    assert second.id == first.id
    assert second.severity == "critical"
    assert second.categories == ("grooming", "sextortion")
    assert second.evidence == ("rec-1", "rec-2")
    other = await book.add(escalation(sender="someone", conversation="room:lobby"))
    assert other.id != first.id
    assert [c.id for c in await book.list()] == [first.id, other.id]
    entries = [e for _, e in setup.audit.entries if e.subject == f"case:{first.id}"]
    assert [e.action for e in entries] == ["case.opened", "case.escalated"]
    assert entries[0].details["conversation"] == "dm:adult:kid"
    assert entries[0].details["evidence"] == ["rec-1"]
    assert entries[1].details["evidence"] == ["rec-2"]


async def test_concurrent_escalations_of_one_conversation_make_one_case(setup: Setup) -> None:
    # Two books on one store, as two replicas would be.
    books = [setup.book(), setup.book()]
    cases = await asyncio.gather(*(books[i % 2].add(escalation()) for i in range(10)))
    assert len({c.id for c in cases}) == 1
    case = await books[0].get(cases[0].id)
    assert case is not None
    assert len(case.escalations) == 10
    assert await books[1].counts() == {
        "open": 1,
        "by_status": {"new": 1, "in_review": 0, "actioned": 0},
        "by_severity": {"low": 0, "medium": 1, "high": 0, "critical": 0},
        "unclaimed": 1,
        "overdue": 0,
        "escalated_to_lead": 0,
        "done": 0,
    }


async def test_queue_order_is_severity_then_age_and_filters_apply(setup: Setup) -> None:
    book = setup.book()
    low = await book.add(escalation(sender="a", severity="low"))
    high1 = await book.add(escalation(sender="b", severity="high", category="safeguarding"))
    crit = await book.add(escalation(sender="c", severity="critical", category="sextortion"))
    high2 = await book.add(escalation(sender="d", severity="high"))
    ordered = [c.id for c in await book.list()]
    assert ordered[0] == crit.id
    assert set(ordered[1:3]) == {high1.id, high2.id}
    assert ordered[3] == low.id
    assert [c.id for c in await book.list(severity="high", category="safeguarding")] == [high1.id]
    await book.claim(low.id, "mod1")
    assert [c.id for c in await book.list(assignee="mod1")] == [low.id]
    assert [c.id for c in await book.list(status="in_review")] == [low.id]
    assert await book.list(older_than=3600) == []
    with pytest.raises(CaseError, match="unknown status 'open'"):
        await book.list(status="open")
    assert len(await book.list(limit=2)) == 2


async def test_two_moderators_never_hold_the_same_case(setup: Setup) -> None:
    books = [setup.book(), setup.book()]
    case = await books[0].add(escalation())
    results = await asyncio.gather(
        *(books[i % 2].claim(case.id, f"mod{i}") for i in range(6)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, CaseError) for r in results if r not in winners)
    holder = winners[0].assignee
    stored = await books[1].get(case.id)
    assert stored is not None
    assert stored.assignee == holder
    # The holder may renew; another may not take it.
    assert (await books[1].claim(case.id, holder)).assignee == holder  # type: ignore[arg-type]
    with pytest.raises(CaseError, match="another moderator"):
        await books[0].claim(case.id, "intruder")


async def test_release_returns_the_case_and_frees_the_lease(setup: Setup) -> None:
    book = setup.book()
    case = await book.add(escalation())
    await book.claim(case.id, "mod1")
    with pytest.raises(CaseError):
        await book.release(case.id, "mod2")
    released = await book.release(case.id, "mod1")
    assert released.status is Status.NEW
    assert (await book.claim(case.id, "mod2")).assignee == "mod2"


async def test_dismiss_closes_and_a_new_escalation_opens_a_new_case(setup: Setup) -> None:
    book = setup.book()
    case = await book.add(escalation())
    await book.claim(case.id, "mod1")
    closed = await book.act(case.id, "mod1", ModeratorAction("dismiss", reason="banter"))
    assert closed.status is Status.CLOSED
    assert [c.id for c in await book.list(status="closed")] == [case.id]
    assert await book.list(status="new") == []
    again = await book.add(escalation())
    assert again.id != case.id
    assert audits(setup, f"case:{case.id}") == ["case.opened", "case.claimed", "case.dismiss"]


async def test_mute_action_writes_a_sanction_that_expires(setup: Setup) -> None:
    book = setup.book()
    case = await book.add(escalation())
    with pytest.raises(CaseError, match="claim"):
        await book.act(case.id, "mod1", ModeratorAction("mute", duration=600, reason="x"))
    await book.claim(case.id, "mod1")
    acted = await book.act(case.id, "mod1", ModeratorAction("mute", duration=600, reason="rude"))
    assert acted.status is Status.ACTIONED
    now = setup.clock()
    [sanction] = await setup.store.sanctions("adult", now)
    assert sanction.kind is SanctionKind.MUTE
    assert sanction.until == pytest.approx(now + 600, abs=5)
    assert sanction.by == "mod1"
    assert await setup.store.sanctions("adult", now + 601) == []
    entry = next(e for _, e in setup.audit.entries if e.action == "case.mute")
    assert entry.details["target"] == "adult"
    assert entry.reason == "rude"
    assert setup.metrics.case_actions.labels(type="mute")._value.get() == 1


async def test_report_needs_the_checklist_then_records_reported_at(setup: Setup) -> None:
    book = setup.book()
    case = await book.add(escalation())
    await book.claim(case.id, "mod1")
    action = ModeratorAction("report", external_ref="CT-42")
    with pytest.raises(CaseError, match=r"checklist is not complete: .*transcript"):
        await book.act(case.id, "mod1", action)
    evidence = ReportInput(
        transcript=(TranscriptLine(setup.clock() - 60, "adult", "keep it secret", None, "rec-1"),),
        ips=(IpCapture("adult", "203.0.113.9", setup.clock() - 100, "connect"),),
        age_bands={"kid": "13-15", "adult": "adult"},
        client="ExampleChat/1.0",
    )
    reported = await book.act(case.id, "mod1", action, report_input=evidence)
    assert reported.status is Status.REPORTED
    assert reported.external_ref == "CT-42"
    entry = next(e for _, e in setup.audit.entries if e.action == "case.report")
    assert entry.details["reported_at"] == reported.reported_at
    assert entry.details["evidence"] == ["rec-1"]
    assert "keep it secret" not in repr(list(setup.audit.entries))  # no content in the audit


async def test_queue_is_bounded(setup: Setup) -> None:
    book = setup.book(limits=BookLimits(max_open=2))
    await book.add(escalation(sender="a"))
    await book.add(escalation(sender="b"))
    with pytest.raises(CaseError, match="max_open=2"):
        await book.add(escalation(sender="c"))
    await book.add(escalation(sender="a"))  # joining an open case still works
    assert setup.metrics.cases_refused._value.get() == 1


async def test_final_cases_beyond_max_done_leave_the_index(setup: Setup) -> None:
    book = setup.book(limits=BookLimits(max_done=2))
    for sender in ("a", "b", "c"):
        case = await book.add(escalation(sender=sender))
        await book.claim(case.id, "mod")
        await book.act(case.id, "mod", ModeratorAction("dismiss"))
    assert len(await book.list(status="closed")) == 2


async def test_new_case_hook_and_metrics(setup: Setup) -> None:
    seen = []
    book = setup.book(on_new=seen.append)
    case = await book.add(escalation(severity="high"))
    await book.add(escalation(severity="high"))
    assert [c.id for c in seen] == [case.id]
    await book.counts()
    assert setup.metrics.case_queue_depth.labels(severity="high")._value.get() == 1
    await book.claim(case.id, "mod1")
    await book.act(case.id, "mod1", ModeratorAction("warn", reason="stop"))
    assert setup.metrics.case_time_to_claim._sum.get() >= 0
    text = setup.metrics.render().decode()
    assert "chatguard_case_time_to_claim_seconds_count 1.0" in text
    assert "chatguard_case_time_to_action_seconds_count 1.0" in text


async def test_missing_case_and_notes(setup: Setup) -> None:
    book = setup.book()
    assert await book.get("case-404") is None
    with pytest.raises(CaseError, match="no case"):
        await book.claim("case-404", "mod1")
    case = await book.add(escalation())
    noted = await book.note(case.id, "mod2", "adult asked for photos")
    assert noted.notes[-1].text == "adult asked for photos"
    entry = next(e for _, e in setup.audit.entries if e.action == "case.noted")
    assert "photos" not in repr(entry)


async def test_lease_expiry_returns_the_case_to_the_queue_once() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    audit = MemoryAudit()
    book = CaseBook(store, audit, clock=clock, lease=300)
    case = await book.add(escalation())
    await book.claim(case.id, "mod1")
    clock.advance(299)
    with pytest.raises(CaseError, match="another moderator"):
        await book.claim(case.id, "mod2")
    clock.advance(2)
    [listed] = await book.list()
    assert listed.status is Status.NEW
    assert listed.assignee is None
    await book.list()
    await book.get(case.id)
    assert audits_of(audit, case.id).count("case.claim_expired") == 1
    # The moderator who abandoned it cannot act; another can claim and act.
    with pytest.raises(CaseError, match="claim case"):
        await book.act(case.id, "mod1", ModeratorAction("warn"))
    assert (await book.claim(case.id, "mod2")).assignee == "mod2"
    await book.act(case.id, "mod2", ModeratorAction("warn"))


async def test_lease_expires_on_redis_in_real_time(
    redis_store_factory: Callable[..., RedisStore],
) -> None:
    store = redis_store_factory()
    book = CaseBook(store, MemoryAudit(), lease=unit(0.3))
    case = await book.add(escalation())
    await book.claim(case.id, "mod1")
    with pytest.raises(CaseError):
        await book.claim(case.id, "mod2")
    await asyncio.sleep(unit(0.4))
    assert (await book.claim(case.id, "mod2")).assignee == "mod2"


def audits_of(audit: MemoryAudit, case_id: str) -> list[str]:
    return [e.action for _, e in audit.entries if e.subject == f"case:{case_id}"]


async def test_an_action_whose_claim_ran_out_meanwhile_is_still_audited() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    audit = MemoryAudit()

    class SlowChannel:
        """Delivery slower than the lease: meanwhile another moderator takes the case."""

        async def send(self, directive: object) -> bool:
            clock.advance(301)
            await book.claim(case.id, "mod2")
            return True

    book = CaseBook(
        store, audit, clock=clock, lease=300, actions=Actions(store, SlowChannel(), clock)
    )
    case = await book.add(escalation())
    await book.claim(case.id, "mod1")
    with pytest.raises(CaseError, match="another moderator"):
        await book.act(case.id, "mod1", ModeratorAction("mute", duration=3600, reason="x"))
    entry = next(e for _, e in audit.entries if e.action == "case.mute")
    assert entry.actor == "mod1"
    assert entry.details["case_updated"] is False
    assert entry.details["target"] == "adult"
    assert await store.sanctions("adult", clock.now) != []  # the effect did happen


async def test_a_stale_group_key_is_forgotten_and_a_new_case_opened(setup: Setup) -> None:

    # As if a replica died between ending a case and freeing its group.
    await setup.store.set(f"case-group:{group_key('dm:adult:kid', 'adult')}", b"case-999")
    case = await setup.book().add(escalation())
    assert case.id != "case-999"
    assert [c.id for c in await setup.book().list()] == [case.id]


async def test_captured_evidence_is_linked_and_audited_for_the_export(setup: Setup) -> None:
    book = setup.book()
    case = await book.add(escalation())
    with pytest.raises(CaseError, match="claim case"):
        await book.link_evidence(case.id, "mod1", ["rec-mod"], "keep it")
    await book.claim(case.id, "mod1")
    linked = await book.link_evidence(case.id, "mod1", ["rec-mod"], "keep it")
    assert linked.evidence == (*case.evidence, "rec-mod")
    assert linked.status is Status.IN_REVIEW
    assert (await book.get(case.id)) == linked
    [entry] = [e for _, e in setup.audit.entries if e.action == "case.captured"]
    assert (entry.actor, entry.subject, entry.reason) == ("mod1", f"case:{case.id}", "keep it")
    assert entry.details["conversation"] == case.conversation
    assert entry.details["evidence"] == ["rec-mod"]
