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

Invariants: pure (state and text in, matches and a new pending map out); at
most ``MAX_PENDING`` questions are remembered per conversation (the oldest
are dropped first); a question is answered at most once, and expires when
the window has passed; only a whole message that is a yes counts ("yes but
im 19" does not); a "same" counts at the start of a short message (at most
``MAX_SAME_WORDS`` words).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from chatguard.policy.model import Match, Rule, Signal
from chatguard.policy.state import MAX_PENDING, ConversationState, participant_key

ANSWER_RULE = "engine.yes_means"  # the rule id of a match made by a yes
SAME_RULE = "engine.same_means"  # the rule id of a match made by a "same"
# Participant keys are user ids that never start with "#", or "#" and a hex
# digest (``participant_key``): "#=" starts neither.
SAME_PREFIX = "#="
MAX_SAME_WORDS = 8
_DECLARATIONS = frozenset({Signal.MINOR_SELF, Signal.ADULT_SELF})

# A pending question: (signal its answer means, last message index it may be
# answered at, weight, shadow); under the recipient's key for a yes, under
# ``SAME_PREFIX`` and the key for a "same".
Pending = tuple[str, int, float, bool]

# Bare affirmations, written squeezed as they are compared ("yesss" -> "yes",
# "stimmt" -> "stimt").
_YES = frozenset(
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
_FILLER = frozenset(
    {
        "lol", "haha", "hehe", "xd", "lmao", "why", "how", "u", "you", "and", "wbu", "hbu",
        "tho", "i", "am", "im", "did", "know", "y", "sie", "por", "que", "pourquoi", "et", "toi",
        "und", "du", "warum", "e", "tu", "porque", "a", "ty", "czemu", "dlaczego", "jestem",
        "soy", "sou", "bin", "suis", "je", "yo", "eu", "ich", "k", "jaja", "mdr",
    }
)  # fmt: skip
_WORD = re.compile(r"[^\W_]+|👍")
_REPEAT = re.compile(r"(.)\1+")


# "Me too" at the start of a reply, written squeezed as compared ("sameee"
# -> "same", "too" -> "to", "aussi" -> "ausi").
_SAME = (
    ("same",), ("me", "to"), ("me", "2"), ("yo", "tambien"), ("yo", "igual"),
    ("igual",), ("moi", "ausi"), ("pareil",), ("ich", "auch"), ("eu", "tambem"), ("eu", "tb"),
    ("ja", "tez"), ("tez",),
)  # fmt: skip


def is_same(folded: str) -> bool:
    """The message starts with "same" or "me too" and is short ("same lol,
    im at holloway", "yo también jaja", "ich auch")."""
    words = [_REPEAT.sub(r"\1", w) for w in _WORD.findall(folded.lower(), 0, 200)]
    if not words or len(words) > MAX_SAME_WORDS:
        return False
    return any(tuple(words[: len(same)]) == same for same in _SAME)


def is_yes(folded: str) -> bool:
    """The whole message is a yes ("yea", "Sí!!", "ouais lol", "👍", "ja und du?"):
    a yes first, then at most four filler words, nothing else."""
    words = [_REPEAT.sub(r"\1", w) for w in _WORD.findall(folded.lower())]
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
            signal, _, weight, shadow = asked
            return Match(rule_id, Signal(signal), weight, (), shadow), kept
    return None, kept if len(kept) != len(pending) else pending


def ask(
    pending: Mapping[str, Pending],
    matched: Iterable[tuple[Match, Rule]],
    recipients: Iterable[str],
    index: int,
    window: int,
    declared: Iterable[Match] = (),
) -> Mapping[str, Pending]:
    """Leave a pending question for each recipient of a message whose
    matched rules have ``yes_means``; and, when the message goes to one
    person, a same-question for each of ``declared``, the matches (of rules
    or of the signal model) by which the sender declares their own age."""
    if not matched and not declared:
        return pending  # most messages
    to = list(dict.fromkeys(recipients))
    questions: list[tuple[str, Pending]] = [
        (participant_key(user), (r.yes_means.value, index + window, r.weight, m.shadow))
        for m, r in matched
        if r.yes_means is not None
        for user in to
    ]
    if len(to) == 1:
        questions += [
            (
                SAME_PREFIX + participant_key(to[0]),
                (m.signal.value, index + window, m.weight, m.shadow),
            )
            for m in declared
            if m.signal in _DECLARATIONS and m.rule_id not in (ANSWER_RULE, SAME_RULE)
        ]
    if not questions:
        return pending
    out = dict(pending)
    for key, question in questions:
        out.pop(key, None)  # re-asked: the newest question counts, and is newest
        out[key] = question
    while len(out) > MAX_PENDING:
        del out[next(iter(out))]
    return out
