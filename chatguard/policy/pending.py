"""Questions waiting for a yes: "ur 12 right?" ... "yea".

What it owns: recognising a bare "yes" in six languages (``is_yes``) and the
bookkeeping of questions that a yes answers. A rule with ``yes_means:
<signal>`` (for instance an age guess, "ur 12 right?", meaning
``minor_self_declared``) leaves, for each named recipient of the message, a
*pending question* in the conversation state. When that recipient's next
messages (within ``answer_window`` messages of the conversation) include a
bare yes, the yes counts as if they had said it themselves: a match of the
rule's ``yes_means`` signal with the rule's weight. A child who confirms an
age guess with "yea" is then protected as a self-declared child.

A "same" works alike for an age someone gives of themselves: when a
message to one person declares the sender's age ("16, year 11 at st
aidans"), that person's "same lol, im at holloway" or "me too" within the
window declares the same of them (teenagers telling each other their ages
are then two teenagers, not an unknown person and a child). Only for a
message to one person: in a room, "same" answers whoever spoke last. A
same-question is kept under the recipient's key with ``SAME_PREFIX``,
which no participant key starts with.

An age question works alike for a bare number: when a message to one person
(or a room message that names one: ``addressing``; or a message to a room
of at most ``MAX_ROOM_ASKED`` people, asked of each of them) asks their age
or school year (a match of an ``age_probe`` rule), that person's next
message whose first clause is short and starts with a number ("13 a co",
"10.", "34. you?", "9 aber bald 10", "też 16. to może jutro...", or a
school year: "9te.", "8th lol", "year 8. why") declares them a minor (5 to
17) or an adult (18 to 99): a child who answers "how old r u" with "13" has
said it as plainly as "im 13". A number followed by a unit ("5 min", "2
km") is not an age. When the answer asks back ("34 et toi ?", "14 u?"), the
asker's own bare number answers in turn, so that two teenagers trading ages
are two teenagers. Age questions are kept under ``AGE_PREFIX`` and the
recipient's key.

Invariants: pure (state and text in, matches and a new pending map out); at
most ``MAX_PENDING`` questions are remembered per conversation (the oldest
are dropped first); a question is answered at most once, and expires when
the window has passed; only a whole message that is a yes counts ("yes but
im 19" does not); a "same" counts at the start of a short message (at most
``MAX_SAME_WORDS`` words), a number at the start of a first clause of at
most ``MAX_AGE_WORDS`` words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

from chatguard.policy.model import Match, Rule, Signal
from chatguard.policy.state import MAX_PENDING, ConversationState, participant_key

ANSWER_RULE: Final = "engine.yes_means"  # the rule id of a match made by a yes
SAME_RULE: Final = "engine.same_means"  # the rule id of a match made by a "same"
# Participant keys are user ids that never start with "#", or "#" and a hex
# digest (``participant_key``): "#=" starts neither.
SAME_PREFIX: Final = "#="
AGE_RULE: Final = "engine.age_answer"  # the rule id of a match made by a bare age
AGE_PREFIX: Final = "#?"  # likewise: no participant key starts with it
MAX_SAME_WORDS: Final = 8
MAX_AGE_WORDS: Final = 6
#: A room message's age question is asked of each recipient up to this many
#: (a bigger room's question is asked of nobody unless it names someone).
MAX_ROOM_ASKED: Final = 8
_DECLARATIONS: Final = frozenset({Signal.MINOR_SELF, Signal.ADULT_SELF})
_ENGINE_RULES: Final = (ANSWER_RULE, SAME_RULE)  # their declarations leave no same-question

# A pending question: (signal its answer means, last message index it may be
# answered at, weight, shadow); under the recipient's key for a yes, under
# ``SAME_PREFIX`` and the key for a "same".
Pending = tuple[str, int, float, bool]

# Bare affirmations, written squeezed as they are compared ("yesss" -> "yes",
# "stimmt" -> "stimt").
_YES: Final = frozenset(
    {
        # en
        "yes", "yea", "yeah", "ya", "yah", "ye", "yep", "yup", "yus", "yh", "mhm", "uhuh",
        "corect", "true", "right", "exactly", "ofc", "yas", "yeh", "sure", "👍",
        # es
        "si", "sip", "claro", "exacto", "corecto", "aja", "seh",
        # fr
        "oui", "ouais", "ouai", "ouep", "exact", "exactement", "carement", "voila",
        # de
        "ja", "jap", "jo", "jup", "genau", "richtig", "stimt", "jawohl",
        # pt
        "sim", "isso", "exato", "certo", "aham", "uhum",
        # pl
        "tak", "dokladnie", "zgadza",
    }
)  # fmt: skip
# Words that may follow a yes without changing it ("yea lol", "ja und du?").
_FILLER: Final = frozenset(
    {
        "lol", "haha", "hehe", "xd", "lmao", "why", "how", "u", "you", "and", "wbu", "hbu",
        "tho", "i", "am", "im", "did", "know", "that", "y", "sie", "por", "que", "pourquoi",
        "et", "toi", "und", "du", "warum", "e", "tu", "porque", "a", "ty", "czemu", "dlaczego",
        "jestem", "soy", "sou", "bin", "suis", "je", "yo", "eu", "ich", "k", "jaja", "mdr",
    }
)  # fmt: skip
# Laughs, squeezed: after an age, where the answer ends ("13 lol dont tell anyone").
_LAUGH: Final = frozenset(
    {"lol", "lmao", "lmfao", "haha", "hahaha", "hehe", "xd", "jaja", "jajaja", "jeje", "mdr",
     "ptdr", "k", "rs"}
)  # fmt: skip
_WORD: Final = re.compile(r"[^\W_]+|👍")
_REPEAT: Final = re.compile(r"(.)\1+")
_CLAUSE: Final = re.compile(r"[^.!?,;:\n]+")  # a message's first clause


def _squeezed(text: str, end: int = 1 << 62) -> list[str]:
    """The words of ``text`` (of its first ``end`` characters), lower-cased,
    each run of one character squeezed ("yesss" -> "yes", "stimmt" -> "stimt")."""
    return [_REPEAT.sub(r"\1", w) for w in _WORD.findall(text.lower(), 0, end)]


def _first_clause(folded: str) -> str:
    """The message up to its first stop or comma ("same age lol" of "same age lol. send...")."""
    clause = _CLAUSE.search(folded, 0, 200)
    return clause.group() if clause is not None else ""


def _answer_clause(folded: str) -> str:
    """The clause that answers an age question: the first, or the second when
    the first is only a yes ("oui, 15 depuis janvier", "yeah. 12")."""
    clauses = _CLAUSE.finditer(folded, 0, 200)
    first = next(clauses, None)
    if first is None:
        return ""
    words = _squeezed(first.group())
    if words and all(w in _YES for w in words):
        second = next(clauses, None)
        return second.group() if second is not None else ""
    return first.group()


# "Me too" at the start of a reply, written squeezed as compared ("sameee"
# -> "same", "too" -> "to", "aussi" -> "ausi").
_SAME = (
    ("same",), ("me", "to"), ("me", "2"), ("yo", "tambien"), ("yo", "igual"),
    ("igual",), ("moi", "ausi"), ("pareil",), ("ich", "auch"), ("eu", "tambem"), ("eu", "tb"),
    ("ja", "tez"), ("tez",),
)  # fmt: skip


# After a number, words that make it a quantity, not an age ("5 min", "2 km").
_UNITS = frozenset(
    {
        "s", "sec", "secs", "second", "seconds", "min", "mins", "minute", "minutes", "h", "hr",
        "hrs", "hour", "hours", "day", "days", "km", "m", "cm", "mi", "kg", "k", "x", "pm", "am",
        "euro", "euros", "dollars", "bucks", "pounds", "quid", "minuto", "minutos",
        "segundos", "horas", "dias", "pesos", "reais", "minuten", "sekunden", "stunden",
        "tage", "minut", "minuty", "godzin", "sekund", "dni", "zl", "heures", "jours",
    }
)  # fmt: skip
# A reply that ends asking back ("34. you?", "14 et toi ?", "13 a ty?").
_ASKED_BACK = frozenset(
    {
        "u", "you", "wbu", "hbu", "urs", "yours", "tu", "vos", "usted", "toi", "vous", "du",
        "sie", "vc", "voce", "ty", "wy", "pan", "pani",
    }
)  # fmt: skip
# A school year named before its number: "year 8. why", "grade 7", "klasa 6".
_SCHOOL_YEAR = frozenset({"year", "yr", "grade", "klasa", "klasse"})
# Words that may come before the number ("też 16", "same 16", "im 14", "j'ai 12").
_LEAD_IN = _SCHOOL_YEAR | frozenset(
    {
        "same", "too", "also", "me", "to", "im", "i", "am", "just", "turned", "tambien", "yo",
        "tengo", "igual", "moi", "aussi", "je", "j", "ai", "pareil", "ich", "auch", "bin",
        "eu", "tambem", "tenho", "tb", "ja", "tez", "mam", "jestem", "only", "like",
    }
)  # fmt: skip
# A number, or a school year written as an ordinal ("9te", "8th", "7mo",
# "9ª" folded to "9a", "5e"): the answer to "welche Klasse?" as much as to
# "how old are you?". A school year is read as if it were the age: from 5
# to 13 that says "a child" correctly (a pupil in the 13th year is 17 or
# 18, in school either way), and a lower one reads as no age at all, never
# as an adult's.
_DIGITS = re.compile(r"([0-9]{1,2})(?:te|ten|th|st|nd|rd|e|eme|o|a|mo|vo|no|ro|do|to|ta|ma|na|ra)?")
# After the number, words that end the answer and start another clause.
_BUT = frozenset(
    {"but", "and", "tho", "though", "pero", "mais", "aber", "und", "mas", "ale"}
)  # fmt: skip


def answered_age(folded: str, *, years_only: bool = False) -> int | None:
    """The age in years a reply's first clause (after a bare yes, its second)
    gives, or None: the clause has at most ``MAX_AGE_WORDS`` words and a number
    among its first three, after nothing but a yes and lead-ins ("13 a co", "10.", "si 15",
    "też 16. to może jutro...", "im 14 lol"), the clause ending early at a
    "but" after the number ("10 but im really responsible") or at a laugh
    right after it ("13 lol dont tell anyone they'll kick me"); a number
    followed by a unit is a quantity ("5 min"). With ``years_only``, a school
    year ("year 8", "9te", "8th") is no answer: it is not an age in years."""
    # Squeezed as everywhere here, but not a number's digits ("11" stays 11).
    words = [
        w if w.isdigit() else _REPEAT.sub(r"\1", w)
        for w in _WORD.findall(_answer_clause(folded).lower())
    ]
    at = next((i for i, w in enumerate(words[:3]) if _DIGITS.fullmatch(w)), None)
    # A yes may open the clause itself: "si 15, en 4o", "yeah 12".
    if at is None or not all(
        w in _LEAD_IN or (j == 0 and w in _YES) for j, w in enumerate(words[:at])
    ):
        return None
    # "10 but im really responsible": the answer ends where a "but" starts;
    # "13 lol dont tell anyone": a laugh right after the number ends it too.
    if at + 1 < len(words) and words[at + 1] in _LAUGH:
        words = words[: at + 2]
    words = words[: next((j for j in range(at + 1, len(words)) if words[j] in _BUT), None)]
    if len(words) > MAX_AGE_WORDS:
        return None
    if at + 1 < len(words) and words[at + 1] in _UNITS:
        return None
    digits = _DIGITS.fullmatch(words[at])
    assert digits is not None  # found by the same pattern above
    if years_only and (digits.group(0) != digits.group(1) or _SCHOOL_YEAR & set(words[:at])):
        return None
    return int(digits.group(1))


def age_of(folded: str) -> Signal | None:
    """The age ``answered_age`` reads, as a declaration: ``minor_self_declared``
    for 5 to 17, ``adult_self_declared`` for 18 to 99, None for anything else."""
    age = answered_age(folded)
    if age is None:
        return None
    if 5 <= age <= 17:
        return Signal.MINOR_SELF
    return Signal.ADULT_SELF if age >= 18 else None


def asks_back(folded: str) -> bool:
    """The reply ends by asking the same of the other person."""
    words = _WORD.findall(folded.lower(), 0, 200)
    return bool(words) and words[-1] in _ASKED_BACK


def is_same(folded: str) -> bool:
    """The message starts with "same" or "me too" and is short, or its first
    clause is ("same lol, im at holloway", "yo también jaja", "ich auch",
    "same age lol. send me a pic from the top")."""
    words = _squeezed(folded, 200)
    if len(words) > MAX_SAME_WORDS:
        words = _squeezed(_first_clause(folded))
    if not words or len(words) > MAX_SAME_WORDS:
        return False
    return any(tuple(words[: len(same)]) == same for same in _SAME)


def is_yes(folded: str) -> bool:
    """The whole message is a yes ("yea", "Sí!!", "ouais lol", "👍", "ja und du?"):
    a yes first, then at most four filler words, nothing else."""
    words = _squeezed(folded)
    if not words or len(words) > 5:
        return False
    head, rest = words[0], words[1:]
    return head in _YES and all(w in _FILLER or w in _YES for w in rest)


def answer(
    state: ConversationState, sender: str, index: int, folded: str
) -> tuple[Match | None, Mapping[str, Pending]]:
    """A message from ``sender`` at ``index``: the match its yes makes (or
    None) and the pending questions left afterwards (expired ones dropped)."""
    pending = state.pending
    if not pending:
        return None, pending
    kept = {k: p for k, p in pending.items() if p[1] >= index}
    key = participant_key(sender)
    for asked_key, rule_id, answers in (
        (key, ANSWER_RULE, is_yes),
        (SAME_PREFIX + key, SAME_RULE, is_same),
    ):
        asked = kept.get(asked_key)
        if asked is not None and answers(folded):
            del kept[asked_key]
            kept.pop(AGE_PREFIX + key, None)  # the same question, answered
            signal, _, weight, shadow = asked
            return Match(rule_id, Signal(signal), weight, (), shadow), kept
    asked = kept.get(AGE_PREFIX + key)
    if asked is not None:
        declared = age_of(folded)
        if declared is not None:
            del kept[AGE_PREFIX + key]
            _, _, weight, shadow = asked
            return Match(AGE_RULE, declared, weight, (), shadow), kept
    return None, kept if len(kept) != len(pending) else pending


def ask(
    pending: Mapping[str, Pending],
    matched: Iterable[tuple[Match, Rule]],
    recipients: Iterable[str],
    index: int,
    window: int,
    declared: Iterable[Match] = (),
    folded: str = "",
) -> Mapping[str, Pending]:
    """Leave a pending question for each recipient of a message whose
    matched rules have ``yes_means``; and, when the message goes to one
    person, a same-question for each of ``declared``, the matches (of rules
    or of the signal model) by which the sender declares their own age, and
    an age question when it asks their age (an ``age_probe`` match) or
    answers one and asks back (``folded``: the message, for that)."""
    if not matched and not declared:
        return pending  # most messages
    to = list(dict.fromkeys(recipients))
    questions: list[tuple[str, Pending]] = [
        (participant_key(user), (r.yes_means.value, index + window, r.weight, m.shadow))
        for m, r in matched
        if r.yes_means is not None
        for user in to
    ]
    probe = next((m for m, _ in matched if m.signal is Signal.AGE_PROBE), None)
    if len(to) == 1:
        them = participant_key(to[0])
        questions += [
            (SAME_PREFIX + them, (m.signal.value, index + window, m.weight, m.shadow))
            for m in declared
            if m.signal in _DECLARATIONS and m.rule_id not in _ENGINE_RULES
        ]
        if probe is None:  # an age answer that asks back ("14 u?") asks in turn
            answered = next((m for m in declared if m.rule_id == AGE_RULE), None)
            probe = answered if answered is not None and asks_back(folded) else None
    # An age question is asked of its one recipient; in a small room, one that
    # names nobody ("How old are you, if you don't mind me asking?" after
    # someone shows their work) is asked of each: whoever answers with a bare
    # number says their age.
    if probe is not None and len(to) <= MAX_ROOM_ASKED:
        question = (Signal.AGE_PROBE.value, index + window, probe.weight, probe.shadow)
        questions += [(AGE_PREFIX + participant_key(user), question) for user in to]
    if not questions:
        return pending
    out = dict(pending)
    for key, question in questions:
        out.pop(key, None)  # re-asked: the newest question counts, and is newest
        out[key] = question
    while len(out) > MAX_PENDING:
        del out[next(iter(out))]
    return out
