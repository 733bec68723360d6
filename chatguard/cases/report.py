"""The law-enforcement report of a case, shaped after NCMEC CyberTipline fields.

What it owns: building the report document from a case and the evidence a
caller loaded (``ReportInput``), rendering it as JSON (a dict) and XML, and
the completeness checklist that must pass before a case may be marked
reported.

The field names follow the CyberTipline reporting API's vocabulary
(``incidentSummary/incidentType``, ``incidentDateTime``, ``reportedPerson``
with ``ipCaptureEvent``, ``internetDetails/chatImIncident``,
``reportAnnotations``); the document is a hand-over aid for the operator's
own submission, not a filing in itself.

Invariants:

* Pure: no I/O, no clock reads (``now`` is passed in).
* XML is built with ``xml.etree`` (escaping is the library's); characters
  XML 1.0 cannot carry are replaced, so no user text can break the document.
* The checklist names every missing fact; it never passes on an empty
  transcript, an unknown reported person or an incident without a time.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .model import Case

SCHEMA = "chatguard-le-report/1"

#: Incident types (CyberTipline vocabulary) by case category.
INCIDENT_TYPES: Mapping[str, str] = {
    "grooming": "Online Enticement of Children for Sexual Acts",
    "sextortion": "Online Enticement of Children for Sexual Acts",
    "enticement": "Online Enticement of Children for Sexual Acts",
    "csam": "Child Pornography (possession, manufacture, and distribution)",
    "trafficking": "Child Sex Trafficking",
    "travel": "Child Sex Tourism",
}
#: Report annotations (CyberTipline vocabulary) by case category or signal.
ANNOTATIONS: Mapping[str, str] = {
    "sextortion": "sextortion",
    "image_request": "csamSolicitation",
    "csam": "csamSolicitation",
    "minor_to_minor": "minorToMinorInteraction",
}
MINOR_BANDS = frozenset({"under13", "13-15", "16-17", "minor", "child", "teen"})


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One message of the conversation, as an evidence record holds it."""

    at: float
    sender: str
    text: str
    room: str | None = None
    record: str | None = None  # evidence record id


@dataclass(frozen=True, slots=True)
class IpCapture:
    """An IP address seen for a user, and when (connect, message, ...)."""

    user: str
    ip: str
    at: float
    event: str = "message"


@dataclass(frozen=True, slots=True)
class ReportInput:
    """What the caller loaded from the evidence log for the report.

    ``age_bands`` maps users to their attested age band; ``client`` names the
    chat client (user agent) and ``room`` the room, when known.
    """

    transcript: Sequence[TranscriptLine] = ()
    ips: Sequence[IpCapture] = ()
    age_bands: Mapping[str, str] = field(default_factory=dict)
    client: str = ""
    room: str | None = None


def _epoch(value: Any) -> float | None:
    """Epoch seconds from an evidence record's RFC 3339 UTC time (or a number)."""
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def report_input_from_records(records: Iterable[Mapping[str, Any]]) -> ReportInput:
    """The report's input from evidence records, as the evidence log writes them.

    Reads ``capture`` records (``context_before``, ``message``, ``reported_person``
    and ``participants`` with ``ip_capture_events`` and ``age_band``,
    ``chat_client``, ``room_name``) and ``context`` records (``context_after``);
    other kinds are skipped. Messages seen in several records appear once.
    Fields are those of ``docs/evidence-format.md``; a missing field is skipped,
    never fatal, so a partial record only leaves a checklist item open.
    """
    lines: dict[tuple[Any, ...], TranscriptLine] = {}
    ips: dict[tuple[str, str, float], IpCapture] = {}
    bands: dict[str, str] = {}
    client = ""
    room: str | None = None

    def add_line(entry: Mapping[str, Any], record: str | None, at: Any) -> None:
        when = _epoch(at)
        text = entry.get("text")
        if when is None or not isinstance(text, str):
            return
        sender = str(entry.get("sender") or "")
        key = (round(when, 6), sender, text)
        if key not in lines:
            lines[key] = TranscriptLine(when, sender, text, entry.get("room_name"), record)

    def add_person(p: Any) -> None:
        if not isinstance(p, Mapping) or not isinstance(p.get("platform_id"), str):
            return
        user = p["platform_id"]
        band = p.get("age_band")
        if isinstance(band, str) and band != "unknown":
            bands[user] = band
        for event in p.get("ip_capture_events") or ():
            if not isinstance(event, Mapping) or not isinstance(event.get("ip_address"), str):
                continue
            when = _epoch(event.get("date_time"))
            if when is not None:
                name = str(event.get("event_name") or "message")
                ips[(user, event["ip_address"], when)] = IpCapture(
                    user, event["ip_address"], when, name
                )

    for record in records:
        record_id = record.get("id") if isinstance(record.get("id"), str) else None
        if record.get("kind") == "capture":
            for entry in record.get("context_before") or ():
                if isinstance(entry, Mapping):
                    add_line(entry, record_id, entry.get("date_time"))
                    add_person(entry.get("sender_session"))
            message = record.get("message")
            if isinstance(message, Mapping):
                add_line(
                    {**message, "room_name": record.get("room_name")},
                    record_id,
                    record.get("incident_date_time"),
                )
            add_person(record.get("reported_person"))
            for participant in record.get("participants") or ():
                add_person(participant)
            client = client or str(record.get("chat_client") or "")
            room = room or record.get("room_name")
        elif record.get("kind") == "context":
            for entry in record.get("context_after") or ():
                if isinstance(entry, Mapping):
                    add_line(entry, record_id, entry.get("date_time"))
    return ReportInput(
        transcript=tuple(sorted(lines.values(), key=lambda line: line.at)),
        ips=tuple(sorted(ips.values(), key=lambda c: c.at)),
        age_bands=bands,
        client=client,
        room=room,
    )


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def incident_type(categories: Sequence[str]) -> str | None:
    for category in categories:
        if category in INCIDENT_TYPES:
            return INCIDENT_TYPES[category]
    return None


