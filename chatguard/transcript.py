"""Transcript JSONL: one chat event per line, for replay, tests and fixtures.

The contract (../DESIGN.md)::

    {"ts": "2026-03-01T18:00:05Z", "conversation": "c-1", "room": "dm:alice:bob",
     "sender": "alice", "recipients": ["bob"], "text": "hi",
     "sender_attrs": {"age_band": "minor"}}

``conversation`` and ``sender_attrs`` are optional. Without ``conversation``
it is derived from ``room``: a direct-message room (``dm:<a>:<b>``, or no room
and exactly one recipient) becomes the unordered pair ``dm:<a>:<b>`` sorted;
any other room is its own conversation.

Invariants: parsing is pure and strict — a bad line raises
``TranscriptError`` naming the source and line number; nothing is guessed.
Events keep file order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from .events import dm_key


class TranscriptError(ValueError):
    def __init__(self, source: str, line: int, reason: str) -> None:
        super().__init__(f"{source}:{line}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TranscriptEvent:
    ts: datetime
    conversation: str
    room: str | None
    sender: str
    recipients: tuple[str, ...]
    text: str
    sender_attrs: Mapping[str, str] = field(default_factory=dict)
    line: int = 0

    @property
    def direct(self) -> bool:
        """True for a direct (one-to-one) message."""
        return self.conversation.startswith("dm:") if self.room is None else _is_dm_room(self.room)


def _is_dm_room(room: str) -> bool:
    return room.startswith("dm:") and room.count(":") >= 2


def derive_conversation(room: str | None, sender: str, recipients: tuple[str, ...]) -> str | None:
    """The conversation of an event that names none (see the module doc)."""
    if room is not None and _is_dm_room(room):
        parts = room.split(":")[1:]
        if len(parts) == 2:
            return dm_key(*parts)
        return room
    if room is not None:
        return room
    if len(recipients) == 1:
        return dm_key(sender, recipients[0])
    return None


def parse_line(text: str, source: str = "<transcript>", line: int = 0) -> TranscriptEvent:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise TranscriptError(source, line, f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise TranscriptError(source, line, "an event must be a JSON object")

    def string(name: str, required: bool = True) -> str | None:
        value = data.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or (required and not value and name != "text"):
            raise TranscriptError(source, line, f"`{name}` must be a non-empty string")
        return value

    ts_text = string("ts")
    assert ts_text is not None
    try:
        ts = datetime.fromisoformat(ts_text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise TranscriptError(source, line, f"`ts` is not an ISO 8601 time: {ts_text!r}") from exc
    if ts.tzinfo is None:
        raise TranscriptError(source, line, "`ts` needs a time zone (e.g. a trailing Z)")
    sender = string("sender")
    text_value = string("text")
    room = string("room", required=False)
    assert sender is not None
    assert text_value is not None
    raw_recipients = data.get("recipients", [])
    if not isinstance(raw_recipients, list) or not all(
        isinstance(r, str) and r for r in raw_recipients
    ):
        raise TranscriptError(source, line, "`recipients` must be a list of user ids")
    recipients = tuple(raw_recipients)
    attrs = data.get("sender_attrs", {})
    if not isinstance(attrs, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int) for k, v in attrs.items()
    ):
        raise TranscriptError(source, line, "`sender_attrs` must map names to text")
    conversation = data.get("conversation")
    if conversation is None:
        conversation = derive_conversation(room, sender, recipients)
        if conversation is None:
            raise TranscriptError(
                source, line, "no `conversation`, and no `room` or single recipient to derive it"
            )
    elif not isinstance(conversation, str) or not conversation:
        raise TranscriptError(source, line, "`conversation` must be a non-empty string")
    return TranscriptEvent(
        ts=ts,
        conversation=conversation,
        room=room,
        sender=sender,
        recipients=recipients,
        text=text_value,
        sender_attrs={k: str(v) for k, v in attrs.items()},
        line=line,
    )


def read(lines: Iterable[str], source: str = "<transcript>") -> Iterator[TranscriptEvent]:
    """Events of a transcript, in file order; blank lines are skipped."""
    for number, text in enumerate(lines, start=1):
        if text.strip():
            yield parse_line(text, source, number)
