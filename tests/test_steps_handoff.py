"""CaptureStep and EscalateStep: enforced actions reach the sink; failures never reach chat."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from chatguard.directory import Directory
from chatguard.events import PASS, ChatEvent, EventKind, Identity, Side
from chatguard.live_policy import LivePolicy
from chatguard.metrics import Metrics
from chatguard.pipeline import Findings, Pipeline, SessionContext
from chatguard.policy.model import ActionType, Assessment, Match, PlannedAction, Signal
from chatguard.steps.handoff import (
    DEFAULT_KEEP,
    CaptureRequest,
    CaptureStep,
    EscalateStep,
    EscalationRequest,
    RecordingSink,
)
from chatguard.steps.policy import PolicyStep
from chatguard.stores import MemoryStore
from tests.support.relay import GuardFactory
from tests.support.timing import eventually
from tests.test_steps_speedbumps import connect, dm, guarded, recv_type

NOW = 1_700_000_000.0
TEXT = "send me a pic"
RAW = json.dumps({"type": "dm", "to": "amy", "text": TEXT})
EVENT = ChatEvent(EventKind.DIRECT, Side.CLIENT, RAW, "bob", None, ("amy",), TEXT)
SESSION = SessionContext("s-bob", "127.0.0.1:50000", 0.0, identity=Identity("bob", "Bob"))


def clock() -> float:
    return NOW


def capture(shadow: bool = False, **params: Any) -> PlannedAction:
    return PlannedAction(ActionType.CAPTURE, params or {"before": 5, "after": 1}, "rule.c", shadow)


def escalate(shadow: bool = False, **params: Any) -> PlannedAction:
    return PlannedAction(ActionType.ESCALATE, params, "rule.e", shadow)


def banner() -> PlannedAction:
    return PlannedAction(ActionType.BANNER, {"banner": "b", "audience": "sender"}, "rule.b")


def hold() -> PlannedAction:
    return PlannedAction(ActionType.HOLD, {"banner": "b"}, "rule.h")


def assessment_of(*actions: PlannedAction) -> Assessment:
    match = Match("rule.c", Signal.IMAGE_REQUEST, 10.0, ((0, len(TEXT)),))
    return Assessment("dm:amy:bob", 31.5, (Signal.IMAGE_REQUEST,), (match,), actions)


def findings_of(assessment: object, recipients: tuple[str, ...] = ("amy",)) -> Findings:
    return Findings(assessment=assessment, notes={"recipients": recipients})


def handoffs(metrics: Metrics, kind: str, outcome: str) -> float:
    labels = {"kind": kind, "outcome": outcome}
    return metrics.registry.get_sample_value("chatguard_handoffs_total", labels) or 0.0


async def hand_off(sink: Any, findings: Findings, metrics: Metrics | None = None) -> Metrics:
    metrics = metrics or Metrics()
    for step in (CaptureStep(sink, metrics, clock), EscalateStep(sink, metrics, clock)):
        assert await step(EVENT, SESSION, findings) is PASS
    return metrics


class FailingSink:
    """A sink whose store is down: every hand-off raises."""

    def __init__(self) -> None:
        self.calls = 0

    async def capture(self, request: CaptureRequest) -> None:
        self.calls += 1
        raise OSError("evidence volume is read-only")

    async def escalate(self, request: EscalationRequest) -> None:
        self.calls += 1
        raise RuntimeError("case queue unreachable")


@pytest.mark.parametrize(
    ("actions", "captures", "escalations"),
    [
        ([capture()], 1, 0),
        ([capture(shadow=True)], 0, 0),
        ([escalate(severity="high", category="grooming")], 0, 1),
        ([escalate(shadow=True, severity="high", category="grooming")], 0, 0),
        ([capture(), escalate(severity="high", category="grooming")], 1, 1),
        ([capture(), escalate(shadow=True)], 1, 0),
        ([capture(shadow=True), escalate()], 0, 1),
        ([escalate(category="grooming"), escalate(category="sextortion")], 0, 2),
        ([banner(), hold()], 0, 0),
        ([], 0, 0),
    ],
)
async def test_only_enforced_captures_and_escalations_are_handed_off(
    actions: list[PlannedAction], captures: int, escalations: int
) -> None:
    sink = RecordingSink()
    metrics = await hand_off(sink, findings_of(assessment_of(*actions)))
    assert (len(sink.captures), len(sink.escalations)) == (captures, escalations)
    assert handoffs(metrics, "capture", "ok") == captures
    assert handoffs(metrics, "escalate", "ok") == escalations
    assert handoffs(metrics, "capture", "failed") == handoffs(metrics, "escalate", "failed") == 0


async def test_a_capture_request_carries_what_happened() -> None:
    sink = RecordingSink()
    assessment = assessment_of(capture(before=30, after=10))
    await hand_off(sink, findings_of(assessment))
    assert list(sink.captures) == [
        CaptureRequest(
            at=NOW,
            conversation="dm:amy:bob",
            session_id="s-bob",
            sender="bob",
            frame=RAW,  # the exact frame, not a re-serialisation
            assessment=assessment,
            params={"before": 30, "after": 10},
            reason="rule.c",
            event=EVENT,
        )
    ]


@pytest.mark.parametrize(
    ("params", "severity", "category"),
    [
        ({"severity": "high", "category": "sextortion"}, "high", "sextortion"),
        ({}, "medium", "grooming"),  # defaults when a planned action names neither
    ],
)
async def test_an_escalation_request_carries_what_happened(
    params: dict[str, str], severity: str, category: str
) -> None:
    sink = RecordingSink()
    assessment = assessment_of(escalate(**params))
    await hand_off(sink, findings_of(assessment, recipients=("amy", "cat")))
    assert list(sink.escalations) == [
        EscalationRequest(
            at=NOW,
            conversation="dm:amy:bob",
            session_id="s-bob",
            sender="bob",
            recipients=("amy", "cat"),
            severity=severity,
            category=category,
            risk=31.5,
            signals=("image_request",),
            reason="rule.e",
            assessment=assessment,
        )
    ]


async def test_escalation_recipients_default_to_none() -> None:
    sink = RecordingSink()
    await hand_off(sink, Findings(assessment=assessment_of(escalate())))
    assert sink.escalations[0].recipients == ()


@pytest.mark.parametrize("assessment", [None, "not an assessment", {"actions": [capture()]}])
async def test_without_an_assessment_nothing_is_handed_off(assessment: object) -> None:
    sink = RecordingSink()
    metrics = await hand_off(sink, findings_of(assessment))
    assert (len(sink.captures), len(sink.escalations)) == (0, 0)
    assert handoffs(metrics, "capture", "ok") == handoffs(metrics, "escalate", "ok") == 0


async def test_a_failing_sink_is_counted_and_never_stops_chat(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = FailingSink()
    findings = findings_of(assessment_of(capture(), escalate(severity="high")))
    with caplog.at_level(logging.ERROR, logger="chatguard.steps.handoff"):
        metrics = await hand_off(sink, findings)
        await hand_off(sink, findings, metrics)
    assert sink.calls == 4
    assert handoffs(metrics, "capture", "failed") == 2
    assert handoffs(metrics, "escalate", "failed") == 2
    assert handoffs(metrics, "capture", "ok") == handoffs(metrics, "escalate", "ok") == 0
    assert [r.getMessage() for r in caplog.records] == [
        "capture sink failed",
        "escalate sink failed",
    ] * 2
    assert TEXT not in caplog.text  # failures are logged without message content


@pytest.mark.parametrize(("keep", "sent"), [(3, 2), (3, 3), (3, 10), (1, 5)])
async def test_the_recording_sink_keeps_only_the_most_recent(keep: int, sent: int) -> None:
    sink = RecordingSink(keep=keep)
    for n in range(sent):
        findings = findings_of(assessment_of(capture(before=n, after=0), escalate()))
        await hand_off(sink, findings)
    assert [r.params["before"] for r in sink.captures] == list(range(sent))[-keep:]
    assert len(sink.escalations) == min(keep, sent)


def test_the_recording_sink_is_bounded_by_default() -> None:
    sink = RecordingSink()
    assert sink.captures.maxlen == sink.escalations.maxlen == DEFAULT_KEEP


async def test_a_policy_decision_reaches_the_sink_through_the_pipeline(
    test_pack: tuple[Path, Path],
) -> None:
    metrics = Metrics()
    live = LivePolicy(*test_pack, metrics)
    live.load_now()
    store = MemoryStore(clock)
    directory = Directory(store)
    await directory.record(Identity("amy", "Amy", {"age_band": "minor"}))
    sink = RecordingSink()
    policy = PolicyStep(
        live, store, directory, metrics, state_ttl=3600.0, max_recipients=50, clock=clock
    )
    pipeline = Pipeline(
        {
            "policy": policy,
            "evidence": CaptureStep(sink, metrics, clock),
            "escalate": EscalateStep(sink, metrics, clock),
        },
        metrics,
    )
    bob = SessionContext(
        "s-bob", "127.0.0.1:50000", 0.0, identity=Identity("bob", "Bob", {"age_band": "adult"})
    )
    verdict = await pipeline.run(EVENT, bob)
    assert verdict.forward
    [captured] = sink.captures
    assert (captured.frame, captured.params) == (RAW, {"before": 10, "after": 2})
    [escalation] = sink.escalations
    assert (escalation.severity, escalation.category, escalation.recipients) == (
        "high",
        "grooming",
        ("amy",),
    )
    assert escalation.signals == ("image_request",)


class NumberingSink(RecordingSink):
    """An evidence sink that names the records it writes."""

    async def capture(self, request: CaptureRequest) -> str | None:
        await super().capture(request)
        return f"rec-{len(self.captures)}"


async def test_an_escalation_links_the_evidence_captured_for_the_same_event() -> None:
    sink = NumberingSink()
    await hand_off(sink, findings_of(assessment_of(capture(), escalate(severity="high"))))
    assert [e.evidence for e in sink.escalations] == [("rec-1",)]


# -- through the real relay: held and redacted messages are still captured ----

HOLD_AND_REDACT = r"""
language: en
rules:
  - id: t.hold.address_minor
    description: A child is about to send their street address
    signal: pi_share
    weight: 0.5
    patterns:
      - regex: '\bi live at \d+ \w+ (street|road)\b'
    scope:
      sender_age: [minor]
    actions:
      - {type: hold, banner: pi_share_confirm}
      - {type: capture, before: 5, after: 0}
    examples:
      match: [i live at 12 park road]
      no_match: [i live far away]

  - id: t.redact.code
    description: Someone posts a door code
    signal: pi_share
    weight: 0.5
    patterns:
      - regex: '\bdoor code \d{4}\b'
    actions:
      - {type: redact}
      - {type: capture, before: 5, after: 0}
    examples:
      match: [the door code 1234 works]
      no_match: [the door is open]
