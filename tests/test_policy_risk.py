"""Tests for ``chatguard.policy.risk``.

Messages are fed to ``observe`` as ``Observation`` values (who, to whom,
which matches), so each part of the formula can be checked on its own: decay,
the relationship multiplier, the minor-target factor, caps, combinations, the
stage-progression bonus, thresholds, age bands, the bounds of the state and
its JSON form. Engine-level behaviour (rules, scopes, actions) is in
``test_policy_engine.py``.
"""

from __future__ import annotations

import math

import pytest

from chatguard.policy.model import Action, ActionType, Match, Signal, Stage, Threshold
from chatguard.policy.risk import (
    AGE_CONTRADICTION,
    DEFAULT_SETTINGS,
    ROOM_AUDIENCE,
    Band,
    ConversationState,
    Observation,
    Participant,
    RiskSettings,
    cross_thresholds,
    decay,
    escalation_severity,
    observe,
    parse_settings,
    record_escalation,
    threshold_key,
)
from chatguard.policy.state import MAX_OWED

S = Signal
H = DEFAULT_SETTINGS.half_life


def match(signal: Signal, weight: float = 1.0, *, shadow: bool = False) -> Match:
    return Match(f"test.{signal.value}", signal, weight, (), shadow)


def say(
    state: ConversationState,
    sender: str,
    to: str | tuple[str, ...],
    *matches: Match,
    now: float = 0.0,
    ages: dict[str, str] | None = None,
    risk_settings: RiskSettings = DEFAULT_SETTINGS,
    years: int = 0,
) -> ConversationState:
    """One message; ``ages`` attests bands for the sender and recipients,
    ``years`` is the age the sender's declaration gives."""
    recipients = (to,) if isinstance(to, str) else to
    ages = ages or {}
    obs = Observation(
        sender,
        recipients,
        matches,
        ages.get(sender, "unknown"),
        {r: ages[r] for r in recipients if r in ages},
        sender_years=years,
    )
    return observe(state, obs, risk_settings, now)


EMPTY = ConversationState()


# --- Decay ---------------------------------------------------------------------------


@pytest.mark.parametrize("halvings", [0, 1, 2, 3, 5, 10])
def test_scores_halve_every_half_life(halvings: int) -> None:
    state = say(EMPTY, "a", "b", match(S.SECRECY, 4.0), now=1000.0)
    later = decay(state, DEFAULT_SETTINGS, 1000.0 + halvings * H)
    expected = 4.0 * 2.0**-halvings
    assert later.pairs[("a", "b")].scores.get("secrecy", 0.0) == pytest.approx(expected, abs=1e-3)
    assert later.scores.get("secrecy", 0.0) == pytest.approx(expected, abs=1e-3)
    assert later.updated == 1000.0 + halvings * H


def test_decay_is_exact_on_a_half_life_and_continuous_between() -> None:
    state = say(EMPTY, "a", "b", match(S.SECRECY, 1.0), now=0.0)
    assert decay(state, DEFAULT_SETTINGS, H).pairs[("a", "b")].scores["secrecy"] == 0.5
    half = decay(state, DEFAULT_SETTINGS, H / 2).pairs[("a", "b")].scores["secrecy"]
    assert half == pytest.approx(2**-0.5, rel=1e-6)


def test_decay_does_not_stall_in_a_busy_conversation() -> None:
    state = say(EMPTY, "a", "b", match(S.SECRECY, 0.05), now=0.0)
    for second in range(1, int(2 * H) + 1):  # a message every second, for two half-lives
        state = say(state, "c", "d", now=float(second))
    settled = decay(state, DEFAULT_SETTINGS, state.updated)
    assert settled.pairs[("a", "b")].scores["secrecy"] == pytest.approx(0.0125, rel=1e-3)
    assert state.risk == pytest.approx(0.0125, abs=1e-4)  # read decayed before it is applied


