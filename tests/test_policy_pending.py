"""Questions a bare yes answers: recognising a yes, and what it does to a conversation."""

from __future__ import annotations

import pytest

from chatguard.policy.engine import Engine, MessageContext
from chatguard.policy.matcher import build_matcher
from chatguard.policy.model import Match, Policy, Rule, Signal, Threshold, Where
from chatguard.policy.normalise import normalise
from chatguard.policy.pending import (
    AGE_PREFIX,
    AGE_RULE,
    ANSWER_RULE,
    MAX_ROOM_ASKED,
    SAME_PREFIX,
    SAME_RULE,
    age_of,
    answer,
    ask,
    asks_back,
    is_same,
    is_yes,
)
from chatguard.policy.rules import regex_pattern
from chatguard.policy.state import MAX_PENDING, Band, ConversationState

S = Signal


@pytest.mark.parametrize(
    "text",
    ["yea", "Yesss", "ya lol", "yeah why", "yea how did u know",
     "ye how u know that", "Sí!!", "ouais", "oui et toi",
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
HOW_OLD = Rule(
    id="t.how_old",
    description="asks someone's age",
    signal=S.AGE_PROBE,
    languages=frozenset({"en"}),
    patterns=(regex_pattern(r"\bhow old\b|\bile masz lat\b"),),
    weight=0.5,
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
        (GUESS, AGE, HOW_OLD, LURE),
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


@pytest.mark.parametrize(
    ("text", "signal"),
    [("13 a co", S.MINOR_SELF), ("10.", S.MINOR_SELF), ("9 aber bald 10", S.MINOR_SELF),
     ("12!! sério??", S.MINOR_SELF), ("14 in june. y", S.MINOR_SELF),
     ("też 16. to może jutro na długiej przerwie rewanż?", S.MINOR_SELF),
     ("15, é meu primeiro emprego de férias, minha tia é dona", S.MINOR_SELF),
     ("im 14 lol", S.MINOR_SELF), ("34. you?", S.ADULT_SELF), ("31 e vc?", S.ADULT_SELF),
     ("10 but im really responsible i feed him every day", S.MINOR_SELF),
     ("11 aber ich bin schon total groß und vernünftig", S.MINOR_SELF),
     ("9te. ich weiß ich hab in der app 18 angegeben sorry", S.MINOR_SELF),
     ("8th lol", S.MINOR_SELF), ("7mo, y tú?", S.MINOR_SELF), ("9ª série", S.MINOR_SELF),
     ("oui, 15 depuis janvier", S.MINOR_SELF), ("yeah. 34", S.ADULT_SELF),
     ("year 8. why", S.MINOR_SELF), ("grade 7 lol", S.MINOR_SELF),
     ("si 15, en 4o", S.MINOR_SELF), ("yeah 12", S.MINOR_SELF),
     ("13 lol dont tell anyone they'll kick me from ranked", S.MINOR_SELF),
     ("12 jaja no le digas a nadie que me echan del server", S.MINOR_SELF)],
)  # fmt: skip
def test_a_reply_that_starts_with_an_age(text: str, signal: Signal) -> None:
    assert age_of(normalise(text).folded) is signal


@pytest.mark.parametrize(
    "text",
    ["", "lol 13", "why do u ask", "5 min", "2 km away", "10 mins and im there", "100",
     "3", "idk like 13 or 14 people came to the party yesterday", "the 13th",
     "12 people came to the party last night but only 3 stayed", "5km", "10min lol", "3rd",
     "yes", "oui, on se voit à 15h", "yeah, 5 min", "year 2 of uni lol", "yes 5 min",
     "lol yes 13", "13 people lol that was way too many for one car"],
)  # fmt: skip
def test_anything_else_gives_no_age(text: str) -> None:
    assert age_of(normalise(text).folded) is None


def test_a_bare_number_answers_an_age_question() -> None:
    # (The test pack's own rule reads 10 to 17 at the start: these are below.)
    state = run([("x", "how old r u"), ("kid", "9 a co")])
    assert state.bands("kid") == (Band.UNKNOWN, Band.LIKELY_MINOR)
    assert AGE_PREFIX + "kid" not in state.pending  # answered once
    adult = run([("kid", "how old r u"), ("x", "34")])
    assert adult.bands("x") == (Band.UNKNOWN, Band.LIKELY_ADULT)


def test_a_number_answers_only_the_asked_person_within_the_window() -> None:
    assert run([("x", "how old r u"), ("x", "9")]).bands("kid")[1] is Band.UNKNOWN
    assert run([("kid", "9")]).bands("kid")[1] is Band.UNKNOWN  # nothing was asked
    late = [("x", "how old r u")] + [("kid", "hm"), ("x", "?")] * 3 + [("kid", "9")]
    assert run(late).bands("kid")[1] is Band.UNKNOWN
    assert run([("x", "how old r u"), ("kid", "5 min, brb")]).bands("kid")[1] is Band.UNKNOWN


def test_a_room_age_question_that_names_its_person_is_asked_of_them() -> None:
    """In a room, "how old are you elsie?" is asked of elsie: her "9 but ..." answers it."""
    state = _room_run(
        ("elsie22", "harvey", "nibbles"),
        [
            ("nibbles", "how old are you elsie? need to know"),
            ("elsie22", "9 but im really responsible i feed him every day"),
            ("harvey", "8 lol"),
        ],
    )
    assert state.bands("elsie22")[1] is Band.LIKELY_MINOR
    assert state.bands("harvey")[1] is Band.UNKNOWN  # not asked


def _room_run(room: tuple[str, ...], script: list[tuple[str, str]]) -> ConversationState:
    """``script`` said in a room of ``room``, each message to everyone else."""
    eng = engine()
    state: ConversationState | None = None
    for i, (sender, text) in enumerate(script):
        to = tuple(u for u in room if u != sender)
        msg = MessageContext(text, "c", sender, to, Where.ROOM, room="#room")
        _, state = eng.assess(msg, state, 1.7e9 + 30 * i)
    assert state is not None
    return state


def test_a_small_rooms_age_question_naming_nobody_is_asked_of_each() -> None:
    """After someone shows their work, "How old are you, if you don't mind me
    asking?" in a small room: the "9, ..." that answers it says their age.
    (The test pack's own rule reads 10 to 17 at the start: 9 is below.)"""
    room = ("benji", "lydia", "teo", "mortimer")
    state = _room_run(
        room,
        [
            ("benji", "first time trying wet blending on this orc"),
            ("mortimer", "How old are you, if you don't mind me asking?"),
            ("benji", "9, my brother got me into it"),
        ],
    )
    assert state.bands("benji")[1] is Band.LIKELY_MINOR
    assert state.bands("lydia")[1] is Band.UNKNOWN  # asked, but did not answer


def test_a_big_rooms_age_question_naming_nobody_is_asked_of_nobody() -> None:
    room = ("benji", "mortimer", *(f"member{i}" for i in range(MAX_ROOM_ASKED)))
    state = _room_run(
        room,
        [("mortimer", "How old are you, if you don't mind me asking?"), ("benji", "9")],
    )
    assert state.bands("benji")[1] is Band.UNKNOWN


def test_an_answer_that_asks_back_is_answered_in_turn() -> None:
    """Two teenagers trading ages are two teenagers, not a stranger and a child."""
    assert asks_back("16 w marcu 17 ty")
    assert not asks_back("16 w marcu 17")
    state = run([("x", "ile masz lat?"), ("kid", "9, w marcu 10. ty?"), ("x", "też 9. rewanż?")])
    assert state.bands("kid")[1] is Band.LIKELY_MINOR
    assert state.bands("x")[1] is Band.LIKELY_MINOR
    unasked = run([("x", "ile masz lat?"), ("kid", "9, w marcu 10"), ("x", "9 razy wygrałem")])
    assert unasked.bands("x")[1] is Band.UNKNOWN


def test_an_age_answer_is_a_match_with_the_questions_weight_and_leaves_a_same() -> None:
    eng = engine()
    state = run([("x", "how old r u")], eng)
    assert state.pending == {AGE_PREFIX + "kid": ("age_probe", 4, 0.5, False)}
    msg = MessageContext("9", "c", "kid", ("x",), Where.DIRECT)
    assessment, after = eng.assess(msg, state, 1.7e9 + 60)
    assert [(m.rule_id, m.signal, m.weight) for m in assessment.matches] == [
        (AGE_RULE, S.MINOR_SELF, 0.5)
    ]
    assert SAME_PREFIX + "x" in after.pending  # "same age lol" would declare x
    assert ConversationState.from_json(after.to_json()) == after


def test_a_same_may_be_the_first_clause_of_a_longer_message() -> None:
    assert is_same(normalise("same age lol. send me a pic from the top, my phone died").folded)
    assert not is_same(normalise("ok so the same thing happened to my cousin last week").folded)
