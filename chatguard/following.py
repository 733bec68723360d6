"""Notices that must follow the message they are about.

A banner for the recipient of a message ("this person is asking you to move
apps") is decided in the sender's session, and reaches the recipient's
session through the store, beside the message itself, which travels through
the chat service. Either could arrive first; a warning about a message the
recipient has not seen yet makes no sense. So each session keeps:

* the messages it has just passed to its client (a short, bounded memory of
  ``(conversation, sender, digest of the text)``), and
* notices waiting for such a message.

A notice whose message was already seen goes out at once; otherwise it
waits until the message passes (and then goes out right after it), or until
its deadline — then it goes out anyway, because a late warning is better
than a lost one.

It also keeps the last ``RECENT_LIMIT`` messages the client saw (each cut to
``RECENT_CHARS``), the context sent with a report.

Invariants: pure (time is passed in); at most ``limit`` notices wait and
``limit`` messages are remembered per session, the oldest giving way (a
waiting notice that gives way is sent, not dropped).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from .events import Notice

DEFAULT_LIMIT = 32
#: Messages a session remembers for the context of a report, and how much of
#: each: at most about 50 kB of text per session.
RECENT_LIMIT = 50
RECENT_CHARS = 1000
Key = tuple[str, str, str]


def digest(text: str | None) -> str:
    """A short fingerprint of a message text, the same on every replica."""
    return hashlib.sha256(" ".join((text or "").split()).encode()).hexdigest()[:16]


def message_key(conversation: str | None, sender: str | None, text: str | None) -> Key:
    return (conversation or "", sender or "", digest(text))


@dataclass(frozen=True, slots=True)
class Waiting:
    key: Key
    notice: Notice
    deadline: float


class Following:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._seen: OrderedDict[Key, float] = OrderedDict()
        self._waiting: deque[Waiting] = deque()

    def __len__(self) -> int:
        return len(self._waiting)

    def park(self, key: Key, notice: Notice, now: float, wait: float) -> list[Notice]:
        """Notices to send now: this one if its message passed already, and any
        that had to give way to it."""
        self._forget(now, wait)
        if key in self._seen:
            return [notice]
        out = []
        if len(self._waiting) >= self.limit:
            out.append(self._waiting.popleft().notice)
        self._waiting.append(Waiting(key, notice, now + wait))
        return out

    def passed(self, key: Key, now: float, wait: float) -> list[Notice]:
        """A message went to the client: remember it, and release what waited for it."""
        self._forget(now, wait)
        self._seen[key] = now
        self._seen.move_to_end(key)
        while len(self._seen) > self.limit:
            self._seen.popitem(last=False)
        released = [w.notice for w in self._waiting if w.key == key]
        if released:
            self._waiting = deque(w for w in self._waiting if w.key != key)
        return released

    def due(self, now: float) -> list[Notice]:
        """Notices whose message never came in time: send them anyway."""
        due = [w.notice for w in self._waiting if w.deadline <= now]
        if due:
            self._waiting = deque(w for w in self._waiting if w.deadline > now)
        return due

    def _forget(self, now: float, wait: float) -> None:
        while self._seen and next(iter(self._seen.values())) < now - wait:
            self._seen.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Seen:
    """One message a session's client saw or sent."""

    at: float
    conversation: str
    sender: str
    text: str


@dataclass(slots=True)
class SessionSeen:
    """What one session's client saw: for ordering notices and for reports."""

    following: Following = field(default_factory=Following)
    recent: deque[Seen] = field(default_factory=lambda: deque(maxlen=RECENT_LIMIT))

    def saw(self, at: float, conversation: str, sender: str, text: str) -> None:
        self.recent.append(Seen(at, conversation, sender, text[:RECENT_CHARS]))

    def context(self, conversation: str, limit: int) -> list[Seen]:
        """The last ``limit`` messages of one conversation, oldest first."""
        picked = [m for m in reversed(self.recent) if m.conversation == conversation][:limit]
        return picked[::-1]
