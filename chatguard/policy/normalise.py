"""Text normalisation: what a message says once its disguises are taken off.

``normalise(text)`` returns a ``Normalised``: the text rules match against,
a map from every normalised character back to what the user typed (so a
match can be highlighted or redacted in the original), and the set of
evasion techniques that were undone. Evasion is a signal, but a weak one on
its own: every technique below also turns up in ordinary chat.

Steps, in order; each is skipped unless a cheap check says it applies.
Plain ASCII chat that needs none of them is only lowercased, and plain text
in other scripts that needs none but case folding (one character for one)
is only case-folded and, for ``folded``, stripped of its diacritics; both
keep the identity map.

1. Only the first ``max_chars`` characters are read (``truncated``).
2. Lone surrogates become U+FFFD; C0/C1 controls other than tab and newline
   become a space.
3. Invisible characters (zero-width, bidi controls, soft hyphen, variation
   selectors, tags) are removed. ``invisible`` is recorded for one inside a
   word of Latin/Greek/Cyrillic letters or digits, for any bidi override, and
   for tag characters outside a flag. A joiner between emoji (👩‍👩‍👧) or
   inside Arabic or Indic text is ordinary.
4. Emoji in ``confusables.EMOJI_WORDS`` become ``emoji_<name>`` tokens: the
   ``emoji_word`` *feature*, not an evasion. Skin tones and keycaps are
   absorbed (1️⃣3️⃣ reads 13).
5. NFKC. ``compat`` is recorded when it turned a non-ASCII letter or digit
   into an ASCII one (fullwidth ｓｎａｐ, math 𝐬𝐧𝐚𝐩, circled ⓢ), except for
   superscripts and fractions, a few symbols (™, №) and fullwidth forms in
   CJK text.
6. Case folding ("ß" becomes "ss", "ς" becomes "σ").
7. Whitespace runs become one space; the ends are trimmed. Words spelled
   out with single spaces are joined (step 8) before a wider gap between
   them is squashed: the gap is where one word ends and the next begins
   ("c o m e  a l o n e" reads "come alone", not "comealone"). Once such a
   message has spelled one word that way, every spaced run between its gaps
   is a word, whatever step 8 says of short runs: two letters, chat
   one-letter words or digits ("o r  i t" reads "or it", "5 0" reads "50").
8. Split words: three or more single letters joined by one repeated
   separator ("s.n.a.p", "s n a p", "s_n_a_p", "s . n . a . p") are joined
   (``split``). Leet digits count as letters here ("s 3 x"), but at least two
   real letters are needed, and a space-split run made only of chat one-letter
   words ("u r a", "x x x") stays. A run never crosses a real word boundary:
   a space-split run does not take a letter that belongs to a word joined by
   another separator ("m.e a p.i.c" reads "me a pic", not "m.eap.i.c"). Two
   letters with a separator ("m.e") join only when the message also has a
   longer run with the same separator. A space-split run that spells
   several words of ``SPLIT_WORDS`` whole is read back into them, the fewest
   that do, beginning with a word of three letters (or "u", "i", "a") and ending
   with one ("s e n d m e a p i c" reads "send me a pic", not "sendmeapic";
   "n u m e r" stays "numer"), its leet characters spelling the letters they
   stand for ("a p 1 c" reads "a p1c", then "a pic"); each space read back
   maps to the space after its word's last letter. Known false positives:
   "I a m" -> "iam", "a.k.a" -> "aka", "i.e. s.n.a.p" -> "ie. snap".
9. Leetspeak (``leet``): 0 1 3 4 5 7 9 @ $ ! | read as o i e a s t g a s i l.
   A word is *clear* leet when a leet character sits between letters ("s3x",
   "p1cs", "n00dz") or it starts with ``$`` before a letter ("$ex"); its
   leading and trailing digits are then read too ("h3ll0"). Trailing digits of
   other words are read only when the message has clear leet ("s3nd m3" ->
   "send me"; alone, "m3" and "ps5" stay), and so are the leading ones of a
   word with leet at both edges of two or more letters ("0hn3" -> "ohne";
   "1st" and "4ever" keep theirs). Never read: words without a
   letter, words holding 2, 6 or 8 ("gr8", "h2o"), words with ``_`` (user
   names), links and e-mail addresses, ``@`` starting a word (a mention),
   ``!`` or ``|`` runs ("wow!!so"), ``4`` at the edge of a word without
   leet between its letters ("b4"; "s4m4" reads "sama"), and any
   reading without a vowel ("x7k9p"). So "13yo", "8th", "2pm", "$20" and
   "555-1234" keep their digits. Rules should accept ``[il]`` for 1 and |.
10. Look-alike letters: small capitals and IPA letters always fold to Latin.
    Cyrillic/Greek look-alikes fold inside a word that also has Latin letters
    (``mixed_script``), and in whole words when the message has no other
    Cyrillic/Greek letters and either has Latin letters or uses a look-alike
    no Slavic or Greek writer types (ѕ, һ, ԁ ...). Real Russian or Greek text
    is never rewritten. ``homoglyph`` is recorded when anything folded.
11. Runs of three or more identical letters squeeze to two ("sooooo" ->
    "soo", "pleeease" -> "pleease") outside links (``repeat``); "good",
    "cool" and "too" are untouched. Rules should allow doubled letters.

``folded`` is ``text`` without diacritics and generic combining marks (ę -> e,
ł -> l, æ -> ae, s̶ -> s), with its own offsets. Rule authors write words as
spelled ("zdjęcie"); the matcher folds them the same way and matches
``folded``.

Invariants: ``normalise`` never raises on a ``str`` (a negative ``max_chars``
is refused); it reads no clock, does no I/O and keeps no state; offsets index
``original`` inside the bounded prefix and never decrease; ``text`` has no
invisible or control characters and no double, leading or trailing spaces;
normalising ``text`` again gives ``text`` (for input within ``max_chars``).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Final

from chatguard.policy import confusables as t
from chatguard.policy.frozen import record_repr

DEFAULT_MAX_CHARS = 4096


class Evasion(enum.StrEnum):
    """Techniques that hide words from a matcher (see the module docstring)."""

    HOMOGLYPH = "homoglyph"
    INVISIBLE = "invisible"
    LEET = "leet"
    SPLIT = "split"
    REPEAT = "repeat"
    COMPAT = "compat"
    MIXED_SCRIPT = "mixed_script"


class Feature(enum.StrEnum):
    """Things worth knowing about a message that are not evasion."""

    EMOJI_WORD = "emoji_word"


Offsets = tuple[int, ...]


_NORMALISED_FIELDS: Final = (
    "original", "text", "folded", "evasions", "features", "truncated",
    "_starts", "_ends", "_folded_starts", "_folded_ends",
)  # fmt: skip
_SHOWN = 6  # repr leaves the offset tables out


class Normalised:
    """A normalised message.

    ``original`` is the input as given (even when ``truncated``); offsets
    index into it. The private offset fields are ``None`` for the identity
    map, the common case, so plain messages cost no offset tables.

    A record: its attributes are ``Final`` (never changed once built), and
    it compares, hashes and shows itself by them as a frozen dataclass
    would. A plain class, so that the compiled build makes it a native one
    (``native.py``, invariant 2).
    """

    __slots__ = _NORMALISED_FIELDS

    def __init__(
        self,
        original: str,
        text: str,
        folded: str,
        evasions: frozenset[Evasion] = frozenset(),
        features: frozenset[Feature] = frozenset(),
        truncated: bool = False,
        _starts: Offsets | None = None,
        _ends: Offsets | None = None,
        _folded_starts: Offsets | None = None,
        _folded_ends: Offsets | None = None,
    ) -> None:
        self.original: Final = original
        self.text: Final = text
        self.folded: Final = folded
        self.evasions: Final = evasions
        self.features: Final = features
        self.truncated: Final = truncated
        self._starts: Final = _starts
        self._ends: Final = _ends
        self._folded_starts: Final = _folded_starts
        self._folded_ends: Final = _folded_ends

    def _fields(self) -> tuple[object, ...]:
        return (
            self.original, self.text, self.folded, self.evasions, self.features,
            self.truncated, self._starts, self._ends, self._folded_starts, self._folded_ends,
        )  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Normalised):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return record_repr(self, _NORMALISED_FIELDS[:_SHOWN], self._fields()[:_SHOWN])

    @property
    def offsets(self) -> Offsets:
        """For each character of ``text``, the index in ``original`` it came from."""
        return self._starts if self._starts is not None else tuple(range(len(self.text)))

    @property
    def folded_offsets(self) -> Offsets:
        """As ``offsets``, for ``folded``."""
        fs = self._folded_starts
        return fs if fs is not None else tuple(range(len(self.folded)))

    def span_to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a half-open span of ``text`` to the half-open span of ``original``
        covering every character that contributed to it, including separators
        and invisible characters removed from inside it."""
        return _span(len(self.text), self._starts, self._ends, start, end)

    def folded_span_to_original(self, start: int, end: int) -> tuple[int, int]:
        """As ``span_to_original``, for a span of ``folded``."""
        return _span(len(self.folded), self._folded_starts, self._folded_ends, start, end)


