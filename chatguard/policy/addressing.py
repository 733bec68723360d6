"""Who a room message is addressed to.

What it owns: narrowing a room message's recipients to the people it names.
In a room every member receives every message, so without this a stranger's
"zoe u were really good at the race, ur so mature" to one child counts
toward every member's pair, and in a large room (more than ``max_fanout``
recipients) a child the platform has not attested gets no pair of their
own at all. A room message that names some of its recipients (``@zoe_p``, or
the name part of their id as a word: "zoe", "liam" for ``liam22``) is taken
as addressed to them.

Invariants: pure; a message with one recipient, or that names none or all
of them, keeps its recipients; the result is always a non-empty subset of
the recipients, in their order. Names shorter than ``MIN_NAME`` letters, or
that are ordinary chat words, are never read as addressing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

MIN_NAME: Final = 3
_STEM: Final = re.compile(r"[^\W\d_]+")
_WORD: Final = re.compile(r"@?[^\W_]+(?:[._-][^\W_]+)*")
# Name parts that are also everyday words: reading them as addressing would
# narrow a message to the wrong person.
_COMMON: Final = frozenset(
    {
        "the", "and", "you", "your", "are", "not", "but", "all", "any", "can", "may", "will",
        "max", "art", "joy", "sky", "ray", "sun", "bee", "kid", "boy", "girl", "guy", "man",
        "lil", "big", "mrs", "miss", "user", "player", "gamer", "pro",
    }
)  # fmt: skip


def name_of(user: str) -> str | None:
    """The name part of an id, as people write it: ``zoe_p`` -> ``zoe``."""
    found = _STEM.match(user.lower())
    if found is None:
        return None
    stem = found.group(0)
    return stem if len(stem) >= MIN_NAME and stem not in _COMMON else None


def addressed(text: str, recipients: Sequence[str]) -> tuple[str, ...]:
    """The recipients ``text`` names, or all of them when it names none."""
    if len(recipients) < 2:
        return tuple(recipients)
    words = {w.lower() for w in _WORD.findall(text[:500])}
    if not words:
        return tuple(recipients)
    named = tuple(
        r
        for r in recipients
        if r.lower() in words or "@" + r.lower() in words or (name_of(r) or "\0") in words
    )
    return named if named and len(named) < len(recipients) else tuple(recipients)
