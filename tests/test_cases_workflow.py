"""The case workflow as pure functions: no event loop, time passed in."""

from __future__ import annotations

import pytest

from chatguard.cases import workflow
from chatguard.cases.model import (
    DEFAULT_SLA,
    Bounds,
    CaseError,
    Status,
)
from tests.support.cases import T0, new_case, summary


def test_open_case_sets_sla_subject_and_history() -> None:
    case = new_case("high")
    assert case.status is Status.NEW
    assert case.due_at == T0 + DEFAULT_SLA["high"]
    assert case.subject == "adult"
    assert case.participants == ("adult", "kid")
    assert case.evidence == ("rec-1",)
    assert [h.action for h in case.history] == ["opened"]


def test_further_escalation_raises_severity_and_brings_due_time_forward() -> None:
    case = new_case("medium")
    later = workflow.add_escalation(
        case,
        summary("critical", "sextortion", T0 + 60),
        ["adult", "kid"],
        ["rec-2"],
        now=T0 + 60,
        sla=DEFAULT_SLA,
    )
    assert later.severity == "critical"
    assert later.categories == ("grooming", "sextortion")
    assert later.evidence == ("rec-1", "rec-2")
    assert later.due_at == T0 + DEFAULT_SLA["critical"]
    lower = workflow.add_escalation(later, summary("low"), [], [], now=T0 + 120, sla=DEFAULT_SLA)
    assert lower.severity == "critical"  # never lowered
    assert lower.due_at == later.due_at
    assert len(lower.escalations) == 3
    assert case.severity == "medium"  # the argument is untouched


def test_happy_path_through_the_workflow() -> None:
    case = workflow.claim(new_case(), "mod1", now=T0 + 10, lease=300)
    assert case.status is Status.IN_REVIEW
    assert case.claimed_by(T0 + 11) == "mod1"
    assert case.first_claimed_at == T0 + 10
    case = workflow.act(case, "mod1", "mute", "target adult", now=T0 + 20)
    assert case.status is Status.ACTIONED
    assert case.first_actioned_at == T0 + 20
    case = workflow.act(case, "mod1", "report", "", now=T0 + 30, external_ref="CT-123")
    assert case.status is Status.REPORTED
    assert case.reported_at == T0 + 30
    assert case.external_ref == "CT-123"
    assert case.assignee is None
    assert [h.action for h in case.history] == ["opened", "claimed", "mute", "report"]


@pytest.mark.parametrize(
    ("setup", "move", "reason"),
    [
        # acting without a claim
        ([], lambda c: workflow.act(c, "mod1", "warn", "", now=T0 + 1), "claim case"),
        # acting on another's claim
        (
            [lambda c: workflow.claim(c, "mod2", now=T0, lease=300)],
            lambda c: workflow.act(c, "mod1", "warn", "", now=T0 + 1),
            "another moderator",
        ),
        # claiming another's live claim
        (
            [lambda c: workflow.claim(c, "mod2", now=T0, lease=300)],
            lambda c: workflow.claim(c, "mod1", now=T0 + 1, lease=300),
            "another moderator",
        ),
        # reporting without an external reference
        (
            [lambda c: workflow.claim(c, "mod1", now=T0, lease=300)],
            lambda c: workflow.act(c, "mod1", "report", "", now=T0 + 1),
            "external reference",
        ),
        # anything on a final case
        (
            [
                lambda c: workflow.claim(c, "mod1", now=T0, lease=300),
                lambda c: workflow.act(c, "mod1", "dismiss", "", now=T0 + 1),
            ],
            lambda c: workflow.claim(c, "mod1", now=T0 + 2, lease=300),
            "closed",
        ),
        # an escalation into a final case
        (
            [
                lambda c: workflow.claim(c, "mod1", now=T0, lease=300),
                lambda c: workflow.act(c, "mod1", "report", "", now=T0 + 1, external_ref="x"),
            ],
            lambda c: workflow.add_escalation(c, summary(), [], [], now=T0 + 2, sla=DEFAULT_SLA),
            "reported",
        ),
        # an unknown action
        (
            [lambda c: workflow.claim(c, "mod1", now=T0, lease=300)],
            lambda c: workflow.act(c, "mod1", "delete", "", now=T0 + 1),
            "unknown action",
        ),
        # releasing what one does not hold
        ([], lambda c: workflow.release(c, "mod1", now=T0 + 1), "claim case"),
    ],
)
def test_illegal_moves_raise_case_error(setup, move, reason) -> None:  # type: ignore[no-untyped-def]
    case = new_case()
    for step in setup:
        case = step(case)
    with pytest.raises(CaseError, match=reason):
        move(case)