def _span(
    n: int, starts: Offsets | None, ends: Offsets | None, start: int, end: int
) -> tuple[int, int]:
    if not 0 <= start <= end <= n:
        raise ValueError(f"span ({start}, {end}) is outside 0..{n}")
    if starts is None or ends is None:
        return start, end
    if start == end:
        pos = starts[start] if start < n else (ends[-1] if n else 0)
        return pos, pos
    return starts[start], ends[end - 1]


# --- Character classes built from the tables --------------------------------------


def _class(ranges: Iterable[tuple[int, int]], chars: Iterable[str] = ()) -> str:
    spans: list[list[int]] = []
    for a, b in sorted([*ranges, *((ord(c), ord(c)) for c in chars)]):
        if spans and a <= spans[-1][1] + 1:
            spans[-1][1] = max(b, spans[-1][1])
        else:
            spans.append([a, b])
    return "[" + "".join(f"\\U{a:08x}" + (f"-\\U{b:08x}" if b != a else "") for a, b in spans) + "]"


def _codepoints(ranges: t.Ranges) -> Iterable[str]:
    return (chr(c) for a, b in ranges for c in range(a, b + 1))


def _letters(ranges: t.Ranges) -> frozenset[str]:
    # Script blocks also hold marks and punctuation; only letters count.
    return frozenset(c for c in _codepoints(ranges) if c.isalpha())


