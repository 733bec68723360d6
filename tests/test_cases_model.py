"""The case record, its JSON form, the grouping key and moderator actions."""

from __future__ import annotations

import pytest

from chatguard.cases import model, workflow
from chatguard.cases.model import (
    DEFAULT_SLA,
    Case,
    CaseError,
    EscalationSummary,
    ModeratorAction,
)

T0 = 1_700_000_000.0


def summary(
    severity: str = "medium", category: str = "grooming", at: float = T0
) -> EscalationSummary:
    return EscalationSummary(
        at=at,
        source="detection",
        reporter=None,
        sender="adult",
        severity=severity,
        category=category,
        risk=9.5,
        signals=("secrecy", "contact_move"),
        reason="grooming risk 8",
    )


def new_case(severity: str = "medium") -> Case:
    return workflow.open_case(
        "case-1",
        "dm:adult:kid",
        summary(severity),
        ["adult", "kid"],
        ["rec-1"],
        now=T0,
        sla=DEFAULT_SLA,
    )


def test_group_key_is_conversation_plus_subject() -> None:
    assert model.group_key("room:lobby", "a") == model.group_key("room:lobby", "a")
    assert model.group_key("room:lobby", "a") != model.group_key("room:lobby", "b")
    assert model.group_key("room:x", "a") != model.group_key("room:y", "a")
    # A separator in a name cannot make two groups collide.
    assert model.group_key("room:a", "b\x00c") != model.group_key("room:a\x00b", "c")


def test_json_round_trip() -> None:
    case = workflow.claim(new_case(), "mod1", now=T0, lease=300)
    case = workflow.add_note(case, "mod1", "looks bad", now=T0 + 1)
    assert Case.from_json(case.to_json()) == case
    api = case.to_json()
    for key in (
        "id",
        "status",
        "severity",
        "categories",
        "conversation",
        "participants",
        "created_at",
        "updated_at",
        "assignee",
    ):
        assert key in api
    assert api["status"] == "in_review"


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        (ModeratorAction("mute"), "needs a duration"),
        (ModeratorAction("mute", duration=0), "positive"),
        (ModeratorAction("ban", duration=10**9), "at most"),
        (ModeratorAction("report"), "external reference"),
        (ModeratorAction("nuke"), "unknown action"),
        (ModeratorAction("warn", reason="x" * 501), "at most 500"),
    ],
)
def test_bad_actions_are_refused(action: ModeratorAction, reason: str) -> None:
    with pytest.raises(CaseError, match=reason):
        action.check(max_duration=365 * 86400.0)


def test_action_target_must_be_a_participant() -> None:
    case = new_case()
    assert ModeratorAction("warn").target_in(case) == "adult"
    assert ModeratorAction("warn", target="kid").target_in(case) == "kid"
    with pytest.raises(CaseError, match="not a participant"):
        ModeratorAction("ban", target="bystander").target_in(case)
