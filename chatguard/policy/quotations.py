"""Quotations in a chat message: what is quoted, and the message without it.

What it owns: finding closed quotations ("...", “...”, „...“, «...»,
'...', ‘...’) and blanking them out, so that the engine can tell a rule that
matches someone's own words from one that matches only words they quote (a
training room, a news story, a lesson).

Single quotes are apostrophes too ("don't", "kids' games"), so a single
quote opens a quotation only at the start of the text or after a space, a
colon or an opening bracket, before a non-space; and closes it only after a
non-space, before the end, a space or punctuation. "Example 1: 'you're so
mature for your age'" quotes; "don't tell 'em" does not.

Invariants: pure; regions never nest or overlap; an unclosed mark quotes
nothing; a message that is nothing but quotations has no framing text and
is the sender's own words (``without_quotations`` returns ``None``), unless
it is a list of two or more quotations (« ... » / « ... »: examples in a
lesson), a passage of ``MIN_SENTENCES`` sentences or more (a sample message
read out whole), or one quotation that quotes in turn (a forwarded warning: what is
inside is read the same way, at most ``MAX_DEPTH`` levels deep); a
quotation of fewer than ``MIN_WORDS`` words is the sender's own words too
(emphasis: 'send me a "pic"').
"""

from __future__ import annotations

import re
from typing import Final

# Opening quotation mark -> its closing mark. Straight and typographic
# double quotes, guillemets (fr, de, pl, es, pt) and the low-high quotes of
# German and Polish. Single quotes have rules of their own (``_SINGLE``).
_QUOTES: Final = {'"': '"', "“": "”", "„": "”", "«": "»", "»": "«"}
_SINGLE: Final = frozenset("'‘’")
MIN_WORDS: Final = 3  # a shorter quotation is emphasis, not quoting
MIN_SENTENCES: Final = 3  # a whole-message quotation of this many sentences...
MIN_PASSAGE_WORDS: Final = 8  # ...and words is a passage quoted, not the sender's own words
MAX_DEPTH: Final = 3  # a whole-message quotation is looked into this many levels deep
# Words that start with an apostrophe ('em, 'cause, 'til): not an opening quote.
_ELISION: Final = re.compile(
    r"(?:em|cause|cos|coz|til|till|round|bout|n|tis|twas|ello|ere|ow)\b", re.IGNORECASE
)
_OPEN_AFTER: Final = frozenset(" \t\n:([—–-")
_MARKS: Final = frozenset(_QUOTES) | _SINGLE
# The scans below go from one mark to the next: every other character is
# passed over, and most messages hold no mark or only an apostrophe or two.
_SENTENCE_END: Final = re.compile(r"[.!?]+(?=\s+\S)")
_MARK_RE: Final = re.compile("[" + "".join(sorted(_MARKS)) + "]")
_SINGLE_RE: Final = re.compile("[" + "".join(sorted(_SINGLE)) + "]")


def _single_close(text: str, start: int) -> int:
    """The index of the single quote closing one opened before ``start``, or -1."""
    n = len(text)
    for found in _SINGLE_RE.finditer(text, start):
        j = found.start()
        if not text[j - 1].isspace() and (j + 1 == n or not text[j + 1].isalnum()):
            return j
    return -1


def quoted_regions(text: str) -> list[tuple[int, int]]:
    """The (start, end) of every closed quotation in ``text``, marks excluded.

    Invariant: regions never nest or overlap; an unclosed mark quotes nothing.
    """
    out: list[tuple[int, int]] = []
    n = len(text)
    mark = _MARK_RE.search(text)
    while mark is not None:
        i = mark.start()
        after = i + 1  # where the next mark is looked for
        close = _QUOTES.get(text[i])
        if close is None:  # a single quote
            if (
                (i == 0 or text[i - 1] in _OPEN_AFTER)
                and i + 1 < n
                and not text[i + 1].isspace()
                and not _ELISION.match(text, i + 1)
            ):
                j = _single_close(text, i + 2)
                if j >= 0:
                    out.append((i + 1, j))
                    after = j + 1
        else:
            j = text.find(close, i + 1)
            if close == "”" and j < 0:
                j = text.find("“", i + 1)  # „…“ (German, Polish)
            if j >= 0:
                out.append((i + 1, j))
                after = j + 1
        mark = _MARK_RE.search(text, after)
    return out


def without_quotations(text: str) -> str | None:
    """``text`` with every quotation blanked out, or ``None`` when it has no
    quotation or nothing but quotations (a whole message in quotation marks
    is the sender's own words, unless it quotes in turn: a forwarded warning,
    "“Alert: adults write 'send me a photo' ...”", quotes what it warns of)."""
    outer = ""
    for _ in range(MAX_DEPTH):
        inner = _without(text)
        if not isinstance(inner, tuple):
            return None if inner is None else outer + inner
        a, b = inner
        outer += text[:a]
        text = text[a:b]
    return None


def _without(text: str) -> str | tuple[int, int] | None:
    """``text`` without its quotations; None when it has none; the one
    region when a single quotation is the whole message."""
    if _MARK_RE.search(text) is None:
        return None
    # A word or two in quotation marks ('send me a "pic"') is emphasis or
    # irony, not someone else's words: only a quoted phrase counts.
    regions = [(a, b) for a, b in quoted_regions(text) if len(text[a:b].split()) >= MIN_WORDS]
    if not regions:
        return None
    parts, last = [], 0
    for a, b in regions:
        parts.append(text[last : a - 1])
        last = b + 1
    parts.append(text[last:])
    outside = " . ".join(parts)
    # One quotation that is the whole message is how some people write their
    # own words; several quoted phrases side by side are examples being shown,
    # and so is a quoted passage of several sentences (a sample message read
    # out in a lesson): nobody wraps their own three sentences in quotes.
    if len(regions) > 1 or any(ch.isalnum() for ch in outside):
        return outside
    a, b = regions[0]
    if (
        len(_SENTENCE_END.findall(text, a, b)) + 1 >= MIN_SENTENCES
        and len(text[a:b].split()) >= MIN_PASSAGE_WORDS
    ):
        return outside
    return regions[0]
