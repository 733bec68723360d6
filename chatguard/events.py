"""Protocol-neutral chat events, notices and verdicts.

This module owns the vocabulary every other part speaks:

* A relay has two sides, ``Side.CLIENT`` (the chat user's connection) and
  ``Side.UPSTREAM`` (the real chat service). An event's ``origin`` is the side
  that sent the frame; a verdict's injections name the side they go *toward*.
* A ``ChatEvent`` is what a codec makes of one wire frame. It always keeps the
  exact ``raw`` frame so that evidence can store what was really sent and so
  that a pass verdict forwards the original bytes, never a re-serialisation.
* A ``Notice`` is something ChatGuard itself says (a banner, an error, a hold
  prompt). It is protocol-neutral; each codec renders it natively.
* A ``Verdict`` is the pipeline's answer for one frame: forward it, drop it,
  replace it, and/or inject extra frames or notices toward either side.

Invariants: everything here is a frozen, slotted dataclass or an enum; nothing
here does I/O or reads a clock (timestamps are passed in).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: A wire frame: ``str`` for WebSocket text frames, ``bytes`` for binary frames
#: (and for line-based protocols, where a frame is one line).
Frame = str | bytes


class Side(enum.Enum):
    """One of the two sides of a relayed connection."""

    CLIENT = "client"
    UPSTREAM = "upstream"

    @property
    def other(self) -> Side:
        return Side.UPSTREAM if self is Side.CLIENT else Side.CLIENT


class EventKind(enum.Enum):
    """What a frame means in chat terms."""

    MESSAGE = "message"  # a message to a room
    DIRECT = "direct"  # a direct (one-to-one) message
    JOIN = "join"
    LEAVE = "leave"
    NICK = "nick"
    CONTROL = "control"  # a ChatGuard control frame from the client (never forwarded)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a connection belongs to, as attested by something we trust.

    ``source`` says which attestation established it (``welcome``, ``header``,
    ``jwt``); an identity that only the client claimed is never built.
    """

    user_id: str
    name: str
    attrs: Mapping[str, str] = field(default_factory=dict)
    source: str = "welcome"

    @property
    def age_band(self) -> str:
        return self.attrs.get("age_band", "unknown")


@dataclass(frozen=True, slots=True)
class ChatEvent:
    """One decoded chat event.

    ``conversation`` groups events for risk and evidence: ``room:<name>`` for
    room events, ``dm:<a>:<b>`` (sorted pair) for direct messages. The two
    prefixes keep the namespaces apart, so a room that a user names
    ``dm:alice:bob`` never shares state with alice and bob's direct messages.
    """

    kind: EventKind
    origin: Side
    raw: Frame
    sender: str | None = None
    room: str | None = None
    recipients: tuple[str, ...] = ()
    text: str | None = None
    message_id: str | None = None
    control: Mapping[str, Any] | None = None

    @property
    def conversation(self) -> str | None:
        return conversation_id(self.kind, self.room, self.sender, self.recipients)


def conversation_id(
    kind: EventKind, room: str | None, sender: str | None, recipients: tuple[str, ...]
) -> str | None:
    """The conversation key for an event (see ``ChatEvent.conversation``)."""
    if kind is EventKind.DIRECT and sender is not None and recipients:
        return dm_key(sender, recipients[0])
    return None if room is None else f"room:{room}"


def dm_key(a: str, b: str) -> str:
    """``dm:<a>:<b>`` for the unordered pair, with ``%`` and ``:`` in ids escaped
    so that two different pairs can never share a key."""
    x, y = sorted((_escape(a), _escape(b)))
    return f"dm:{x}:{y}"


def _escape(user: str) -> str:
    return user.replace("%", "%25").replace(":", "%3A")


class Severity(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Notice:
    """A message from ChatGuard itself, rendered by the codec of the session.

    ``kind`` is ``banner`` for speed bumps, ``error`` for refusals of bad
    control frames; ``room``/``with_user`` place a banner in context.
    ``extra`` carries kind-specific fields (e.g. a hold id and its choices).
    """

    kind: str
    text: str
    banner_id: str | None = None
    severity: Severity = Severity.INFO
    room: str | None = None
    with_user: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Measurement only, never rendered: banner variant, audience, trigger,
    # impression kind (see chatguard/effectiveness.py).
    meta: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Inject:
    """An extra frame or notice to send toward ``toward``."""

    toward: Side
    payload: Frame | Notice


@dataclass(frozen=True, slots=True)
class Verdict:
    """The pipeline's decision for one frame.

    ``forward`` False drops the frame; ``replacement`` (when forwarding) is sent
    instead of the original; ``inject`` items are sent after the forwarded frame
    (or instead of it, when dropped), in order.
    """

    forward: bool = True
    replacement: Frame | None = None
    inject: tuple[Inject, ...] = ()
    reason: str | None = None

    def also(self, *items: Inject) -> Verdict:
        """This verdict with more injections appended."""
        return Verdict(self.forward, self.replacement, self.inject + items, self.reason)


#: The verdict of the pass-through pipeline, shared because it is immutable.
PASS = Verdict()
