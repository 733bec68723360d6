"""XMPP over WebSocket (RFC 7395) codec.

What it owns: reading one stanza per text frame into chat events, learning
the connection's identity from the upstream's resource-binding result,
rendering ChatGuard's notices as ``headline`` messages from the service JID,
and turning messages *to* the service JID into text commands.

Mapping (client = the user's XMPP client, upstream = the XMPP server):

* ``<message type='chat'|'normal'>`` with a ``<body>`` → ``DIRECT`` (to a
  room occupant's full JID for MUC private messages).
* ``<message type='groupchat'>`` with a ``<body>`` → ``MESSAGE`` in the room
  (the room's bare JID). From the upstream, the sender is the occupant's real
  bare JID when this session saw it in the occupant's presence (non-anonymous
  rooms), else the occupant JID ``room@service/nick``.
* MUC presence → ``JOIN``/``LEAVE``: the client's ``<presence to='room/nick'>``
  with a MUC ``<x/>`` (or ``type='unavailable'`` to a joined room), and the
  upstream's occupant presence carrying MUC-user ``<x/>``.
* A client ``<message>`` to the service JID → ``CONTROL`` of type
  ``chatguard.command`` whose text is the body as a ``/`` command (``send``,
  ``cancel``, ``report <reason>``); the pipeline consumes it, so it never
  reaches the server.
* Everything else (``<open/>``, ``<close/>``, SASL, iq, other presence,
  bodiless messages) → ``None``: passed through byte for byte.

Invariants:

* ``decode`` never raises. Frames the safe parser refuses (``xmlframe``) set
  ``bad`` and return ``None``; ``on_bad_stanza`` decides whether the relay
  refuses or passes them.
* Client-originated events take their sender from the session identity only,
  never from a ``from`` attribute.
* Only the upstream attests identity, once per connection: its first
  ``<iq type='result'>`` carrying a bind ``<jid>`` in answer to the client's
  bind request (same id, no ``from``).
* ``rewrite_text`` changes only the character data of the message's
  ``<body>`` children; every other byte of the frame stays as received.
* Per-session memory is bounded: at most ``MAX_ROOMS`` joined rooms and
  ``MAX_OCCUPANTS`` remembered occupants (oldest forgotten first).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

from ..events import ChatEvent, EventKind, Frame, Identity, Notice, Side
from .base import SERVICE_COMMAND, BadFrame, Codec, CodecSession
from .xmlframe import Element, Refused, escape_attr, escape_text, parse

#: Service commands about a conversation, which name it first.
TARGETED = frozenset({"report"})

CLIENT_NS = "jabber:client"
FRAMING_NS = "urn:ietf:params:xml:ns:xmpp-framing"
BIND_NS = "urn:ietf:params:xml:ns:xmpp-bind"
MUC_NS = "http://jabber.org/protocol/muc"
MUC_USER_NS = "http://jabber.org/protocol/muc#user"
#: Namespace of the machine-readable details ChatGuard adds to its notices.
NOTICE_NS = "urn:chatguard:notice:0"

MAX_ROOMS = 256
MAX_OCCUPANTS = 4096
DIRECT_TYPES = frozenset({"chat", "normal"})


def bare(jid: str) -> str:
    """``jid`` without its resource."""
    return jid.split("/", 1)[0]


def resource(jid: str) -> str:
    return jid.split("/", 1)[1] if "/" in jid else ""


def same_jid(a: str, b: str) -> bool:
    """Bare JIDs compared the way servers do for ASCII (localpart and domain
    are case-insensitive)."""
    return a.casefold() == b.casefold()


@dataclass(frozen=True, slots=True)
class XmppSettings:
    service_jid: str = "chatguard"
    max_stanza_bytes: int = 262_144
    max_depth: int = 32
    on_bad_stanza: str = "refuse"  # or "pass"


class XmppCodec(Codec):
    """XMPP over WebSocket; configuration shared by all sessions."""

    name = "xmpp"

    def __init__(self, settings: XmppSettings | None = None) -> None:
        self.settings = settings or XmppSettings()
        if not self.settings.service_jid or "/" in self.settings.service_jid:
            raise ValueError("service_jid must be a bare JID")

    def open(self, identity: Identity | None, *, use_welcome: bool = True) -> XmppSession:
        return XmppSession(self.settings, identity, use_welcome)


class XmppSession(CodecSession):
    def __init__(
        self, settings: XmppSettings, identity: Identity | None, use_welcome: bool
    ) -> None:
        self.settings = settings
        self.identity = identity
        # A gateway- or JWT-attested identity stands; the bind result only
        # fills in when there is none.
        self.use_welcome = use_welcome and identity is None
        self.bad: BadFrame | None = None
        #: The full JID the server bound for this connection (for notices).
        self.full_jid: str | None = None
        #: Rooms this client joined (bare room JID → our nick).
        self.rooms: OrderedDict[str, str] = OrderedDict()
        #: Occupant JID (room@service/nick) → real bare JID, as presence said.
        self.occupants: OrderedDict[str, str] = OrderedDict()
        self._notices = 0
        #: The id of the client's resource-binding request, once sent.
        self._bind_request: str | None = None

    # -- decoding ---------------------------------------------------------------

    def _parse(self, frame: Frame) -> Element | None:
        self.bad = None
        if not isinstance(frame, str) or not frame.strip():
            return None  # RFC 7395 uses text frames; whitespace is no stanza
        try:
            data = frame.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates cannot be on the wire
            self._refuse("malformed", "not encodable as UTF-8")
            return None
        settings = self.settings
        try:
            return parse(data, max_bytes=settings.max_stanza_bytes, max_depth=settings.max_depth)
        except Refused as exc:
            self._refuse(exc.reason, str(exc))
            return None

    def _refuse(self, reason: str, detail: str) -> None:
        self.bad = BadFrame(reason, self.settings.on_bad_stanza == "refuse", detail)

    def decode(self, frame: Frame, origin: Side) -> ChatEvent | None:
        root = self._parse(frame)
        if root is None or root.ns != CLIENT_NS:
            return None
        try:
            if root.name == "message":
                return self._message(root, frame, origin)
            if root.name == "presence":
                return self._presence(root, frame, origin)
            if root.name == "iq":
                self._bind(root, origin)
        except (KeyError, IndexError, ValueError):  # pragma: no cover - defensive
            return None
        return None

    def _me(self) -> str | None:
        return self.identity.user_id if self.identity else None

    def _bind(self, iq: Element, origin: Side) -> None:
        """Resource binding: the client's request, then the server's answer.

        Only the server's own answer to this client's bind request counts:
        it carries the request's id and no ``from`` (anything routed from
        another entity has one), and only the first.
        """
        bind = iq.child("bind", BIND_NS)
        if bind is None or self.full_jid is not None:
            return
        if origin is Side.CLIENT:
            if iq.attrs.get("type") == "set":
                self._bind_request = iq.attrs.get("id", "")
            return
        if (
            iq.attrs.get("type") != "result"
            or "from" in iq.attrs
            or iq.attrs.get("id", "") != self._bind_request
        ):
            return
        jid = bind.child("jid", BIND_NS)
        if jid is None or not jid.text.strip():
            return
        self.full_jid = jid.text.strip()
        if self.use_welcome:
            # One attestation per connection: later results never rebind.
            self.use_welcome = False
            user = bare(self.full_jid)
            self.identity = Identity(user, user.split("@", 1)[0], {}, source="welcome")

    def _command(self, frame: Frame, text: str) -> ChatEvent:
        """A message to the service JID: ``send``, ``cancel``, ``report <jid> [reason]``.

        A report names its conversation first — a room JID this session is in,
        or a person — and the event then carries that room or person, as if
        the report had been typed in that conversation.
        """
        verb, _, args = text.partition(" ")
        room: str | None = None
        recipients: tuple[str, ...] = ()
        if verb.lower() in TARGETED and args.strip():
            target, _, rest = args.strip().partition(" ")
            if bare(target) in self.rooms:
                room = bare(target)
            else:
                recipients = (self._person(target),)
            text = f"{verb} {rest.strip()}".rstrip()
        return ChatEvent(
            EventKind.CONTROL,
            Side.CLIENT,
            frame,
            sender=self._me(),
            room=room,
            recipients=recipients,
            text="/" + text,
            control={"type": SERVICE_COMMAND},
        )

    def _message(self, msg: Element, frame: Frame, origin: Side) -> ChatEvent | None:
        kind = msg.attrs.get("type", "normal")
        # Every <body> (one per language) is judged: a client shows the one
        # in its reader's language, so none may go unread.
        bodies = msg.children_named("body", CLIENT_NS)
        text = "\n".join(b.text for b in bodies) if bodies else None
        message_id = msg.attrs.get("id")
        if origin is Side.CLIENT:
            to = msg.attrs.get("to", "")
            if to and same_jid(bare(to), self.settings.service_jid):
                return self._command(frame, (text or "").strip().lstrip("/"))
            if text is None or not to:
                return None
            if kind == "groupchat":
                return ChatEvent(
                    EventKind.MESSAGE,
                    origin,
                    frame,
                    sender=self._me(),
                    room=bare(to),
                    text=text,
                    message_id=message_id,
                )
            if kind in DIRECT_TYPES:
                return ChatEvent(
                    EventKind.DIRECT,
                    origin,
                    frame,
                    sender=self._me(),
                    recipients=(self._person(to),),
                    text=text,
                    message_id=message_id,
                )
            return None
        sender = msg.attrs.get("from", "")
        if text is None or not sender:
            return None
        if kind == "groupchat":
            return ChatEvent(
                EventKind.MESSAGE,
                origin,
                frame,
                sender=self.occupants.get(sender, sender),
                room=bare(sender),
                text=text,
                message_id=message_id,
            )
        if kind in DIRECT_TYPES:
            me = self._me()
            to = msg.attrs.get("to", "")
            return ChatEvent(
                EventKind.DIRECT,
                origin,
                frame,
                sender=self._person(sender),
                recipients=(me,) if me else ((bare(to),) if to else ()),
                text=text,
                message_id=message_id,
            )
        return None

    def _person(self, jid: str) -> str:
        """Who a JID means as a chat participant: a bare JID, or for a room
        occupant its real bare JID when known, else the occupant JID."""
        if bare(jid) in self.rooms or jid in self.occupants:
            return self.occupants.get(jid, jid)
        return bare(jid)

    def _presence(self, presence: Element, frame: Frame, origin: Side) -> ChatEvent | None:
        leaving = presence.attrs.get("type") == "unavailable"
        if origin is Side.CLIENT:
            to = presence.attrs.get("to", "")
            room, nick = bare(to), resource(to)
            if not nick:
                return None
            if leaving:
                if self.rooms.pop(room, None) is None:
                    return None
                kind = EventKind.LEAVE
            elif presence.child("x", MUC_NS) is not None:
                _remember(self.rooms, room, nick, MAX_ROOMS)
                kind = EventKind.JOIN
            else:
                return None  # a status change inside a room is no join
            return ChatEvent(kind, origin, frame, sender=self._me(), room=room)
        occupant = presence.attrs.get("from", "")
        x = presence.child("x", MUC_USER_NS)
        if (
            x is None
            or not resource(occupant)
            or presence.attrs.get("type")
            not in (
                None,
                "unavailable",
            )
        ):
            return None
        item = x.child("item", MUC_USER_NS)
        real = item.attrs.get("jid") if item is not None else None
        if real:
            _remember(self.occupants, occupant, bare(real), MAX_OCCUPANTS)
        sender = self.occupants.get(occupant, occupant)
        if leaving:
            self.occupants.pop(occupant, None)
        return ChatEvent(
            EventKind.LEAVE if leaving else EventKind.JOIN,
            origin,
            frame,
            sender=sender,
            room=bare(occupant),
        )

    # -- rendering --------------------------------------------------------------

    def render(self, notice: Notice) -> Frame:
        self._notices += 1
        service = self.settings.service_jid
        text = notice.text
        hold = notice.extra.get("hold")
        if hold is not None:
            # Plain XMPP clients have no buttons: say how to answer.
            text = f'{text}\n(Reply "send" or "cancel" to {service}.)'
        attrs = {
            "kind": notice.kind,
            "severity": notice.severity.value,
            "banner": notice.banner_id,
            "room": notice.room,
            "with": notice.with_user,
            "hold": hold if isinstance(hold, str) else None,
        }
        details = "".join(f' {k}="{_attr(v)}"' for k, v in attrs.items() if v)
        to = f' to="{_attr(self.full_jid)}"' if self.full_jid else ""
        return (
            f'<message xmlns="{CLIENT_NS}" type="headline" from="{_attr(service)}"{to}'
            f' id="chatguard-{self._notices}"><body>{escape_text(_xml_chars(text))}</body>'
            f'<chatguard xmlns="{NOTICE_NS}"{details}/></message>'
        )

    def rewrite_text(self, event: ChatEvent, text: str) -> Frame | None:
        if not isinstance(event.raw, str):
            return None
        try:
            data = event.raw.encode("utf-8")
            root = parse(data, max_bytes=len(data), max_depth=self.settings.max_depth)
        except (UnicodeEncodeError, Refused):
            return None
        bodies = root.children_named("body", CLIENT_NS)
        spans = [body.content_span(data) for body in bodies]
        if root.ns != CLIENT_NS or root.name != "message" or not bodies or None in spans:
            return None
        if any(body.children for body in bodies):
            # A body with markup inside is not plain text: rewriting it would
            # drop the markup, so the frame cannot be redacted in place.
            return None
        pieces = _split_like(text, [b.text for b in bodies], event.text)
        out, last = bytearray(), 0
        for span, piece in zip(spans, pieces, strict=True):
            assert span is not None
            out += data[last : span[0]] + escape_text(_xml_chars(piece)).encode("utf-8")
            last = span[1]
        out += data[last:]
        return out.decode("utf-8")


def _split_like(text: str, originals: list[str], joined: str | None) -> list[str]:
    """``text`` cut into one piece per body, as the event's text joined them.

    Masking keeps the length, so the pieces are cut at the original bodies'
    lengths; a text of another length goes whole into every body.
    """
    if len(originals) == 1:
        return [text]
    if joined is None or len(text) != len(joined):
        return [text] * len(originals)
    pieces, at = [], 0
    for original in originals:
        pieces.append(text[at : at + len(original)])
        at += len(original) + 1  # the joining newline
    return pieces


def _remember(table: OrderedDict[str, str], key: str, value: str, limit: int) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)


def _attr(value: str) -> str:
    return escape_attr(_xml_chars(value))


def _xml_chars(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (controls, surrogates)."""
    return _NOT_XML.sub("", text)


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
