"""The jsonchat codec: decoding frames into chat events, identity from the
welcome frame, control frames, notice rendering and mapping validation.

Most tests are tables over the built-in ``example`` mapping (the example chat
service's protocol). A second mapping, for the imaginary "Parley" service, is
read from ``docs/jsonchat-mapping.md`` so the worked example there is run,
and shows the format is not tied to one service.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from chatguard.codecs import JsonChatCodec, MappingError
from chatguard.codecs.base import UNSURE
from chatguard.codecs.jsonchat import JsonChatSession
from chatguard.events import ChatEvent, EventKind, Identity, Notice, Severity, Side

ROOT = Path(__file__).resolve().parent.parent
MAPPING_DOC = ROOT / "docs" / "jsonchat-mapping.md"

ALICE = Identity("alice", "Alice", {"age_band": "minor"}, source="jwt")


@pytest.fixture(scope="module")
def codec() -> JsonChatCodec:
    return JsonChatCodec.from_name_or_path("example")


@pytest.fixture
def session(codec: JsonChatCodec) -> JsonChatSession:
    """A session whose identity a gateway or token already attested."""
    return codec.open(ALICE)


def frame(**fields: Any) -> str:
    return json.dumps(fields)


def fields_of(event: ChatEvent | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {
        "kind": event.kind,
        "sender": event.sender,
        "room": event.room,
        "to": event.recipients,
        "text": event.text,
        "id": event.message_id,
    }


def expect(kind: EventKind, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sender": None, "room": None, "to": (), "text": None, "id": None}
    base.update(fields)
    base["kind"] = kind
    return base


# -- decoding: client frames ---------------------------------------------------

M, D, J, L = EventKind.MESSAGE, EventKind.DIRECT, EventKind.JOIN, EventKind.LEAVE

CLIENT_FRAMES: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
    (
        "room message",
        {"type": "message", "room": "lobby", "text": "hi"},
        expect(M, sender="alice", room="lobby", text="hi"),
    ),
    (
        "client-supplied from is ignored",
        {"type": "message", "room": "lobby", "text": "hi", "from": "teacher"},
        expect(M, sender="alice", room="lobby", text="hi"),
    ),
    (
        "client-supplied sender and user are ignored",
        {"type": "dm", "to": "bob", "text": "x", "sender": "bob", "user": {"id": "bob"}},
        expect(D, sender="alice", to=("bob",), text="x"),
    ),
    (
        "direct message",
        {"type": "dm", "to": "bob", "text": "hey"},
        expect(D, sender="alice", to=("bob",), text="hey"),
    ),
    (
        "direct message to a list",
        {"type": "dm", "to": ["bob", "carol"], "text": "hey"},
        expect(D, sender="alice", to=("bob", "carol"), text="hey"),
    ),
    (
        "numeric recipient as text",
        {"type": "dm", "to": 42, "text": "hey"},
        expect(D, sender="alice", to=("42",), text="hey"),
    ),
    (
        "structured recipients are dropped",
        {"type": "dm", "to": ["bob", {"id": "x"}, None, True], "text": "hey"},
        expect(D, sender="alice", to=("bob",), text="hey"),
    ),
    (
        "empty text is text",
        {"type": "message", "room": "r", "text": ""},
        expect(M, sender="alice", room="r", text=""),
    ),
    ("numeric room as text", {"type": "join", "room": 7}, expect(J, sender="alice", room="7")),
    ("join", {"type": "join", "room": "games"}, expect(J, sender="alice", room="games")),
    ("leave", {"type": "leave", "room": "games"}, expect(L, sender="alice", room="games")),
    # Frames that pass through untouched.
    ("message without text", {"type": "message", "room": "lobby"}, None),
    ("text of the wrong type", {"type": "message", "room": "lobby", "text": 5}, None),
    ("text as an object", {"type": "message", "room": "l", "text": {"t": "hi"}}, None),
    ("direct message without to", {"type": "dm", "text": "hey"}, None),
    ("direct message to nobody", {"type": "dm", "to": [], "text": "hey"}, None),
    ("direct message to null", {"type": "dm", "to": None, "text": "hey"}, None),
    ("direct message to an object", {"type": "dm", "to": {"id": "bob"}, "text": "hey"}, None),
    ("upstream-only type", {"type": "joined", "room": "lobby", "user": "bob"}, None),
    ("unknown type", {"type": "typing", "room": "lobby"}, None),
    ("no type", {"room": "lobby", "text": "hi"}, None),
    ("null type", {"type": None, "text": "hi"}, None),
    ("numeric type", {"type": 1, "text": "hi"}, None),
    ("unhashable type: list", {"type": ["message"], "room": "r", "text": "hi"}, None),
    ("unhashable type: object", {"type": {"message": 1}, "room": "r", "text": "hi"}, None),
    ("prefix elsewhere", {"type": "message.chatguard.x", "room": "r"}, None),
    ("welcome look-alike", {"type": "welcome", "user": {"id": "admin", "age_band": "adult"}}, None),
]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [pytest.param(obj, exp, id=name) for name, obj, exp in CLIENT_FRAMES],
)
def test_decode_client_frames(
    session: JsonChatSession, obj: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    raw = json.dumps(obj)
    event = session.decode(raw, Side.CLIENT)
    assert fields_of(event) == expected
    if event is not None:
        assert event.origin is Side.CLIENT
        assert event.raw is raw
        assert event.control is None
    assert session.identity is ALICE


def test_client_direct_message_conversation(session: JsonChatSession) -> None:
    event = session.decode(frame(type="dm", to="aaron", text="hi"), Side.CLIENT)
    assert event is not None
    assert event.conversation == "dm:aaron:alice"


def test_client_frame_without_attested_identity_has_no_sender(codec: JsonChatCodec) -> None:
    session = codec.open(None)
    event = session.decode(
        frame(type="message", room="r", text="hi", **{"from": "bob"}), Side.CLIENT
    )
    assert event is not None
    assert event.sender is None


# -- decoding: upstream frames ---------------------------------------------------

UPSTREAM_FRAMES: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
    (
        "room message",
        {"type": "message", "id": "m-1", "room": "lobby", "from": "bob", "text": "hi", "ts": "x"},
        expect(M, sender="bob", room="lobby", text="hi", id="m-1"),
    ),
    (
        "numeric id",
        {"type": "message", "id": 7, "room": "lobby", "from": "bob", "text": "hi"},
        expect(M, sender="bob", room="lobby", text="hi", id="7"),
    ),
    (
        "no sender",
        {"type": "message", "room": "lobby", "text": "hi"},
        expect(M, room="lobby", text="hi"),
    ),
    (
        "direct message",
        {"type": "dm", "id": "m-2", "from": "bob", "to": "alice", "text": "hey"},
        expect(D, sender="bob", to=("alice",), text="hey", id="m-2"),
    ),
    (
        "joined",
        {"type": "joined", "room": "lobby", "user": "bob"},
        expect(J, sender="bob", room="lobby"),
    ),
    (
        "left",
        {"type": "left", "room": "lobby", "user": "bob"},
        expect(L, sender="bob", room="lobby"),
    ),
    # Frames that pass through untouched.
    ("client-only join", {"type": "join", "room": "lobby"}, None),
    ("error", {"type": "error", "reason": "unknown type"}, None),
    ("control-prefixed from upstream", {"type": "chatguard.hold", "hold": "h"}, None),
    ("message without text", {"type": "message", "room": "lobby", "from": "bob"}, None),
    ("direct message to nobody", {"type": "dm", "from": "bob", "to": [], "text": "x"}, None),
    ("unhashable type", {"type": [1, 2], "text": "x"}, None),
]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [pytest.param(obj, exp, id=name) for name, obj, exp in UPSTREAM_FRAMES],
)
def test_decode_upstream_frames(
    session: JsonChatSession, obj: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    raw = json.dumps(obj)
    event = session.decode(raw, Side.UPSTREAM)
    assert fields_of(event) == expected
    if event is not None:
        assert event.origin is Side.UPSTREAM
        assert event.raw is raw


def test_upstream_direct_message_conversation_matches_the_client_side(
    session: JsonChatSession,
) -> None:
    up = session.decode(frame(type="dm", to="alice", text="x", **{"from": "bob"}), Side.UPSTREAM)
    down = session.decode(frame(type="dm", to="bob", text="y"), Side.CLIENT)
    assert up is not None
    assert down is not None
    assert up.conversation == down.conversation == "dm:alice:bob"


# -- identity from the welcome frame ----------------------------------------------

WELCOMES: list[tuple[str, dict[str, Any], Identity | None]] = [
    (
        "full",
        {"type": "welcome", "user": {"id": "alice", "name": "Alice", "age_band": "minor"}},
        Identity("alice", "Alice", {"age_band": "minor"}, source="welcome"),
    ),
    (
        "adult",
        {"type": "welcome", "user": {"id": "bob", "name": "Bob", "age_band": "adult"}},
        Identity("bob", "Bob", {"age_band": "adult"}, source="welcome"),
    ),
    (
        "no name or age band",
        {"type": "welcome", "user": {"id": "carol"}},
        Identity("carol", "carol", {}, source="welcome"),
    ),
    (
        "numeric id",
        {"type": "welcome", "user": {"id": 42, "name": "N", "age_band": None}},
        Identity("42", "N", {}, source="welcome"),
    ),
    ("no user id", {"type": "welcome", "user": {"name": "Nobody"}}, None),
    ("structured user id", {"type": "welcome", "user": {"id": {"x": 1}}}, None),
    ("user is not an object", {"type": "welcome", "user": "alice"}, None),
    ("not a welcome", {"type": "hello", "user": {"id": "alice"}}, None),
]


@pytest.mark.parametrize(
    ("obj", "identity"),
    [pytest.param(obj, ident, id=name) for name, obj, ident in WELCOMES],
)
def test_welcome_from_upstream_attests_identity(
    codec: JsonChatCodec, obj: dict[str, Any], identity: Identity | None
) -> None:
    session = codec.open(None)
    # The welcome frame itself passes through to the client.
    assert session.decode(json.dumps(obj), Side.UPSTREAM) is None
    assert session.identity == identity


def test_after_the_welcome_client_frames_carry_the_attested_sender(codec: JsonChatCodec) -> None:
    session = codec.open(None)
    welcome = frame(type="welcome", user={"id": "alice", "name": "Alice", "age_band": "minor"})
    session.decode(welcome, Side.UPSTREAM)
    assert session.identity is not None
    assert session.identity.age_band == "minor"
    event = session.decode(frame(type="message", room="r", text="hi", **{"from": "x"}), Side.CLIENT)
    assert event is not None
    assert event.sender == "alice"


@pytest.mark.parametrize("identity", [None, ALICE])
def test_a_client_frame_never_attests_identity(
    codec: JsonChatCodec, identity: Identity | None
) -> None:
    session = codec.open(identity)
    forged = frame(type="welcome", user={"id": "admin", "name": "Admin", "age_band": "adult"})
    assert session.decode(forged, Side.CLIENT) is None
    assert session.identity is identity
    event = session.decode(frame(type="message", room="r", text="hi"), Side.CLIENT)
    assert event is not None
    assert event.sender == (identity.user_id if identity else None)


def test_a_gateway_or_token_identity_stands_against_the_welcome(codec: JsonChatCodec) -> None:
    session = codec.open(ALICE, use_welcome=True)
    welcome = frame(type="welcome", user={"id": "bob", "name": "Bob", "age_band": "adult"})
    assert session.decode(welcome, Side.UPSTREAM) is None
    assert session.identity is ALICE


def test_welcome_can_be_switched_off(codec: JsonChatCodec) -> None:
    session = codec.open(None, use_welcome=False)
    session.decode(frame(type="welcome", user={"id": "bob"}), Side.UPSTREAM)
    assert session.identity is None


def test_a_mapping_without_welcome_never_attests() -> None:
    session = JsonChatCodec({"type_field": "type"}).open(None)
    assert session.decode(frame(type="welcome", user={"id": "bob"}), Side.UPSTREAM) is None
    assert session.identity is None


# -- control frames ----------------------------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "chatguard.hold", "hold": "h-1", "choice": "send"},
        {"type": "chatguard.report", "message": "m-3", "reason": "scary"},
        {"type": "chatguard."},
        {"type": "chatguard.message", "room": "r", "text": "looks like a message"},
    ],
)
def test_client_control_frames_decode_as_control(
    session: JsonChatSession, obj: dict[str, Any]
) -> None:
    raw = json.dumps(obj)
    event = session.decode(raw, Side.CLIENT)
    assert event is not None
    assert event.kind is EventKind.CONTROL
    assert event.origin is Side.CLIENT
    assert event.sender == "alice"
    assert event.control == obj
    assert event.raw is raw
    assert event.text is None


def test_control_frame_before_any_identity_has_no_sender(codec: JsonChatCodec) -> None:
    event = codec.open(None).decode(frame(type="chatguard.hold", hold="h"), Side.CLIENT)
    assert event is not None
    assert event.kind is EventKind.CONTROL
    assert event.sender is None


# -- frames that are not for us: never raise, always pass through --------------------

NESTED = 100_000

NOT_CHAT = [
    pytest.param(b'{"type": "message", "room": "r", "text": "hi"}', id="binary JSON"),
    pytest.param(b"\x00\xff\xfe", id="binary junk"),
    pytest.param("", id="empty"),
    pytest.param("   \n", id="whitespace"),
    pytest.param("hello", id="plain text"),
    pytest.param("PING :server", id="irc line"),
    pytest.param("{", id="truncated"),
    pytest.param("{'type': 'message'}", id="python dict"),
    pytest.param('{"type": "message", "room": "r", "text": "hi"} trailing', id="trailing data"),
    pytest.param("[1, 2, 3]", id="array"),
    pytest.param('[{"type": "message", "room": "r", "text": "hi"}]', id="array of frames"),
    pytest.param("null", id="null"),
    pytest.param('"message"', id="string"),
    pytest.param("42", id="number"),
    pytest.param("\ufeff" + '{"type": "message"}', id="byte order mark"),
    pytest.param('{"type": "message", "room": "r", "text": ' + "1" * 5000 + "}", id="huge int"),
    pytest.param('{"a": ' + "[" * NESTED + "]" * NESTED + "}", id="deep arrays"),
    pytest.param(
        '{"type": "message", "room": "r", "text": "hi", "x": '
        + '{"a": ' * NESTED
        + "1"
        + "}" * NESTED
        + "}",
        id="deep objects",
    ),
]


@pytest.mark.parametrize("origin", list(Side))
@pytest.mark.parametrize("raw", NOT_CHAT)
def test_frames_that_are_not_chat_pass_through(
    session: JsonChatSession, raw: str | bytes, origin: Side
) -> None:
    assert session.decode(raw, origin) is None


def test_leading_whitespace_is_still_json(session: JsonChatSession) -> None:
    raw = '  \n {"type": "message", "room": "r", "text": "hi"}'
    event = session.decode(raw, Side.CLIENT)
    assert event is not None
    assert event.raw is raw


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
VOCABULARY = st.sampled_from(
    ["type", "room", "text", "to", "from", "user", "id", "name", "age_band", "hold"]
)
TYPES = st.sampled_from(
    ["message", "dm", "join", "leave", "joined", "left", "welcome", "chatguard.hold", "x"]
)
FRAME_OBJECTS = st.dictionaries(VOCABULARY, JSON_VALUES, max_size=6) | st.builds(
    lambda t, rest: {**rest, "type": t},
    TYPES,
    st.dictionaries(VOCABULARY, JSON_VALUES | st.dictionaries(VOCABULARY, JSON_VALUES), max_size=6),
)


def check_decoded(session: JsonChatSession, raw: str | bytes, origin: Side) -> None:
    before = session.identity
    event = session.decode(raw, origin)
    if event is None:
        return
    assert event.raw is raw
    assert event.origin is origin
    if origin is Side.CLIENT:
        assert session.identity is before
        assert event.sender == (before.user_id if before else None)
    if event.kind is EventKind.DIRECT:
        assert event.recipients
    if event.kind is EventKind.CONTROL:
        assert origin is Side.CLIENT


@settings(max_examples=300, deadline=None)
@given(raw=st.text() | st.binary(), origin=st.sampled_from(Side), welcomed=st.booleans())
def test_decode_never_raises_on_arbitrary_frames(
    codec: JsonChatCodec, raw: str | bytes, origin: Side, welcomed: bool
) -> None:
    check_decoded(codec.open(ALICE if welcomed else None), raw, origin)


@settings(max_examples=400, deadline=None)
@given(value=JSON_VALUES | FRAME_OBJECTS, origin=st.sampled_from(Side), welcomed=st.booleans())
def test_decode_never_raises_on_arbitrary_json(
    codec: JsonChatCodec, value: Any, origin: Side, welcomed: bool
) -> None:
    check_decoded(codec.open(ALICE if welcomed else None), json.dumps(value), origin)


# -- rendering notices ------------------------------------------------------------------


@pytest.mark.parametrize("severity", list(Severity))
def test_render_banner_is_the_example_protocol_frame(
    session: JsonChatSession, severity: Severity
) -> None:
    notice = Notice(
        "banner",
        "You don't know this person.",
        banner_id="b-stranger-dm",
        severity=severity,
        with_user="bob",
    )
    assert session.render(notice) == (
        '{"type":"chatguard.banner","banner":"b-stranger-dm",'
        '"text":"You don\'t know this person.",'
        f'"severity":"{severity.value}","room":null,"with":"bob"}}'
    )


def test_render_banner_in_a_room(session: JsonChatSession) -> None:
    notice = Notice("banner", "Welcome to games", banner_id="b-room", room="games")
    assert json.loads(session.render(notice)) == {
        "type": "chatguard.banner",
        "banner": "b-room",
        "text": "Welcome to games",
        "severity": "info",
        "room": "games",
        "with": None,
    }


def test_render_hold_is_the_example_protocol_frame(session: JsonChatSession) -> None:
    notice = Notice(
        "hold",
        "This looks like a phone number. Send it anyway?",
        banner_id="b-phone",
        severity=Severity.WARNING,
        extra={"hold": "h-1", "choices": ["send", "cancel"]},
    )
    assert session.render(notice) == (
        '{"type":"chatguard.hold","hold":"h-1","banner":"b-phone",'
        '"text":"This looks like a phone number. Send it anyway?","choices":["send","cancel"]}'
    )


def test_render_exact_placeholder_of_an_absent_field_is_null(session: JsonChatSession) -> None:
    rendered = json.loads(session.render(Notice("hold", "Sure?", banner_id="b-1")))
    assert rendered["hold"] is None
    assert rendered["choices"] is None


def test_render_error(session: JsonChatSession) -> None:
    notice = Notice("error", "unknown control frame type 'chatguard.bogus'")
    assert session.render(notice) == (
        '{"type":"chatguard.error","reason":"unknown control frame type \'chatguard.bogus\'"}'
    )


def test_render_unknown_kind_is_a_generic_prefixed_frame(session: JsonChatSession) -> None:
    notice = Notice("moderator", "A moderator joined", room="lobby", extra={"by": "mod-1", "n": 2})
    assert session.render(notice) == (
        '{"type":"chatguard.moderator","text":"A moderator joined","banner":null,'
        '"severity":"info","room":"lobby","with":null,"by":"mod-1","n":2}'
    )


@pytest.mark.parametrize(
    "text",
    [
        "Vorsicht – teile keine Telefonnummer ☎",
        'quotes " and \\ backslashes',
        "braces {room} and {{text}} stay as written",
        "{text}",
        "line\nbreak",
    ],
)
def test_render_keeps_the_text_exactly(session: JsonChatSession, text: str) -> None:
    rendered = session.render(Notice("banner", text, banner_id="b", room="r"))
    assert isinstance(rendered, str)
    assert json.loads(rendered)["text"] == text
    if not text.isascii():
        assert "\\u" not in rendered  # written as is, not escaped


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(),
    kind=st.sampled_from(["banner", "hold", "error", "other"]),
    extra=st.dictionaries(st.sampled_from(["hold", "choices", "x"]), JSON_VALUES, max_size=3),
)
def test_render_round_trips_any_text(
    codec: JsonChatCodec, text: str, kind: str, extra: dict[str, Any]
) -> None:
    rendered = json.loads(codec.open(None).render(Notice(kind, text, extra=extra)))
    assert isinstance(rendered, dict)
    field = "reason" if kind == "error" else "text"
    assert rendered[field] == text


def test_render_templates_fill_nested_values_and_keep_types() -> None:
    codec = JsonChatCodec(
        {
            "notices": {
                "banner": {
                    "kind": "notice",
                    "body": {"lines": ["{text}", "Level: {severity}", "{{literal}}"]},
                    "meta": {"ref": "{banner}", "where": "{room}", "missing": "[{nope}]"},
                    "n": 3,
                    "flag": True,
                    "nothing": None,
                    "extra": "{count}",
                }
            }
        }
    )
    notice = Notice("banner", "Careful", banner_id="b-9", extra={"count": 4})
    assert json.loads(codec.open(None).render(notice)) == {
        "kind": "notice",
        "body": {"lines": ["Careful", "Level: info", "{literal}"]},
        "meta": {"ref": "b-9", "where": None, "missing": "[]"},
        "n": 3,
        "flag": True,
        "nothing": None,
        "extra": 4,
    }


@pytest.mark.parametrize("template", ["ChatGuard: {text", "ChatGuard: {0}", "} {text}"])
def test_a_malformed_template_is_refused_at_load(template: str) -> None:
    try:
        JsonChatCodec({"notices": {"banner": {"text": template}}}, "svc.yaml")
        refusal = ""
    except MappingError as exc:
        refusal = str(exc)
    assert refusal.startswith("svc.yaml: notices.banner")


# -- mapping validation -------------------------------------------------------------------

RULE = {"kind": "message", "match": {"type": "m"}, "text": "text"}

BAD_MAPPINGS: list[tuple[dict[str, Any], str, str]] = [
    ({"bogus": 1}, "bogus", "unknown key"),
    ({"type_field": ""}, "type_field", "non-empty field path"),
    ({"type_field": 5}, "type_field", "non-empty field path"),
    ({"control_prefix": 5}, "control_prefix", "must be a non-empty string"),
    ({"control_prefix": ""}, "control_prefix", "must be a non-empty string"),
    ({"client": {"kind": "message"}}, "client", "list of rules"),
    ({"upstream": "message"}, "upstream", "list of rules"),
    ({"client": ["message"]}, "client[0]", "must be a mapping"),
    ({"client": [{**RULE, "colour": "red"}]}, "client[0].colour", "unknown rule field"),
    ({"client": [{**RULE, "kind": "shout"}]}, "client[0].kind", "must be one of"),
    ({"client": [{**RULE, "kind": "control"}]}, "client[0].kind", "must be one of"),
    ({"client": [{"match": {"type": "m"}}]}, "client[0].kind", "must be one of"),
    ({"client": [{"kind": "message"}]}, "client[0].match", "non-empty mapping"),
    ({"client": [{**RULE, "match": {}}]}, "client[0].match", "non-empty mapping"),
    ({"client": [{**RULE, "match": "m"}]}, "client[0].match", "non-empty mapping"),
    ({"client": [{**RULE, "sender": "from"}]}, "client[0].sender", "from identity"),
    (
        {"client": [{"kind": "direct", "match": {"type": "dm"}, "text": "t"}]},
        "client[0].to",
        "needs `to`",
    ),
    (
        {"upstream": [RULE, {"kind": "direct", "match": {"type": "dm"}}]},
        "upstream[1].to",
        "needs `to`",
    ),
    ({"upstream": [{**RULE, "text": 5}]}, "upstream[0].text", "field path"),
    ({"upstream": [{**RULE, "room": ""}]}, "upstream[0].room", "field path"),
    ({"upstream": [{**RULE, "sender": ["from"]}]}, "upstream[0].sender", "field path"),
    ({"upstream": [{**RULE, "id": {"a": "b"}}]}, "upstream[0].id", "field path"),
    ({"welcome": "yes"}, "welcome", "must be a mapping"),
    ({"welcome": {"match": {"type": "w"}}}, "welcome.user_id", "is required"),
    ({"welcome": {"match": {"type": "w"}, "user_id": 3}}, "welcome.user_id", "field path"),
    ({"welcome": {"user_id": "user.id"}}, "welcome.match", "non-empty mapping"),
    ({"welcome": {"match": {"type": "w"}, "user_id": "u", "name": 5}}, "welcome.name", "path"),
    (
        {"welcome": {"match": {"type": "w"}, "user_id": "u", "attrs": ["age_band"]}},
        "welcome.attrs",
        "attribute names to field paths",
    ),
    (
        {"welcome": {"match": {"type": "w"}, "user_id": "u", "attrs": {"age_band": 5}}},
        "welcome.attrs.age_band",
        "field path",
    ),
    ({"notices": ["banner"]}, "notices", "notice kinds to frame templates"),
    ({"notices": {"banner": "Careful!"}}, "notices.banner", "JSON object"),
]


@pytest.mark.parametrize(("mapping", "key", "reason"), BAD_MAPPINGS)
def test_a_bad_mapping_names_source_and_key(mapping: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(MappingError) as info:
        JsonChatCodec(mapping, "svc.yaml")
    message = str(info.value)
    assert message.startswith(f"svc.yaml: {key}: ")
    assert reason in message


@pytest.mark.parametrize(
    ("rule", "key"),
    [
        ({"kind": ["message"], "match": {"type": "m"}}, "client[0].kind"),
        ({"kind": "message", "match": {"type": ["m", "n"]}}, "client[0].match"),
    ],
)
def test_an_unhashable_rule_value_is_a_mapping_error(rule: dict[str, Any], key: str) -> None:
    with pytest.raises(MappingError, match=re.escape(f"svc.yaml: {key}")):
        JsonChatCodec({"client": [rule]}, "svc.yaml")


def test_an_empty_mapping_passes_everything_through() -> None:
    session = JsonChatCodec({}).open(ALICE)
    for obj in ({"type": "message", "room": "r", "text": "hi"}, {"type": "dm", "to": "b"}):
        assert session.decode(json.dumps(obj), Side.CLIENT) is None
        assert session.decode(json.dumps(obj), Side.UPSTREAM) is None
    # The default control prefix still applies.
    control = session.decode(frame(type="chatguard.x"), Side.CLIENT)
    assert control is not None
    assert control.kind is EventKind.CONTROL


# -- loading mapping files ---------------------------------------------------------------


def test_built_in_example_mapping() -> None:
    codec = JsonChatCodec.from_name_or_path("example")
    assert codec.source == "built-in mapping example"
    assert codec.type_path == ("type",)
    assert codec.control_prefix == "chatguard."
    assert set(codec.notices) == {"banner", "hold", "error"}


def test_unknown_built_in_mapping() -> None:
    with pytest.raises(MappingError, match="nosuchservice: no built-in jsonchat mapping"):
        JsonChatCodec.from_name_or_path("nosuchservice")


def test_a_mapping_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    path.write_text("type_field: kind\nclient:\n  - {kind: join, match: {kind: in}, room: r}\n")
    codec = JsonChatCodec.from_name_or_path(str(path))
    assert codec.source == str(path)
    event = codec.open(ALICE).decode(frame(kind="in", r="lobby"), Side.CLIENT)
    assert fields_of(event) == expect(J, sender="alice", room="lobby")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("client: [\n", "not valid YAML"),
        ("- kind: message\n", "top level must be a mapping"),
        ("", "top level must be a mapping"),
        ("client:\n  - {kind: direct, match: {type: dm}}\n", "client[0].to: a direct-message"),
    ],
)
def test_a_bad_mapping_file_names_the_file(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "svc.yml"
    path.write_text(content)
    with pytest.raises(MappingError) as info:
        JsonChatCodec.from_name_or_path(str(path))
    assert str(info.value).startswith(f"{path}: ")
    assert reason in str(info.value)


def test_a_missing_mapping_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(MappingError, match="cannot read") as info:
        JsonChatCodec.from_name_or_path(str(path))
    assert str(info.value).startswith(str(path))


def test_a_mapping_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    path.write_bytes(b"type_field: \xff\n")
    with pytest.raises(MappingError):
        JsonChatCodec.from_name_or_path(str(path))


# -- rule order and matching -------------------------------------------------------------


def test_first_matching_rule_wins_and_typed_rules_come_first() -> None:
    codec = JsonChatCodec(
        {
            "client": [
                # No type match: tried after the typed rules, whatever its position.
                {"kind": "message", "match": {"action": "say"}, "room": "room", "text": "text"},
                {
                    "kind": "direct",
                    "match": {"type": "msg", "private": True},
                    "to": "to",
                    "text": "text",
                },
                {"kind": "message", "match": {"type": "msg"}, "room": "room", "text": "text"},
            ]
        }
    )
    session = codec.open(ALICE)
    cases = [
        ({"type": "msg", "private": True, "to": "bob", "text": "a"}, D),
        ({"type": "msg", "private": False, "room": "r", "text": "b"}, M),
        ({"type": "msg", "room": "r", "text": "c"}, M),
        ({"action": "say", "room": "r", "text": "d"}, M),
        ({"type": "other", "action": "say", "room": "r", "text": "e"}, M),
        ({"action": "shout", "room": "r", "text": "f"}, None),
    ]
    for obj, kind in cases:
        event = session.decode(json.dumps(obj), Side.CLIENT)
        assert (event.kind if event else None) is kind, obj


def test_match_compares_json_values_exactly() -> None:
    codec = JsonChatCodec(
        {"upstream": [{"kind": "join", "match": {"type": "presence", "v": 1}, "sender": "who"}]}
    )
    session = codec.open(None)
    assert session.decode(frame(type="presence", v=1, who="bob"), Side.UPSTREAM) is not None
    assert session.decode(frame(type="presence", v="1", who="bob"), Side.UPSTREAM) is None
    assert session.decode(frame(type="presence", who="bob"), Side.UPSTREAM) is None


# -- the worked example from docs/jsonchat-mapping.md -----------------------------------


def doc_mapping() -> dict[str, Any]:
    text = MAPPING_DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    parley = [b for b in blocks if "type_field: event" in b]
    assert len(parley) == 1, "docs/jsonchat-mapping.md should hold one Parley mapping"
    data = yaml.safe_load(parley[0])
    assert isinstance(data, dict)
    return data


def doc_frames() -> list[tuple[Side, dict[str, Any]]]:
    text = MAPPING_DOC.read_text(encoding="utf-8")
    frames = []
    for line in text.splitlines():
        match = re.fullmatch(r"(client → Parley|Parley → client)\s+(\{.*\})", line)
        if match:
            origin = Side.CLIENT if match.group(1).startswith("client") else Side.UPSTREAM
            frames.append((origin, json.loads(match.group(2))))
    return frames


@pytest.fixture(scope="module")
def parley() -> JsonChatCodec:
    return JsonChatCodec(doc_mapping(), "docs/jsonchat-mapping.md")


def test_doc_frames_of_the_worked_example_decode_as_described(parley: JsonChatCodec) -> None:
    session = parley.open(None)
    got = []
    for origin, obj in doc_frames():
        event = session.decode(json.dumps(obj), origin)
        got.append((origin, fields_of(event)))
    me = "u-17"
    assert got == [
        (Side.CLIENT, expect(M, sender=None, room="general", text="hi all")),
        (Side.CLIENT, expect(D, sender=None, to=("bob",), text="hi bob")),
        (Side.CLIENT, expect(J, room="general")),
        (Side.CLIENT, expect(L, room="general")),
        (Side.UPSTREAM, None),  # the welcome passes through
        (Side.UPSTREAM, expect(M, sender="bob", room="general", text="hi all", id="p-1")),
        (Side.UPSTREAM, expect(D, sender="bob", to=("alice",), text="hi", id="p-2")),
        (Side.UPSTREAM, expect(J, sender="bob", room="general")),
        (Side.UPSTREAM, expect(L, sender="bob", room="general")),
        (Side.UPSTREAM, None),  # typing has no rule
    ]
    assert session.identity == Identity(me, "Alice", {"age_band": "minor"}, source="welcome")
    # After the welcome, client frames carry the attested sender.
    event = session.decode(
        frame(event="whisper", payload={"to": ["bob"], "body": "hi"}, **{"from": "x"}), Side.CLIENT
    )
    assert event is not None
    assert event.sender == me
    assert event.conversation == "dm:bob:u-17"


PARLEY_CASES: list[tuple[str, Side, dict[str, Any], dict[str, Any] | None]] = [
    (
        "nested body, to as list",
        Side.CLIENT,
        {"event": "whisper", "payload": {"to": ["bob", "carol"], "body": "hi"}},
        expect(D, sender="alice", to=("bob", "carol"), text="hi"),
    ),
    (
        "body in the wrong place",
        Side.CLIENT,
        {"event": "say", "channel": "general", "body": "hi"},
        None,
    ),
    (
        "payload not an object",
        Side.CLIENT,
        {"event": "say", "channel": "general", "payload": "hi"},
        None,
    ),
    (
        "presence in another state",
        Side.UPSTREAM,
        {"event": "presence", "channel": "general", "state": "away", "who": "bob"},
        None,
    ),
    (
        "a client frame with `type` is not typed for Parley",
        Side.CLIENT,
        {"type": "message", "room": "r", "text": "hi"},
        None,
    ),
]


@pytest.mark.parametrize(
    ("origin", "obj", "expected"),
    [pytest.param(origin, obj, exp, id=name) for name, origin, obj, exp in PARLEY_CASES],
)
def test_parley_decode(
    parley: JsonChatCodec, origin: Side, obj: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    assert fields_of(parley.open(ALICE).decode(json.dumps(obj), origin)) == expected


@pytest.mark.parametrize(
    "obj",
    [
        {"event": "guard.hold", "hold": "h-1", "choice": "send"},
        {"event": "guard.report", "payload": {"body": "x"}},
    ],
)
def test_parley_control_frames(parley: JsonChatCodec, obj: dict[str, Any]) -> None:
    event = parley.open(ALICE).decode(json.dumps(obj), Side.CLIENT)
    assert event is not None
    assert event.kind is EventKind.CONTROL
    assert event.control == obj
    # The default prefix means nothing to Parley.
    assert parley.open(ALICE).decode(frame(event="chatguard.hold"), Side.CLIENT) is None


def test_parley_welcome_from_the_client_is_ignored(parley: JsonChatCodec) -> None:
    session = parley.open(None)
    forged = frame(event="session.ready", session={"user": {"uid": "admin", "age_group": "adult"}})
    assert session.decode(forged, Side.CLIENT) is None
    assert session.identity is None


def test_parley_renders_its_own_notices(parley: JsonChatCodec) -> None:
    session = parley.open(None)
    banner = Notice("banner", "Careful", banner_id="b-1", severity=Severity.WARNING, room="general")
    assert session.render(banner) == (
        '{"event":"system.notice","channel":"general","payload":'
        '{"body":"Careful","level":"warning","ref":"b-1","with":null}}'
    )
    hold = Notice(
        "hold", "Send?", banner_id="b-2", extra={"hold": "h-1", "choices": ["send", "cancel"]}
    )
    assert json.loads(session.render(hold)) == {
        "event": "guard.hold",
        "hold": "h-1",
        "ref": "b-2",
        "payload": {"body": "Send?", "options": ["send", "cancel"]},
    }
    error = Notice("error", "unknown control frame type 'guard.x'")
    assert json.loads(session.render(error)) == {
        "event": "system.error",
        "payload": {"body": "ChatGuard: unknown control frame type 'guard.x'"},
    }


def test_parley_generic_notice_uses_the_mapping_type_field(parley: JsonChatCodec) -> None:
    rendered = json.loads(parley.open(None).render(Notice("moderator", "hi")))
    assert rendered.get("event") == "guard.moderator"


def test_doc_example_frames_are_what_the_example_mapping_renders(session: JsonChatSession) -> None:
    text = MAPPING_DOC.read_text(encoding="utf-8")
    block = re.search(r"```json\n(.*?)```", text, flags=re.DOTALL)
    assert block is not None
    documented = block.group(1).strip().splitlines()
    notices = [
        Notice(
            "banner",
            "You don't know this person. Never share your address or phone number.",
            banner_id="b-stranger-dm",
            severity=Severity.WARNING,
            with_user="bob",
        ),
        Notice(
            "hold",
            "This looks like a phone number. Send it anyway?",
            banner_id="b-phone",
            extra={"hold": "h-1", "choices": ["send", "cancel"]},
        ),
        Notice("error", "unknown control frame type 'chatguard.bogus'"),
    ]
    assert documented == [session.render(n) for n in notices]


# -- sniffing: the kind of a frame without parsing it ---------------------------

SNIFF_CODEC = JsonChatCodec.from_name_or_path("example")


def _sniff_session() -> JsonChatSession:
    session = SNIFF_CODEC.open(None)
    # Past the welcome frame, as in a live session.
    session.decode(
        '{"type":"welcome","user":{"id":"u","name":"u","age_band":"minor"}}', Side.UPSTREAM
    )
    return session


@pytest.mark.parametrize(
    ("frame", "origin", "expected"),
    [
        ('{"type":"message","room":"r","text":"hi"}', Side.CLIENT, EventKind.MESSAGE),
        ('{"type" :  "dm","to":"b","text":"x"}', Side.CLIENT, EventKind.DIRECT),
        ('{"type":"chatguard.confirm","hold":"h"}', Side.CLIENT, EventKind.CONTROL),
        ('{"type":"joined","room":"r","user":"u"}', Side.UPSTREAM, EventKind.JOIN),
        ('{"type":"pong"}', Side.CLIENT, None),
        ("not json", Side.CLIENT, None),
        ("{}", Side.CLIENT, None),
        # Anything that could hide the real type is decoded in full.
        ('{"meta":{"type":"x"},"type":"message","room":"r","text":"t"}', Side.CLIENT, UNSURE),
        ('{"\\u0074ype":"message","room":"r","text":"t"}', Side.CLIENT, UNSURE),
        ('{"type":"x","type":"message","room":"r","text":"t"}', Side.CLIENT, UNSURE),
        (b'{"type":"message"}', Side.CLIENT, UNSURE),
    ],
)
def test_sniff_tells_the_kind_only_when_sure(
    frame: str | bytes, origin: Side, expected: object
) -> None:
    assert _sniff_session().sniff(frame, origin) == expected


def test_sniff_waits_for_the_welcome_before_trusting_upstream_frames() -> None:
    session = SNIFF_CODEC.open(None)
    assert session.sniff('{"type":"joined","room":"r","user":"u"}', Side.UPSTREAM) is UNSURE


def test_sniff_is_unsure_when_rules_do_not_key_on_a_string_type() -> None:
    codec = JsonChatCodec(
        {"client": [{"kind": "message", "match": {"op": 1}, "text": "body"}]}, "numeric.yaml"
    )
    assert codec.open(None).sniff('{"op": 1, "body": "x"}', Side.CLIENT) is UNSURE


@given(
    st.dictionaries(
        st.sampled_from(["type", "room", "text", "to", "meta", "\\u0074ype"]),
        st.one_of(
            st.sampled_from(["message", "dm", "join", "chatguard.x", "other", "type"]),
            st.dictionaries(st.just("type"), st.sampled_from(["message", "dm"]), max_size=1),
            st.integers(),
        ),
        max_size=5,
    )
)
def test_a_sure_sniff_never_contradicts_decode(obj: dict[str, object]) -> None:
    """The relay skips parsing on a sure sniff, so a sure sniff must be right."""
    frame = json.dumps(obj).replace("\\\\u0074ype", "\\u0074ype")
    session = _sniff_session()
    sniffed = session.sniff(frame, Side.CLIENT)
    if sniffed is UNSURE:
        return
    event = session.decode(frame, Side.CLIENT)
    assert event is None or event.kind is sniffed
