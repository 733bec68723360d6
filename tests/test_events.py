"""The event vocabulary: sides, conversation keys, identities, verdicts."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatguard.events import (
    PASS,
    ChatEvent,
    EventKind,
    Identity,
    Inject,
    Notice,
    Severity,
    Side,
    Verdict,
    conversation_id,
)


@pytest.mark.parametrize(
    ("side", "other"), [(Side.CLIENT, Side.UPSTREAM), (Side.UPSTREAM, Side.CLIENT)]
)
def test_other_side(side: Side, other: Side) -> None:
    assert side.other is other
    assert side.other.other is side


def test_wire_names_of_sides_and_kinds() -> None:
    assert [s.value for s in Side] == ["client", "upstream"]
    assert {k.value for k in EventKind} == {
        "message",
        "direct",
        "join",
        "leave",
        "nick",
        "control",
    }
    assert [s.value for s in Severity] == ["info", "warning", "critical"]


@pytest.mark.parametrize(
    ("kind", "room", "sender", "recipients", "expected"),
    [
        (EventKind.MESSAGE, "lobby", "alice", (), "room:lobby"),
        (EventKind.JOIN, "lobby", "alice", (), "room:lobby"),
        (EventKind.LEAVE, "games", None, (), "room:games"),
        (EventKind.DIRECT, None, "alice", ("bob",), "dm:alice:bob"),
        (EventKind.DIRECT, None, "bob", ("alice",), "dm:alice:bob"),
        # Only the first recipient counts for a direct message.
        (EventKind.DIRECT, None, "carol", ("alice", "bob"), "dm:alice:carol"),
        # A direct message without a known sender or recipient has no pair.
        (EventKind.DIRECT, None, None, ("bob",), None),
        (EventKind.DIRECT, None, "alice", (), None),
        (EventKind.DIRECT, "side-room", None, ("bob",), "room:side-room"),
        (EventKind.MESSAGE, None, "alice", ("bob",), None),
        (EventKind.CONTROL, None, "alice", (), None),
    ],
)
def test_conversation_id(
    kind: EventKind,
    room: str | None,
    sender: str | None,
    recipients: tuple[str, ...],
    expected: str | None,
) -> None:
    assert conversation_id(kind, room, sender, recipients) == expected
    event = ChatEvent(kind, Side.CLIENT, "{}", sender=sender, room=room, recipients=recipients)
    assert event.conversation == expected


@given(st.text(min_size=1), st.text(min_size=1))
def test_a_direct_conversation_is_the_same_from_both_ends(a: str, b: str) -> None:
    ab = conversation_id(EventKind.DIRECT, None, a, (b,))
    ba = conversation_id(EventKind.DIRECT, None, b, (a,))
    assert ab == ba
    assert ab is not None
    assert ab.startswith("dm:")


def test_a_room_cannot_share_the_key_of_a_direct_conversation() -> None:
    direct = conversation_id(EventKind.DIRECT, None, "alice", ("bob",))
    room = conversation_id(EventKind.MESSAGE, "dm:alice:bob", "mallory", ())
    assert direct != room


def test_identity_age_band() -> None:
    assert Identity("u1", "U").age_band == "unknown"
    assert Identity("u1", "U", {"age_band": "minor"}).age_band == "minor"
    assert Identity("u1", "U").source == "welcome"
    assert Identity("u1", "U", source="jwt").source == "jwt"


@pytest.mark.parametrize(
    "value",
    [
        Identity("u1", "U"),
        ChatEvent(EventKind.MESSAGE, Side.CLIENT, "{}"),
        Notice("banner", "hello"),
        Inject(Side.CLIENT, "frame"),
        Verdict(),
    ],
)
def test_values_are_frozen_and_slotted(value: object) -> None:
    field = dataclasses.fields(value)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, None)
    assert not hasattr(value, "__dict__")


def test_an_event_keeps_its_raw_frame_exactly() -> None:
    raw = '{"type": "message",  "text": "hi"}'
    binary = b"\x00\xff"
    assert ChatEvent(EventKind.MESSAGE, Side.CLIENT, raw).raw is raw
    assert ChatEvent(EventKind.MESSAGE, Side.UPSTREAM, binary).raw is binary


def test_notice_defaults() -> None:
    notice = Notice("banner", "Be careful")
    assert notice.severity is Severity.INFO
    assert (notice.banner_id, notice.room, notice.with_user) == (None, None, None)
    assert dict(notice.extra) == {}


def test_pass_forwards_unchanged() -> None:
    assert Verdict(forward=True, replacement=None, inject=(), reason=None) == PASS


def test_also_appends_without_touching_the_original() -> None:
    a = Inject(Side.CLIENT, Notice("banner", "one"))
    b = Inject(Side.UPSTREAM, "frame")
    c = Inject(Side.CLIENT, b"bytes")
    base = Verdict(forward=False, replacement="new", inject=(a,), reason="policy")
    more = base.also(b, c)
    assert more == Verdict(forward=False, replacement="new", inject=(a, b, c), reason="policy")
    assert base.inject == (a,)
    assert PASS.also(a).inject == (a,)
    assert PASS.inject == ()