_CONTROL, _INVISIBLE, _OVERRIDE, _TAG, _MODIFIER, _KEYCAP, _EMOJI = range(7)
_KINDS: Final[dict[str, int]] = {
    **dict.fromkeys(_codepoints(t.CONTROL_RANGES), _CONTROL),
    **dict.fromkeys(_codepoints(t.INVISIBLE_RANGES), _INVISIBLE),
    **dict.fromkeys(t.BIDI_OVERRIDES, _OVERRIDE),
    **dict.fromkeys(_codepoints(t.TAG_RANGES), _TAG),
    **dict.fromkeys(_codepoints(t.EMOJI_MODIFIER_RANGES), _MODIFIER),
    t.KEYCAP: _KEYCAP,
    **dict.fromkeys(t.EMOJI_WORDS, _EMOJI),
}
# Presence checks: a class of BMP characters compiles to a bitmap and scans
# fast; the few astral ones (emoji, tags) are looked up only when the message
# has an astral character at all.
_SPECIAL_BMP_RE: Final = re.compile(_class((), (c for c in _KINDS if c <= "\uffff")))
_SPECIAL_ASTRAL: Final = frozenset(c for c in _KINDS if c > "\uffff")
_ASTRAL_RE: Final = re.compile("[\U00010000-\U0010ffff]")
# Skipped when looking for the characters either side of an invisible one.
_HIDDEN: Final = frozenset((_INVISIBLE, _OVERRIDE, _TAG, _MODIFIER))
_TAG_CONTEXT: Final = frozenset((t.TAG_BASE, *_codepoints(t.TAG_RANGES)))
_EMOJI_RE: Final = re.compile(_class(t.EMOJI_RANGES))
_FULLWIDTH_RE: Final = re.compile(_class(t.FULLWIDTH_RANGES))
_CJK_RE: Final = re.compile(_class(t.CJK_RANGES))
_NON_ASCII_RE: Final = re.compile(r"[^\x00-\x7f]")
# Built with chr(): a compiled build cannot hold a lone surrogate in a literal.
_SURROGATE_RE: Final = re.compile(f"[{chr(0xD800)}-{chr(0xDFFF)}]")

_LATIN_LETTERS: Final = _letters(t.LATIN_LETTER_RANGES)
_CG_LETTERS: Final = _letters(t.CYRILLIC_GREEK_RANGES)
_LATIN_RE: Final = re.compile(_class((), _LATIN_LETTERS))
_CG_RE: Final = re.compile(_class((), _CG_LETTERS))
_LETTER: Final = _class((), _LATIN_LETTERS | _CG_LETTERS)
_WORD_CHAR_RE: Final = re.compile(f"{_LETTER}|[0-9]")
_WORD_RE: Final = re.compile(r"\w+")
_EMOJI_TOKEN_RE: Final = re.compile(r"emoji_[a-z0-9]+")
_LATIN_LOOKALIKE_RE: Final = re.compile(_class((), t.LATIN_LOOKALIKES))
_STRONG_RE: Final = re.compile(_class((), t.STRONG_LOOKALIKES))
_LATIN_LOOKALIKE_TABLE: Final = str.maketrans(t.LATIN_LOOKALIKES)
_LOWER_KEYS: Final = frozenset(t.LOOKALIKE_LOWER)
_LOWER_TABLE: Final = str.maketrans(t.LOOKALIKE_LOWER)
_MIXED_TABLE: Final = str.maketrans({**t.LOOKALIKE_LOWER, **t.LOOKALIKE_UPPER_ONLY})

