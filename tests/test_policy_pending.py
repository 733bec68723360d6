"""Questions a bare yes answers: recognising a yes, and what it does to a conversation."""

from __future__ import annotations

import pytest

from chatguard.policy.engine import Engine, MessageContext
from chatguard.policy.matcher import build_matcher
from chatguard.policy.model import Match, Policy, Rule, Signal, Threshold, Where
from chatguard.policy.normalise import normalise
from chatguard.policy.pending import (
    ANSWER_RULE,
    SAME_PREFIX,
    SAME_RULE,
    answer,
    ask,
    is_same,
    is_yes,
)
from chatguard.policy.rules import regex_pattern
from chatguard.policy.state import MAX_PENDING, Band, ConversationState

S = Signal


@pytest.mark.parametrize(
    "text",
    ["yea", "Yesss", "ya lol", "yeah why", "yea how did u know", "Sí!!", "ouais", "oui et toi",
     "ja und du?", "genau", "sim", "aham", "tak", "👍", "mhmm", "yep 👍"],
)  # fmt: skip
def test_a_bare_yes_in_six_languages(text: str) -> None:
    assert is_yes(normalise(text).folded)


@pytest.mark.parametrize(
    "text",
    ["", "no", "nah", "yes but im 19", "yeah i saw that video yesterday it was so good",
     "lol", "why", "ya no", "who told u that", "nie", "non"],
)  # fmt: skip
def test_anything_else_is_not_a_yes(text: str) -> None:
    assert not is_yes(normalise(text).folded)


GUESS = Rule(
    id="t.guess",
    description="guesses a child's age",
    signal=S.AGE_PROBE,
    languages=frozenset({"en"}),
    patterns=(regex_pattern(r"\bur 1[0-7] right\b"),),
    weight=1.0,
    yes_means=S.MINOR_SELF,
)
AGE = Rule(
    id="t.age",
    description="says their own age",
    signal=S.MINOR_SELF,
    languages=frozenset({"en"}),
    patterns=(regex_pattern(r"^1[0-7]\b|\bim 1[0-7]\b"),),
    weight=1.0,
)
LURE = Rule(
    id="t.lure",
    description="offers a gift",
    signal=S.GIFT_LURE,
    languages=frozenset({"en"}),
    patterns=(regex_pattern(r"\bfree robux\b"),),
    weight=2.0,
)


def engine(window: int = 4) -> Engine:
    policy = Policy(
        (GUESS, AGE, LURE),
        (Threshold(3.0, ()),),
        "t",
        settings={"risk": {"answer_window": window}},
    )
    return Engine(policy, build_matcher(policy.rules))


def run(script: list[tuple[str, str]], eng: Engine | None = None) -> ConversationState:
    eng = eng or engine()
    state: ConversationState | None = None
    for i, (sender, text) in enumerate(script):
        other = "kid" if sender == "x" else "x"
        msg = MessageContext(text, "c", sender, (other,), Where.DIRECT)
        _, state = eng.assess(msg, state, 1.7e9 + 30 * i)
    assert state is not None
    return state


def test_a_yes_to_an_age_guess_makes_a_likely_minor() -> None:
    state = run([("x", "hey ur 12 right?"), ("kid", "yea")])
    assert state.bands("kid") == (Band.UNKNOWN, Band.LIKELY_MINOR)
    assert state.pending == {}  # answered once


def test_the_yes_may_come_a_few_messages_later() -> None:
    state = run([("x", "ur 12 right?"), ("kid", "why"), ("x", "just asking"), ("kid", "ya lol")])
    assert state.bands("kid")[1] is Band.LIKELY_MINOR


def test_a_late_yes_or_someone_elses_yes_or_no_yes_counts_for_nothing() -> None:
    late = [("x", "ur 12 right?")] + [("kid", "hm"), ("x", "?")] * 3 + [("kid", "yes")]
    assert run(late).bands("kid")[1] is Band.UNKNOWN
    assert run(late).pending == {}  # expired
    assert run([("x", "ur 12 right?"), ("x", "yes")]).bands("kid")[1] is Band.UNKNOWN
    assert run([("x", "ur 12 right?"), ("kid", "no im 19")]).bands("kid")[1] is Band.UNKNOWN
    assert run([("kid", "yea")]).bands("kid")[1] is Band.UNKNOWN  # nothing was asked


