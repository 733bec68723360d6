"""Tests for ``chatguard.policy.risk_formula``: the relationship multiplier,
targeted requests, caps, combinations and the stage-progression bonus,
read from states built by the real ``risk.observe``."""

from __future__ import annotations

import pytest

from chatguard.policy import risk_formula
from chatguard.policy.model import Signal, Stage
from chatguard.policy.risk import Band, ConversationState, PairState, Participant, multiplier
from chatguard.policy.risk_formula import conversation_risk, in_grooming_order, progression
from chatguard.policy.risk_settings import DEFAULT_SETTINGS, RiskSettings, parse_settings
from tests.test_policy_risk import EMPTY, match, say

S = Signal

# --- The formula ---------------------------------------------------------------------

# (sender attested, recipient attested, who declared what earlier, multiplier)
MULTIPLIERS = [
    ("adult", "minor", {}, 2.0),
    ("minor", "adult", {}, 2.0),  # the relationship counts, whoever speaks
    ("unknown", "minor", {}, 1.5),
    ("unknown", "unknown", {"r": S.MINOR_SELF}, 1.5),  # likely minor
    ("adult", "unknown", {"r": S.MINOR_SELF}, 2.0),
    ("unknown", "unknown", {"s": S.ADULT_SELF, "r": S.MINOR_SELF}, 2.0),  # likely adult
    ("minor", "minor", {}, 0.6),
    ("unknown", "unknown", {}, 1.0),
    ("adult", "unknown", {}, 1.0),
    ("adult", "adult", {}, 0.5),
    ("unknown", "unknown", {"s": S.ADULT_SELF, "r": S.ADULT_SELF}, 1.0),  # only attested damps
    ("adult", "minor", {"r": S.ADULT_SELF}, 2.0),  # a child claiming 18 stays a minor
]


@pytest.mark.parametrize(("sender", "recipient", "declared", "expected"), MULTIPLIERS)
def test_relationship_multiplier(
    sender: str, recipient: str, declared: dict[str, Signal], expected: float
) -> None:
    ages = {"s": sender, "r": recipient}
    state = EMPTY
    for who, signal in declared.items():  # weight 0: a declaration that scores nothing
        state = say(state, who, "r" if who == "s" else "s", match(signal, 0.0), ages=ages)
    state = say(state, "s", "r", match(S.SECRECY, 1.0), ages=ages)
    assert state.risk == expected


def test_multiplier_function_is_symmetric() -> None:
    for a in Band:
        for b in Band:
            assert multiplier(a, b, DEFAULT_SETTINGS) == multiplier(b, a, DEFAULT_SETTINGS)


@pytest.mark.parametrize("signal", [S.IMAGE_REQUEST, S.SEXUAL, S.ISOLATION])
def test_harmful_requests_toward_a_minor_weigh_more(signal: Signal) -> None:
    toward_minor = say(EMPTY, "x", "kid", match(signal, 2.0), ages={"kid": "minor"})
    from_minor = say(EMPTY, "kid", "x", match(signal, 2.0), ages={"kid": "minor"})
    assert toward_minor.risk == 2.0 * 1.5 * 1.5  # weight x minor target x unknown<->minor
    assert from_minor.risk == 2.0 * 1.5


@pytest.mark.parametrize(
    ("signal", "cap"),
    [(S.AGE_PROBE, 0.5), (S.FLATTERY, 1.5), (S.PI_SHARE, 1.0), (S.MEETING, 1.5)],
)
def test_ordinary_signals_count_little_and_saturate(signal: Signal, cap: float) -> None:
    once = say(EMPTY, "a", "b", match(signal, 1.0))
    assert once.risk < 1.0
    state = EMPTY
    for i in range(10):
        state = say(state, "a", "b", match(signal, 1.0), now=float(i))
    assert state.risk == cap


def test_a_dangerous_combination_adds_a_bonus() -> None:
    meeting = say(EMPTY, "a", "b", match(S.MEETING, 2.0))  # 2 x 0.5
    secrecy = say(EMPTY, "a", "b", match(S.SECRECY, 2.0))
    both = say(meeting, "a", "b", match(S.SECRECY, 2.0))
    assert both.risk == meeting.risk + secrecy.risk + 3.0 * min(1.0, 2.0)  # a secret meeting