_WS_RE: Final = re.compile(r"\s+")
_SPLIT_EL: Final = f"(?:{_LETTER}|[0134579@$])"
_SPLIT_SEPS: Final = "".join(re.escape(c) for c in t.SPLIT_SEPARATORS)
_SPLIT_RE: Final = re.compile(
    rf"(?<![\w@$]){_SPLIT_EL}(?P<sep> ?[{_SPLIT_SEPS}] ?| ){_SPLIT_EL}"
    rf"(?:(?P=sep){_SPLIT_EL})+(?![\w@$])"
)
# Two letters joined by a separator, standing alone: "m.e" in "m.e a p.i.c".
_SPLIT_PAIR_RE: Final = re.compile(
    rf"(?<![\w@$]|[{_SPLIT_SEPS}]){_SPLIT_EL}(?P<sep>[{_SPLIT_SEPS}]){_SPLIT_EL}"
    rf"(?![\w@$]|[{_SPLIT_SEPS}][\w@$])"
)
# What every split run holds: its second letter, with a separator or a
# space on each side. A plain class test, much cheaper than _SPLIT_RE's
# lookbehind and backreference, that most messages fail.
_SPLIT_GATE_RE: Final = re.compile(rf"[{_SPLIT_SEPS} ]{_SPLIT_EL}[{_SPLIT_SEPS} ]")
# Letters or digits spaced out between wider gaps (or an end, or a stop):
# "o r" and "5 0" in "s e n d  5 0  q u i d  o r  i t".
_GAPPED_EL: Final = f"(?:{_LETTER}|[0-9@$])"
_SPLIT_GAPPED_RE: Final = re.compile(
    rf"(?:^|(?<=  )){_GAPPED_EL}(?: {_GAPPED_EL})+(?=  |$|[,.!?;:])"
)
_SEP_SET: Final = frozenset(t.SPLIT_SEPARATORS)
_EL_RE: Final = re.compile(_SPLIT_EL)
_LEET_CHARS: Final = re.escape("".join(t.LEET))
_LEET_CHAR_RE: Final = re.compile(f"[{_LEET_CHARS}]")
_LEET_RUN_RE: Final = re.compile(f"[{_LEET_CHARS}]+")
_LEET_TABLE: Final = str.maketrans(t.LEET)
_LEET_GATE: Final = re.compile(rf"[^\W\d_][{_LEET_CHARS}]+[^\W\d_]|\$[^\W\d_]")
_LEET_WORD_RE: Final = re.compile(rf"[\w{_LEET_CHARS}]+")
_LEET_READABLE_RE: Final = re.compile(rf"(?=.*[^\W\d_])(?:[^\W\d_]|[{_LEET_CHARS}])+")
_PUNCT_RUN_RE: Final = re.compile(r"[!|]")
_VOWEL_RE: Final = re.compile(r"[aeiouy]|[^\x00-\x7f]")
_LINK_RE: Final = re.compile(r"://|^www\.|@\w[\w.-]*\.\w|\w\.(?:com|net|org|io|me|gg|ly|app)\b")
_TRIPLE_RE: Final = re.compile(r"(.)\1\1")
# The same tests restricted to lowercase ASCII, where they are twice as fast.
_ASCII_LEET_GATE: Final = re.compile(rf"[a-z][{_LEET_CHARS}]+[a-z]|\$[a-z]")
_ASCII_REPEAT_RE: Final = re.compile(r"([a-z])\1\1")
_REPEAT_RE: Final = re.compile(rf"({_LETTER})\1{{2,}}")


def _fold_table() -> dict[str, str]:
    fold = dict(t.FOLD_SPECIAL)
    for ch in _codepoints(t.FOLD_DECOMPOSABLE_RANGES):
        base = unicodedata.normalize("NFD", ch)
        if len(base) > 1 and base[0].isascii() and all(map(unicodedata.combining, base[1:])):
            fold.setdefault(ch, base[0])
    fold.update(dict.fromkeys(_codepoints(t.COMBINING_MARK_RANGES), ""))
    return fold


_FOLD: Final = _fold_table()
_FOLD_RE: Final = re.compile(_class((), _FOLD))
_FOLD_TABLE: Final = str.maketrans(_FOLD)
_FOLD_UNEVEN_RE: Final = re.compile(_class((), (k for k, v in _FOLD.items() if len(v) != 1)))


# --- The pipeline ------------------------------------------------------------------


def normalise(text: str, *, max_chars: int = DEFAULT_MAX_CHARS) -> Normalised:
    """Normalise one chat message (see the module docstring for the steps)."""
    if max_chars < 0:
        raise ValueError("max_chars must not be negative")
    truncated = len(text) > max_chars
    src = text[:max_chars] if truncated else text
    if src.isascii() and src.isprintable():
        # Plain ASCII chat: when no later step applies the map is the identity.
        # Each check is a cheap superset of the step it stands for.
        low = src.lower()
        if (
            "  " not in low
            and low[:1] != " "
            and low[-1:] != " "
            and not (_LEET_CHAR_RE.search(low) and _ASCII_LEET_GATE.search(low))
            and not (_TRIPLE_RE.search(low) and _ASCII_REPEAT_RE.search(low))
            and not (_SPLIT_GATE_RE.search(low) and _SPLIT_RE.search(low))
        ):
            return Normalised(text, low, low, truncated=truncated)
    elif src.isprintable():
        plain = _plain(src)
        if plain is not None:
            return Normalised(text, plain[0], plain[1], truncated=truncated)
    return _normalise_slow(text, src, truncated)


def _plain(s: str) -> tuple[str, str] | None:
    """``(text, folded)`` of printable text in any script that no step but
    case folding and diacritics changes, one character for one (most chat
    that is not English); None when some step may apply.

    Each check is the test ``_normalise_slow`` makes before that step (or a
    cheap superset of it), in the same order, so that both give the same
    text with the identity map. Printable text holds no control, invisible
    or white space character but the space, and no lone surrogate."""
    if _SPECIAL_BMP_RE.search(s) or (_ASTRAL_RE.search(s) and not _SPECIAL_ASTRAL.isdisjoint(s)):
        return None
    if not unicodedata.is_normalized("NFKC", s):
        return None  # _compat
    low = s.casefold()
    if len(low) != len(s) or not unicodedata.is_normalized("NFKC", low):
        return None  # _casefold changes offsets, or _recompose has work
    if "  " in low or low[:1] == " " or low[-1:] == " ":
        return None  # _squash_whitespace
    if _SPLIT_GATE_RE.search(low) and _SPLIT_RE.search(low):
        return None  # _join_split_words
    if _LEET_CHAR_RE.search(low) and _LEET_GATE.search(low):
        return None  # _read_leet
    evasions: set[Evasion] = set()
    if _fold_lookalikes(low, evasions) != low or evasions or _TRIPLE_RE.search(low):
        return None  # _fold_lookalikes, _squeeze
    if low.isascii() or not _FOLD_RE.search(low):
        return low, low
    if _FOLD_UNEVEN_RE.search(low):
        return None  # _fold_diacritics changes offsets
    return low, low.translate(_FOLD_TABLE)


