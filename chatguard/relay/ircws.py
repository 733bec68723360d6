"""IRC over WebSocket (IRCv3 WebSocket spec) in front of a TCP-only IRC server.

What it owns: accepting a WebSocket client that speaks IRC, negotiating the
``binary.ircv3.net`` or ``text.ircv3.net`` subprotocol, and bridging it to
the configured IRC server over TCP (ngIRCd, like most servers, has no
WebSocket listener of its own). The lines then run through the same
``LineSession`` as IRC over TCP, so policy, banners and evidence are the same.

Invariants:

* Subprotocol choice follows the spec: ``binary.ircv3.net`` when the client
  offers it (lines cross byte for byte), else ``text.ircv3.net``, else no
  subprotocol, which means text.
* The bridge is registered on the WebSocket relay, so its sessions are among
  the relay's sessions: limits, the idle sweep, draining and deliveries treat
  them like any other.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web

from ..codecs import Codec
from ..config import Config
from ..events import Identity
from ..metrics import Metrics
from ..pipeline import Pipeline, SessionContext
from . import headers as hdr
from .lines import LineSession, WsLineLeg
from .tcp import IrcUpstream, UpstreamUnavailable, line_rules, run_tracked

if TYPE_CHECKING:
    from .server import Relay

BINARY = "binary.ircv3.net"
TEXT = "text.ircv3.net"


def choose_subprotocol(offered: tuple[str, ...] | list[str]) -> str | None:
    if BINARY in offered:
        return BINARY
    if TEXT in offered:
        return TEXT
    return None


class IrcWebSocketBridge:
    """WebSocket IRC clients, each paired with a TCP connection to the server."""

    def __init__(self, config: Config, codec: Codec, pipeline: Pipeline, metrics: Metrics) -> None:
        self.config = config
        self.codec = codec
        self.pipeline = pipeline
        self.metrics = metrics
        self.upstream = IrcUpstream(config, metrics)
        self.rules = line_rules(config, codec)

    async def handle(
        self, relay: Relay, request: web.Request, identity: Identity | None, peer: str
    ) -> web.StreamResponse:
        protocol = choose_subprotocol(hdr.offered_subprotocols(request.headers))
        try:
            upstream = await self.upstream.connect()
        except UpstreamUnavailable:
            return await relay._refuse(request, "upstream unavailable")
        limits = self.config.limits
        client = web.WebSocketResponse(
            protocols=(protocol,) if protocol else (),
            autoclose=True,
            autoping=True,
            heartbeat=limits.heartbeat or None,
            max_msg_size=min(limits.max_frame_bytes, self.config.irc.hard_line_bytes),
            writer_limit=limits.write_buffer_bytes,
        )
        try:
            await client.prepare(request)
        except (ConnectionError, RuntimeError):
            await upstream.close()
            return client
        context = SessionContext(
            session_id=f"{relay._instance}-{next(relay._ids)}",
            peer=peer,
            connected_at=time.time(),
            user_agent=request.headers.get("User-Agent", ""),
            identity=identity,
        )
        codec = self.codec.open(identity, use_welcome=self.config.identity.welcome)
        context.codec = codec
        session = LineSession(
            WsLineLeg(client, binary=protocol == BINARY),
            upstream,
            codec,
            self.pipeline,
            context,
            self.metrics,
            self.rules,
            relay.on_identity,
            relay.admit,
        )
        if identity is not None and relay.on_identity is not None:
            await relay.on_identity(identity)
        await run_tracked(session, relay.sessions, relay._no_sessions, self.metrics)
        return client
