"""IRC codec: lines in, chat events out; notices out as IRC lines.

What it owns: what an IRC line means in chat terms (``PRIVMSG``/``NOTICE`` to
a channel is a room message, to a nick a direct message; ``JOIN``, ``PART``,
``KICK``, ``QUIT`` and ``NICK`` are presence events), the identity the server
attests (``001 RPL_WELCOME`` names our nick, a ``NICK`` from our own prefix
renames it, ``900 RPL_LOGGEDIN`` names the account), messages to the service
name (commands for ChatGuard), and rendering notices as lines from that name.

Invariants:

* A frame is one line without CR LF, as bytes (a text WebSocket frame is
  taken as its UTF-8 bytes). ``decode`` never raises.
* Only the upstream attests identity; a client's ``NICK`` is a request, not a
  fact, and is never read as one.
* Nicks and channel names in events are RFC 1459 case-folded, so ``Bob`` and
  ``bob`` are one user; the identity keeps the nick as the server spelled it
  in ``name``.
* A client message addressed to the service name (alone or among other
  targets) is a ``CONTROL`` event: the pipeline's control step consumes it,
  and it never goes upstream.
* Every line this codec writes is one line: text passes ``clean_text``
  (no CR, LF or NUL) and is cut to the 512-byte line limit.
"""

from __future__ import annotations

import re

from ..events import ChatEvent, EventKind, Frame, Identity, Notice, Side
from . import ircline
from .base import SERVICE_COMMAND, UNSURE, Codec, CodecSession, Unsure
from .ircline import MAX_LINE_BYTES, MAX_TAG_BYTES, Line, casefold, is_channel

#: The control type a command to the service name carries (``ControlStep.service_command``).
COMMAND_TYPE = SERVICE_COMMAND

# mIRC formatting: bold, colour (with up to two numbers), hex colour, reset,
# italics, strike, underline, monospace, reverse. Stripped from event text so
# that "sn\x02ap" reads as "snap" to the policy.
_FORMATTING = re.compile(
    r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]"
)
_MESSAGES = frozenset({"PRIVMSG", "NOTICE"})
#: Commands to the service whose first word names the conversation they are about.
TARGETED = frozenset({"report"})
# Upstream commands that may carry identity or events; everything else is
# known not to decode to anything.
_UPSTREAM_SURE: dict[str, EventKind | Unsure] = {
    "PRIVMSG": UNSURE,
    "NOTICE": UNSURE,
    "JOIN": EventKind.JOIN,
    "PART": EventKind.LEAVE,
    "KICK": EventKind.LEAVE,
    "QUIT": EventKind.LEAVE,
    "NICK": UNSURE,
    "001": UNSURE,
    "900": UNSURE,
    "901": UNSURE,
}


class IrcCodec(Codec):
    """IRC settings shared by all sessions."""

    name = "irc"

    def __init__(
        self,
        service_name: str = "ChatGuard",
        *,
        service_host: str = "chatguard.invalid",
        max_line_bytes: int = MAX_LINE_BYTES,
        max_tag_bytes: int = MAX_TAG_BYTES,
    ) -> None:
        self.service_name = ircline.clean_word(service_name)
        self.service_key = casefold(self.service_name)
        self.service_prefix = f"{self.service_name}!{self.service_name}@{service_host}"
        self.max_line_bytes = max_line_bytes
        self.max_tag_bytes = max_tag_bytes

    def open(self, identity: Identity | None, *, use_welcome: bool = True) -> IrcSession:
        return IrcSession(self, identity, use_welcome)

    def problem(self, line: bytes) -> str | None:
        """What is wrong with a received line (without CR LF), or None.

        ``too_long``: over ``max_line_bytes`` (CR LF counted) apart from its
        tags, or tags over ``max_tag_bytes``. ``bad_byte``: a NUL or a bare
        CR (or, in a WebSocket message, an LF) inside the line, which a server
        may read as a line end the relay would not have seen.
        """
        tags = ircline.tags_length(line)
        if tags > self.max_tag_bytes or len(line) - tags + 2 > self.max_line_bytes:
            return "too_long"
        if b"\0" in line or b"\r" in line or b"\n" in line:
            return "bad_byte"
        return None

    def reserved(self, line: bytes) -> bytes | None:
        """The reply refusing a client's ``NICK`` of the service name, or None.

        Nobody may take the service's name: notices from it must only ever
        come from ChatGuard. The reply is the server's own refusal
        (``432 ERR_ERRONEUSNICKNAME``), so clients pick another nick.
        """
        if _command_of(line) != "NICK":
            return None
        parsed = ircline.parse(line)
        if parsed is None or not parsed.params or casefold(parsed.params[0]) != self.service_key:
            return None
        return ircline.serialise(
            "432",
            ["*", self.service_name, "Nickname is reserved for the moderation service"],
            prefix=self.service_prefix.split("!", 1)[0],
        )