_Map = tuple[str, list[int], list[int]]  # text, and for each character its start and end


def _normalise_slow(original: str, s: str, truncated: bool) -> Normalised:
    evasions: set[Evasion] = set()
    features: set[Feature] = set()
    if _SURROGATE_RE.search(s):
        s = _SURROGATE_RE.sub("\ufffd", s)
    st, en = list(range(len(s))), list(range(1, len(s) + 1))
    if _SPECIAL_BMP_RE.search(s) or (_ASTRAL_RE.search(s) and not _SPECIAL_ASTRAL.isdisjoint(s)):
        s, st, en = _strip_specials(s, st, en, evasions, features)
    s, st, en = _compat(s, st, en, evasions)
    s, st, en = _casefold(s, st, en)
    s, st, en = _recompose(s, st, en)
    if " ".join(s.split()) != s:
        # Words spelled out with one space, with a wider gap between them
        # ("c o m e  a l o n e"): join each before the gap is squashed.
        s, st, en = _join_split_words(s, st, en, evasions, wide=True)
        s, st, en = _squash_whitespace(s, st, en)
    s, st, en = _join_split_words(s, st, en, evasions)
    s = _read_leet(s, evasions)
    # Look-alikes fold after leet so that the Latin letters leet produces
    # count as Latin ("$α" reads "sα", a mixed word).
    s = _fold_lookalikes(s, evasions)
    s, st, en = _recompose(s, st, en)
    s, st, en = _squeeze(s, st, en, evasions)
    folded, fst, fen = _fold_diacritics(s, st, en)
    starts, ends = tuple(st), tuple(en)
    fstarts, fends = (starts, ends) if fst is st else (tuple(fst), tuple(fen))
    return Normalised(
        original,
        s,
        folded,
        frozenset(evasions),
        frozenset(features),
        truncated,
        _starts=starts,
        _ends=ends,
        _folded_starts=fstarts,
        _folded_ends=fends,
    )


_Edit = tuple[int, int, str, Sequence[tuple[int, int]]]


def _rebuild(s: str, st: list[int], en: list[int], edits: Sequence[_Edit]) -> _Map:
    """Apply sorted, disjoint edits ``(a, b, out, src)``: ``s[a:b]`` becomes
    ``out``, whose k-th character came from ``s[src[k][0]:src[k][1]]``."""
    parts: list[str] = []
    nst: list[int] = []
    nen: list[int] = []
    last = 0
    for a, b, out, src in edits:
        parts += (s[last:a], out)
        nst += st[last:a]
        nen += en[last:a]
        for i, j in src:
            nst.append(st[i])
            nen.append(en[j - 1])
        last = b
    parts.append(s[last:])
    nst += st[last:]
    nen += en[last:]
    return "".join(parts), nst, nen


def _strip_specials(
    s: str, st: list[int], en: list[int], evasions: set[Evasion], features: set[Feature]
) -> _Map:
    n = len(s)
    # Each edit is (a, b, out): every character of ``out`` covers all of s[a:b].
    # A removed character joins the edit of the character before it, so that
    # redacting that character also removes what was hidden after it.
    edits: list[tuple[int, int, str]] = []
    before = after = ""
    run_end = -1
    for i in [i for i, c in enumerate(s) if c in _KINDS]:
        kind = _KINDS[s[i]]
        if kind in _HIDDEN and i >= run_end:
            # The neighbours of a run of hidden characters are shared by all of
            # them; finding them once per run keeps this linear.
            run_end = i + 1
            while run_end < n and _KINDS.get(s[run_end]) in _HIDDEN:
                run_end += 1
            before = s[i - 1] if i else ""
            after = s[run_end] if run_end < n else ""
        if kind == _CONTROL:
            edits.append((i, i + 1, " "))
        elif kind == _EMOJI:
            edits.append((i, i + 1, f" {t.EMOJI_WORDS[s[i]]} "))
            features.add(Feature.EMOJI_WORD)
        elif kind == _MODIFIER and not _EMOJI_RE.match(before):
            continue  # a skin tone on its own is an emoji itself
        else:
            if (
                kind == _OVERRIDE
                or (kind == _TAG and (i == 0 or s[i - 1] not in _TAG_CONTEXT))
                or (kind == _INVISIBLE and _in_word(before, after))
            ):
                evasions.add(Evasion.INVISIBLE)
            if edits and edits[-1][1] == i:
                a, _, out = edits[-1]
                edits[-1] = (a, i + 1, out)
            elif i:
                edits.append((i - 1, i + 1, s[i - 1]))
            else:
                edits.append((0, 1, ""))
    return _rebuild(s, st, en, [(a, b, out, ((a, b),) * len(out)) for a, b, out in edits])


def _in_word(before: str, after: str) -> bool:
    return bool(before and after and _WORD_CHAR_RE.match(before) and _WORD_CHAR_RE.match(after))


