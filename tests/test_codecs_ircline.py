"""IRC line grammar: parsing, serialising, tag escaping, case mapping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatguard.codecs import ircline
from chatguard.codecs.ircline import parse

# Cases from the IRCv3 parser-tests message splits, plus RFC 1459 forms.
SPLITS = [
    (b"foo bar baz asdf", None, None, "FOO", ("bar", "baz", "asdf")),
    (b":coolguy foo bar baz asdf", None, "coolguy", "FOO", ("bar", "baz", "asdf")),
    (b"foo bar baz :asdf quux", None, None, "FOO", ("bar", "baz", "asdf quux")),
    (b"foo bar baz :", None, None, "FOO", ("bar", "baz", "")),
    (b"foo bar baz ::asdf", None, None, "FOO", ("bar", "baz", ":asdf")),
    (b":coolguy foo bar baz :  asdf quux ", None, "coolguy", "FOO", ("bar", "baz", "  asdf quux ")),
    (b"@a=b;c=32;k;rt=ql7 foo", {"a": "b", "c": "32", "k": "", "rt": "ql7"}, None, "FOO", ()),
    (
        b"@a=b\\\\and\\nk;c=72\\s45;d=gh\\:764 foo",
        {"a": "b\\and\nk", "c": "72 45", "d": "gh;764"},
        None,
        "FOO",
        (),
    ),
    (b"@c;h=;a=b :quux ab cd", {"c": "", "h": "", "a": "b"}, "quux", "AB", ("cd",)),
    (b":src JOIN #chan", None, "src", "JOIN", ("#chan",)),
    (b":src JOIN :#chan", None, "src", "JOIN", ("#chan",)),
    (b":src AWAY", None, "src", "AWAY", ()),
    (b":cool\tguy foo bar baz", None, "cool\tguy", "FOO", ("bar", "baz")),
    (b"@tag1=value\\\\ntest COMMAND", {"tag1": "value\\ntest"}, None, "COMMAND", ()),
    (b"@tag1=value\\1 COMMAND", {"tag1": "value1"}, None, "COMMAND", ()),
    (b"@tag1=value1\\ COMMAND", {"tag1": "value1"}, None, "COMMAND", ()),
    (b":irc.example 001 nick :Welcome", None, "irc.example", "001", ("nick", "Welcome")),
]


@pytest.mark.parametrize(("raw", "tags", "prefix", "command", "params"), SPLITS)
def test_message_splits(
    raw: bytes,
    tags: dict[str, str] | None,
    prefix: str | None,
    command: str,
    params: tuple[str, ...],
) -> None:
    line = parse(raw)
    assert line is not None
    assert line.tags == (tags or {})
    assert line.prefix == prefix
    assert line.command == command
    assert line.params == params


@pytest.mark.parametrize(
    "raw", [b"", b"   ", b"@only-tags", b":prefix-only", b":p 12ab x", b"\xff\xfe x"]
)
def test_unreadable_lines_are_none(raw: bytes) -> None:
    assert parse(raw) is None


def test_the_text_offset_points_at_the_last_parameter() -> None:
    raw = b"@msgid=1 :a!b@c PRIVMSG #x :hello there"
    line = parse(raw)
    assert line is not None
    assert raw[line.text_offset :] == b":hello there"
    assert line.trailing


def test_latin1_falls_back_and_utf8_is_preferred() -> None:
    assert ircline.decode_text("caf\u00e9".encode()) == "caf\u00e9"
    assert ircline.decode_text(b"caf\xe9") == "caf\u00e9"


def test_serialise_never_makes_a_second_line() -> None:
    out = ircline.serialise("NOTICE", ["bob\r\nQUIT", "hi\r\nQUIT :x\0"], prefix="svc")
    assert out == b":svc NOTICE bobQUIT :hi  QUIT :x"
    assert b"\r" not in out
    assert b"\n" not in out


def test_tags_round_trip_with_escapes() -> None:
    tags = {"a": "semi;colon space\\back\r\nline", "flag": ""}
    text = ircline.format_tags(tags)
    assert text == "@a=semi\\:colon\\sspace\\\\back\\r\\nline;flag"
    assert ircline.parse_tags(text[1:]) == tags


def test_rfc1459_case_mapping() -> None:
    assert ircline.casefold("Nick[]\\~") == "nick{}|^"
    assert ircline.is_channel("#kids")
    assert not ircline.is_channel("kids")


def test_truncate_never_cuts_a_character() -> None:
    assert ircline.truncate_utf8("\u00e9\u00e9\u00e9", 5) == "\u00e9\u00e9"


@given(st.binary(max_size=600))
def test_parse_never_raises(raw: bytes) -> None:
    parse(raw)


_VALUE = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@given(
    st.dictionaries(st.from_regex(r"\+?[a-z][a-z0-9/.-]{0,10}", fullmatch=True), _VALUE, max_size=4)
)
def test_tag_values_round_trip(tags: dict[str, str]) -> None:
    cleaned = {k: v.replace("\0", "") for k, v in tags.items()}
    text = ircline.format_tags(cleaned)
    assert ircline.parse_tags(text[1:]) == cleaned


@given(
    st.lists(st.from_regex(r"[A-Za-z0-9#&_.-]{1,12}", fullmatch=True), max_size=5),
    _VALUE,
)
def test_serialised_lines_parse_back(middle: list[str], trailing: str) -> None:
    out = ircline.serialise("PRIVMSG", [*middle, trailing])
    line = parse(out)
    assert line is not None
    assert line.params == (*middle, ircline.clean_text(trailing))