"""


async def test_a_held_message_is_captured_as_typed(
    chat_service, make_guard: GuardFactory, test_pack: tuple[Path, Path]
) -> None:
    (test_pack[0] / "en" / "hold_and_redact.yaml").write_text(HOLD_AND_REDACT, encoding="utf-8")
    guard = await guarded(make_guard, chat_service.url, test_pack)
    amy, bob = await connect(guard, "amy", 13), await connect(guard, "bob", 41)
    try:
        await eventually(lambda: len(guard.relay.sessions) == 2)
        await dm(amy, "bob", "i live at 12 park road")
        assert (await recv_type(amy, "chatguard.hold"))["banner"] == "pi_share_confirm"
        await eventually(lambda: len(guard.recorded.captures) == 1)
        [held] = guard.recorded.captures
        assert held.event is not None
        assert held.event.text == "i live at 12 park road"
        assert [m.rule_id for m in held.assessment.matches] == ["t.hold.address_minor"]
    finally:
        await amy.close()
        await bob.close()


async def test_a_redacted_message_is_captured_as_typed_and_delivered_masked(
    chat_service, make_guard: GuardFactory, test_pack: tuple[Path, Path]
) -> None:
    (test_pack[0] / "en" / "hold_and_redact.yaml").write_text(HOLD_AND_REDACT, encoding="utf-8")
    guard = await guarded(make_guard, chat_service.url, test_pack)
    amy, bob = await connect(guard, "amy", 30), await connect(guard, "bob", 41)
    try:
        await eventually(lambda: len(guard.relay.sessions) == 2)
        await dm(amy, "bob", "the door code 1234 works")
        delivered = await recv_type(bob, "dm")
        assert "1234" not in delivered["text"]
        await eventually(lambda: len(guard.recorded.captures) == 1)
        [captured] = guard.recorded.captures
        assert "door code 1234" in str(captured.frame)
    finally:
        await amy.close()
        await bob.close()