def _nfkc_pieces(s: str, st: list[int], en: list[int], fine: bool) -> tuple[_Map, list[str]]:
    """NFKC piece by piece so each output character keeps its source. Fine
    pieces start at every combining class 0 character; coarse pieces at every
    ASCII character, which never composes with what precedes it."""
    parts: list[str] = []
    nst: list[int] = []
    nen: list[int] = []
    changed: list[str] = []
    a, n = 0, len(s)
    for b in range(1, n + 1):
        if b < n and (unicodedata.combining(s[b]) if fine else not s[b].isascii()):
            continue
        piece = s[a:b]
        out = piece if piece.isascii() else unicodedata.normalize("NFKC", piece)
        parts.append(out)
        if out == piece:
            nst += st[a:b]
            nen += en[a:b]
        else:
            nst += [st[a]] * len(out)
            nen += [en[b - 1]] * len(out)
            changed.append(piece)
        a = b
    return ("".join(parts), nst, nen), changed


def _compat(s: str, st: list[int], en: list[int], evasions: set[Evasion]) -> _Map:
    if s.isascii() or unicodedata.is_normalized("NFKC", s):
        return s, st, en
    mapped, changed = _nfkc_pieces(s, st, en, fine=True)
    if mapped[0] != unicodedata.normalize("NFKC", s):  # composed across pieces
        mapped, changed = _nfkc_pieces(s, st, en, fine=False)
    cjk = _CJK_RE.search(s) is not None
    if any(_is_evasive_compat(c, cjk) for piece in changed for c in piece):
        evasions.add(Evasion.COMPAT)
    return mapped


def _recompose(s: str, st: list[int], en: list[int]) -> _Map:
    """NFKC again where folding left a letter before a combining mark that NFKC
    composes (case folding "ΰ" gives "υ" and two marks), so that normalising
    the result changes nothing. Not an evasion."""
    if s.isascii() or unicodedata.is_normalized("NFKC", s):
        return s, st, en
    return _compat(s, st, en, set())


def _is_evasive_compat(c: str, cjk: bool) -> bool:
    if c.isascii() or c in t.BENIGN_COMPAT or unicodedata.category(c) == "No":
        return False
    n = unicodedata.normalize("NFKC", c)
    if n == c or not any(x.isascii() and x.isalnum() for x in n):
        return False
    return not (cjk and _FULLWIDTH_RE.match(c))


def _casefold(s: str, st: list[int], en: list[int]) -> _Map:
    folded = s.casefold()
    if len(folded) == len(s):  # every character folded to exactly one
        return folded, st, en
    edits: list[_Edit] = []
    for m in _NON_ASCII_RE.finditer(s):
        f = m.group().casefold()
        if len(f) != 1:
            i = m.start()
            edits.append((i, i + 1, f, ((i, i + 1),) * len(f)))
    _, st, en = _rebuild(s, st, en, edits)
    return folded, st, en


def _fold_lookalikes(s: str, evasions: set[Evasion]) -> str:
    if s.isascii():
        return s
    if _LATIN_LOOKALIKE_RE.search(s):
        evasions.add(Evasion.HOMOGLYPH)
        s = s.translate(_LATIN_LOOKALIKE_TABLE)
    if not _CG_RE.search(s):
        return s
    latin = _LATIN_RE.search(s) is not None and (
        _LATIN_RE.search(_EMOJI_TOKEN_RE.sub(" ", s)) is not None
    )
    if not latin and not _STRONG_RE.search(s):  # ordinary Cyrillic or Greek text
        return s
    whole_words = _CG_LETTERS.intersection(s) <= _LOWER_KEYS
    parts: list[str] = []
    last = 0
    for m in _WORD_RE.finditer(s):
        word = m.group()
        if not _CG_RE.search(word):
            continue
        if _LATIN_RE.search(word):
            evasions.add(Evasion.MIXED_SCRIPT)
            new = word.translate(_MIXED_TABLE)
        elif whole_words:
            new = word.translate(_LOWER_TABLE)
        else:
            continue
        if new != word:
            parts += (s[last : m.start()], new)
            last = m.end()
    if not parts:
        return s
    evasions.add(Evasion.HOMOGLYPH)
    parts.append(s[last:])
    return "".join(parts)


def _squash_whitespace(s: str, st: list[int], en: list[int]) -> _Map:
    if " ".join(s.split()) == s:
        return s, st, en
    edits: list[_Edit] = []
    for m in _WS_RE.finditer(s):
        a, b = m.span()
        if a == 0 or b == len(s):
            edits.append((a, b, "", ()))
        elif b - a > 1 or s[a] != " ":
            edits.append((a, b, " ", ((a, b),)))
    return _rebuild(s, st, en, edits)


