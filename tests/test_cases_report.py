"""The law-enforcement report: fields, checklist, JSON and XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from chatguard.cases import workflow
from chatguard.cases.model import DEFAULT_SLA, Case, EscalationSummary
from chatguard.cases.report import (
    INCIDENT_TYPES,
    IpCapture,
    ReportInput,
    TranscriptLine,
    checklist,
    law_enforcement_report,
    report_input_from_records,
    report_xml,
)

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def a_case(categories: tuple[str, ...] = ("grooming", "sextortion")) -> Case:
    case = None
    for i, category in enumerate(categories):
        s = EscalationSummary(
            at=T0 + 60 * i,
            source="detection",
            reporter=None,
            sender="bob",
            severity="critical",
            category=category,
            risk=20.0,
            signals=("image_request", "secrecy"),
            reason="r",
        )
        if case is None:
            case = workflow.open_case(
                "case-9", "dm:amy:bob", s, ["bob", "amy"], ["rec-1"], now=T0, sla=DEFAULT_SLA
            )
        else:
            case = workflow.add_escalation(case, s, [], ["rec-2"], now=T0 + 60, sla=DEFAULT_SLA)
    assert case is not None
    return case


FULL = ReportInput(
    transcript=(
        TranscriptLine(T0 - 30, "bob", "send me a pic <now> & don't tell", None, "rec-1"),
        TranscriptLine(T0 - 60, "amy", "who is this", None, "rec-1"),
    ),
    ips=(
        IpCapture("bob", "203.0.113.9", T0 - 120, "connect"),
        IpCapture("amy", "198.51.100.2", T0 - 100, "connect"),
    ),
    age_bands={"amy": "13-15", "bob": "adult"},
    client="ExampleChat/2.1",
)


def test_report_fields_follow_the_cybertipline_shape() -> None:
    report = law_enforcement_report(a_case(), FULL, service="Example Chat", now=T0 + 3600)
    assert report["incidentSummary"]["incidentType"] == (
        "Online Enticement of Children for Sexual Acts"
    )
    # The incident starts with the first message of the transcript, in UTC.
    assert report["incidentSummary"]["incidentDateTime"] == "2025-12-31T23:59:00Z"
    assert report["reporter"]["reportingService"] == "Example Chat"
    assert report["reportedPerson"]["espIdentifier"] == "bob"
    # Only the reported person's IP events, in time order.
    assert report["reportedPerson"]["ipCaptureEvents"] == [
        {"ipAddress": "203.0.113.9", "eventName": "connect", "dateTime": "2025-12-31T23:58:00Z"}
    ]
    assert report["childVictims"] == [{"espIdentifier": "amy", "attestedAgeBand": "13-15"}]
    assert report["internetDetails"]["chatImIncident"]["chatClient"] == "ExampleChat/2.1"
    assert {"sextortion", "csamSolicitation"} <= set(report["reportAnnotations"])
    assert [line["sender"] for line in report["transcript"]] == ["amy", "bob"]
    assert report["evidenceRecords"] == ["rec-1", "rec-2"]
    json.dumps(report)  # JSON-ready as it is
    assert all(ok for _, ok, _ in checklist(report))


def test_checklist_names_every_missing_fact() -> None:
    report = law_enforcement_report(
        a_case(("spam",)), ReportInput(), service="Example Chat", now=T0
    )
    missing = {item: why for item, ok, why in checklist(report) if not ok}
    assert set(missing) == {
        "incident type",
        "IP capture events",
        "child party's attested age",
        "transcript",
        "transcript tied to evidence records",
    }
    assert missing["transcript"] == "no evidence messages loaded"


def test_a_minor_reported_person_adds_the_minor_to_minor_annotation() -> None:
    bands = ReportInput(transcript=FULL.transcript, age_bands={"amy": "13-15", "bob": "16-17"})
    report = law_enforcement_report(a_case(("grooming",)), bands, service="s", now=T0)
    assert "minorToMinorInteraction" in report["reportAnnotations"]


def test_xml_carries_the_report_and_escapes_text() -> None:
    report = law_enforcement_report(a_case(), FULL, service="Example & Co", now=T0)
    text = report_xml(report)
    root = ET.fromstring(text.split("\n", 1)[1])
    assert root.tag == "report"
    assert root.findtext("reporter/reportingService") == "Example & Co"
    assert root.findtext("incidentSummary/incidentType") == INCIDENT_TYPES["grooming"]
    messages = root.findall("transcript/message")
    assert messages[1].findtext("text") == "send me a pic <now> & don't tell"
    assert root.findtext("reportedPerson/ipCaptureEvents/ipCaptureEvent/ipAddress") == (
        "203.0.113.9"
    )
    assert "<now>" not in text


@settings(max_examples=40, deadline=None)
@given(st.text())
def test_any_user_text_makes_well_formed_xml(text: str) -> None:
    evidence = ReportInput(transcript=(TranscriptLine(T0, text or "x", text, text, "rec-1"),))
    report = law_enforcement_report(a_case(("grooming",)), evidence, service=text, now=T0)
    root = ET.fromstring(report_xml(report).split("\n", 1)[1])
    assert root.find("transcript/message") is not None


def test_report_input_is_read_from_evidence_records() -> None:
    bob = {
        "platform_id": "bob",
        "age_band": "adult",
        "user_agent": "ExampleChat/2.1",
        "ip_capture_events": [
            {
                "event_name": "connect",
                "date_time": "2025-12-31T23:50:00.000000Z",
                "ip_address": "203.0.113.9",
                "port": 5000,
            }
        ],
    }
    amy = {"platform_id": "amy", "age_band": "13-15", "ip_capture_events": []}
    records = [
        {
            "kind": "capture",
            "id": "rec-1",
            "incident_date_time": "2026-01-01T00:00:00.000000Z",
            "chat_client": "ExampleChat/2.1",
            "room_name": None,
            "reported_person": bob,
            "participants": [amy, bob],
            "context_before": [
                {
                    "date_time": "2025-12-31T23:59:00.000000Z",
                    "sender": "amy",
                    "text": "hi",
                    "room_name": None,
                    "sender_session": amy,
                },
            ],
            "message": {"sender": "bob", "text": "send me a pic"},
        },
        {
            "kind": "context",
            "id": "rec-2",
            "context_after": [
                {"date_time": "2026-01-01T00:00:30.000000Z", "sender": "amy", "text": "no"},
                {"date_time": "bad time", "sender": "amy", "text": "skipped"},
            ],
        },
        {"kind": "audit", "id": "rec-3"},
        {"kind": "capture", "id": "rec-4", "message": "not a mapping", "participants": [7]},
    ]
    given_input = report_input_from_records(records)
    assert [(line.sender, line.text, line.record) for line in given_input.transcript] == [
        ("amy", "hi", "rec-1"),
        ("bob", "send me a pic", "rec-1"),
        ("amy", "no", "rec-2"),
    ]
    assert [(c.user, c.ip, c.event) for c in given_input.ips] == [("bob", "203.0.113.9", "connect")]
    assert given_input.age_bands == {"bob": "adult", "amy": "13-15"}
    assert given_input.client == "ExampleChat/2.1"
    report = law_enforcement_report(a_case(), given_input, service="Example", now=T0)
    assert all(ok for _, ok, _ in checklist(report)), checklist(report)
