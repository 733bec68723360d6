"""The IRC codec: what lines mean, server-attested identity, notices, rewriting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatguard.codecs.irc import COMMAND_TYPE, IrcCodec, IrcSession
from chatguard.events import EventKind, Identity, Notice, Side

C, U = Side.CLIENT, Side.UPSTREAM


def session(*welcome: bytes) -> IrcSession:
    s = IrcCodec().open(None)
    for line in welcome or (b":irc.test 001 Amy :Welcome to the network",):
        assert s.decode(line, U) is None
    return s


def test_the_welcome_attests_the_nick() -> None:
    s = IrcCodec().open(None)
    assert s.identity is None
    s.decode(b":irc.test 001 Amy :Welcome", U)
    assert s.identity == Identity("amy", "Amy", {}, source="welcome")


def test_a_client_nick_is_a_request_and_the_servers_confirmation_renames() -> None:
    s = session()
    assert s.decode(b"NICK Mallory", C) is None
    assert s.identity is not None
    assert s.identity.user_id == "amy"
    event = s.decode(b":Amy!a@h NICK :Amy2", U)
    assert event is not None
    assert event.kind is EventKind.NICK
    assert s.identity.user_id == "amy2"
    # Someone else's rename is an event, not our identity.
    s.decode(b":Bob!b@h NICK Bobby", U)
    assert s.identity.user_id == "amy2"


def test_the_account_comes_from_rpl_loggedin() -> None:
    s = session()
    s.decode(b":irc.test 900 Amy Amy!a@h amyacct :You are now logged in as amyacct", U)
    assert s.identity is not None
    assert s.identity.attrs == {"account": "amyacct"}
    s.decode(b":irc.test 901 Amy Amy!a@h :You are now logged out", U)
    assert s.identity.attrs == {}


def test_a_gateway_identity_stands_but_the_nick_is_still_tracked() -> None:
    attested = Identity("u-1", "Amy", {"age_band": "minor"}, source="header")
    s = IrcCodec().open(attested)
    s.decode(b":irc.test 001 Amy :Welcome", U)
    assert s.identity is attested
    assert s.nick == "Amy"


@pytest.mark.parametrize(
    ("line", "kind", "room", "recipients", "text"),
    [
        (b"PRIVMSG #Kids :hi all", EventKind.MESSAGE, "#kids", (), "hi all"),
        (b"NOTICE #kids :psst", EventKind.MESSAGE, "#kids", (), "psst"),
        (b"PRIVMSG Bob :hi bob", EventKind.DIRECT, None, ("bob",), "hi bob"),
        (b"PRIVMSG Bob :\x01ACTION waves\x01", EventKind.DIRECT, None, ("bob",), "waves"),
        (b"PRIVMSG bob :sn\x02ap\x02 \x0304,01chat", EventKind.DIRECT, None, ("bob",), "snap chat"),
        # A channel named first cannot hide a message to a person.
        (b"PRIVMSG #kids,bob :psst", EventKind.DIRECT, None, ("bob",), "psst"),
        (b"@+draft/reply=1 PRIVMSG #kids :tagged", EventKind.MESSAGE, "#kids", (), "tagged"),
    ],
)
def test_client_messages(
    line: bytes, kind: EventKind, room: str | None, recipients: tuple[str, ...], text: str
) -> None:
    event = session().decode(line, C)
    assert event is not None
    assert (event.kind, event.room, event.recipients, event.text) == (kind, room, recipients, text)
    assert event.sender == "amy"  # from the attested identity, never the line
    assert event.raw == line


def test_client_lines_that_are_not_chat_pass_through() -> None:
    s = session()
    for line in (
        b"JOIN #kids",
        b"PRIVMSG bob :\x01VERSION\x01",
        b"PING x",
        b"WHO #kids",
        b"PRIVMSG",
    ):
        assert s.decode(line, C) is None
        assert s.sniff(line, C) in (None, s.sniff(b"PRIVMSG a :b", C))


def test_upstream_events() -> None:
    s = session()
    cases = {
        b"@msgid=x1 :Bob!b@h PRIVMSG #Kids :hey": (EventKind.MESSAGE, "bob", "#kids", "hey"),
        b":Bob!b@h PRIVMSG Amy :hey you": (EventKind.DIRECT, "bob", None, "hey you"),
        b":Bob!b@h JOIN #Kids": (EventKind.JOIN, "bob", "#kids", None),
        b":Bob!b@h PART #kids :bye": (EventKind.LEAVE, "bob", "#kids", None),
        b":Op!o@h KICK #kids Bob :out": (EventKind.LEAVE, "bob", "#kids", None),
        b":Bob!b@h QUIT :gone": (EventKind.LEAVE, "bob", None, None),
    }
    for line, (kind, sender, room, text) in cases.items():
        event = s.decode(line, U)
        assert event is not None, line
        assert (event.kind, event.sender, event.room, event.text) == (kind, sender, room, text)
    first = s.decode(b"@msgid=x1 :Bob!b@h PRIVMSG #Kids :hey", U)
    assert first is not None
    assert first.message_id == "x1"


def test_sniff_agrees_with_decode_for_presence() -> None:
    s = session()
    assert s.sniff(b":Bob!b@h JOIN #kids", U) is EventKind.JOIN
    assert s.sniff(b":irc.test 372 Amy :- motd", U) is None
    assert s.sniff(b"@t=1 :irc.test 001 Amy :hi", U) is not None  # identity may follow


def test_messages_to_the_service_name_are_control_commands() -> None:
    s = session()
    for line in (b"PRIVMSG ChatGuard :send", b"PRIVMSG chatguard :SEND", b"NOTICE CHATGUARD :send"):
        event = s.decode(line, C)
        assert event is not None
        assert event.kind is EventKind.CONTROL
        assert event.control is not None
        assert event.control["type"] == COMMAND_TYPE
        assert event.control["command"] == "send"
    mixed = s.decode(b"PRIVMSG bob,ChatGuard :send", C)
    assert mixed is not None
    assert mixed.kind is EventKind.CONTROL
    report = s.decode(b"PRIVMSG ChatGuard :report  Bob he asked for pics ", C)
    assert report is not None
    assert report.control == {
        "type": COMMAND_TYPE,
        "command": "report",
        "args": "he asked for pics",
    }
    assert report.text == "/report he asked for pics"
    assert report.recipients == ("bob",)
    in_room = s.decode(b"PRIVMSG ChatGuard :report #Kids spam", C)
    assert in_room is not None
    assert (in_room.room, in_room.text) == ("#kids", "/report spam")


def test_a_custom_service_name() -> None:
    s = IrcCodec("Guardian").open(None)
    s.decode(b":irc.test 001 Amy :Welcome", U)
    event = s.decode(b"PRIVMSG guardian :cancel", C)
    assert event is not None
    assert event.kind is EventKind.CONTROL
    assert s.render(Notice("banner", "hi")).startswith(b":Guardian!Guardian@")


def test_notices_render_as_irc_lines() -> None:
    s = session()
    assert s.render(Notice("banner", "Be careful")) == (
        b":ChatGuard!ChatGuard@chatguard.invalid NOTICE Amy :[ChatGuard] Be careful"
    )
    in_room = s.render(Notice("banner", "Welcome", room="#kids"))
    assert in_room.endswith(b"NOTICE #kids :[ChatGuard] Welcome")
    hold = s.render(Notice("hold", "Sure?", extra={"hold": "h1"}))
    assert b"/msg ChatGuard send" in hold
    assert b"/msg ChatGuard cancel" in hold
    assert s.render(Notice("close", "banned\r\nQUIT")) == b"ERROR :Closing link: banned  QUIT"


def test_notices_before_the_welcome_go_to_star_and_long_ones_are_cut() -> None:
    s = IrcCodec().open(None)
    line = s.render(Notice("banner", "\u00e9" * 400))
    assert isinstance(line, bytes)
    assert b" NOTICE * :" in line
    assert len(line) <= 510
    line.decode("utf-8")  # cut between characters, never inside one


def test_rewrite_replaces_only_the_text() -> None:
    s = session()
    line = b"@+draft/reply=9 PRIVMSG bob :call me 555 1234"
    event = s.decode(line, C)
    assert event is not None
    assert s.rewrite_text(event, "call me ********") == (
        b"@+draft/reply=9 PRIVMSG bob :call me ********"
    )
    action = s.decode(b"PRIVMSG bob :\x01ACTION dances\x01", C)
    assert action is not None
    assert s.rewrite_text(action, "***") == b"PRIVMSG bob :\x01ACTION ***\x01"
    assert s.rewrite_text(event, "a\r\nQUIT :bye\0") == b"@+draft/reply=9 PRIVMSG bob :a  QUIT :bye"


def test_line_problems() -> None:
    codec = IrcCodec()
    assert codec.problem(b"PRIVMSG a :" + b"x" * 499) is None  # 510 + CR LF = 512
    assert codec.problem(b"PRIVMSG a :" + b"x" * 500) == "too_long"
    tags = b"@" + b"t=" + b"v" * 8000 + b" "
    assert codec.problem(tags + b"PRIVMSG a :x") is None
    assert codec.problem(b"@" + b"v" * 8200 + b" PRIVMSG a :x") == "too_long"
    assert codec.problem(b"PRIVMSG a :x\0y") == "bad_byte"
    assert codec.problem(b"PRIVMSG a :x\ry") == "bad_byte"


# -- fuzzing -------------------------------------------------------------------------

_LINES = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda cmd, target, text: b"%s %s :%s" % (cmd, target, text),
        st.sampled_from([b"PRIVMSG", b"NOTICE", b"JOIN", b"NICK", b"001", b"900", b"KICK"]),
        st.binary(max_size=20),
        st.binary(max_size=60),
    ),
    st.builds(lambda line: b":x!y@z " + line, st.binary(max_size=80)),
)


@given(_LINES, st.sampled_from([C, U]))
def test_decode_never_raises_and_keeps_the_raw_line(line: bytes, origin: Side) -> None:
    s = session()
    s.sniff(line, origin)
    event = s.decode(line, origin)
    if event is not None:
        assert event.raw == line  # what is forwarded is what was received
        rewritten = s.rewrite_text(event, "redacted")
        assert rewritten is None or isinstance(rewritten, bytes)


@given(st.binary(max_size=200))
def test_unknown_lines_pass_byte_for_byte(payload: bytes) -> None:
    # A command no rule reads is never decoded, so the relay forwards it as is.
    line = b"XUNKNOWN " + payload
    s = session()
    assert s.decode(line, C) is None
    assert s.decode(line, U) is None
    assert s.sniff(line, U) is None


@given(st.text(max_size=300), st.sampled_from(["banner", "hold", "error", "close"]))
def test_rendered_and_rewritten_text_is_always_one_line(text: str, kind: str) -> None:
    s = session()
    rendered = s.render(Notice(kind, text))
    assert isinstance(rendered, bytes)
    assert b"\r" not in rendered
    assert b"\n" not in rendered
    assert b"\0" not in rendered
    event = s.decode(b"PRIVMSG bob :hello", C)
    assert event is not None
    out = s.rewrite_text(event, text)
    assert isinstance(out, bytes)
    assert out.count(b"\n") == out.count(b"\r") == out.count(b"\0") == 0


def test_text_frames_are_read_as_utf8_lines() -> None:
    s = session()
    event = s.decode("PRIVMSG #kids :h\u00e9llo", C)
    assert event is not None
    assert event.text == "h\u00e9llo"
    rewritten = s.rewrite_text(event, "x")
    assert rewritten == "PRIVMSG #kids :x"


def test_nobody_may_take_the_service_name() -> None:
    codec = IrcCodec()
    reply = codec.reserved(b"NICK :chatGUARD")
    assert reply is not None
    assert reply.startswith(b":ChatGuard 432 * ChatGuard :")
    assert codec.reserved(b"NICK ChatGuard2") is None
    assert codec.reserved(b"PRIVMSG ChatGuard :hi") is None


def test_the_command_type_is_the_one_the_control_step_handles() -> None:
    from chatguard.codecs.base import SERVICE_COMMAND

    assert COMMAND_TYPE == SERVICE_COMMAND
