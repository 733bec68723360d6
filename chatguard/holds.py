"""Held messages: the interactive speed bump ("are you sure?").

When a hold action fires, the sender's frame is kept here instead of being
forwarded; the sender is asked to confirm. Their answer — a
``chatguard.confirm`` control frame or the plain-text ``/send`` / ``/cancel``
for clients that only speak chat — releases or discards it. A hold that gets
no answer in time gets the configured default outcome.

Invariants:

* A hold belongs to one session: only that session's client can release it
  (ids are per session and unguessable in practice, and looked up only in
  that session's book).
* At most ``limit`` holds wait per session; holding one more first settles
  the oldest with the default outcome, so memory stays bounded.
* Pure: time is passed in; the relay's sweeper calls ``expired``.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass

from .events import ChatEvent, Frame

DEFAULT_LIMIT = 8
DEFAULT_TIMEOUT = 120.0
CHOICES = ("send", "cancel")


@dataclass(frozen=True, slots=True)
class Held:
    id: str
    frame: Frame
    event: ChatEvent
    banner_id: str
    expires: float


class HoldBook:
    """The holds waiting in one session."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._held: OrderedDict[str, Held] = OrderedDict()

    def __len__(self) -> int:
        return len(self._held)

    def hold(
        self, frame: Frame, event: ChatEvent, banner_id: str, now: float, timeout: float
    ) -> tuple[Held, Held | None]:
        """Hold a frame; returns it and, if the book was full, the oldest one evicted."""
        evicted = None
        if len(self._held) >= self.limit:
            _, evicted = self._held.popitem(last=False)
        held = Held(f"h-{secrets.token_hex(6)}", frame, event, banner_id, now + timeout)
        self._held[held.id] = held
        return held, evicted

    def release(self, hold_id: str) -> Held | None:
        """Take a hold out of the book (to send or to drop it)."""
        return self._held.pop(hold_id, None)

    def latest(self) -> Held | None:
        """The most recent hold: what ``/send`` and ``/cancel`` answer."""
        return next(reversed(self._held.values()), None)

    def expired(self, now: float) -> list[Held]:
        """Take out every hold whose time is up."""
        due = [h for h in self._held.values() if h.expires <= now]
        for held in due:
            del self._held[held.id]
        return due
