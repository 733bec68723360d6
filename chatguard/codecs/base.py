"""The interface every wire-protocol codec implements.

A ``Codec`` is configuration (compiled once, shared by all sessions); a
``CodecSession`` is the per-connection part, holding whatever the protocol
needs to remember about one connection, most importantly the identity the
upstream attested.

Invariants every codec keeps:

* ``decode`` never raises on any input: a frame it cannot map yields ``None``
  and the relay passes it through byte for byte.
* An event originating from the client carries the session's attested
  identity as its sender, never a sender named in the frame.
* ``render`` produces one frame the client's protocol understands natively.
* A codec that screens frames (size, depth, unsafe XML) says why a frame it
  returned ``None`` for is bad by setting ``bad`` in that same ``decode``
  call; the relay then counts it and refuses or passes it as configured.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass

from ..events import ChatEvent, EventKind, Frame, Identity, Notice, Side


class Unsure(enum.Enum):
    """``CodecSession.sniff`` cannot tell a frame's kind without decoding it."""

    UNSURE = "unsure"


UNSURE = Unsure.UNSURE

#: Control type of a text command a client sent to the service name (XMPP's
#: service JID): its text is the command, e.g. ``/send``; ``ControlStep``
#: dispatches it to the registered text commands.
SERVICE_COMMAND = "chatguard.command"


class MappingError(ValueError):
    """A codec mapping file is invalid; the message names file, key and reason."""


@dataclass(frozen=True, slots=True)
class BadFrame:
    """Why the frame just decoded is bad input, and whether to refuse it.

    ``reason`` is a short metric label (``too_large``, ``malformed``, ...);
    ``refuse`` False means it is passed on unchanged, but still counted.
    """

    reason: str
    refuse: bool
    detail: str = ""


class CodecSession(abc.ABC):
    """Per-connection codec state."""

    identity: Identity | None
    #: Set by ``decode`` (returning None) when that frame was bad input;
    #: reset by the next ``decode``. Codecs that never screen leave it None.
    bad: BadFrame | None = None

    @abc.abstractmethod
    def decode(self, frame: Frame, origin: Side) -> ChatEvent | None:
        """The chat event this frame means, or None to pass it through untouched."""

    def sniff(self, frame: Frame, origin: Side) -> EventKind | Unsure | None:
        """The kind ``decode`` would give this frame, judged cheaply; or ``UNSURE``.

        The relay decodes only frames whose kind the pipeline wants, so a
        sniff must never say "not wanted" for a frame that decodes to a wanted
        kind: when in doubt, answer ``UNSURE`` (the frame is then decoded).
        ``None`` means the frame decodes to no event at all.
        """
        return UNSURE

    @abc.abstractmethod
    def render(self, notice: Notice) -> Frame:
        """A frame carrying ``notice`` toward the client."""

    @abc.abstractmethod
    def rewrite_text(self, event: ChatEvent, text: str) -> Frame | None:
        """``event``'s frame with its text replaced (for redaction); None if impossible.

        Everything else in the frame stays as it was.
        """


class Codec(abc.ABC):
    """A compiled protocol mapping; ``open`` makes a session for one connection."""

    name: str

    @abc.abstractmethod
    def open(self, identity: Identity | None, *, use_welcome: bool = True) -> CodecSession:
        """A session for one connection.

        ``identity`` is set when a gateway header or JWT attested one; then it
        stands, otherwise (with ``use_welcome``) the upstream's welcome frame
        attests it.
        """
