"""Quotations in a chat message: what is quoted, and the message without it.

What it owns: finding closed quotations ("...", “...”, „...“, «...») and
blanking them out, so that the engine can tell a rule that matches someone's
own words from one that matches only words they quote (a training room, a
news story, a lesson). Single quotes are left out: they are apostrophes too.

Invariants: pure; regions never nest or overlap; an unclosed mark quotes
nothing; a message that is nothing but quotations has no framing text and
is the sender's own words (``without_quotations`` returns ``None``).
"""

from __future__ import annotations

# Opening quotation mark -> its closing mark. Straight and typographic
# double quotes, guillemets (fr, de, pl, es, pt) and the low-high quotes of
# German and Polish. Single quotes are left out: they are apostrophes too.
_QUOTES = {'"': '"', "“": "”", "„": "”", "«": "»", "»": "«"}


def quoted_regions(text: str) -> list[tuple[int, int]]:
    """The (start, end) of every closed quotation in ``text``, marks excluded.

    Invariant: regions never nest or overlap; an unclosed mark quotes nothing.
    """
    out: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        close = _QUOTES.get(text[i])
        if close is None:
            i += 1
            continue
        j = text.find(close, i + 1)
        if close == "”" and j < 0:
            j = text.find("“", i + 1)  # „…“ (German, Polish)
        if j < 0:
            i += 1
            continue
        out.append((i + 1, j))
        i = j + 1
    return out


def without_quotations(text: str) -> str | None:
    """``text`` with every quotation blanked out, or ``None`` when it has no
    quotation or nothing but quotations (a whole message in quotation marks
    is the sender's own words)."""
    if not any(c in text for c in _QUOTES):
        return None
    regions = quoted_regions(text)
    if not regions:
        return None
    parts, last = [], 0
    for a, b in regions:
        parts.append(text[last : a - 1])
        last = b + 1
    parts.append(text[last:])
    outside = " . ".join(parts)
    return outside if any(ch.isalnum() for ch in outside) else None