def test_a_message_without_matches_only_adds_to_the_decay_owed() -> None:
    """Decay is lazy: the scores stay as they were stored and the risk reads
    them decayed; the next message that scores applies the decay."""
    ages = {"adult": "adult", "kid": "minor"}
    scored = say(EMPTY, "adult", "kid", match(S.SECRECY, 2.0), now=0.0, ages=ages)
    later = say(scored, "kid", "adult", now=H, ages=ages)
    assert later.owed == 1.0
    assert later.updated == H
    assert later.scores is scored.scores
    assert later.pairs[("adult", "kid")].scores is scored.pairs[("adult", "kid")].scores
    assert later.risk == 2.0  # 2 x adult->minor 2, halved
    assert decay(later, DEFAULT_SETTINGS, H).risk == later.risk
    again = say(later, "adult", "kid", match(S.SECRECY, 1.0), now=2 * H, ages=ages)
    assert again.owed == 0.0
    assert again.pairs[("adult", "kid")].scores["secrecy"] == 2.0 * 0.25 + 1.0


def test_a_faded_score_is_not_read() -> None:
    state = say(EMPTY, "a", "b", match(S.SECRECY, 1.0), now=0.0)
    faded = say(state, "a", "b", now=11 * H)  # 1/2048, below the smallest score kept
    assert faded.risk == 0.0
    assert "secrecy" in faded.scores  # still stored: dropped when a message scores
    gone = say(faded, "a", "b", match(S.FLATTERY, 1.0), now=11 * H)
    assert "secrecy" not in gone.scores
    assert "secrecy" not in gone.pairs[("a", "b")].scores


def test_decay_owed_is_bounded() -> None:
    state = say(EMPTY, "a", "b", match(S.SECRECY, 1.0), now=0.0)
    for day in range(1, 30):
        state = say(state, "a", "b", now=day * 86400.0)
    assert state.owed == MAX_OWED
    assert state.risk == 0.0


def test_decay_uses_the_packs_half_life() -> None:
    fast = parse_settings({}, half_life=60.0)
    state = say(EMPTY, "a", "b", match(S.SECRECY, 1.0), now=0.0, risk_settings=fast)
    assert decay(state, fast, 60.0).pairs[("a", "b")].scores["secrecy"] == 0.5


def test_a_silence_decays_at_most_max_idle_decay() -> None:
    """A slow burn over days keeps what each sitting built (``max_idle_decay``)."""
    capped = parse_settings({"risk": {"max_idle_decay": H}})
    state = say(EMPTY, "a", "b", match(S.SECRECY, 4.0), now=0.0, risk_settings=capped)
    week = 7 * 24 * 3600.0
    later = say(state, "b", "a", now=week, risk_settings=capped)
    assert later.owed == 1.0
    assert later.risk == pytest.approx(2.0)
    assert later.updated == week
    assert decay(state, capped, week).scores["secrecy"] == pytest.approx(2.0)
    # Within the cap, time decays as before; without a cap a week erases it.
    assert decay(state, capped, H / 2).scores["secrecy"] == pytest.approx(4.0 * 2**-0.5, rel=1e-5)
    assert "secrecy" not in decay(state, DEFAULT_SETTINGS, week).scores


def test_risk_decays_with_the_scores() -> None:
    ages = {"adult": "adult", "kid": "minor"}
    state = say(EMPTY, "adult", "kid", match(S.SECRECY, 2.0), ages=ages)
    assert state.risk == 4.0  # 2 x adult->minor 2
    assert decay(state, DEFAULT_SETTINGS, H).risk == 2.0
    assert decay(state, DEFAULT_SETTINGS, 2 * H).risk == 1.0


def test_time_never_runs_backwards() -> None:
    state = say(EMPTY, "a", "b", match(S.SECRECY, 1.0), now=500.0)
    assert decay(state, DEFAULT_SETTINGS, 100.0) is state
    state = say(state, "a", "b", match(S.SECRECY, 1.0), now=100.0)  # a late message
    assert state.updated == 500.0
    assert state.pairs[("a", "b")].scores["secrecy"] == 2.0


def test_decay_refuses_a_non_finite_time() -> None:
    with pytest.raises(ValueError, match="finite"):
        decay(EMPTY, DEFAULT_SETTINGS, math.nan)


def test_scores_fade_out_of_the_state() -> None:
    state = say(EMPTY, "a", "b", match(S.SECRECY, 1.0))
    gone = decay(state, DEFAULT_SETTINGS, 20 * H)
    assert gone.scores == {}
    assert gone.pairs[("a", "b")].scores == {}
    assert gone.pairs[("a", "b")].stages == {Stage.EXCLUSIVITY: 0}  # history stays
    assert gone.risk == 0.0