def test_a_run_out_claim_returns_the_case_to_the_queue() -> None:
    case = workflow.claim(new_case(), "mod1", now=T0, lease=300)
    assert workflow.effective(case, T0 + 299) is case
    back = workflow.effective(case, T0 + 300)
    assert back.status is Status.NEW
    assert back.assignee is None
    assert back.history[-1].action == "claim_expired"
    # Another moderator may now claim; the first one cannot act any more.
    with pytest.raises(CaseError, match="claim case"):
        workflow.act(case, "mod1", "warn", "", now=T0 + 301)
    taken = workflow.claim(case, "mod2", now=T0 + 301, lease=300)
    assert taken.assignee == "mod2"
    assert taken.status is Status.IN_REVIEW


def test_an_actioned_case_keeps_its_status_across_claims() -> None:
    case = workflow.claim(new_case(), "mod1", now=T0, lease=300)
    case = workflow.act(case, "mod1", "kick", "", now=T0 + 1)
    case = workflow.release(case, "mod1", now=T0 + 2)
    assert case.status is Status.ACTIONED
    case = workflow.claim(case, "mod2", now=T0 + 3, lease=300)
    assert case.status is Status.ACTIONED
    assert case.first_claimed_at == T0  # the first claim is what the SLA metric measures


def test_escalate_to_lead_releases_the_claim() -> None:
    case = workflow.claim(new_case(), "mod1", now=T0, lease=300)
    case = workflow.act(case, "mod1", "escalate", "needs a lead", now=T0 + 1)
    assert case.escalated_to_lead
    assert case.status is Status.NEW
    assert case.claimed_by(T0 + 2) is None


def test_notes_and_history_are_bounded() -> None:
    bounds = Bounds(max_history=5, max_notes=3, max_note_chars=10)
    case = new_case()
    for i in range(10):
        case = workflow.add_note(case, "mod1", f"note {i}", now=T0 + i, bounds=bounds)
    assert [n.text for n in case.notes] == ["note 7", "note 8", "note 9"]
    assert len(case.history) == 5
    with pytest.raises(CaseError, match="at most 10"):
        workflow.add_note(case, "mod1", "x" * 11, now=T0, bounds=bounds)
    with pytest.raises(CaseError, match="needs text"):
        workflow.add_note(case, "mod1", "   ", now=T0, bounds=bounds)


def test_captured_evidence_is_linked_once_with_the_claim_and_keeps_the_status() -> None:
    case = workflow.claim(new_case(), "mod1", now=T0, lease=300)
    linked = workflow.link_evidence(case, "mod1", ["rec-9"], now=T0 + 1, reason="user report")
    assert linked.evidence == ("rec-1", "rec-9")
    assert linked.status is case.status
    assert linked.updated_at == T0 + 1
    last = linked.history[-1]
    assert (last.actor, last.action, last.detail) == ("mod1", "captured", "rec-9; user report")
    again = workflow.link_evidence(linked, "mod1", ["rec-9", "rec-1"], now=T0 + 2)
    assert again.evidence == ("rec-1", "rec-9")
    assert case.evidence == ("rec-1",)  # arguments are never changed


def test_linking_evidence_needs_the_claim_an_open_case_and_ids() -> None:
    case = new_case()
    with pytest.raises(CaseError, match="claim case"):
        workflow.link_evidence(case, "mod1", ["rec-9"], now=T0)
    claimed = workflow.claim(case, "mod1", now=T0, lease=300)
    with pytest.raises(CaseError, match="another moderator"):
        workflow.link_evidence(claimed, "mod2", ["rec-9"], now=T0 + 1)
    with pytest.raises(CaseError, match="no evidence"):
        workflow.link_evidence(claimed, "mod1", ["", ""], now=T0 + 1)
    closed = workflow.act(claimed, "mod1", "dismiss", "", now=T0 + 1)
    with pytest.raises(CaseError, match="closed"):
        workflow.link_evidence(closed, "mod1", ["rec-9"], now=T0 + 2)


def test_linked_evidence_is_bounded_newest_kept() -> None:
    case = workflow.claim(new_case(), "mod1", now=T0, lease=300)
    linked = workflow.link_evidence(
        case, "mod1", [f"rec-{n}" for n in range(10)], now=T0 + 1, bounds=Bounds(max_items=4)
    )
    assert linked.evidence == ("rec-6", "rec-7", "rec-8", "rec-9")
