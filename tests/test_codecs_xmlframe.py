"""The safe, bounded one-element XML parser: bombs, limits, offsets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatguard.codecs.xmlframe import REASONS, Refused, escape_attr, escape_text, parse

LIMITS = {"max_bytes": 65_536, "max_depth": 16}


def refused(frame: str | bytes, **limits: int) -> str:
    data = frame.encode() if isinstance(frame, str) else frame
    with pytest.raises(Refused) as info:
        parse(data, **{**LIMITS, **limits})
    assert info.value.reason in REASONS
    return info.value.reason


def test_a_stanza_parses_into_namespaced_elements() -> None:
    root = parse(
        b"<message xmlns='jabber:client' to='b@x' type='chat'>"
        b"<body>hi &amp; &lt;bye&gt; &#x263A;</body><x xmlns='urn:other'/></message>",
        **LIMITS,
    )
    assert (root.ns, root.name) == ("jabber:client", "message")
    assert root.attrs == {"to": "b@x", "type": "chat"}
    body = root.child("body", "jabber:client")
    assert body is not None
    assert body.text == "hi & <bye> \u263a"
    assert root.child("x", "urn:other") is not None
    assert root.child("x", "jabber:client") is None


def test_prefixed_stream_elements_keep_their_namespace() -> None:
    root = parse(
        b"<stream:features xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
        b"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
        **LIMITS,
    )
    assert (root.ns, root.name) == ("http://etherx.jabber.org/streams", "features")


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + ']><message xmlns="jabber:client"><body>&lol9;</body></message>'
)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (BILLION_LAUGHS, "dtd"),
        # External entity: would read a local file.
        (
            '<!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            "<message xmlns='jabber:client'><body>&xxe;</body></message>",
            "dtd",
        ),
        # Parameter entity fetching an external DTD.
        ('<!DOCTYPE m [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]><m/>', "dtd"),
        ('<!DOCTYPE m SYSTEM "http://127.0.0.1:1/x.dtd"><m/>', "dtd"),
        ("<m><!-- a comment --></m>", "restricted"),
        ("<m><?pi data?></m>", "restricted"),
        ("<m><body>unclosed", "malformed"),
        ("<m>", "malformed"),
        ("<a/><b/>", "malformed"),  # two stanzas in one frame
        ("<a/>trailing", "malformed"),
        ("text only", "malformed"),
        ("<m>&undefined;</m>", "malformed"),
        ("<p:m/>", "malformed"),  # unbound prefix
        ("<m a='1' a='2'/>", "malformed"),
        ("<m>\x00</m>", "malformed"),
        ("", "malformed"),
    ],
)
def test_unsafe_or_broken_xml_is_refused_with_a_reason(frame: str, reason: str) -> None:
    assert refused(frame) == reason


def test_a_frame_over_the_byte_limit_is_refused_before_parsing() -> None:
    frame = "<m>" + "é" * 600 + "</m>"  # 1207 bytes, 607 characters
    assert refused(frame, max_bytes=1024) == "too_large"
    assert parse(frame.encode(), max_bytes=2048, max_depth=4).text == "é" * 600


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    assert refused("<a>" * 5 + "</a>" * 5, max_depth=4) == "too_deep"
    assert parse(b"<a>" * 4 + b"</a>" * 4, max_bytes=100, max_depth=4).name == "a"
    # Deep enough to break a recursive parser; stopped at the limit.
    assert refused("<a>" * 100_000, max_bytes=1_000_000, max_depth=32) == "too_deep"


def test_many_entity_references_parse_in_linear_time() -> None:
    # 200k references in one text node: joined once, not concatenated per piece.
    frame = b"<m>" + b"&amp;" * 200_000 + b"</m>"
    assert parse(frame, max_bytes=2_000_000, max_depth=4).text == "&" * 200_000


@pytest.mark.parametrize(
    ("frame", "span"),
    [
        (b"<m><body>hi</body></m>", b"hi"),
        (b"<m><body></body></m>", b""),
        (b"<m><body a='>'>x&amp;y</body></m>", b"x&amp;y"),
        (b"<m><body><![CDATA[a<b]]></body></m>", b"<![CDATA[a<b]]>"),
    ],
)
def test_content_spans_are_the_bytes_between_the_tags(frame: bytes, span: bytes) -> None:
    body = parse(frame, **LIMITS).children[0]
    found = body.content_span(frame)
    assert found is not None
    assert frame[found[0] : found[1]] == span


def test_an_empty_element_tag_has_no_content_span() -> None:
    frame = b"<m><body xml:lang='en' /></m>"
    assert parse(frame, **LIMITS).children[0].content_span(frame) is None


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_nothing_but_refused_escapes_on_any_bytes(data: bytes) -> None:
    reason = None
    try:
        parse(data, max_bytes=256, max_depth=8)
    except Refused as exc:
        reason = exc.reason
    assert reason is None or reason in REASONS


@given(st.text(max_size=200))
def test_escaped_text_round_trips(value: str) -> None:
    clean = "".join(c for c in value if c in "\t\n" or " " <= c <= "\ud7ff" or c >= "\ue000")
    clean = clean.replace("\ufffe", "").replace("\uffff", "")
    frame = f'<m a="{escape_attr(clean)}">{escape_text(clean)}</m>'.encode()
    root = parse(frame, max_bytes=10_000, max_depth=2)
    assert root.text == clean
    assert root.attrs["a"] == clean.replace("\t", " ").replace("\n", " ")