# --- Age bands -----------------------------------------------------------------------

# (attested, declared, effective, contradiction)
BANDS = [
    (Band.MINOR, set(), Band.MINOR, False),
    (Band.MINOR, {Band.ADULT}, Band.MINOR, False),  # a child claiming 18 is still a minor
    (Band.ADULT, set(), Band.ADULT, False),
    (Band.ADULT, {Band.MINOR}, Band.ADULT, True),  # an adult claiming 13: suspicious
    (Band.UNKNOWN, set(), Band.UNKNOWN, False),
    (Band.UNKNOWN, {Band.MINOR}, Band.LIKELY_MINOR, False),
    (Band.UNKNOWN, {Band.ADULT}, Band.LIKELY_ADULT, False),
    (Band.UNKNOWN, {Band.MINOR, Band.ADULT}, Band.LIKELY_MINOR, False),  # protect
]


@pytest.mark.parametrize(("attested", "declared", "effective", "contradiction"), BANDS)
def test_age_precedence(
    attested: Band, declared: set[Band], effective: Band, contradiction: bool
) -> None:
    p = Participant(attested, frozenset(declared))
    assert p.effective is effective
    assert p.contradiction is contradiction


def test_self_declarations_are_remembered_per_sender() -> None:
    state = say(EMPTY, "kid", "x", match(S.MINOR_SELF))
    assert state.bands("kid") == (Band.UNKNOWN, Band.LIKELY_MINOR)
    assert state.bands("x") == (Band.UNKNOWN, Band.UNKNOWN)
    assert state.bands("nobody") == (Band.UNKNOWN, Band.UNKNOWN)


def test_a_declaration_for_both_declares_the_one_recipient_too() -> None:
    """ "we're both 15" to one person: two classmates, not a stranger and a child."""
    both = match(S.MINOR_SELF)
    obs = Observation("amara", ("joel",), (both,), for_recipient=(both,))
    state = observe(EMPTY, obs, DEFAULT_SETTINGS, 0.0)
    assert state.bands("amara") == (Band.UNKNOWN, Band.LIKELY_MINOR)
    assert state.bands("joel") == (Band.UNKNOWN, Band.LIKELY_MINOR)
    # In a room that no one has spoken in yet it speaks for nobody in
    # particular: only the sender is declared.
    room = Observation("amara", ("joel", "kit"), (both,), for_recipient=(both,))
    state = observe(EMPTY, room, DEFAULT_SETTINGS, 0.0)
    assert state.bands("joel") == (Band.UNKNOWN, Band.UNKNOWN)
    # Right after someone else spoke, it is a reply and speaks for them.
    joel_spoke = observe(EMPTY, Observation("joel", ("amara", "kit"), ()), DEFAULT_SETTINGS, 0.0)
    state = observe(joel_spoke, room, DEFAULT_SETTINGS, 1.0)
    assert state.bands("joel") == (Band.UNKNOWN, Band.LIKELY_MINOR)
    assert state.bands("kit") == (Band.UNKNOWN, Band.UNKNOWN)
    # Not when the one who spoke last is the sender, or someone the message
    # is not for.
    own = observe(EMPTY, Observation("amara", ("joel", "kit"), ()), DEFAULT_SETTINGS, 0.0)
    assert observe(own, room, DEFAULT_SETTINGS, 1.0).bands("joel") == (Band.UNKNOWN, Band.UNKNOWN)
    aside = observe(EMPTY, Observation("joel", ("kit",), ()), DEFAULT_SETTINGS, 0.0)
    to_kit = Observation("amara", ("kit", "lou"), (both,), for_recipient=(both,))
    assert observe(aside, to_kit, DEFAULT_SETTINGS, 1.0).bands("joel") == (
        Band.UNKNOWN,
        Band.UNKNOWN,
    )
    # A shadow declaration declares them in the shadow view only.
    shadow = match(S.MINOR_SELF, shadow=True)
    obs = Observation("amara", ("joel",), (shadow,), for_recipient=(shadow,))
    joel = observe(EMPTY, obs, DEFAULT_SETTINGS, 0.0).participants["joel"]
    assert (joel.declared, joel.shadow_declared) == (frozenset(), frozenset({Band.MINOR}))


