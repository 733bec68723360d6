"""Context windows: the recent messages of each conversation, for captures.

What it owns: a bounded per-conversation buffer of the last ``before``
messages (for the context a capture record carries) and the bounded set of
*follow-ups* — captures still waiting for the ``after`` messages that follow
them.

Invariants (all bounds have defaults in ``config.EvidenceConfig``):

* At most ``before`` + 1 entries per conversation (the newest, which a
  capture is about, and the ``before`` messages before it), ``conversations``
  conversations and ``max_bytes`` bytes of entries (frames and text) in all;
  the least recently active conversation is forgotten first.
* At most ``followups`` follow-ups wait at once; one more completes the
  oldest early (``complete`` False). A follow-up also completes, partially,
  once ``wait`` seconds passed (``expire``).
* One message seen on both sides (sent by a client of this instance, then
  delivered by the upstream, possibly to several sessions) is kept once: an
  upstream copy is merged into the entry with the same ``message_id``, or
  into the latest client entry of the same sender and text that has no
  upstream copy yet.
* Pure: no I/O and no clock; ``now`` is passed in. Entries are opaque
  mappings built by ``records.message_entry``; only their ``origin``,
  ``sender``, ``text`` and ``message_id`` fields are read here.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ContextBuffer", "FollowUp"]

Entry = Mapping[str, Any]
_MERGE_LOOKBACK = 8


@dataclass(slots=True)
class FollowUp:
    """A capture waiting for the messages after it."""

    capture_id: str
    conversation: str
    wanted: int
    deadline: float
    entries: list[Entry] = field(default_factory=list)
    complete: bool = False


class ContextBuffer:
    def __init__(
        self,
        *,
        before: int = 20,
        conversations: int = 10_000,
        followups: int = 1_000,
        max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.before = before
        self.max_conversations = conversations
        self.max_followups = followups
        self.max_bytes = max_bytes
        self.bytes = 0
        self._recent: OrderedDict[str, deque[dict[str, Any]]] = OrderedDict()
        self._waiting: OrderedDict[str, FollowUp] = OrderedDict()

    def __len__(self) -> int:
        return len(self._recent)

    def recent(self, conversation: str, n: int) -> list[Entry]:
        """The last ``n`` (at most ``before`` + 1) entries of a conversation, oldest first."""
        window = self._recent.get(conversation)
        if window is None or n <= 0:
            return []
        return [_public(e) for e in list(window)[-n:]]

    def add(self, conversation: str, entry: Entry) -> list[FollowUp]:
        """Keep ``entry``; the follow-ups it completes."""
        window = self._recent.get(conversation)
        if window is None:
            window = self._recent[conversation] = deque()
        else:
            self._recent.move_to_end(conversation)
        if entry.get("origin") == "upstream" and self._merge(window, entry):
            return []
        stored = dict(entry)
        stored["_upstream_seen"] = entry.get("origin") == "upstream"
        stored["_size"] = _size(entry)
        window.append(stored)
        self.bytes += stored["_size"]
        # ``before`` messages and the newest, which a capture is about.
        while len(window) > self.before + 1:
            self.bytes -= window.popleft()["_size"]
        while len(self._recent) > self.max_conversations or (
            self.bytes > self.max_bytes and len(self._recent) > 1
        ):
            _, dropped = self._recent.popitem(last=False)
            self.bytes -= sum(e["_size"] for e in dropped)
        done = []
        for key, follow in list(self._waiting.items()):
            if follow.conversation != conversation:
                continue
            follow.entries.append(_public(stored))
            if len(follow.entries) >= follow.wanted:
                follow.complete = True
                done.append(self._waiting.pop(key))
        return done

    def _merge(self, window: deque[dict[str, Any]], entry: Entry) -> bool:
        message_id = entry.get("message_id")
        candidates = list(window)[-_MERGE_LOOKBACK:]
        if message_id is not None:
            for kept in reversed(candidates):
                if kept.get("message_id") == message_id:
                    return True
        for kept in reversed(candidates):
            if (
                kept.get("origin") == "client"
                and not kept["_upstream_seen"]
                and kept.get("sender") == entry.get("sender")
                and kept.get("text") == entry.get("text")
            ):
                kept["_upstream_seen"] = True
                kept["message_id"] = message_id
                return True
        return False

    def follow(
        self, capture_id: str, conversation: str, wanted: int, deadline: float
    ) -> list[FollowUp]:
        """Collect the next ``wanted`` messages for a capture; follow-ups pushed out early."""
        if wanted <= 0:
            return []
        self._waiting[capture_id] = FollowUp(capture_id, conversation, wanted, deadline)
        pushed = []
        while len(self._waiting) > self.max_followups:
            pushed.append(self._waiting.popitem(last=False)[1])
        return pushed

    def expire(self, now: float) -> list[FollowUp]:
        """Follow-ups whose wait is over, with what they collected."""
        done = [f for f in self._waiting.values() if f.deadline <= now]
        for follow in done:
            del self._waiting[follow.capture_id]
        return done

    def drain(self) -> list[FollowUp]:
        """Every waiting follow-up, as it stands (on stop)."""
        done = list(self._waiting.values())
        self._waiting.clear()
        return done


def _size(entry: Entry) -> int:
    return sum(len(v) for v in entry.values() if isinstance(v, str)) + 256


def _public(entry: Entry) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if not k.startswith("_")}
