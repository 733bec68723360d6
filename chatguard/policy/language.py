"""Which language one message is written in, read from its function words.

Every rule runs on every message, whatever its language, and that is what
catches a groomer who switches language or writes "snap" in a Polish
sentence. For the two signals that *lower* risk, kinship ("mama", "opa")
and openness, it is a hazard: the Spanish address "mama" in a Polish
child's "mama mi sprawdza telefon" (mum checks my phone), the German "Opa"
in a Portuguese "opa! normalmente 350", the Portuguese "pais" that a fuzzy
pattern finds in English "pairs", each made a stranger look like family.
``Engine`` therefore reads kinship and openness only in the message's own
language, when that language is clear.

A pack's languages bring their own function words (``function_words:`` in
a rule file, ``policies/README.md``): the short words every sentence of a
language is made of ("nie", "się", "że"; "você", "pra", "não"), which say
little about the topic and much about the language. A message's language is
the one whose words it uses most, when it uses at least ``MIN_HITS`` of
them and more than of any other language's; otherwise it is unknown
(``None``), as for "ok mum" or "love u", and nothing is dropped.

Invariants: pure (no I/O, no global state); words are looked up in the
folded normalised text the rules match (``normalise``), so leetspeak and
look-alike letters are already undone; at most ``MAX_WORDS`` words of a
message are read; the same message and words always give the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping

import regex  # type: ignore[import-untyped, unused-ignore]

MIN_HITS = 2  # fewer function words than this say nothing about a language
MAX_WORDS = 64  # a message's language shows in its first words

_WORD = regex.compile(r"\w+")


class LanguageGuesser:
    """The language of a message, from the function words of each language."""

    __slots__ = ("_languages", "_of")

    def __init__(self, function_words: Mapping[str, frozenset[str]]) -> None:
        of: dict[str, tuple[str, ...]] = {}
        for language in sorted(function_words):
            for word in function_words[language]:
                of[word] = (*of.get(word, ()), language)
        self._of = of
        self._languages = frozenset(function_words)

    @property
    def languages(self) -> frozenset[str]:
        """The languages this guesser can name."""
        return self._languages

    def guess(self, folded: str) -> str | None:
        """The language of ``folded`` text, or ``None`` when it is not clear."""
        hits: dict[str, int] = {}
        for n, word in enumerate(_WORD.finditer(folded)):
            if n == MAX_WORDS:
                break
            for language in self._of.get(word.group(), ()):
                hits[language] = hits.get(language, 0) + 1
        if not hits:
            return None
        ranked = sorted(hits.items(), key=lambda kv: (-kv[1], kv[0]))
        best, count = ranked[0]
        if count < MIN_HITS or (len(ranked) > 1 and ranked[1][1] == count):
            return None
        return best


def base_language(code: str) -> str:
    """``pt`` for ``pt-br``: a rule for a regional variant is a rule of its language."""
    return code.split("-", 1)[0]