def test_combinations_span_both_directions_of_a_dyad() -> None:
    state = say(EMPTY, "a", "b", match(S.MEETING, 2.0))
    state = say(state, "b", "a", match(S.SECRECY, 2.0))
    assert state.risk == 1.0 + 2.0 + 3.0 * 1.0


# --- Stage progression ---------------------------------------------------------------

F, R, RA, EX, SX, CT = (
    Stage.FRIENDSHIP,
    Stage.RELATIONSHIP,
    Stage.RISK_ASSESSMENT,
    Stage.EXCLUSIVITY,
    Stage.SEXUAL,
    Stage.CONTACT,
)

PROGRESSIONS = [
    ({}, 0.0),
    ({F: 0, R: 1}, 0.0),
    ({F: 0, SX: 1}, 0.0),
    ({F: 0, EX: 1, SX: 2}, 0.75),
    ({SX: 0, EX: 1, F: 2}, 0.25),  # three stages, reversed
    ({F: 0, R: 0, EX: 0}, 0.75),  # one message counts as in order
    ({F: 0, R: 1, RA: 2, EX: 3}, 1.0),
    ({F: 0, R: 1, RA: 2, EX: 3, SX: 4, CT: 5}, 1.5),
    ({F: 1, R: 0, RA: 3, EX: 2, SX: 5, CT: 4}, 1.5),  # within a phase any order is fine
    ({F: 4, R: 1, RA: 2, EX: 3, SX: 5, CT: 6}, 1.0),  # friendship after exclusivity
]


@pytest.mark.parametrize(("stages", "bonus"), PROGRESSIONS)
def test_progression_bonus(stages: dict[Stage, int], bonus: float) -> None:
    assert progression(stages) == pytest.approx(bonus)


def test_grooming_order() -> None:
    assert in_grooming_order({F: 0, RA: 1, CT: 2})
    assert not in_grooming_order({CT: 0, RA: 1, F: 2})
    assert in_grooming_order({})


def _run(ages: dict[str, str], script: list[tuple[str, Signal]]) -> ConversationState:
    state = EMPTY
    for i, (who, signal) in enumerate(script):
        other = next(p for p in ages if p != who)
        state = say(state, who, other, match(signal, 1.0), now=float(i), ages=ages)
    return state


def test_the_same_signals_score_more_in_grooming_order() -> None:
    ages = {"a": "unknown", "b": "unknown"}
    signals = [S.AGE_PROBE, S.SECRECY, S.SEXUAL]
    in_order = _run(ages, [("a", s) for s in signals])
    reversed_ = _run(ages, [("a", s) for s in reversed(signals)])
    two_stages = _run(ages, [("a", s) for s in signals[1:]])
    assert two_stages.risk < reversed_.risk < in_order.risk


def test_no_progression_bonus_between_minors() -> None:
    script = [("a", S.AGE_PROBE), ("b", S.FLATTERY), ("a", S.PI_REQUEST)]
    teens = _run({"a": "minor", "b": "minor"}, script)
    strangers = _run({"a": "unknown", "b": "unknown"}, script)
    assert teens.risk < strangers.risk
    # Strangers get the stage bonus (x1.75) and no damping between minors (x0.6).
    assert strangers.risk == pytest.approx(teens.risk / 0.6 * 1.75, abs=1e-3)


# --- Families and parents brought in -----------------------------------------------

FAMILY_DAY = [
    ("mum", S.RISK_CHECK),  # "are you home alone rn?"
    ("kid", S.KINSHIP),  # "ya. ok mum"
    ("mum", S.MEETING),  # "I'll pick you up at 5:40"
    ("mum", S.SECRECY),  # "don't tell your sister about the chips"
]


def test_a_family_dyad_counts_its_ordinary_signals_at_a_quarter() -> None:
    ages = {"mum": "adult", "kid": "minor"}
    family = _run(ages, FAMILY_DAY)
    stranger = _run(ages, [step for step in FAMILY_DAY if step[1] is not S.KINSHIP])
    assert family.risk < stranger.risk / 4  # a quarter, and no adult-and-child x2


