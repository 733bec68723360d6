"""Which request and response headers cross the relay (pure).

End-to-end headers (Cookie, Authorization, Origin, User-Agent, custom headers)
are passed on; hop-by-hop headers (RFC 9110 §7.6.1: Connection and every
header it names, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade)
are not. The WebSocket handshake headers are per-leg: each leg negotiates its
own key, version and extensions, so they never cross either. ``Host`` is set
for the upstream by the HTTP client. ``X-Forwarded-For/-Proto/-Host`` are
added so the upstream still knows who the real client is.
"""

from __future__ import annotations

from collections.abc import Iterable

from multidict import CIMultiDict, CIMultiDictProxy

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

#: Handshake headers each WebSocket leg sets for itself.
WEBSOCKET_LEG = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)

#: Set by the client library for the upstream leg, or recomputed.
_RECOMPUTED = frozenset({"host", "content-length"})


def _connection_named(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> set[str]:
    named: set[str] = set()
    for value in headers.getall("Connection", []):
        named.update(token.strip().lower() for token in value.split(",") if token.strip())
    return named


def request_headers(
    headers: CIMultiDictProxy[str],
    *,
    peer: str | None,
    scheme: str,
    host: str | None,
    websocket: bool,
    forwarded: bool = True,
    keep_length: bool = False,
) -> CIMultiDict[str]:
    """Headers to send upstream for a client request."""
    drop = HOP_BY_HOP | _connection_named(headers)
    if websocket:
        drop |= WEBSOCKET_LEG
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lname = name.lower()
        if lname in drop or (lname in _RECOMPUTED and not (keep_length and lname != "host")):
            continue
        out.add(name, value)
    if forwarded:
        if peer:
            # Every earlier hop is kept, whether sent as one line or several.
            hops = [*headers.getall("X-Forwarded-For", []), peer]
            out["X-Forwarded-For"] = ", ".join(hops)
        out["X-Forwarded-Proto"] = scheme
        if host:
            out["X-Forwarded-Host"] = host
    return out


def response_headers(
    headers: CIMultiDictProxy[str], *, drop_extra: Iterable[str] = ()
) -> CIMultiDict[str]:
    """Headers to send to the client for an upstream response."""
    drop = HOP_BY_HOP | _connection_named(headers) | {h.lower() for h in drop_extra}
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        if name.lower() not in drop:
            out.add(name, value)
    return out


def offered_subprotocols(headers: CIMultiDictProxy[str]) -> tuple[str, ...]:
    """Subprotocols the client offered, in its order of preference."""
    offered: list[str] = []
    for value in headers.getall("Sec-WebSocket-Protocol", []):
        offered.extend(p.strip() for p in value.split(",") if p.strip())
    return tuple(offered)


def offers_deflate(headers: CIMultiDictProxy[str]) -> bool:
    return any(
        "permessage-deflate" in value.lower()
        for value in headers.getall("Sec-WebSocket-Extensions", [])
    )
