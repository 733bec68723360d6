"""Record payloads: canonical bytes, NCMEC-shaped capture fields, strict decoding."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from chatguard.events import ChatEvent, EventKind, Identity, Side
from chatguard.evidence import records
from chatguard.pipeline import SessionContext
from chatguard.policy.model import ActionType, Assessment, Match, PlannedAction, Signal

NOW = 1_700_000_000.0
TEXT = "Send me a PIC"
RAW = json.dumps({"type": "dm", "to": "amy", "text": TEXT})
EVENT = ChatEvent(EventKind.DIRECT, Side.CLIENT, RAW, "bob", None, ("amy",), TEXT)
BOB = SessionContext(
    "s-bob",
    "203.0.113.7:50123",
    NOW - 60,
    user_agent="ExampleChat/2.1",
    identity=Identity("bob", "Bob B", {"age_band": "adult"}, source="welcome"),
)
ASSESSMENT = Assessment(
    "dm:amy:bob",
    31.5,
    (Signal.IMAGE_REQUEST,),
    (
        Match("r.image", Signal.IMAGE_REQUEST, 10.0, ((0, 13),)),
        Match("r.shadow", Signal.SEXUAL, 1.0, ((5, 7),), shadow=True),
    ),
    (
        PlannedAction(ActionType.BANNER, {"banner": "deter", "audience": "sender"}, "r.image"),
        PlannedAction(ActionType.CAPTURE, {"before": 5, "after": 1}, "r.image"),
        PlannedAction(ActionType.ESCALATE, {"severity": "high"}, "r.image"),
        PlannedAction(ActionType.BLOCK, {}, "r.shadow", shadow=True),
    ),
    policy_version="pv-1",
)


def capture(**kw: object) -> dict[str, object]:
    entry = records.message_entry(EVENT, NOW, BOB)
    args: dict[str, object] = {
        "record_id": "rec-1",
        "instance": "i-1",
        "at": NOW,
        "conversation": "dm:amy:bob",
        "trigger": "policy",
        "reason": "r.image",
        "event": EVENT,
        "frame": RAW,
        "sender": "bob",
        "reported_person": entry["sender_session"],
        "assessment": ASSESSMENT,
        "params": {"before": 5, "after": 1},
        "before": [records.message_entry(EVENT, NOW - 5, None)],
        "after_expected": 1,
    }
    args.update(kw)
    return records.capture_record(**args)  # type: ignore[arg-type]


def test_encoding_is_canonical_and_decoding_reads_without_re_encoding() -> None:
    record = capture()
    data = records.encode(record)
    assert data == records.encode(json.loads(data))
    assert b", " not in data
    assert b": " not in data
    assert records.decode(data) == json.loads(data)
    assert records.encode({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_a_capture_record_carries_the_cybertipline_fields() -> None:
    record = capture()
    assert record["kind"] == "capture"
    assert record["v"] == 1
    assert record["seq"] == -1
    assert record["incident_date_time"] == "2023-11-14T22:13:20.000000Z"
    assert record["chat_client"] == "ExampleChat/2.1"
    person = record["reported_person"]
    assert person["platform_id"] == "bob"
    assert person["display_name"] == "Bob B"
    assert person["age_band"] == "adult"
    assert person["session_id"] == "s-bob"
    assert person["ip_capture_events"] == [
        {
            "event_name": "connect",
            "date_time": "2023-11-14T22:12:20.000000Z",
            "ip_address": "203.0.113.7",
            "port": 50123,
        }
    ]
    assert [p["platform_id"] for p in record["participants"]] == ["amy", "bob"]


def test_a_capture_record_keeps_the_exact_frame_and_what_matched() -> None:
    message = capture()["message"]
    assert base64.b64decode(message["raw_b64"]) == RAW.encode()
    assert message["raw_sha256"] == hashlib.sha256(RAW.encode()).hexdigest()
    assert message["frame_type"] == "text"
    assert message["normalised_text"] == "send me a pic"
    assert message["matched_spans"] == [
        {"rule_id": "r.image", "signal": "image_request", "start": 0, "end": 13, "text": TEXT}
    ]


def test_a_capture_record_says_what_fired_and_omits_shadow_actions() -> None:
    record = capture()
    policy = record["policy"]
    assert (policy["version"], policy["rules"], policy["signals"], policy["risk"]) == (
        "pv-1",
        ["r.image"],
        ["image_request"],
        31.5,
    )
    assert [a["type"] for a in policy["actions"]] == ["banner", "capture", "escalate"]
    assert record["banners_shown"] == [{"banner": "deter", "audience": "sender", "outcome": None}]
    assert record["escalated"] is True
    assert len(record["context_before"]) == 1
    assert record["context_after_expected"] == 1


def test_a_binary_frame_is_kept_as_bytes() -> None:
    fields = records.frame_fields(b"\x00\xffPRIVMSG")
    assert fields["frame_type"] == "binary"
    assert base64.b64decode(fields["raw_b64"]) == b"\x00\xffPRIVMSG"


def test_a_report_without_an_assessment_is_still_a_record() -> None:
    record = capture(assessment=None, trigger="report", reported_person=None, event=None)
    assert record["policy"]["rules"] == []
    assert record["escalated"] is False
    assert record["reported_person"] == {"platform_id": "bob"}
    assert record["message"]["text"] is None


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff",
        b"[]",
        b'{"kind": "nope", "id": "x", "seq": 0}',
        b'{"kind": "audit", "seq": 0}',
        b"{",
    ],
)
def test_decode_refuses_what_is_not_a_record(payload: bytes) -> None:
    with pytest.raises(records.RecordError):
        records.decode(payload)


def test_other_record_kinds() -> None:
    audit = records.audit_record(
        record_id="a",
        instance="i",
        at=NOW,
        actor="mod:kim",
        action="export",
        subject="case:7",
        reason="police request",
        details={"evidence": ("x", "y")},
    )
    assert audit["details"] == {"evidence": ["x", "y"]}
    tomb = records.tombstone_record(
        record_id="t", instance="i", at=NOW, purged=[{"index": 1}], reason="retention"
    )
    assert tomb["purged"] == [{"index": 1}]
    repair = records.repair_record(
        record_id="r", instance="i", at=NOW, segment="seg-0.log", offset=10, bytes_cut=3
    )
    assert (repair["offset"], repair["bytes_cut"]) == (10, 3)
    note = records.checkpoint_record(record_id="c", instance="i", at=NOW, note=b"o\n1\nx\n")
    assert note["note"] == "o\n1\nx\n"
    for record in (audit, tomb, repair, note):
        assert records.decode(records.encode(record))["kind"] == record["kind"]


def test_a_moderator_capture_has_the_capture_shape_and_no_message() -> None:
    window = [
        records.message_entry(EVENT, NOW - 5, BOB),
        records.message_entry(
            ChatEvent(EventKind.DIRECT, Side.UPSTREAM, "{}", "amy", None, ("bob",), "no"),
            NOW - 4,
            None,
        ),
    ]
    record = records.moderator_capture_record(
        record_id="rec-m",
        instance="i-1",
        at=NOW,
        conversation="dm:amy:bob",
        actor="mia",
        reason="user report, no automatic capture",
        before=window,
        after_expected=3,
    )
    # Every field a capture record has (documented in docs/evidence-format.md), and one more.
    assert set(record) == set(capture()) | {"requested_by"}
    assert record["kind"] == "capture"
    assert record["trigger"] == "moderator"
    assert record["requested_by"] == "mia"
    assert record["reason"] == "user report, no automatic capture"
    assert record["message"] is None
    assert record["reported_person"] is None
    assert record["escalated"] is False
    assert [e["text"] for e in record["context_before"]] == [TEXT, "no"]
    assert record["context_after_expected"] == 3
    # Participants: the session seen for bob, only the name for amy (upstream).
    assert [p["platform_id"] for p in record["participants"]] == ["amy", "bob"]
    assert record["participants"][1]["session_id"] == "s-bob"
    assert records.decode(records.encode(record)) == record
