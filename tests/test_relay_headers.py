"""Which headers cross the relay, in both directions."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from chatguard.relay.headers import (
    HOP_BY_HOP,
    WEBSOCKET_LEG,
    offered_subprotocols,
    offers_deflate,
    request_headers,
    response_headers,
)


def headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def forward(
    *pairs: tuple[str, str],
    websocket: bool = True,
    forwarded: bool = True,
    peer: str | None = "203.0.113.9",
    keep_length: bool = False,
) -> CIMultiDict[str]:
    return request_headers(
        headers(*pairs),
        peer=peer,
        scheme="https",
        host="chat.example",
        websocket=websocket,
        forwarded=forwarded,
        keep_length=keep_length,
    )


HANDSHAKE = (
    ("Host", "chat.example"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
    ("Sec-WebSocket-Protocol", "chat.v2, chat.v1"),
)

END_TO_END = (
    ("Cookie", "session=abc"),
    ("Authorization", "Bearer token"),
    ("Origin", "https://chat.example"),
    ("User-Agent", "Mozilla/5.0"),
    ("Accept-Language", "de-DE"),
    ("X-Custom", "one"),
    ("X-Custom", "two"),
)


# -- requests -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "keep-alive",
        "UPGRADE",
    ],
)
@pytest.mark.parametrize("websocket", [True, False])
def test_hop_by_hop_headers_are_dropped(name: str, websocket: bool) -> None:
    out = forward((name, "x"), ("X-Kept", "1"), websocket=websocket, forwarded=False)
    assert name not in out
    assert list(out.items()) == [("X-Kept", "1")]


def test_the_hop_by_hop_list_is_rfc_9110() -> None:
    assert {
        "connection",
        "keep-alive",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    } <= HOP_BY_HOP


@pytest.mark.parametrize("websocket", [True, False])
def test_headers_named_by_connection_are_dropped(websocket: bool) -> None:
    out = forward(
        ("Connection", "close, X-Gateway-Secret"),
        ("Connection", " x-trace ,"),
        ("X-Gateway-Secret", "s3cret"),
        ("X-Trace", "t-1"),
        ("X-Other", "kept"),
        websocket=websocket,
        forwarded=False,
    )
    assert list(out.items()) == [("X-Other", "kept")]


def test_websocket_leg_headers_are_dropped_for_websocket() -> None:
    out = forward(*HANDSHAKE, forwarded=False)
    assert list(out.items()) == []
    for name in WEBSOCKET_LEG:
        assert name not in out


def test_websocket_leg_headers_pass_on_plain_http() -> None:
    out = forward(("Sec-WebSocket-Protocol", "chat.v2"), websocket=False, forwarded=False)
    assert out.getall("Sec-WebSocket-Protocol") == ["chat.v2"]


@pytest.mark.parametrize("websocket", [True, False])
def test_end_to_end_headers_are_kept_in_order_and_multiplicity(websocket: bool) -> None:
    out = forward(*HANDSHAKE, *END_TO_END, websocket=websocket, forwarded=False)
    kept = [(k, v) for k, v in out.items() if not k.lower().startswith("sec-websocket")]
    assert kept == list(END_TO_END)
    assert out.getall("X-Custom") == ["one", "two"]


@pytest.mark.parametrize(
    ("keep_length", "expected"),
    [(False, []), (True, [("Content-Length", "12")])],
)
def test_host_is_always_reset_and_length_only_kept_when_asked(
    keep_length: bool, expected: list[tuple[str, str]]
) -> None:
    out = forward(
        ("Host", "evil.example"),
        ("Content-Length", "12"),
        websocket=False,
        forwarded=False,
        keep_length=keep_length,
    )
    assert list(out.items()) == expected


FORWARDED = [
    # (prior client headers, peer, X-Forwarded-For sent upstream)
    ((), "203.0.113.9", "203.0.113.9"),
    ((("X-Forwarded-For", "198.51.100.1"),), "203.0.113.9", "198.51.100.1, 203.0.113.9"),
    (
        (("x-forwarded-for", "198.51.100.1, 10.0.0.2"),),
        "203.0.113.9",
        "198.51.100.1, 10.0.0.2, 203.0.113.9",
    ),
    ((("X-Forwarded-For", "198.51.100.1"),), None, "198.51.100.1"),
    ((), None, None),
]


@pytest.mark.parametrize(("prior", "peer", "xff"), FORWARDED)
def test_x_forwarded_for_is_appended(
    prior: tuple[tuple[str, str], ...], peer: str | None, xff: str | None
) -> None:
    out = forward(*prior, ("Cookie", "a=1"), peer=peer)
    assert out.getall("X-Forwarded-For", []) == ([xff] if xff else [])
    assert out["Cookie"] == "a=1"


def test_repeated_x_forwarded_for_lines_keep_every_hop() -> None:
    out = forward(("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "10.0.0.2"))
    assert out.getall("X-Forwarded-For") == ["198.51.100.1, 10.0.0.2, 203.0.113.9"]


def test_x_forwarded_proto_and_host_are_set_not_trusted() -> None:
    out = forward(
        ("X-Forwarded-Proto", "gopher"),
        ("X-Forwarded-Host", "evil.example"),
    )
    assert out.getall("X-Forwarded-Proto") == ["https"]
    assert out.getall("X-Forwarded-Host") == ["chat.example"]


def test_no_host_no_forwarded_host() -> None:
    out = request_headers(headers(), peer="203.0.113.9", scheme="http", host=None, websocket=True)
    assert dict(out) == {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http"}


def test_forwarded_false_adds_nothing() -> None:
    out = forward(("X-Forwarded-For", "198.51.100.1"), ("Cookie", "a=1"), forwarded=False)
    assert list(out.items()) == [("X-Forwarded-For", "198.51.100.1"), ("Cookie", "a=1")]
    assert "X-Forwarded-Proto" not in out
    assert "X-Forwarded-Host" not in out


def test_input_headers_are_not_changed() -> None:
    original = headers(("X-Forwarded-For", "198.51.100.1"), ("Connection", "Upgrade"))
    request_headers(original, peer="203.0.113.9", scheme="http", host="h", websocket=True)
    assert list(original.items()) == [
        ("X-Forwarded-For", "198.51.100.1"),
        ("Connection", "Upgrade"),
    ]


# -- responses ----------------------------------------------------------------------


def test_response_headers_drop_hop_by_hop_and_connection_named() -> None:
    upstream = headers(
        ("Content-Type", "text/html"),
        ("Content-Length", "5"),
        ("Connection", "keep-alive, X-Internal"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("X-Internal", "debug"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Cache-Control", "no-store"),
    )
    out = response_headers(upstream)
    assert list(out.items()) == [
        ("Content-Type", "text/html"),
        ("Content-Length", "5"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Cache-Control", "no-store"),
    ]


def test_response_headers_drop_extra() -> None:
    upstream = headers(("Content-Length", "5"), ("Server", "chat/1"), ("ETag", '"x"'))
    out = response_headers(upstream, drop_extra=["content-length", "SERVER"])
    assert list(out.items()) == [("ETag", '"x"')]


# -- handshake offers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], ()),
        (["chat.v2"], ("chat.v2",)),
        (["chat.v2, chat.v1"], ("chat.v2", "chat.v1")),
        (["chat.v2,chat.v1", "mqtt"], ("chat.v2", "chat.v1", "mqtt")),
        ([" , chat.v1 ,, "], ("chat.v1",)),
        ([""], ()),
    ],
)
def test_offered_subprotocols(values: list[str], expected: tuple[str, ...]) -> None:
    offered = headers(*(("Sec-WebSocket-Protocol", v) for v in values), ("X-Other", "a, b"))
    assert offered_subprotocols(offered) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], False),
        (["permessage-deflate"], True),
        (["permessage-deflate; client_max_window_bits"], True),
        (["PerMessage-Deflate"], True),
        (["x-webkit-deflate-frame"], False),
        (["foo", "permessage-deflate; server_no_context_takeover"], True),
    ],
)
def test_offers_deflate(values: list[str], expected: bool) -> None:
    offered = headers(*(("Sec-WebSocket-Extensions", v) for v in values))
    assert offers_deflate(offered) is expected