def test_the_confirmed_age_raises_what_follows() -> None:
    """Unknown -> likely minor is x1.5 on the pair (docs/risk-model.md)."""
    eng = engine()
    before = run([("x", "ur 12 right?"), ("kid", "hmm"), ("x", "free robux")], eng)
    after = run([("x", "ur 12 right?"), ("kid", "yea"), ("x", "free robux")], eng)
    assert after.risk > before.risk * 1.4


def test_the_yes_is_a_match_with_the_asking_rules_signal_and_weight() -> None:
    eng = engine()
    state = run([("x", "ur 13 right?")], eng)
    msg = MessageContext("yep", "c", "kid", ("x",), Where.DIRECT)
    assessment, _ = eng.assess(msg, state, 1.7e9 + 60)
    assert [(m.rule_id, m.signal, m.weight) for m in assessment.matches] == [
        (ANSWER_RULE, S.MINOR_SELF, 1.0)
    ]


def test_pending_questions_are_bounded_and_survive_storage() -> None:
    state = run([("x", "ur 12 right?")])
    assert ConversationState.from_json(state.to_json()) == state
    pending = state.pending
    for i in range(3 * MAX_PENDING):
        pending = ask(pending, [], [f"p{i}"], i, 4)  # no asking rule: unchanged
    assert pending == state.pending
    m = Match("t.guess", S.AGE_PROBE, 1.0, ())
    for i in range(3 * MAX_PENDING):
        pending = ask(pending, [(m, GUESS)], [f"p{i}"], i, 4)
    assert len(pending) == MAX_PENDING
    assert f"p{3 * MAX_PENDING - 1}" in pending
    assert "p0" not in pending
    found, left = answer(ConversationState(pending=pending), "p0", 0, "yes")
    assert found is None
    assert left == pending


@pytest.mark.parametrize(
    "text",
    ["same", "same lol, im at holloway", "SAMEEE", "me too!", "me 2", "yo también jaja",
     "moi aussi", "pareil mdr", "ich auch", "eu tb kkk", "ja też"],
)  # fmt: skip
def test_a_same_in_six_languages(text: str) -> None:
    assert is_same(normalise(text).folded)


@pytest.mark.parametrize(
    "text",
    ["", "yea", "not the same", "same thing happened to my cousin when she was at the "
     "park with her friends last summer", "the same", "too"],
)  # fmt: skip
def test_anything_else_is_not_a_same(text: str) -> None:
    assert not is_same(normalise(text).folded)


def test_a_same_to_an_age_declares_the_same_age() -> None:
    """Two teenagers telling each other their ages are two minors."""
    state = run([("x", "how old r u"), ("kid", "16, year 11"), ("x", "same lol, im at holloway")])
    assert state.bands("x") == (Band.UNKNOWN, Band.LIKELY_MINOR)
    assert state.pending == {}  # answered once


def test_a_same_is_a_match_of_the_declared_signal() -> None:
    eng = engine()
    state = run([("kid", "im 13")], eng)
    assert SAME_PREFIX + "x" in state.pending
    msg = MessageContext("me too", "c", "x", ("kid",), Where.DIRECT)
    assessment, _ = eng.assess(msg, state, 1.7e9 + 60)
    assert [(m.rule_id, m.signal) for m in assessment.matches] == [(SAME_RULE, S.MINOR_SELF)]


def test_a_yes_to_an_age_or_a_same_to_a_guess_declares_nothing() -> None:
    assert run([("kid", "im 13"), ("x", "yea")]).bands("x")[1] is Band.UNKNOWN
    assert run([("x", "ur 12 right?"), ("kid", "same")]).bands("kid")[1] is Band.UNKNOWN
    late = [("kid", "im 13")] + [("x", "hm"), ("kid", "?")] * 3 + [("x", "same")]
    assert run(late).bands("x")[1] is Band.UNKNOWN


def test_a_same_answers_only_a_message_to_one_person() -> None:
    """In a room "same" answers whoever spoke last: no question is left."""
    m = Match("t.age", S.MINOR_SELF, 1.0, ())
    assert ask({}, [(m, AGE)], ["a", "b"], 0, 4, [m]) == {}
    one = ask({}, [(m, AGE)], ["a"], 0, 4, [m])
    assert one == {SAME_PREFIX + "a": ("minor_self_declared", 4, 1.0, False)}
    state = ConversationState(pending=one)
    assert ConversationState.from_json(state.to_json()) == state