def _join_split_words(
    s: str, st: list[int], en: list[int], evasions: set[Evasion], *, wide: bool = False
) -> _Map:
    """Join letters spread out with separators ("s.n.a.p", "s n a p") into words.

    A run never crosses a real word boundary: a run of single letters between
    spaces does not take a letter that belongs to a neighbouring word joined
    by another separator ("m.e a p.i.c" keeps "a" apart). Two dotted letters
    ("m.e") are common in ordinary text ("i.e", "u.s"), so they are joined
    only when the same message spells a longer word with the same separator.

    ``wide``: the text still has its wider gaps, which mark the words of a
    message spelled out letter by letter ("o r  i t  g o e s"); once the
    message has spelled a word with single spaces, every spaced run between
    gaps is joined as a word, two letters, common letters or digits alike
    (after the gaps are squashed, "o r i t" would read as one word).
    """
    if not _SPLIT_GATE_RE.search(s):
        return s, st, en
    edits: list[_Edit] = []
    seps: set[str] = set()
    pos = 0
    while (m := _SPLIT_RE.search(s, pos)) is not None:
        sep = m.group("sep")
        if sep == " " and (_glued(s, m.start() - 1, -1) or _glued(s, m.end(), 1)):
            pos = m.start() + 1  # a shorter run inside it may still stand alone
            continue
        pos = m.end()
        at = range(m.start(), m.end(), len(sep) + 1)
        letters = [s[k] for k in at]
        if sum(c.isalpha() for c in letters) < 2:
            continue
        if sep == " " and all(c in t.COMMON_SINGLE_LETTERS for c in letters):
            continue
        word = "".join(letters)
        # Several words spelled in one run are read back with a space between
        # them, each space standing for the space after the word's last letter.
        pieces = (_words_of(word) if sep == " " else None) or [word]
        out, src, i = [], [], 0
        for n, piece in enumerate(pieces):
            if n:
                out.append(" ")
                src.append((at[i - 1] + 1, at[i - 1] + 2))
            out.append(piece)
            src += [(k, k + 1) for k in at[i : i + len(piece)]]
            i += len(piece)
        edits.append((m.start(), m.end(), "".join(out), src))
        if sep != " ":
            seps.add(sep)
    if wide and any(" " in s[e[0] : e[1]] for e in edits):
        # The message spells words with single spaces: every spaced run
        # between its gaps is a word too, however short or common its letters
        # ("o r", "b r o", "5 0").
        clear = _Clear(edits)
        for m in _SPLIT_GAPPED_RE.finditer(s):
            a, b = m.span()
            if clear(a, b):
                at = range(a, b, 2)
                edits.append((a, b, "".join(s[k] for k in at), [(k, k + 1) for k in at]))
        edits.sort(key=lambda e: e[0])
    if seps:
        clear = _Clear(edits)
        for m in _SPLIT_PAIR_RE.finditer(s):
            a, b = m.span()
            if m.group("sep") in seps and clear(a, b):
                edits.append((a, b, s[a] + s[b - 1], [(a, a + 1), (b - 1, b)]))
        edits.sort(key=lambda e: e[0])
    if not edits:
        return s, st, en
    evasions.add(Evasion.SPLIT)
    return _rebuild(s, st, en, edits)


class _Clear:
    """Whether a span overlaps none of the edits made so far, asked for spans
    in text order: one sweep over the edits, not a scan of all of them for
    each span (a long message of many short runs would make that quadratic)."""

    def __init__(self, edits: Sequence[_Edit]) -> None:
        self._spans = sorted((e[0], e[1]) for e in edits)
        self._i = 0

    def __call__(self, a: int, b: int) -> bool:
        spans, i = self._spans, self._i
        while i < len(spans) and spans[i][1] <= a:
            i += 1
        self._i = i
        return i == len(spans) or b <= spans[i][0]


_MAX_PIECE: Final = max(map(len, t.SPLIT_WORDS))


def _words_of(word: str) -> list[str] | None:
    """``word`` as the fewest words of ``SPLIT_WORDS`` that spell it whole, when
    that is two or more and the reading begins and ends with a real word (see
    below); ``None`` otherwise, or when it is longer than
    ``MAX_SPLIT_SEGMENTED``. The same word always gives the same reading (ties
    go to the longer first word)."""
    n = len(word)
    # Leet letters spell as the letters they stand for ("a p 1 c" is "a" and
    # "p1c", which step 9 reads "pic"); the pieces keep the characters typed.
    key = word.translate(_LEET_TABLE) if _LEET_CHAR_RE.search(word) else word
    if n < 4 or n > t.MAX_SPLIT_SEGMENTED or key in t.SPLIT_WORDS:
        return None
    # fewest[i]: the fewest words that spell word[i:], and the first of them.
    fewest: list[tuple[int, int]] = [(0, 0)] * (n + 1)
    for i in range(n - 1, -1, -1):
        best = (n + 1, 0)
        for j in range(min(n, i + _MAX_PIECE), i, -1):
            if key[i:j] in t.SPLIT_WORDS and fewest[j][0] + 1 < best[0]:
                best = (fewest[j][0] + 1, j)
        fewest[i] = best
    if fewest[0][0] > n:
        return None
    pieces, i = [], 0
    while i < n:
        j = fewest[i][1]
        pieces.append(word[i:j])
        i = j
    # Short words fit almost anything ("n u m e r" is the Polish "numer", not
    # "nu me r"): a reading must begin with a word of three letters or "u",
    # "i" or "a", and end with a word of three letters or more.
    first, last = pieces[0].translate(_LEET_TABLE), pieces[-1]
    # (Two pieces at least: a word of SPLIT_WORDS itself returned above.)
    if len(last) < 3 or (len(first) < 3 and first not in ("u", "i", "a")):
        return None
    return pieces


