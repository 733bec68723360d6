"""Transcript JSONL parsing: the contract shared by replay, tests and fixtures."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatguard.transcript import TranscriptError, derive_conversation, parse_line, read

BASE = {
    "ts": "2026-03-01T18:00:05Z",
    "room": "dm:alice:bob",
    "sender": "alice",
    "recipients": ["bob"],
    "text": "hi",
}


def line(**changes: object) -> str:
    data = {**BASE, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...})


def test_the_design_example_parses() -> None:
    event = parse_line(line(conversation="c-1", sender_attrs={"age_band": "minor"}), "t.jsonl", 1)
    assert event.ts == datetime(2026, 3, 1, 18, 0, 5, tzinfo=UTC)
    assert event.conversation == "c-1"
    assert (event.room, event.sender, event.recipients, event.text) == (
        "dm:alice:bob",
        "alice",
        ("bob",),
        "hi",
    )
    assert event.sender_attrs == {"age_band": "minor"}
    assert event.direct


@pytest.mark.parametrize(
    ("room", "sender", "recipients", "expected"),
    [
        ("dm:bob:alice", "alice", ("bob",), "dm:alice:bob"),
        ("dm:alice:bob", "bob", ("alice",), "dm:alice:bob"),
        ("lobby", "alice", ("bob", "carl"), "lobby"),
        (None, "bob", ("alice",), "dm:alice:bob"),
        (None, "bob", ("alice", "carl"), None),
        (None, "bob", (), None),
    ],
)
def test_conversation_is_derived_from_the_room(
    room: str | None, sender: str, recipients: tuple[str, ...], expected: str | None
) -> None:
    assert derive_conversation(room, sender, recipients) == expected


def test_a_room_event_without_conversation_uses_the_room() -> None:
    event = parse_line(line(room="lobby", recipients=[]))
    assert event.conversation == "lobby"
    assert not event.direct


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "not JSON"),
        ("[]", "JSON object"),
        (line(ts="yesterday"), "ISO 8601"),
        (line(ts="2026-03-01T18:00:05"), "time zone"),
        (line(sender=""), "`sender`"),
        (line(sender=...), "`sender`"),
        (line(text=5), "`text`"),
        (line(recipients="bob"), "`recipients`"),
        (line(recipients=[""]), "`recipients`"),
        (line(sender_attrs=["minor"]), "`sender_attrs`"),
        (line(conversation=""), "`conversation`"),
        (line(room=..., recipients=["b", "c"]), "no `conversation`"),
    ],
)
def test_bad_lines_name_source_line_and_reason(text: str, reason: str) -> None:
    with pytest.raises(TranscriptError) as info:
        parse_line(text, "chat.jsonl", 7)
    assert str(info.value).startswith("chat.jsonl:7: ")
    assert reason in info.value.reason


def test_read_keeps_file_order_and_skips_blank_lines() -> None:
    lines = [line(text="one"), "", "  ", line(text="two")]
    events = list(read(lines, "t.jsonl"))
    assert [(e.text, e.line) for e in events] == [("one", 1), ("two", 4)]


@given(st.text())
def test_parse_never_raises_anything_but_transcript_errors(text: str) -> None:
    with contextlib.suppress(TranscriptError):
        parse_line(text)