def law_enforcement_report(
    case: Case, evidence: ReportInput, *, service: str, now: float
) -> dict[str, Any]:
    """The report as a JSON-ready dict (see ``checklist`` for what must be in it)."""
    signals = sorted({s for e in case.escalations for s in e.signals})
    annotations = sorted({ANNOTATIONS[k] for k in (*case.categories, *signals) if k in ANNOTATIONS})
    subject = case.subject
    victims = [
        {"espIdentifier": p, "attestedAgeBand": evidence.age_bands.get(p, "unknown")}
        for p in case.participants
        if p != subject
    ]
    if any(v["attestedAgeBand"] in MINOR_BANDS for v in victims) and (
        evidence.age_bands.get(subject or "", "unknown") in MINOR_BANDS
    ):
        annotations = sorted({*annotations, "minorToMinorInteraction"})
    lines = sorted(evidence.transcript, key=lambda line: line.at)
    first_flag = min((e.at for e in case.escalations), default=None)
    room = evidence.room or (
        case.conversation[len("room:") :] if case.conversation.startswith("room:") else None
    )
    return {
        "schema": SCHEMA,
        "reporter": {
            "reportingService": service,
            "caseId": case.id,
            "generatedAt": _iso(now),
            "externalRef": case.external_ref,
        },
        "incidentSummary": {
            "incidentType": incident_type(case.categories),
            "incidentDateTime": _iso(lines[0].at if lines else first_flag),
            "flaggedAt": _iso(first_flag),
            "severity": case.severity,
            "categories": list(case.categories),
        },
        "reportAnnotations": annotations,
        "reportedPerson": {
            "espIdentifier": subject,
            "screenName": subject,
            "ipCaptureEvents": [
                {"ipAddress": c.ip, "eventName": c.event, "dateTime": _iso(c.at)}
                for c in sorted(evidence.ips, key=lambda c: c.at)
                if c.user == subject
            ],
        },
        "childVictims": victims,
        "internetDetails": {
            "chatImIncident": {
                "chatClient": evidence.client or None,
                "chatRoomName": room,
                "conversation": case.conversation,
            }
        },
        "transcript": [
            {
                "dateTime": _iso(line.at),
                "sender": line.sender,
                "room": line.room,
                "text": line.text,
                "evidenceRecord": line.record,
            }
            for line in lines
        ],
        "detection": {
            "signals": signals,
            "escalations": len(case.escalations),
            "sources": sorted({e.source for e in case.escalations}),
        },
        "evidenceRecords": list(case.evidence),
    }


def checklist(report: Mapping[str, Any]) -> list[tuple[str, bool, str]]:
    """Every fact law enforcement needs, whether the report has it, and why not."""
    incident = report.get("incidentSummary", {})
    person = report.get("reportedPerson", {})
    victims = report.get("childVictims", [])
    transcript = report.get("transcript", [])
    chat = report.get("internetDetails", {}).get("chatImIncident", {})
    items = [
        (
            "incident type",
            bool(incident.get("incidentType")),
            "no category maps to an incident type",
        ),
        ("incident date and time", bool(incident.get("incidentDateTime")), "no time known"),
        ("reporting service", bool(report.get("reporter", {}).get("reportingService")), "unset"),
        ("reported person", bool(person.get("espIdentifier")), "the case has no subject"),
        (
            "IP capture events",
            bool(person.get("ipCaptureEvents")),
            "no IP address recorded for the reported person",
        ),
        (
            "child party's attested age",
            any(v.get("attestedAgeBand", "unknown") != "unknown" for v in victims),
            "no attested age band for any other participant",
        ),
        ("chat service and conversation", bool(chat.get("conversation")), "no conversation"),
        ("transcript", bool(transcript), "no evidence messages loaded"),
        (
            "transcript tied to evidence records",
            bool(transcript) and all(line.get("evidenceRecord") for line in transcript),
            "some lines have no evidence record id",
        ),
    ]
    return [(name, ok, "" if ok else why) for name, ok, why in items]


_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _tag(key: str) -> str:
    # Keys are ours (camelCase ASCII), but be safe for anything unexpected.
    return re.sub(r"[^A-Za-z0-9_.-]", "_", key) or "item"


_ITEM_TAGS = {
    "reportAnnotations": "annotation",
    "ipCaptureEvents": "ipCaptureEvent",
    "childVictims": "childVictim",
    "transcript": "message",
    "evidenceRecords": "recordId",
    "categories": "category",
    "signals": "signal",
    "sources": "source",
}


def _build(parent: ET.Element, key: str, value: Any) -> None:
    if value is None:
        return
    element = ET.SubElement(parent, _tag(key))
    if isinstance(value, Mapping):
        for k, v in value.items():
            _build(element, str(k), v)
    elif isinstance(value, list | tuple):
        item = _ITEM_TAGS.get(key, "item")
        for v in value:
            _build(element, item, v)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = _text(value)


def report_xml(report: Mapping[str, Any]) -> str:
    """The report as an XML document (root ``report``)."""
    root = ET.Element("report", {"schema": _text(report.get("schema", SCHEMA))})
    for key, value in report.items():
        if key != "schema":
            _build(root, key, value)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