def _glued(s: str, i: int, step: int) -> bool:
    """Whether ``s[i]`` is a separator that joins the letter next to it (on
    the side away from ``step``) to another letter: that letter is part of a
    word spelled with separators, not a single letter standing alone."""
    j = i + step
    return 0 <= i < len(s) and 0 <= j < len(s) and s[i] in _SEP_SET and bool(_EL_RE.match(s[j]))


def _in_link(s: str, a: int, b: int) -> bool:
    """Whether ``s[a:b]`` is part of a link or e-mail address, which must keep
    its digits and letter runs ("www", "b00k3r@mail.com")."""
    end = s.find(" ", b)
    token = s[s.rfind(" ", 0, a) + 1 : end if end >= 0 else len(s)]
    return ("." in token or ":" in token) and _LINK_RE.search(token) is not None


def _read_leet(s: str, evasions: set[Evasion]) -> str:
    if not (_LEET_CHAR_RE.search(s) and _LEET_GATE.search(s)):
        return s
    reads: list[tuple[int, int, str]] = []
    clear = False
    links = "." in s or ":" in s
    for m in _LEET_WORD_RE.finditer(s):
        w = m.group()
        # Words with "_" are user names and other identifiers, not leetspeak.
        if w.isalpha() or w.isdigit() or "_" in w or (links and _in_link(s, *m.span())):
            continue
        read = _leet_word(w)
        if read is not None:
            reads.append((*m.span(), read[0]))
            clear = clear or read[1]
    if not clear:
        return s
    evasions.add(Evasion.LEET)
    parts: list[str] = []
    last = 0
    for a, b, read_ in reads:
        parts += (s[last:a], read_)
        last = b
    parts.append(s[last:])
    return "".join(parts)


def _leet_word(w: str) -> tuple[str, bool] | None:
    """Read one run of letters and leet characters: (reading, clear), or None
    to leave it. A word is *clear* leet when it has leet between letters
    ("s3x") or starts with ``$`` before a letter ("$ex"); then its leading
    and trailing digits are read too ("h3ll0"). A word that is not clear reads
    only its trailing digits, and only if the message has clear leet
    elsewhere ("s3nd m3" -> "send me"; alone, "m3" or "ps5" stays)."""
    if not _LEET_READABLE_RE.fullmatch(w):
        return None  # no letter, or holds 2, 6, 8 ...: a number or a code
    n = len(w)
    out = list(w)
    clear = w[0] == "$" and w[1:2].isalpha()  # "$ex"; "$5" and "$20" are money
    lead = trail = None
    for m in _LEET_RUN_RE.finditer(w):
        a, b = m.span()
        if a == 0:
            lead = b
        elif b == n:
            trail = a
        elif b - a == 1 or not _PUNCT_RUN_RE.search(w, a, b):
            # "!" and "|" read as letters only alone ("d!ck"); "wow!!so" is punctuation
            out[a:b] = [t.LEET[c] for c in w[a:b]]
            clear = True
    # At a word's edge "4" is "for" ("b4", "4ever") unless the word itself is
    # clear leet ("s4m4" reads "sama").
    edge = t.LEET_AT_EDGE | {"4"} if clear else t.LEET_AT_EDGE
    # Leet at both edges of two or more letters ("0hn3") is no number ("1st",
    # "4ever") nor a score ("1v1"): its leading characters read too.
    # From the letters outwards; "@" (a mention) stops it.
    wrapped = lead is not None and trail is not None and trail - lead >= 2
    if lead is not None and (clear or wrapped):
        for k in range(lead - 1, -1, -1):
            if w[k] not in edge:
                break
            out[k] = t.LEET[w[k]]
    if trail is not None:
        for k in range(trail, n):
            if w[k] not in edge:
                break
            out[k] = t.LEET[w[k]]
    read = "".join(out)
    if read == w or not _VOWEL_RE.search(read):
        return None
    return read, clear


def _squeeze(s: str, st: list[int], en: list[int], evasions: set[Evasion]) -> _Map:
    if not _TRIPLE_RE.search(s):
        return s, st, en
    edits: list[_Edit] = []
    for m in _REPEAT_RE.finditer(s):
        a, b = m.span()
        if not _in_link(s, a, b):
            edits.append((a, b, m.group(1) * 2, ((a, a + 1), (a + 1, b))))
    if not edits:
        return s, st, en
    evasions.add(Evasion.REPEAT)
    return _rebuild(s, st, en, edits)


def _fold_diacritics(s: str, st: list[int], en: list[int]) -> _Map:
    if s.isascii() or not _FOLD_RE.search(s):
        return s, st, en
    if not _FOLD_UNEVEN_RE.search(s):  # one character for one: offsets are shared
        return s.translate(_FOLD_TABLE), st, en
    parts: list[str] = []
    nst: list[int] = []
    nen: list[int] = []
    group = 0
    for i, ch in enumerate(s):
        r = _FOLD.get(ch, ch)
        if r:
            group = len(nst)
            parts.append(r)
            nst += [st[i]] * len(r)
            nen += [en[i]] * len(r)
        else:  # a dropped mark belongs to the letter it decorated
            for k in range(group, len(nen)):
                nen[k] = en[i]
    return "".join(parts), nst, nen
