"""Evidence record payloads: what each kind of record says, as canonical JSON.

What it owns: the schema of every record the evidence log writes — capture,
context (the messages after a capture), audit (custody and case changes),
tombstone (a purge), repair (a torn tail cut after a crash) and checkpoint —
and their one byte form. ``docs/evidence-format.md`` §7 documents every field.

Capture records name their fields after the NCMEC CyberTipline report model
where one exists (``incident_date_time``, ``reported_person``,
``ip_capture_events`` with ``event_name`` and ``date_time``, ``chat_client``,
``room_name``), so a report can be filled from records directly.

Invariants:

* ``encode`` is canonical (sorted keys, no whitespace, UTF-8, no NaN): one
  record has one byte form. The bytes are signed as they are; a reader never
  re-encodes a payload to check it (``decode`` only reads).
* Every record carries ``v``, ``kind``, ``id``, ``seq`` (its leaf index, so
  monotonic), ``instance`` and ``recorded_at`` (UTC wall clock).
* Pure: no I/O, no clock; times are passed in as epoch seconds.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..events import ChatEvent, Frame
from ..pipeline import SessionContext
from ..policy.model import ActionType, Assessment
from ..policy.normalise import normalise

__all__ = [
    "KINDS",
    "RECORD_VERSION",
    "RecordError",
    "audit_record",
    "capture_record",
    "checkpoint_record",
    "context_record",
    "decode",
    "encode",
    "frame_fields",
    "iso",
    "message_entry",
    "moderator_capture_record",
    "person",
    "repair_record",
    "tombstone_record",
]

RECORD_VERSION = 1
KINDS = frozenset({"capture", "context", "audit", "tombstone", "repair", "checkpoint"})


class RecordError(ValueError):
    """A payload is not a record this log writes."""


def iso(at: float) -> str:
    """Epoch seconds as an RFC 3339 UTC time with microseconds."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode(record: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a record."""
    return json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def decode(payload: bytes) -> dict[str, Any]:
    """Read a record's payload (never re-encoded); raises ``RecordError``."""
    try:
        record = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RecordError(f"payload is not JSON: {exc}") from exc
    if not isinstance(record, dict) or record.get("kind") not in KINDS:
        raise RecordError("payload is not an evidence record")
    if not isinstance(record.get("id"), str) or not isinstance(record.get("seq"), int):
        raise RecordError("record has no id or seq")
    return record


def frame_fields(raw: Frame) -> dict[str, Any]:
    """The exact frame bytes (base64), their SHA-256 and whether it was text."""
    data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    return {
        "raw_b64": base64.b64encode(data).decode("ascii"),
        "raw_sha256": hashlib.sha256(data).hexdigest(),
        "frame_type": "text" if isinstance(raw, str) else "binary",
    }


def person(session: SessionContext | None, sender: str | None) -> dict[str, Any]:
    """A participant as the CyberTipline's person fields, from the session we saw."""
    person: dict[str, Any] = {"platform_id": sender}
    if session is None:
        return person
    identity = session.identity
    host, _, port = session.peer.rpartition(":")
    person.update(
        {
            "display_name": identity.name if identity else None,
            "age_band": identity.age_band if identity else "unknown",
            "age_band_source": identity.source if identity else None,
            "session_id": session.session_id,
            "user_agent": session.user_agent,
            "ip_capture_events": [
                {
                    "event_name": "connect",
                    "date_time": iso(session.connected_at),
                    "ip_address": host or session.peer,
                    "port": int(port) if port.isdigit() else None,
                }
            ],
        }
    )
    return person


def message_entry(event: ChatEvent, at: float, session: SessionContext | None) -> dict[str, Any]:
    """One message as the context window keeps it (and a record repeats it).

    ``session`` is the sending session when the message came from a client
    of this instance; upstream deliveries carry only what the frame says.
    """
    return {
        "date_time": iso(at),
        "origin": event.origin.value,
        "type": event.kind.value,
        "sender": event.sender,
        "recipients": list(event.recipients),
        "room_name": event.room,
        "conversation": event.conversation,
        "message_id": event.message_id,
        "text": event.text,
        **frame_fields(event.raw),
        "sender_session": person(session, event.sender) if session is not None else None,
    }


