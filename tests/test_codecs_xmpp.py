"""The XMPP over WebSocket codec, without a network: mapping, identity,
notices, redaction, and fuzzing (live tests with Prosody are in
test_codecs_xmpp_prosody.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatguard.codecs.base import SERVICE_COMMAND
from chatguard.codecs.xmlframe import REASONS, escape_attr, escape_text
from chatguard.codecs.xmpp import MAX_OCCUPANTS, XmppCodec, XmppSession, XmppSettings
from chatguard.events import EventKind, Identity, Notice, Severity, Side

C, U = Side.CLIENT, Side.UPSTREAM
NS = "xmlns='jabber:client'"
ROOM = "lobby@conference.example"


def session(**settings: object) -> XmppSession:
    return XmppCodec(XmppSettings(**settings)).open(None)  # type: ignore[arg-type]


BIND_NS = "urn:ietf:params:xml:ns:xmpp-bind"


def bind_request(s: XmppSession, id: str = "b") -> None:
    assert s.decode(f"<iq {NS} type='set' id='{id}'><bind xmlns='{BIND_NS}'/></iq>", C) is None


def bind_result(jid: str, id: str = "b", extra: str = "") -> str:
    return f"<iq {NS} type='result' id='{id}'{extra}><bind xmlns='{BIND_NS}'><jid>{jid}</jid></bind></iq>"  # noqa: E501


def bound(user: str = "amy@example") -> XmppSession:
    s = session(service_jid="guard.example")
    bind_request(s)
    s.decode(bind_result(f"{user}/phone"), U)
    return s


def test_the_bind_result_from_the_upstream_attests_the_identity() -> None:
    s = bound()
    assert s.identity == Identity("amy@example", "amy", {}, source="welcome")
    assert s.full_jid == "amy@example/phone"


def test_only_the_servers_answer_to_the_bind_request_counts() -> None:
    s = session()
    # A client cannot claim an identity.
    assert s.decode(bind_result("mallory@example/x"), C) is None
    assert s.identity is None
    # Before the client asked, or for another request, nothing counts.
    s.decode(bind_result("mallory@example/x"), U)
    bind_request(s, "b7")
    s.decode(bind_result("mallory@example/x", id="other"), U)
    # Anything routed from another entity carries a from.
    s.decode(bind_result("mallory@example/x", id="b7", extra=" from='mallory@example/x'"), U)
    assert s.identity is None
    s.decode(bind_result("amy@example/a", id="b7"), U)
    assert s.identity is not None
    assert s.identity.user_id == "amy@example"
    # Only the first answer: no rebinding later in the connection.
    bind_request(s, "b8")
    s.decode(bind_result("bob@example/b", id="b8"), U)
    assert s.identity.user_id == "amy@example"
    assert s.full_jid == "amy@example/a"


def test_a_gateway_identity_stands_and_the_bind_only_gives_the_address() -> None:
    gateway = Identity("amy@example", "Amy", {"age_band": "minor"}, source="header")
    s = XmppCodec().open(gateway)
    bind_request(s)
    s.decode(bind_result("amy@example/web"), U)
    assert s.identity is gateway
    assert s.full_jid == "amy@example/web"


def test_chat_and_normal_messages_are_direct_messages_from_the_identity() -> None:
    s = bound()
    for kind in ("chat", "normal", None):
        attr = f" type='{kind}'" if kind else ""
        frame = f"<message {NS} to='bob@example/x' from='forged@evil'{attr} id='7'><body>hi</body></message>"  # noqa: E501
        event = s.decode(frame, C)
        assert event is not None
        assert (event.kind, event.sender, event.recipients) == (
            EventKind.DIRECT,
            "amy@example",
            ("bob@example",),
        )
        assert (event.text, event.message_id, event.raw) == ("hi", "7", frame)
        assert event.conversation == "dm:amy@example:bob@example"


def test_messages_from_the_upstream_name_the_sender_and_this_user() -> None:
    s = bound()
    event = s.decode(
        f"<message {NS} from='bob@example/x' to='amy@example' type='chat'>"
        "<body>yo</body></message>",
        U,
    )
    assert event is not None
    assert (event.kind, event.sender, event.recipients) == (
        EventKind.DIRECT,
        "bob@example",
        ("amy@example",),
    )


@pytest.mark.parametrize(
    "frame",
    [
        f"<message {NS} to='bob@example' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
        f"<message {NS} to='bob@example' type='headline'><body>news</body></message>",
        f"<message {NS} to='bob@example' type='error'><body>x</body></message>",
        f"<message {NS} type='chat'><body>no addressee</body></message>",
        "<message xmlns='jabber:server' to='bob@example' type='chat'><body>x</body></message>",
        f"<iq {NS} type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>",
        f"<presence {NS}/>",
        f"<presence {NS} to='bob@example' type='subscribe'/>",
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example' version='1.0'/>",
        "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>",
        " ",
    ],
)
def test_other_stanzas_pass_through_untouched(frame: str) -> None:
    s = bound()
    for origin in Side:
        assert s.decode(frame, origin) is None
        assert s.bad is None


def test_binary_frames_pass_through() -> None:
    s = bound()
    assert s.decode(b"<message/>", C) is None
    assert s.bad is None


def test_groupchat_and_room_presence_with_real_jids() -> None:
    s = bound()
    join = s.decode(
        f"<presence {NS} to='{ROOM}/amy'><x xmlns='http://jabber.org/protocol/muc'/></presence>", C
    )
    assert join is not None
    assert (join.kind, join.sender, join.room) == (EventKind.JOIN, "amy@example", ROOM)
    said = s.decode(
        f"<message {NS} to='{ROOM}' type='groupchat'><body>hello all</body></message>", C
    )
    assert said is not None
    assert (said.kind, said.room, said.sender, said.conversation) == (
        EventKind.MESSAGE,
        ROOM,
        "amy@example",
        f"room:{ROOM}",
    )
    # Bob's presence in the room, as the room sends it to amy: his real JID.
    seen = s.decode(
        f"<presence {NS} from='{ROOM}/bobby' to='amy@example/phone'>"
        "<x xmlns='http://jabber.org/protocol/muc#user'>"
        "<item affiliation='none' role='participant' jid='bob@example/laptop'/></x></presence>",
        U,
    )
    assert seen is not None
    assert (seen.kind, seen.sender, seen.room) == (EventKind.JOIN, "bob@example", ROOM)
    heard = s.decode(
        f"<message {NS} from='{ROOM}/bobby' type='groupchat'><body>hey</body></message>", U
    )
    assert heard is not None
    assert (heard.kind, heard.sender, heard.room) == (EventKind.MESSAGE, "bob@example", ROOM)
    # A private message to an occupant goes to the person behind the nick.
    private = s.decode(
        f"<message {NS} to='{ROOM}/bobby' type='chat'><body>psst</body></message>", C
    )
    assert private is not None
    assert private.recipients == ("bob@example",)
    # In an anonymous room the occupant JID is all there is.
    anon = s.decode(
        f"<message {NS} from='{ROOM}/ghost' type='groupchat'><body>boo</body></message>", U
    )
    assert anon is not None
    assert anon.sender == f"{ROOM}/ghost"
    left = s.decode(
        f"<presence {NS} from='{ROOM}/bobby' type='unavailable'>"
        "<x xmlns='http://jabber.org/protocol/muc#user'><item jid='bob@example/laptop'/></x>"
        "</presence>",
        U,
    )
    assert left is not None
    assert (left.kind, left.sender) == (EventKind.LEAVE, "bob@example")
    bye = s.decode(f"<presence {NS} to='{ROOM}/amy' type='unavailable'/>", C)
    assert bye is not None
    assert (bye.kind, bye.room) == (EventKind.LEAVE, ROOM)
    # Leaving a room never joined is no event.
    assert s.decode(f"<presence {NS} to='{ROOM}/amy' type='unavailable'/>", C) is None


def test_remembered_occupants_are_bounded() -> None:
    s = bound()
    for i in range(MAX_OCCUPANTS + 10):
        s.decode(
            f"<presence {NS} from='{ROOM}/n{i}'><x xmlns='http://jabber.org/protocol/muc#user'>"
            f"<item jid='u{i}@example/r'/></x></presence>",
            U,
        )
    assert len(s.occupants) == MAX_OCCUPANTS
    assert f"{ROOM}/n0" not in s.occupants


@pytest.mark.parametrize(
    ("body", "text"),
    [("send", "/send"), (" Cancel ", "/Cancel"), ("/cancel", "/cancel")],
)
def test_messages_to_the_service_jid_are_commands(body: str, text: str) -> None:
    s = bound()
    event = s.decode(
        f"<message {NS} to='Guard.Example/any' type='chat'><body>{body}</body></message>", C
    )
    assert event is not None
    assert (event.kind, event.text, event.sender) == (EventKind.CONTROL, text, "amy@example")
    assert event.control == {"type": SERVICE_COMMAND}


def test_a_report_names_its_conversation_first() -> None:
    s = bound()
    about_person = s.decode(
        f"<message {NS} to='guard.example' type='chat'>"
        "<body>report bob@example/phone he keeps asking</body></message>",
        C,
    )
    assert about_person is not None
    assert (about_person.text, about_person.recipients, about_person.room) == (
        "/report he keeps asking",
        ("bob@example",),
        None,
    )
    # amy joins the room; a report naming it is about the room.
    s.decode(
        f"<presence {NS} to='{ROOM}/amy'><x xmlns='http://jabber.org/protocol/muc'/></presence>", C
    )
    about_room = s.decode(
        f"<message {NS} to='guard.example'><body>report {ROOM} spam</body></message>", C
    )
    assert about_room is not None
    assert (about_room.text, about_room.room) == ("/report spam", ROOM)


def test_a_bodiless_message_to_the_service_jid_is_still_consumed() -> None:
    event = bound().decode(f"<message {NS} to='guard.example'><active xmlns='x'/></message>", C)
    assert event is not None
    assert (event.kind, event.text) == (EventKind.CONTROL, "/")


def test_notices_render_as_headlines_from_the_service_jid() -> None:
    s = bound()
    frame = s.render(
        Notice(
            "hold",
            "Sure? <it's> & yours",
            banner_id="pi_share_confirm",
            severity=Severity.WARNING,
            with_user="bob@example",
            extra={"hold": "h1", "choices": ["send", "cancel"]},
        )
    )
    assert isinstance(frame, str)
    root = ET.fromstring(frame)
    assert root.tag == "{jabber:client}message"
    assert root.attrib == {
        "type": "headline",
        "from": "guard.example",
        "to": "amy@example/phone",
        "id": "chatguard-1",
    }
    body = root.find("{jabber:client}body")
    assert body is not None
    assert body.text == 'Sure? <it\'s> & yours\n(Reply "send" or "cancel" to guard.example.)'
    details = root.find("{urn:chatguard:notice:0}chatguard")
    assert details is not None
    assert details.attrib == {
        "kind": "hold",
        "severity": "warning",
        "banner": "pi_share_confirm",
        "with": "bob@example",
        "hold": "h1",
    }
    # Each notice has its own id; text XML cannot carry is dropped.
    again = ET.fromstring(s.render(Notice("banner", "a\x00b\ud800c")))
    assert again.get("id") == "chatguard-2"
    assert again.findtext("{jabber:client}body") == "abc"


def test_a_notice_before_binding_has_no_addressee() -> None:
    root = ET.fromstring(session().render(Notice("error", "no")))
    assert "to" not in root.attrib


def test_redaction_replaces_only_the_body_text() -> None:
    s = bound()
    frame = (
        f"<message {NS} to='bob@example' type='chat' id='x'>"
        "<body>call 555 123 4567</body><body xml:lang='de'>ruf 555 123 4567</body>"
        "<thread>t</thread><x xmlns='urn:other' a='b'>keep</x></message>"
    )
    event = s.decode(frame, C)
    assert event is not None
    # Both language versions are judged.
    assert event.text == "call 555 123 4567\nruf 555 123 4567"
    # A mask of the same length is cut back into the two bodies.
    out = s.rewrite_text(event, "call ███ ███ ████\nruf ███ ███ ████")
    assert out == frame.replace("555 123 4567", "███ ███ ████")
    # Any other text goes whole into each body, escaped.
    out = s.rewrite_text(event, "<&>")
    assert out == frame.replace("call 555 123 4567", "&lt;&amp;&gt;").replace(
        "ruf 555 123 4567", "&lt;&amp;&gt;"
    )


def test_redaction_of_what_has_no_body_is_impossible() -> None:
    s = bound()
    event = s.decode(f"<message {NS} to='bob@example' type='chat'><body/></message>", C)
    assert event is not None
    assert s.rewrite_text(event, "x") is None


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("<!DOCTYPE m [<!ENTITY a 'b'>]><message xmlns='jabber:client'/>", "dtd"),
        ("<message xmlns='jabber:client'><body>open", "malformed"),
        ("<message xmlns='jabber:client'>" + "<x>" * 40 + "</x>" * 40 + "</message>", "too_deep"),
        ("<message xmlns='jabber:client'><body>" + "a" * 2000 + "</body></message>", "too_large"),
        ("<message xmlns='jabber:client'><!--c--></message>", "restricted"),
        ("<message xmlns='jabber:client'>\ud800</message>", "malformed"),
    ],
)
@pytest.mark.parametrize("mode", ["refuse", "pass"])
def test_bad_stanzas_are_flagged_for_the_relay(frame: str, reason: str, mode: str) -> None:
    s = session(max_stanza_bytes=1024, on_bad_stanza=mode)
    assert s.decode(frame, C) is None
    assert s.bad is not None
    assert (s.bad.reason, s.bad.refuse) == (reason, mode == "refuse")
    # The flag is about that frame only.
    assert s.decode(f"<presence {NS}/>", C) is None
    assert s.bad is None


def test_a_service_jid_with_a_resource_is_refused() -> None:
    with pytest.raises(ValueError, match="bare JID"):
        XmppCodec(XmppSettings(service_jid="guard.example/res"))


# -- fuzzing --------------------------------------------------------------------

NAMES = st.sampled_from(["message", "presence", "iq", "body", "x", "item", "query", "a"])
TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=20,
)


@st.composite
def elements(draw: st.DrawFn, depth: int = 0) -> str:
    name = draw(NAMES)
    attrs = draw(st.dictionaries(st.sampled_from(["to", "from", "type", "id", "jid"]), TEXT))
    attr_text = "".join(f' {k}="{escape_attr(v)}"' for k, v in attrs.items())
    children = draw(st.lists(elements(depth + 1), max_size=2)) if depth < 2 else []
    text = escape_text(draw(TEXT))
    return f"<{name}{attr_text}>{text}{''.join(children)}</{name}>"


@st.composite
def stanzas(draw: st.DrawFn) -> str:
    root = draw(st.sampled_from(["message", "presence", "iq", "unknown"]))
    ns = draw(st.sampled_from(["jabber:client", "urn:other"]))
    attrs = draw(st.dictionaries(st.sampled_from(["to", "from", "type", "id"]), TEXT))
    attr_text = "".join(f' {k}="{escape_attr(v)}"' for k, v in attrs.items())
    inner = "".join(draw(st.lists(elements(1), max_size=3)))
    return f'<{root} xmlns="{ns}"{attr_text}>{inner}</{root}>'


@given(st.text(max_size=300), st.sampled_from(list(Side)))
@settings(max_examples=300)
def test_no_exception_escapes_on_any_text(frame: str, origin: Side) -> None:
    s = bound()
    event = s.decode(frame, origin)
    if s.bad is not None:
        assert s.bad.reason in REASONS
    if event is not None:
        s.rewrite_text(event, "masked")


@given(stanzas(), st.sampled_from(list(Side)))
@settings(max_examples=150)
def test_generated_stanzas_decode_or_pass_through_intact(frame: str, origin: Side) -> None:
    s = bound()
    event = s.decode(frame, origin)
    assert s.bad is None  # well-formed and within the limits
    if event is None:
        return  # the relay forwards ``frame`` itself: byte for byte
    assert event.raw is frame
    if event.kind in (EventKind.MESSAGE, EventKind.DIRECT) and event.text is not None:
        # Re-inserting the body's own text (escaped as generated) changes nothing.
        assert s.rewrite_text(event, event.text) in (frame, None)


@given(st.text(max_size=100))
def test_rendered_notices_are_always_well_formed(text: str) -> None:
    s = bound()
    frame = s.render(Notice("banner", text, room=text, with_user=text))
    assert isinstance(frame, str)
    root = ET.fromstring(frame)
    assert root.tag == "{jabber:client}message"


def test_a_body_with_markup_inside_is_not_rewritten() -> None:
    s = bound()
    frame = f"<message {NS} to='bob@example' type='chat'><body>hi <b>there</b></body></message>"
    event = s.decode(frame, C)
    assert event is not None
    assert s.rewrite_text(event, "xx") is None
