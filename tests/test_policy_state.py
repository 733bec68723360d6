"""Tests for ``chatguard.policy.state``: participant keys, the stored JSON
(bounded, round-tripping, versioned, refusing anything else) and the
optional language key. States are built by the real ``risk.observe``."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatguard.policy.model import Match, Signal
from chatguard.policy.risk import Observation, conversation_risk, decay, observe
from chatguard.policy.risk_settings import DEFAULT_SETTINGS, RiskSettings
from chatguard.policy.state import (
    ROOM_AUDIENCE,
    Band,
    ConversationState,
    PairState,
    Participant,
    participant_key,
    state_size_bound,
)
from tests.test_policy_risk import EMPTY, match, say

S = Signal


@pytest.mark.parametrize(
    ("user", "kept"),
    [
        ("alice", True),
        ("Zoë 🦊", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("é" * 40, False),  # 80 bytes
        ('quo"te', False),
        ("back\\slash", False),
        ("tab\there", False),
        ("\ud800", False),
        ("", False),
        (ROOM_AUDIENCE, False),
        ("#abc", False),
    ],
)
def test_participant_key(user: str, kept: bool) -> None:
    key = participant_key(user)
    assert (key == user) is kept
    assert key == participant_key(user)
    if not kept:
        assert key.startswith("#")
        assert len(key) == 25


def test_state_json_stays_under_its_bound_in_the_worst_case() -> None:
    state = EMPTY
    every = [match(s, 1e9) for s in Signal] + [match(s, 1e9, shadow=True) for s in Signal]
    for i in range(120):
        sender, recipient = f"{i:03d}".ljust(64, "s"), f"{i:03d}".ljust(64, "r")
        ages = {sender: "adult", recipient: "minor"}
        state = say(state, sender, recipient, *every, now=1e15 + i * 1e-3, ages=ages, years=120)
    pending = {
        f"{i:03d}".ljust(64, "q"): ("minor_self_declared", 2**62, 1e9, True) for i in range(8)
    }
    state = state.replace(pending=pending)
    data = state.to_json()
    assert len(state.pairs) == DEFAULT_SETTINGS.max_pairs
    assert len(state.participants) == DEFAULT_SETTINGS.max_participants
    senders = [p for k, p in state.participants.items() if k.endswith("s")]
    assert senders
    assert all(p.years == 120 for p in senders)
    assert len(data) <= state_size_bound()
    assert state_size_bound() < 56 * 1024
    assert ConversationState.from_json(data) == state


# --- JSON ----------------------------------------------------------------------------

USERS = st.one_of(
    st.sampled_from(["a", "b", "kid", "adult", "x" * 70, 'q"', ""]), st.text(max_size=70)
)
AGES = st.sampled_from(["minor", "adult", "unknown", "other"])
MATCHES = st.lists(
    st.builds(
        Match,
        rule_id=st.just("r"),
        signal=st.sampled_from(list(Signal)),
        weight=st.floats(0, 100),
        spans=st.just(()),
        shadow=st.booleans(),
    ),
    max_size=5,
)
MESSAGES = st.lists(
    st.tuples(USERS, st.lists(USERS, max_size=12), MATCHES, AGES, AGES, st.floats(-100, 1e5)),
    max_size=40,
)
SMALL = RiskSettings(max_participants=4, max_pairs=3, max_fanout=2)


@settings(max_examples=150, deadline=None)
@given(MESSAGES, st.sampled_from([DEFAULT_SETTINGS, SMALL]))
def test_any_conversation_keeps_a_bounded_state_that_round_trips(
    messages: list[tuple[str, list[str], list[Match], str, str, float]], risk_settings: RiskSettings
) -> None:
    state, now = EMPTY, 1.7e9
    bound = state_size_bound(risk_settings)
    for sender, recipients, matches, sender_age, recipient_age, dt in messages:
        now += dt
        obs = Observation(
            sender,
            tuple(recipients),
            tuple(matches),
            sender_age,
            dict.fromkeys(recipients, recipient_age),
        )
        state = observe(state, obs, risk_settings, now)
        data = state.to_json()
        assert len(data) <= bound
        assert ConversationState.from_json(data) == state
        assert len(state.participants) <= risk_settings.max_participants
        assert len(state.pairs) <= risk_settings.max_pairs
        assert conversation_risk(state, risk_settings) == state.risk
        # Decay is lazy: applying what is owed reads the same risk (to the
        # rounding of the stored scores).
        settled = decay(state, risk_settings, state.updated)
        assert settled.owed == 0.0
        assert settled.risk == pytest.approx(state.risk, rel=1e-5, abs=2e-4)


def test_json_is_compact_and_versioned() -> None:
    state = say(EMPTY, "a", "b", match(S.SECRECY, 1.0), now=1.7e9)
    data = state.to_json()
    assert json.loads(data)["v"] == 2
    assert b" " not in data
    assert len(data) < 200


def test_a_version_1_state_reads_as_owing_no_decay() -> None:
    """Version 1 stored every score decayed to the last message: it reads as
    a version 2 state with nothing owed, and gives the same risk."""
    state = say(EMPTY, "adult", "kid", match(S.SECRECY, 2.0), now=1.7e9, ages={"kid": "minor"})
    data = json.loads(state.to_json())
    data["v"] = 1
    del data["o"]
    old = ConversationState.from_json(json.dumps(data))
    assert old == state
    assert old.owed == 0.0
    assert conversation_risk(old, DEFAULT_SETTINGS) == state.risk


def test_decay_owed_is_stored_and_checked() -> None:
    state = say(EMPTY, "a", "b", match(S.SECRECY, 1.0), now=0.0)
    later = say(state, "a", "b", now=900.0)
    assert later.owed == 0.5
    assert json.loads(later.to_json())["o"] == 0.5
    assert ConversationState.from_json(later.to_json()) == later
    for bad in (-1.0, 65.0, "1", None):
        data = json.loads(later.to_json())
        data["o"] = bad
        with pytest.raises(ValueError, match="unreadable"):
            ConversationState.from_json(json.dumps(data))
    data = json.loads(later.to_json())
    del data["o"]  # required from version 2 on
    with pytest.raises(ValueError, match="unreadable"):
        ConversationState.from_json(json.dumps(data))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[]",
        b'{"v": 2}',
        b'{"v": 1}',
        ConversationState().to_json().replace(b'"n":0', b'"n":"0"'),
        ConversationState().to_json().replace(b'"e":null', b'"e":"urgent"'),
        ConversationState().to_json().replace(b'"p":{}', b'"p":{"a":["z","","",0]}'),
        ConversationState().to_json().replace(b'"p":{}', b'"p":{"a":["m","u","",0]}'),
        ConversationState().to_json().replace(b'"d":[]', b'"d":[["a","b",0,{"zz":1},{}]]'),
        ConversationState().to_json().replace(b'"d":[]', b'"d":[["a","b",0,{}]]'),
    ],
)
def test_unreadable_state_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="unreadable conversation state"):
        ConversationState.from_json(data)


@pytest.mark.parametrize("language", [5, "", "x" * 17, "e\nn"])
def test_a_bad_language_hint_is_unreadable(language: object) -> None:
    data = json.loads(ConversationState(language="en").to_json())
    data["l"] = language
    with pytest.raises(ValueError, match="unreadable"):
        ConversationState.from_json(json.dumps(data))


def test_a_state_without_a_language_hint_reads_as_before() -> None:
    data = json.loads(ConversationState(language="pt").to_json())
    del data["l"]
    assert ConversationState.from_json(json.dumps(data)).language is None


def test_pending_questions_round_trip_and_are_optional() -> None:
    state = ConversationState(pending={"kid": ("minor_self_declared", 7, 1.0, False)})
    data = json.loads(state.to_json())
    assert data["q"] == {"kid": ["ms", 7, 1.0, 0]}
    assert ConversationState.from_json(state.to_json()) == state
    del data["q"]  # a state written before pending questions existed
    assert ConversationState.from_json(json.dumps(data)).pending == {}
    assert "q" not in json.loads(ConversationState().to_json())


def test_an_age_said_round_trips_and_is_optional() -> None:
    said = Participant(Band.UNKNOWN, frozenset({Band.MINOR}), frozenset(), 3, 17)
    state = ConversationState(participants={"kid": said, "other": Participant()})
    data = json.loads(state.to_json())
    assert data["p"]["kid"][4] == 17
    assert len(data["p"]["other"]) == 4  # nothing said: the item is left out
    assert ConversationState.from_json(state.to_json()) == state
    data["p"]["kid"] = data["p"]["kid"][:4]  # a state written before ages were kept
    assert ConversationState.from_json(json.dumps(data)).participants["kid"].years == 0


@pytest.mark.parametrize("years", [0, -1, 121, "17", 1.5, True])
def test_a_bad_age_is_unreadable(years: object) -> None:
    data = json.loads(ConversationState(participants={"kid": Participant()}).to_json())
    data["p"]["kid"].append(years)
    with pytest.raises(ValueError, match="unreadable"):
        ConversationState.from_json(json.dumps(data))


@pytest.mark.parametrize(
    "pending",
    [
        {"kid": ["zz", 7, 1.0, 0]},
        {"kid": ["ms", "7", 1.0, 0]},
        {"kid": ["ms", 7, 1.0, 2]},
        {"kid": ["ms", 7, 1.0]},
        {f"k{i}": ["ms", 7, 1.0, 0] for i in range(9)},
    ],
)
def test_bad_pending_questions_are_unreadable(pending: object) -> None:
    data = json.loads(ConversationState().to_json())
    data["q"] = pending
    with pytest.raises(ValueError, match="unreadable"):
        ConversationState.from_json(json.dumps(data))


def test_records_compare_show_and_copy_by_their_fields() -> None:
    state = ConversationState()
    assert state.scores == {}
    assert state.scores is not ConversationState().scores
    assert PairState(3, {"sexual": 1.0}) == PairState(3, {"sexual": 1.0}) != PairState(3)
    assert Participant(Band.MINOR) == Participant(Band.MINOR, frozenset(), frozenset(), 0)
    assert Participant(Band.MINOR) != Participant(Band.MINOR, last_seen=1)
    assert hash(Participant(Band.MINOR)) == hash(Participant(Band.MINOR))
    assert state != PairState(0)
    assert state != Participant()
    with pytest.raises(TypeError):
        hash(state)  # its maps are not hashable
    assert repr(PairState(3)) == (
        "PairState(last=3, scores={}, stages={}, shadow_scores={}, shadow_stages={})"
    )
    assert repr(Participant()) == (
        "Participant(attested=<Band.UNKNOWN: 'unknown'>, declared=frozenset(), "
        "shadow_declared=frozenset(), last_seen=0, years=0)"
    )
    assert repr(state).startswith("ConversationState(updated=0.0, messages=0, scores={},")
    later = state.replace(risk=2.0, escalation="high", fired=frozenset({"t"}))
    assert (later.risk, later.escalation, later.fired) == (2.0, "high", frozenset({"t"}))
    assert (later.messages, later.enforced_risk, later.pending) == (0, 0.0, {})
    assert state == ConversationState()  # unchanged
    assert later.replace() == later
    assert later.replace() is not later
