"""A small XMPP-over-WebSocket client (RFC 7395) on ``websockets``, for tests.

It does what a real client does on the wire: opens the stream, signs in with
SASL PLAIN, re-opens, binds a resource, sends initial presence, and then
sends and receives stanzas, one per text frame. Stanzas it receives are
parsed with ElementTree (the frames come from the real server or from
ChatGuard, never from an attacker here).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import websockets

from tests.support.timing import unit

CLIENT = "jabber:client"
FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND = "urn:ietf:params:xml:ns:xmpp-bind"
MUC = "http://jabber.org/protocol/muc"
NOTICE = "urn:chatguard:notice:0"
#: Most skipped stanzas kept for later ``expect`` calls.
BACKLOG = 200


def q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


class XmppClient:
    """One signed-in XMPP session over a WebSocket URL."""

    _ids = itertools.count(1)

    def __init__(self, url: str, user: str, password: str, domain: str = "localhost") -> None:
        self.url = url
        self.user = user
        self.password = password
        self.domain = domain
        self.jid = ""
        self.ws: Any = None
        self.backlog: list[ET.Element] = []
        self._headers: dict[str, str] = {}

    @property
    def bare(self) -> str:
        return f"{self.user}@{self.domain}"

    async def connect(self, headers: dict[str, str] | None = None, resource: str = "test") -> None:
        self.ws = await websockets.connect(
            self.url, subprotocols=[websockets.Subprotocol("xmpp")], additional_headers=headers
        )
        assert self.ws.subprotocol == "xmpp"
        await self.open()
        await self.expect(lambda e: e.tag.endswith("features"))
        token = base64.b64encode(f"\0{self.user}\0{self.password}".encode()).decode()
        await self.send(f'<auth xmlns="{SASL}" mechanism="PLAIN">{token}</auth>')
        reply = await self.expect(lambda e: e.tag in (q(SASL, "success"), q(SASL, "failure")))
        assert reply.tag == q(SASL, "success"), ET.tostring(reply)
        await self.open()
        await self.expect(lambda e: e.tag.endswith("features"))
        await self.send(
            f'<iq xmlns="{CLIENT}" type="set" id="bind1"><bind xmlns="{BIND}">'
            f"<resource>{resource}</resource></bind></iq>"
        )
        result = await self.expect(lambda e: e.tag == q(CLIENT, "iq") and e.get("id") == "bind1")
        jid = result.find(f"{q(BIND, 'bind')}/{q(BIND, 'jid')}")
        assert jid is not None
        assert jid.text
        self.jid = jid.text
        await self.send(f'<presence xmlns="{CLIENT}"/>')
        # The server reflects initial presence to the sender once it is
        # available; messages to the bare JID are routed only after that.
        await self.expect(lambda e: e.tag == q(CLIENT, "presence") and e.get("from") == self.jid)

    async def open(self) -> None:
        await self.send(f'<open xmlns="{FRAMING}" to="{self.domain}" version="1.0"/>')
        await self.expect(lambda e: e.tag == q(FRAMING, "open"))

    async def send(self, frame: str) -> None:
        await self.ws.send(frame)

    async def recv(self, within: float = 3.0) -> str:
        async with asyncio.timeout(unit(within)):
            frame = await self.ws.recv()
        assert isinstance(frame, str)
        return frame

    async def expect(self, wanted: Callable[[ET.Element], bool], within: float = 3.0) -> ET.Element:
        """The first received stanza ``wanted`` accepts.

        Stanzas it skips are kept (bounded) for later calls, as a real client
        keeps every stanza: a banner may arrive before the message it is about.
        """
        for i, element in enumerate(self.backlog):
            if wanted(element):
                del self.backlog[i]
                return element
        async with asyncio.timeout(unit(within)):
            while True:
                element = ET.fromstring(await self.recv(within))
                if wanted(element):
                    return element
                self.backlog.append(element)
                del self.backlog[:-BACKLOG]

    async def nothing(self, wanted: Callable[[ET.Element], bool], within: float = 0.5) -> None:
        """Fail if a stanza ``wanted`` accepts arrives within ``within`` seconds."""
        try:
            got = await self.expect(wanted, within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected stanza: {ET.tostring(got)!r}")

    # -- stanzas --------------------------------------------------------------

    def message_frame(self, to: str, body: str, kind: str = "chat") -> str:
        return (
            f'<message xmlns="{CLIENT}" to={quoteattr(to)} type="{kind}"'
            f' id="m{next(self._ids)}"><body>{escape(body)}</body></message>'
        )

    async def message(self, to: str, body: str, kind: str = "chat") -> None:
        await self.send(self.message_frame(to, body, kind))

    async def join(self, room: str, nick: str) -> None:
        await self.send(
            f'<presence xmlns="{CLIENT}" to="{room}/{nick}"><x xmlns="{MUC}"/></presence>'
        )
        # The room answers with our own presence (status 110) once we are in.
        await self.expect(
            lambda e: (
                e.tag == q(CLIENT, "presence")
                and e.get("from") == f"{room}/{nick}"
                and 'code="110"' in ET.tostring(e, encoding="unicode")
            )
        )

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self.send(f'<close xmlns="{FRAMING}"/>')
            await self.ws.close()


def body_of(kind: str | None = None, sender: str | None = None) -> Callable[[ET.Element], bool]:
    """A matcher for messages with a body (of ``kind``, from ``sender``'s bare JID)."""

    def wanted(e: ET.Element) -> bool:
        if e.tag != q(CLIENT, "message") or e.find(q(CLIENT, "body")) is None:
            return False
        if kind is not None and e.get("type", "normal") != kind:
            return False
        return sender is None or (e.get("from") or "").split("/")[0] == sender

    return wanted


def text(e: ET.Element) -> str:
    body = e.find(q(CLIENT, "body"))
    return body.text or "" if body is not None else ""


def notice(e: ET.Element) -> dict[str, str]:
    """The ChatGuard details of a headline notice."""
    details = e.find(q(NOTICE, "chatguard"))
    assert details is not None, ET.tostring(e)
    return dict(details.attrib)