def test_an_unknown_attestation_never_erases_a_known_one() -> None:
    state = say(EMPTY, "kid", "x", ages={"kid": "minor"})
    state = say(state, "kid", "x")
    assert state.bands("kid") == (Band.MINOR, Band.MINOR)
    state = say(state, "x", "kid", ages={"kid": "adult"})  # a new attestation replaces it
    assert state.bands("kid") == (Band.ADULT, Band.ADULT)


def test_an_adult_claiming_to_be_a_child_scores_as_a_contradiction() -> None:
    ages = {"adult": "adult", "kid": "minor"}
    state = say(EMPTY, "adult", "kid", match(S.MINOR_SELF, 1.0), ages=ages)
    participant = state.participant("adult")
    assert participant is not None
    assert participant.contradiction
    assert state.bands("adult") == (Band.ADULT, Band.ADULT)
    assert state.pairs[("adult", "kid")].scores == {AGE_CONTRADICTION: 1.0}
    assert state.risk == 1.0 * 3.0 * 2.0  # weight x contradiction factor x adult<->minor
    child = say(EMPTY, "kid", "adult", match(S.MINOR_SELF, 1.0), ages=ages)
    assert child.risk == 0.25 * 2.0


def test_shadow_declarations_do_not_change_the_enforced_band() -> None:
    state = say(EMPTY, "kid", "x", match(S.MINOR_SELF, 0.0, shadow=True))
    participant = state.participant("kid")
    assert participant is not None
    assert participant.effective is Band.UNKNOWN
    assert participant.band(include_shadow=True) is Band.LIKELY_MINOR


# --- Shadow --------------------------------------------------------------------------


def test_shadow_matches_count_in_risk_but_not_in_enforced_risk() -> None:
    ages = {"a": "adult", "kid": "minor"}
    state = say(
        EMPTY, "a", "kid", match(S.SECRECY, 1.0), match(S.SEXUAL, 2.0, shadow=True), ages=ages
    )
    pair = state.pairs[("a", "kid")]
    assert pair.scores == {"secrecy": 1.0}
    assert pair.shadow_scores == {"sexual": 2.0}
    assert pair.stages == {Stage.EXCLUSIVITY: 0}
    assert pair.shadow_stages == {Stage.SEXUAL: 0}
    assert state.enforced_risk == 2.0
    assert state.risk == 2.0 + 2.0 * 1.5 * 2.0


# --- Thresholds ----------------------------------------------------------------------

BANNER = Action(
    ActionType.BANNER, {"banner": "stay_safe_reminder", "audience": "minor_participants"}
)
ESCALATE = Action(ActionType.ESCALATE, {"category": "grooming"})


def test_each_threshold_fires_once() -> None:
    thresholds = (Threshold(8.0, (ESCALATE,)), Threshold(2.0, (BANNER,)))
    state = say(EMPTY, "a", "b", match(S.SECRECY, 3.0))
    state, crossed = cross_thresholds(state, thresholds)
    assert [(t.at, shadow) for t, shadow in crossed] == [(2.0, False)]
    state = say(state, "a", "b", match(S.SECRECY, 6.0), now=1.0)
    state, crossed = cross_thresholds(state, thresholds)
    assert [(t.at, shadow) for t, shadow in crossed] == [(8.0, False)]
    state = say(state, "a", "b", match(S.SECRECY, 6.0), now=2.0)
    state, crossed = cross_thresholds(state, thresholds)
    assert crossed == []
    assert state.fired == {"2", "8"}


def test_a_state_with_nothing_new_to_fire_comes_back_as_it_was() -> None:
    thresholds = (Threshold(2.0, (BANNER,)), Threshold(8.0, (ESCALATE,)))
    state = say(EMPTY, "a", "b", match(S.SECRECY, 3.0))
    state, _ = cross_thresholds(state, thresholds)
    again = say(state, "a", "b", now=1.0)  # 3 > risk >= 2: only "2" is reachable, and fired
    assert cross_thresholds(again, thresholds) == (again, [])
    assert threshold_key(thresholds[0]) == "2"
    assert threshold_key(Threshold(2.5, (), require_minor=True)) == "2.5m"