def _as_bytes(frame: Frame) -> bytes:
    return frame if isinstance(frame, bytes) else frame.encode("utf-8")


def _command_of(raw: bytes) -> str:
    """The command word of a line, found without a full parse."""
    pos = 0
    if raw.startswith(b"@"):
        pos = raw.find(b" ") + 1
        if pos == 0:
            return ""
    while raw[pos : pos + 1] == b" ":
        pos += 1
    if raw[pos : pos + 1] == b":":
        pos = raw.find(b" ", pos) + 1
        if pos == 0:
            return ""
        while raw[pos : pos + 1] == b" ":
            pos += 1
    end = raw.find(b" ", pos)
    return raw[pos : end if end >= 0 else len(raw)].decode("latin-1").upper()


def _split_ctcp(text: str) -> tuple[str | None, str]:
    """(CTCP verb, its text) for ``\\x01VERB text\\x01``; (None, text) otherwise."""
    if len(text) >= 2 and text.startswith("\x01"):
        body = text[1:-1] if text.endswith("\x01") else text[1:]
        verb, _, rest = body.partition(" ")
        return verb.upper(), rest
    return None, text


class IrcSession(CodecSession):
    __slots__ = ("account", "codec", "identity", "nick", "use_welcome")

    def __init__(self, codec: IrcCodec, identity: Identity | None, use_welcome: bool) -> None:
        self.codec = codec
        self.identity = identity
        # A gateway- or JWT-attested identity stands; the server's welcome
        # only fills in when there is none. The nick is tracked either way:
        # notices are addressed to it.
        self.use_welcome = use_welcome and identity is None
        self.nick: str | None = None
        self.account: str | None = None

    # -- decoding -------------------------------------------------------------

    def sniff(self, frame: Frame, origin: Side) -> EventKind | Unsure | None:
        try:
            command = _command_of(_as_bytes(frame))
        except UnicodeError:
            return UNSURE
        if origin is Side.CLIENT:
            return UNSURE if command in _MESSAGES else None
        return _UPSTREAM_SURE.get(command)

    def decode(self, frame: Frame, origin: Side) -> ChatEvent | None:
        try:
            raw = _as_bytes(frame)
        except UnicodeError:
            return None
        line = ircline.parse(raw)
        if line is None:
            return None
        if origin is Side.UPSTREAM:
            return self._upstream(line, frame)
        return self._client(line, frame)

    def _client(self, line: Line, frame: Frame) -> ChatEvent | None:
        if line.command not in _MESSAGES or len(line.params) < 2:
            return None
        sender = self.identity.user_id if self.identity else None
        targets = [t for t in line.params[0].split(",") if t]
        text = line.params[-1]
        # Naming the service among other targets still makes it a command:
        # the text is meant for ChatGuard, and must not reach the others.
        if any(casefold(t) == self.codec.service_key for t in targets):
            return self._command(frame, sender, text.strip())
        return self._message(line, frame, Side.CLIENT, sender, targets, text)

    def _command(self, frame: Frame, sender: str | None, text: str) -> ChatEvent:
        """A command to the service: ``send``, ``cancel``, ``report <#room|nick> [reason]``.

        Commands about a conversation (``TARGETED``) name it first; the event
        then carries that room or user, as if the command had been typed in
        that conversation.
        """
        verb, _, args = text.partition(" ")
        verb, args = verb.lower(), args.strip()
        room: str | None = None
        recipients: tuple[str, ...] = ()
        if verb in TARGETED and args:
            target, _, rest = args.partition(" ")
            if is_channel(target):
                room = casefold(target)
            else:
                recipients = (casefold(target),)
            args = rest.strip()
        return ChatEvent(
            EventKind.CONTROL,
            Side.CLIENT,
            frame,
            sender=sender,
            room=room,
            recipients=recipients,
            text=f"/{verb} {args}".rstrip(),
            control={"type": COMMAND_TYPE, "command": verb, "args": args},
        )

    def _message(
        self,
        line: Line,
        frame: Frame,
        origin: Side,
        sender: str | None,
        targets: list[str],
        text: str,
    ) -> ChatEvent | None:
        verb, body = _split_ctcp(text)
        if verb is not None and verb != "ACTION":
            return None  # CTCP queries and replies (VERSION, PING, ...) are not chat
        clean = _FORMATTING.sub("", body)
        nicks = [casefold(t) for t in targets if not is_channel(t)]
        channels = [casefold(t) for t in targets if is_channel(t)]
        msgid = line.tags.get("msgid") or None
        # A line to several targets is judged as a direct message when any
        # target is a person: the stricter reading, so a channel named first
        # cannot hide a message to a child.
        if nicks:
            return ChatEvent(
                EventKind.DIRECT,
                origin,
                frame,
                sender=sender,
                recipients=tuple(nicks),
                text=clean,
                message_id=msgid,
            )
        if channels:
            return ChatEvent(
                EventKind.MESSAGE,
                origin,
                frame,
                sender=sender,
                room=channels[0],
                text=clean,
                message_id=msgid,
            )
        return None

    def _upstream(self, line: Line, frame: Frame) -> ChatEvent | None:
        command, params = line.command, line.params
        nick = line.source_nick
        if command == "001" and params:
            self._attest(params[0])
            return None
        if command == "900" and len(params) >= 3:
            self.account = params[2]
            self._attest(self.nick or params[0])
            return None
        if command == "901":
            self.account = None
            if self.nick:
                self._attest(self.nick)
            return None
        if nick is None:
            return None
        sender = casefold(nick)
        if command in _MESSAGES and len(params) >= 2:
            targets = [t for t in params[0].split(",") if t]
            return self._message(line, frame, Side.UPSTREAM, sender, targets, params[-1])
        if command == "NICK" and params:
            new = params[0]
            if self.nick is not None and casefold(nick) == casefold(self.nick):
                self._attest(new)
            return ChatEvent(EventKind.NICK, Side.UPSTREAM, frame, sender=sender, text=new)
        if command == "JOIN" and params:
            room = casefold(params[0].split(",")[0])
            return ChatEvent(EventKind.JOIN, Side.UPSTREAM, frame, sender=sender, room=room)
        if command == "PART" and params:
            room = casefold(params[0].split(",")[0])
            return ChatEvent(EventKind.LEAVE, Side.UPSTREAM, frame, sender=sender, room=room)
        if command == "KICK" and len(params) >= 2:
            room = casefold(params[0])
            victim = casefold(params[1])
            return ChatEvent(EventKind.LEAVE, Side.UPSTREAM, frame, sender=victim, room=room)
        if command == "QUIT":
            return ChatEvent(EventKind.LEAVE, Side.UPSTREAM, frame, sender=sender)
        return None

    def _attest(self, nick: str) -> None:
        """The server told us who this connection is (welcome, rename, login)."""
        if not nick or nick == "*":
            return
        self.nick = nick
        if not self.use_welcome:
            return
        attrs = {"account": self.account} if self.account else {}
        self.identity = Identity(casefold(nick), nick, attrs, source="welcome")

    # -- writing ----------------------------------------------------------------

    def rewrite_text(self, event: ChatEvent, text: str) -> Frame | None:
        raw = _as_bytes(event.raw)
        line = ircline.parse(raw)
        if line is None or line.command not in _MESSAGES or line.text_offset < 0:
            return None
        if len(line.params) < 2:
            return None
        verb, _ = _split_ctcp(line.params[-1])
        body = ircline.clean_text(text)
        if verb == "ACTION":
            body = f"\x01ACTION {body}\x01"
        out = raw[: line.text_offset] + b":" + body.encode("utf-8")
        return out if isinstance(event.raw, bytes) else out.decode("utf-8", errors="replace")

    def render(self, notice: Notice) -> Frame:
        codec = self.codec
        if notice.kind == "close":
            # A sanction that ends the connection: what a server says before
            # it drops a client.
            reason = ircline.clean_text(notice.text) or "closed"
            return ircline.serialise("ERROR", [f"Closing link: {reason}"])
        target = notice.room if notice.room and is_channel(notice.room) else (self.nick or "*")
        text = notice.text
        if notice.kind == "hold":
            name = codec.service_name
            text = f"{text} (reply /msg {name} send  or  /msg {name} cancel)"
        elif notice.kind == "error":
            text = f"error: {text}"
        to = ircline.clean_word(target)
        head = f":{codec.service_prefix} NOTICE {to} :[{codec.service_name}] "
        room = MAX_LINE_BYTES - 2 - len(head.encode("utf-8"))
        body = ircline.truncate_utf8(ircline.clean_text(text), max(room, 0))
        return (head + body).encode("utf-8")