def _header(kind: str, record_id: str, instance: str, at: float) -> dict[str, Any]:
    # ``seq`` is filled in by the log when the record gets its leaf index.
    return {
        "v": RECORD_VERSION,
        "kind": kind,
        "id": record_id,
        "seq": -1,
        "instance": instance,
        "recorded_at": iso(at),
    }


def capture_record(
    *,
    record_id: str,
    instance: str,
    at: float,
    conversation: str,
    trigger: str,
    reason: str,
    event: ChatEvent | None,
    frame: Frame,
    sender: str | None,
    reported_person: Mapping[str, Any] | None,
    assessment: Assessment | None,
    params: Mapping[str, Any],
    before: Iterable[Mapping[str, Any]],
    after_expected: int,
    banners: Iterable[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The record of one captured event and the context before it.

    ``banners``: what the banner history knows was shown to the participants
    in this conversation (with outcomes); without it, the banners the
    actions decided, outcome unknown.
    """
    text = event.text if event is not None else None
    spans: list[dict[str, Any]] = []
    rules: list[str] = []
    if assessment is not None:
        for match in assessment.matches:
            if match.shadow:
                continue
            rules.append(match.rule_id)
            for start, end in match.spans:
                spans.append(
                    {
                        "rule_id": match.rule_id,
                        "signal": match.signal.value,
                        "start": start,
                        "end": end,
                        "text": text[start:end] if text is not None else None,
                    }
                )
    actions = [a for a in assessment.actions if not a.shadow] if assessment else []
    before_list = [dict(entry) for entry in before]
    participants: dict[str, dict[str, Any]] = {}
    for entry in before_list:
        sender_session = entry.get("sender_session")
        if isinstance(sender_session, dict) and entry.get("sender") is not None:
            participants[str(entry["sender"])] = sender_session
    reported = dict(reported_person) if reported_person else {"platform_id": sender}
    if sender is not None:
        participants[sender] = reported
    if event is not None:
        for user in event.recipients:
            participants.setdefault(user, {"platform_id": user})
    escalated = any(a.type is ActionType.ESCALATE for a in actions)
    return {
        **_header("capture", record_id, instance, at),
        "trigger": trigger,
        "reason": reason,
        "conversation": conversation,
        "incident_date_time": iso(at),
        "chat_client": reported.get("user_agent"),
        "room_name": event.room if event is not None else None,
        "reported_person": reported,
        "participants": [participants[k] for k in sorted(participants)],
        "message": {
            "type": event.kind.value if event is not None else None,
            "origin": event.origin.value if event is not None else None,
            "sender": sender,
            "recipients": list(event.recipients) if event is not None else [],
            "message_id": event.message_id if event is not None else None,
            "text": text,
            "normalised_text": normalise(text).text if text is not None else None,
            "matched_spans": spans,
            **frame_fields(frame),
        },
        "policy": {
            "version": assessment.policy_version if assessment else None,
            "rules": sorted(set(rules)),
            "signals": [s.value for s in assessment.signals] if assessment else [],
            "risk": assessment.risk if assessment else None,
            "actions": [a.to_json() for a in actions],
            "params": {k: v for k, v in params.items() if isinstance(v, str | int | float)},
        },
        "banners_shown": [banner_entry(b) for b in banners]
        if banners is not None
        else [
            {
                "banner": a.params.get("banner"),
                "audience": a.params.get("audience"),
                "outcome": None,
            }
            for a in actions
            if a.type in (ActionType.BANNER, ActionType.HOLD)
        ],
        "escalated": escalated,
        "context_before": before_list,
        "context_after_expected": after_expected,
    }


def moderator_capture_record(
    *,
    record_id: str,
    instance: str,
    at: float,
    conversation: str,
    actor: str,
    reason: str,
    before: Iterable[Mapping[str, Any]],
    after_expected: int,
) -> dict[str, Any]:
    """The record of a moderator's request to keep a conversation's window now.

    The shape of a capture record, with ``trigger: "moderator"`` and
    ``requested_by`` naming the moderator. No message triggered it:
    ``message`` and ``reported_person`` are null and ``policy`` is empty;
    ``context_before`` is the window as it stood, ``participants`` the
    senders seen in it.
    """
    before_list = [dict(entry) for entry in before]
    participants: dict[str, dict[str, Any]] = {}
    rooms = []
    for entry in before_list:
        sender = entry.get("sender")
        sender_session = entry.get("sender_session")
        if sender is None:
            continue
        if isinstance(sender_session, dict):
            participants[str(sender)] = sender_session
        else:
            participants.setdefault(str(sender), {"platform_id": sender})
        if entry.get("room_name") is not None:
            rooms.append(entry["room_name"])
    return {
        **_header("capture", record_id, instance, at),
        "trigger": "moderator",
        "reason": reason,
        "requested_by": actor,
        "conversation": conversation,
        "incident_date_time": iso(at),
        "chat_client": None,
        "room_name": rooms[-1] if rooms else None,
        "reported_person": None,
        "participants": [participants[k] for k in sorted(participants)],
        "message": None,
        "policy": {
            "version": None,
            "rules": [],
            "signals": [],
            "risk": None,
            "actions": [],
            "params": {},
        },
        "banners_shown": [],
        "escalated": False,
        "context_before": before_list,
        "context_after_expected": after_expected,
    }


#: The fields of a ``banners_shown`` entry from the banner history.
BANNER_FIELDS = (
    "id",
    "user",
    "banner",
    "variant",
    "audience",
    "trigger",
    "kind",
    "at",
    "outcome",
    "decided_at",
)


def banner_entry(banner: Mapping[str, Any]) -> dict[str, Any]:
    """One banner shown, as a capture record lists it (times also as ISO 8601 UTC)."""
    out = {k: banner.get(k) for k in BANNER_FIELDS}
    out["shown_at"] = iso(float(out["at"])) if out["at"] is not None else None
    return out


def context_record(
    *,
    record_id: str,
    instance: str,
    at: float,
    capture_id: str,
    conversation: str,
    after: Iterable[Mapping[str, Any]],
    complete: bool,
) -> dict[str, Any]:
    """The messages that followed a capture, linked to it by ``capture``."""
    return {
        **_header("context", record_id, instance, at),
        "capture": capture_id,
        "conversation": conversation,
        "context_after": [dict(e) for e in after],
        "complete": complete,
    }


def audit_record(
    *,
    record_id: str,
    instance: str,
    at: float,
    actor: str,
    action: str,
    subject: str,
    reason: str,
    details: Mapping[str, Any],
) -> dict[str, Any]:
    """A custody or case entry: who did what to which subject, and why."""
    return {
        **_header("audit", record_id, instance, at),
        "actor": actor,
        "action": action,
        "subject": subject,
        "reason": reason,
        "details": json.loads(json.dumps(dict(details), default=str)),
    }


def tombstone_record(
    *, record_id: str, instance: str, at: float, purged: Iterable[Mapping[str, Any]], reason: str
) -> dict[str, Any]:
    """Which records' payloads a purge removed (their leaf hashes stay in the log)."""
    return {
        **_header("tombstone", record_id, instance, at),
        "purged": [dict(p) for p in purged],
        "reason": reason,
    }


def repair_record(
    *, record_id: str, instance: str, at: float, segment: str, offset: int, bytes_cut: int
) -> dict[str, Any]:
    """Opening the log found a torn tail (a crash mid-write) and cut it."""
    return {
        **_header("repair", record_id, instance, at),
        "segment": segment,
        "offset": offset,
        "bytes_cut": bytes_cut,
    }


def checkpoint_record(*, record_id: str, instance: str, at: float, note: bytes) -> dict[str, Any]:
    """A signed checkpoint of the log before this record, kept in the log itself."""
    return {**_header("checkpoint", record_id, instance, at), "note": note.decode("utf-8")}