def test_a_threshold_that_requires_a_minor_waits_for_one() -> None:
    thresholds = (Threshold(2.0, (BANNER,), require_minor=True),)
    state = say(EMPTY, "a", "b", match(S.SECRECY, 3.0))
    state, crossed = cross_thresholds(state, thresholds)
    assert crossed == []
    state = say(state, "b", "a", match(S.MINOR_SELF, 0.0), now=1.0)
    state, crossed = cross_thresholds(state, thresholds)
    assert len(crossed) == 1
    assert state.fired == {"2m"}


def test_a_threshold_reached_only_by_shadow_matches_fires_in_shadow_then_for_real() -> None:
    thresholds = (Threshold(2.0, (ESCALATE,)),)
    state = say(EMPTY, "a", "b", match(S.SECRECY, 3.0, shadow=True))
    state, crossed = cross_thresholds(state, thresholds)
    assert [shadow for _, shadow in crossed] == [True]
    state = say(state, "a", "b", match(S.SECRECY, 0.5, shadow=True), now=1.0)
    state, crossed = cross_thresholds(state, thresholds)
    assert crossed == []  # once in shadow too
    state = say(state, "a", "b", match(S.SECRECY, 3.0), now=2.0)
    state, crossed = cross_thresholds(state, thresholds)
    assert [shadow for _, shadow in crossed] == [False]
    assert state.fired == {"2"}
    assert state.fired_shadow == set()


# --- Severity ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("risk", "severity"),
    [
        (0.0, "low"),
        (7.9, "low"),
        (8.0, "medium"),
        (16.0, "high"),
        (31.0, "high"),
        (32.0, "critical"),
    ],
)
def test_escalation_severity_follows_risk(risk: float, severity: str) -> None:
    assert escalation_severity(risk, EMPTY) == severity


def _minors_of_ages(older: int, younger: int, risk_settings: RiskSettings) -> float:
    """The risk after an older declared child asks a younger one for a picture."""
    r = risk_settings
    state = say(EMPTY, "kid", "teen", match(S.MINOR_SELF, 0.5), years=younger, risk_settings=r)
    state = say(state, "teen", "kid", match(S.MINOR_SELF, 0.5), years=older, risk_settings=r)
    state = say(
        state, "teen", "kid", match(S.IMAGE_REQUEST, 2.0), match(S.SECRECY, 1.5), risk_settings=r
    )
    assert state.participants["teen"].years == older
    return state.risk


def test_two_minors_years_apart_are_not_counted_as_peers() -> None:
    peers = _minors_of_ages(14, 13, DEFAULT_SETTINGS)
    apart = _minors_of_ages(17, 13, DEFAULT_SETTINGS)
    m = DEFAULT_SETTINGS.minor_gap_multiplier / DEFAULT_SETTINGS.minor_to_minor
    assert apart == pytest.approx(peers * m, rel=1e-6)
    off = RiskSettings(minor_age_gap=0)
    assert _minors_of_ages(17, 13, off) == pytest.approx(peers, rel=1e-6)
    # Two years apart is still one school's teenagers.
    assert _minors_of_ages(15, 13, DEFAULT_SETTINGS) == pytest.approx(peers, rel=1e-6)


def test_an_age_said_stays_until_another_is_said() -> None:
    state = say(EMPTY, "teen", "kid", match(S.MINOR_SELF, 0.5), years=16)
    state = say(state, "teen", "kid", match(S.FLATTERY))
    assert state.participants["teen"].years == 16
    state = say(state, "teen", "kid", match(S.MINOR_SELF, 0.5), years=17)
    assert state.participants["teen"].years == 17


def test_sexual_stage_with_a_minor_is_at_least_high() -> None:
    ages = {"a": "unknown", "kid": "minor"}
    state = say(EMPTY, "a", "kid", match(S.SEXUAL, 0.01), ages=ages)
    assert escalation_severity(0.0, state) == "high"
    teens = say(EMPTY, "a", "kid", match(S.SEXUAL, 0.01), ages={"a": "minor", "kid": "minor"})
    assert escalation_severity(0.0, teens) == "low"
    shadow = say(EMPTY, "a", "kid", match(S.SEXUAL, 0.01, shadow=True), ages=ages)
    assert escalation_severity(0.0, shadow) == "low"
    assert escalation_severity(0.0, shadow, include_shadow=True) == "high"