def test_sexual_content_counts_in_full_in_any_family() -> None:
    ages = {"dad": "adult", "kid": "minor"}
    family = _run(ages, [("kid", S.KINSHIP), ("dad", S.SEXUAL)])
    alone = _run(ages, [("dad", S.SEXUAL)])
    # The multiplier is 1 (not 2) in a family, the sexual score itself is not lowered.
    assert family.risk == pytest.approx(alone.risk / DEFAULT_SETTINGS.adult_to_minor)


def test_parents_brought_in_halve_the_ordinary_signals_unless_secrecy_was_asked() -> None:
    ages = {"tutor": "adult", "kid": "minor"}
    script = [("tutor", S.IMAGE_REQUEST), ("tutor", S.RISK_CHECK)]
    plain = _run(ages, script)
    open_ = _run(ages, [*script, ("tutor", S.OPENNESS)])
    assert open_.risk == pytest.approx(plain.risk * DEFAULT_SETTINGS.openness_factor, rel=0.02)
    secret = _run(ages, [*script, ("tutor", S.OPENNESS), ("tutor", S.SECRECY)])
    plain_secret = _run(ages, [*script, ("tutor", S.SECRECY)])
    assert secret.risk == pytest.approx(plain_secret.risk, rel=0.02)


# --- A direction's static reading is remembered ------------------------------------------


def _groomed(risk_settings: RiskSettings = DEFAULT_SETTINGS) -> ConversationState:
    ages = {"adult": "adult", "kid": "minor"}
    state = EMPTY
    for i, signal in enumerate([S.FLATTERY, S.SECRECY, S.IMAGE_REQUEST, S.MEETING]):
        state = say(
            state, "adult", "kid", match(signal, 2.0), now=60.0 * i, ages=ages,
            risk_settings=risk_settings,
        )  # fmt: skip
    return state


def test_a_remembered_reading_is_the_reading_worked_out_afresh() -> None:
    state = _groomed()
    first = conversation_risk(state, DEFAULT_SETTINGS)
    remembered = conversation_risk(state, DEFAULT_SETTINGS)
    risk_formula._STATICS.clear()
    assert first == remembered == conversation_risk(state, DEFAULT_SETTINGS) == state.risk
    # The same maps under other settings are read with those settings.
    other = parse_settings({"risk": {"stage_bonus": 0.5}})
    assert conversation_risk(state, other) == conversation_risk(_groomed(other), other)
    assert conversation_risk(state, other) > first


def test_the_remembered_readings_are_bounded() -> None:
    risk_formula._STATICS.clear()
    state = _groomed()
    for i in range(risk_formula._MAX_STATICS + 10):
        say(state, "adult", "kid", match(S.FLATTERY, 1.0), now=300.0 + i)
    assert len(risk_formula._STATICS) <= risk_formula._MAX_STATICS
    assert len(risk_formula._BONUSES) <= risk_formula._MAX_STATICS


def test_a_faded_score_is_not_read_and_the_others_are_read_as_before() -> None:
    # With one half-life owed, 0.0015 reads below MIN_READ: the reading by key
    # (not the one pass over every score) leaves it out, as if dropped.
    ages = {"adult": Participant(Band.ADULT), "kid": Participant(Band.MINOR)}

    def state(scores: dict[str, float], owed: float) -> ConversationState:
        pair = PairState(0, scores, {Stage.FRIENDSHIP: 0})
        return ConversationState(participants=ages, pairs={("adult", "kid"): pair}, owed=owed)

    kept = {"secrecy": 5.0, "image_request": 3.0}
    with_faded = {"flattery": 0.0015, **kept}
    assert conversation_risk(state(with_faded, 1.0), DEFAULT_SETTINGS) == conversation_risk(
        state(kept, 1.0), DEFAULT_SETTINGS
    )
    assert conversation_risk(state(with_faded, 0.0), DEFAULT_SETTINGS) > conversation_risk(
        state(kept, 0.0), DEFAULT_SETTINGS
    )