def test_severity_never_drops_below_what_was_escalated() -> None:
    state = record_escalation(EMPTY, "high")
    assert escalation_severity(1.0, state) == "high"
    assert record_escalation(state, "medium").escalation == "high"
    assert record_escalation(state, "critical").escalation == "critical"


# --- Bounds --------------------------------------------------------------------------


def test_participants_are_bounded_least_recently_seen_first() -> None:
    small = RiskSettings(max_participants=5, max_pairs=3)
    state = EMPTY
    for i in range(20):
        state = say(state, f"u{i}", f"v{i}", match(S.SECRECY), now=float(i), risk_settings=small)
    assert set(state.participants) == {"u19", "v19", "u18", "v18", "v17"}  # ties: by id
    assert set(state.pairs) == {("u19", "v19"), ("u18", "v18"), ("u17", "v17")}


def test_a_broadcast_gets_pairs_for_minors_and_one_for_the_room() -> None:
    recipients = tuple(f"r{i}" for i in range(100))
    ages = {"r3": "minor", "r50": "minor"}
    state = say(EMPTY, "a", recipients, match(S.SEXUAL, 1.0), ages=ages)
    assert set(state.pairs) == {("a", "r3"), ("a", "r50"), ("a", ROOM_AUDIENCE)}
    assert state.risk == 1.0 * 1.5 * 1.5  # toward a minor, from an unknown


def test_a_message_to_nobody_goes_to_the_room() -> None:
    state = say(EMPTY, "a", (), match(S.SEXUAL, 1.0))
    assert set(state.pairs) == {("a", ROOM_AUDIENCE)}
    assert state.risk == 1.0


def test_a_sender_is_not_their_own_recipient() -> None:
    state = say(EMPTY, "a", ("a", "b", "b"), match(S.SECRECY, 1.0))
    assert set(state.pairs) == {("a", "b")}


def test_scores_are_clamped() -> None:
    state = say(EMPTY, "a", "b", match(S.SEXUAL, 1e12))
    assert state.pairs[("a", "b")].scores["sexual"] == DEFAULT_SETTINGS.max_score


# --- What a message does not change is shared ------------------------------------------


def test_a_message_that_reaches_no_new_stage_keeps_the_stage_maps() -> None:
    first = say(EMPTY, "adult", "kid", match(S.FLATTERY), now=0.0)
    again = say(first, "adult", "kid", match(S.FLATTERY), now=60.0)
    assert again.stages is first.stages
    assert again.pairs[("adult", "kid")].stages is first.pairs[("adult", "kid")].stages
    kept = dict(again.stages)
    onward = say(again, "adult", "kid", match(S.SECRECY), now=120.0)
    assert onward.stages == {**kept, Stage.EXCLUSIVITY: 2}
    assert again.stages == kept  # never changed in place


def test_observe_builds_the_state_with_the_engines_pending_and_language() -> None:
    pending = {"kid": ("minor_self_declared", 5, 1.0, False)}
    obs = Observation("adult", ("kid",), (match(S.FLATTERY),))
    after = observe(EMPTY, obs, DEFAULT_SETTINGS, 0.0, pending=pending, language="en")
    assert after.pending is pending
    assert after.language == "en"
    kept = observe(after, Observation("kid", ("adult",), ()), DEFAULT_SETTINGS, 1.0)
    assert kept.pending is pending
    assert kept.language == "en"


def test_an_observation_compares_and_shows_itself_by_its_fields() -> None:
    m = match(Signal.FLATTERY)
    obs = Observation("amara", ("joel",), (m,))
    assert obs == Observation("amara", ("joel",), (m,), "unknown", {}, ())
    assert obs != Observation("amara", ("joel",), (m,), recipient_ages={"joel": "minor"})
    assert obs.recipient_ages == {}
    assert obs.recipient_ages is not Observation("amara", ("joel",), ()).recipient_ages
    assert repr(obs).startswith("Observation(sender='amara', recipients=('joel',), matches=(")
    assert obs != Observation("amara", ("joel",), (m,), reader_only=frozenset({"r1"}))
    assert repr(obs).endswith(
        "sender_age='unknown', recipient_ages={}, for_recipient=(), reader_only=frozenset(), "
        "sender_years=0)"
    )
    assert obs != Observation("amara", ("joel",), (m,), sender_years=17)
