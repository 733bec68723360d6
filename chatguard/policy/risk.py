"""Conversation risk: what a conversation's history says about danger to a child.

This module owns the pure functions that fold one message's matches into a
``ConversationState`` (``state.py``: what is remembered and how it is stored)
and read a risk score out of it (``risk_formula.py``: the formula below),
under ``RiskSettings`` (``risk_settings.py``: every number, and how a pack
overrides them), and that decide thresholds and severities; it re-exports
those modules' names. The formula, its defaults and its sources are
explained for analysts in ``docs/risk-model.md``. In short, for each *dyad*
D (two people; each direction x→y of it keeps its own decayed score S per
signal):

    F_D[s] = min(cap[s], Σ_{x→y in D} factor[s] · target(s, y) · S_{x→y}[s])
    R_D    = m(D) · (Σ_s F_D[s] + Σ_{(a, b, c)} c · min(F_D[a], F_D[b])) · (1 + P(D))
    risk   = max over the dyads D of the conversation of R_D

``m`` weighs adult↔minor relationships, ``target`` weighs harmful requests
toward a minor, the sum over ``(a, b, c)`` rewards dangerous combinations and
``P`` is the stage-progression bonus.

Age bands. The platform *attests* a band (minor, adult, unknown); a person may
*declare* one in chat. An attested band always wins; a declaration only turns
"unknown" into "likely minor" or "likely adult" (a minor declaration wins over
an adult one). An attested adult who declares being a minor is a
*contradiction*: they stay an adult and the claim itself scores
(``age_contradiction``).

Shadow. Matches of shadow rules update the state in separate maps
(``shadow_scores``, ``shadow_stages``, ``shadow_declared``, ``fired_shadow``) so
that the state shows what would have happened while the enforced view, which
alone decides real actions, ignores them.

Invariants:

1. Pure: no I/O, no clock reads (``now`` is passed in), no global state.
2. Bounded: at most ``max_participants`` participants and ``max_pairs`` directed
   pairs (least recently active dropped first); user ids that are long or need
   escaping are stored as a digest; scores are clamped to ``max_score``, kept to
   6 significant digits and dropped below 0.001. ``to_json`` output never exceeds
   ``state_size_bound(settings)``.
3. Time never runs backwards: a ``now`` before the last update decays nothing.
   Decay is lazy (``state.py``, invariant 5): a message without matches only
   adds to the decay the scores owe, and the risk reads them decayed; a
   message that scores first applies what is owed, rounds and drops, then
   adds its own contributions.
4. ``ConversationState.from_json(s.to_json()) == s`` for every state built here.
5. Written for speed: ``observe`` runs for every chat message, so it works on
   mutable copies and builds one new state; values it does not change are
   shared with the old state, never mutated.

Never: decide actions (``engine.py`` does), look at message text, or let a
self-declared age override an attested one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

from chatguard.policy.frozen import record_repr
from chatguard.policy.model import STAGE_OF, Match, Signal, Stage, Threshold
from chatguard.policy.risk_formula import (
    conversation_risk,
    dyad_risks,
    in_grooming_order,
    multiplier,
    progression,
    risks_of,
)
from chatguard.policy.risk_settings import (
    AGE_CONTRADICTION,
    DEFAULT_SETTINGS,
    SEVERITIES,
    RiskSettings,
    Trigger,
    parse_settings,
)
from chatguard.policy.state import (
    MAX_OWED,
    MAX_THRESHOLDS,
    MIN_SCORE,
    ROOM_AUDIENCE,
    VERSION,
    Band,
    ConversationState,
    PairState,
    Participant,
    attested_band,
    participant_key,
    state_size_bound,
)

# What callers import from here: the model's vocabulary lives in the
# settings and state modules, and this module is where it is used.
__all__ = [
    "AGE_CONTRADICTION",
    "DEFAULT_SETTINGS",
    "MAX_THRESHOLDS",
    "ROOM_AUDIENCE",
    "SEVERITIES",
    "VERSION",
    "Band",
    "ConversationState",
    "Observation",
    "PairState",
    "Participant",
    "RiskSettings",
    "Trigger",
    "attested_band",
    "conversation_risk",
    "cross_thresholds",
    "decay",
    "dyad_risks",
    "escalation_severity",
    "has_minor",
    "in_grooming_order",
    "multiplier",
    "observe",
    "parse_settings",
    "participant_key",
    "progression",
    "record_escalation",
    "severity_rank",
    "state_size_bound",
    "threshold_key",
]

# --- Update --------------------------------------------------------------------------


_OBSERVATION_FIELDS: Final = (
    "sender", "recipients", "matches", "sender_age", "recipient_ages", "for_recipient",
    "reader_only", "sender_years",
)  # fmt: skip


class Observation:
    """One message as the risk model sees it: who, to whom, which matches.

    A record: its attributes are ``Final`` and it compares and shows itself
    by them, as a frozen dataclass would; a plain class, so that the
    compiled build makes it a native one (``native.py``, invariant 2)."""

    __slots__ = _OBSERVATION_FIELDS

    def __init__(
        self,
        sender: str,
        recipients: tuple[str, ...],
        matches: tuple[Match, ...],
        sender_age: str = "unknown",
        recipient_ages: Mapping[str, str] | None = None,
        for_recipient: tuple[Match, ...] = (),
        reader_only: frozenset[str] = frozenset(),
        sender_years: int = 0,
    ) -> None:
        self.sender: Final = sender
        self.recipients: Final = recipients
        self.matches: Final = matches
        self.sender_age: Final = sender_age  # attested: minor | adult | unknown
        # Attested, per recipient (``None``: a new empty map).
        self.recipient_ages: Final[Mapping[str, str]] = (
            {} if recipient_ages is None else recipient_ages
        )
        # Of ``matches``, the age declarations that speak for the recipient too
        # ("we're both 15"): they declare the one recipient of a message to one
        # person as they declare the sender, and in a room the person they
        # answer (``_reader``).
        self.for_recipient: Final = for_recipient
        # Rule ids of the declarations in ``for_recipient`` that speak for the
        # recipient only ("ur only 13"): they declare nothing of the sender,
        # and an attested adult saying them contradicts nothing.
        self.reader_only: Final = reader_only
        # The age in years an enforced declaration of the sender's in
        # ``matches`` gives ("im 17"); 0 when none gives one.
        self.sender_years: Final = sender_years

    def _fields(self) -> tuple[object, ...]:
        return (
            self.sender, self.recipients, self.matches, self.sender_age,
            self.recipient_ages, self.for_recipient, self.reader_only, self.sender_years,
        )  # fmt: skip

    def __eq__(self, other: object) -> bool:  # no __hash__: its map is not hashable
        if not isinstance(other, Observation):
            return NotImplemented
        return self._fields() == other._fields()

    def __repr__(self) -> str:
        return record_repr(self, _OBSERVATION_FIELDS, self._fields())


def decay(
    state: ConversationState, settings: RiskSettings, now: float, *, with_risk: bool = True
) -> ConversationState:
    """The state as of ``now`` with its decay applied: every score times
    2^(-(now - updated) / half_life) (at most ``max_idle_decay`` of silence)
    and the decay it already owed, stored to 6 digits; nothing owed.

    ``with_risk=False`` leaves ``risk`` as it was.
    """
    if not math.isfinite(now):
        raise ValueError("now must be a finite number")
    dt = now - state.updated
    if dt <= 0 and not state.owed:
        return state
    owed = _owing(state.owed, dt, settings)
    k = 0.5**owed
    pairs = dict(state.pairs)
    _decay_pairs(pairs, k)
    decayed = state.replace(
        updated=max(float(now), state.updated),
        scores=_scaled(state.scores, k),
        pairs=pairs,
        owed=0.0,
    )
    return _with_risk(decayed, settings) if with_risk else decayed


def _owing(owed: float, dt: float, settings: RiskSettings) -> float:
    """The decay owed after a silence of ``dt`` seconds, in half-lives."""
    if dt <= 0:
        return owed
    return min(owed + min(dt, settings.max_idle_decay) / settings.half_life, MAX_OWED)


def _decay_pairs(
    pairs: dict[tuple[str, str], PairState],
    k: float,
    before: Mapping[str, float] | None = None,
    after: Mapping[str, float] | None = None,
) -> None:
    """Scale, in place, the scores of every pair that has any (in ordinary
    chat most pairs have none and are kept as they are). A pair whose scores
    are ``before`` (the conversation's, in the same order: a conversation of
    two) takes ``after``, the same scores already scaled."""
    for key, p in pairs.items():
        if p.scores or p.shadow_scores:
            if after is not None and _same(p.scores, before):
                scores = after
            else:
                scores = _scaled(p.scores, k)
            shadow = _scaled(p.shadow_scores, k) if p.shadow_scores else p.shadow_scores
            pairs[key] = PairState(p.last, scores, p.stages, shadow, p.shadow_stages)


def _same(a: Mapping[str, float], b: Mapping[str, float] | None) -> bool:
    """The same scores in the same order (the order decides float sums)."""
    return a is b or (b is not None and len(a) == len(b) and list(a.items()) == list(b.items()))


_DECLARES: Final = {Signal.MINOR_SELF: Band.MINOR, Signal.ADULT_SELF: Band.ADULT}
_KEY_OF: Final = {s: s.value for s in Signal}  # a dict read is cheaper than .value
_NO_PAIR: Final = PairState(0)  # read, never changed: copied before any update


def observe(
    state: ConversationState,
    obs: Observation,
    settings: RiskSettings,
    now: float,
    *,
    pending: Mapping[str, tuple[str, int, float, bool]] | None = None,
    language: str | None = None,
) -> ConversationState:
    """Fold one message into the state (``now`` is when it was sent). The
    engine's own parts of the new state, when it passes them: its
    ``pending`` questions and ``language`` (``None``: as before).

    Why it is written this way: this runs for every chat message, so it works
    on mutable copies of the few maps a message changes and builds exactly one
    new state at the end; values it does not change (score maps, participants
    seen again at the same index) are shared with the old state, never
    mutated. A message without matches costs two last-seen updates, one more
    silence added to the decay owed and, only when some pair has a score, one
    reading of the risk; only a message that scores applies the decay.
    """
    if not math.isfinite(now):
        raise ValueError("now must be a finite number")
    index = state.messages
    dt = now - state.updated
    updated = float(now) if dt > 0 else state.updated
    owed = _owing(state.owed, dt, settings)
    matches = obs.matches
    scores_in = state.scores
    settling = bool(matches) and owed > 0  # a message that scores applies the decay owed
    if settling:
        k = 0.5**owed
        scores_in = _scaled(state.scores, k)

    participants = dict(state.participants)
    sender = participant_key(obs.sender)
    me = _seen(participants.get(sender), obs.sender_age, index)
    if matches or me.shadow_declared:
        reader_only = obs.reader_only
        me = _declaring(
            me, [m for m in matches if m.rule_id not in reader_only] if reader_only else matches
        )
    if obs.sender_years and obs.sender_years != me.years:
        me = Participant(
            me.attested, me.declared, me.shadow_declared, me.last_seen, obs.sender_years
        )
    participants[sender] = me
    targets = _targets(obs, sender, participants, settings)
    for user, key in targets:
        if key != ROOM_AUDIENCE:
            participants[key] = _seen(participants.get(key), obs.recipient_ages.get(user), index)
    if obs.for_recipient:
        reader = _reader(targets, state.pairs, index, sender)
        if reader is not None:
            participants[reader] = _declaring(participants[reader], obs.for_recipient)
    pairs = dict(state.pairs)
    if settling:
        _decay_pairs(pairs, k, state.scores, scores_in)

    scores: Mapping[str, float] = scores_in
    stages: Mapping[Stage, int] = state.stages
    if matches:
        contributions: list[_Contribution] = []
        contradiction = me.attested is Band.ADULT
        for m in matches:
            key = (
                AGE_CONTRADICTION
                if contradiction
                and m.signal is Signal.MINOR_SELF
                and m.rule_id not in obs.reader_only
                else _KEY_OF[m.signal]
            )
            # A quotation of grooming lines (a lesson) is not a grooming stage.
            stage = None if m.quoted else STAGE_OF.get(m.signal)
            contributions.append((key, m.weight, stage, m.shadow))
        top = settings.max_score
        scores = _added(scores_in, contributions, top, None)
        stages = _staged(state.stages, contributions, index, None)
        any_shadow = any(c[3] for c in contributions)
        owed = 0.0  # applied above
        for _, target in targets:
            pair = pairs.get((sender, target)) or _NO_PAIR
            pairs[(sender, target)] = PairState(
                index,
                # Shared with the conversation's when they are the same sum.
                scores
                if not any_shadow and _same(pair.scores, scores_in)
                else _added(pair.scores, contributions, top, False),
                _staged(pair.stages, contributions, index, False),
                _added(pair.shadow_scores, contributions, top, True)
                if any_shadow
                else pair.shadow_scores,
                _staged(pair.shadow_stages, contributions, index, True)
                if any_shadow
                else pair.shadow_stages,
            )
    else:
        for _, target in targets:
            old = pairs.get((sender, target))
            pairs[(sender, target)] = (
                PairState(index)
                if old is None
                else PairState(index, old.scores, old.stages, old.shadow_scores, old.shadow_stages)
            )
    if len(participants) > settings.max_participants:
        participants = _newest(participants, settings.max_participants, _last_seen)
    if len(pairs) > settings.max_pairs:
        pairs = _newest(pairs, settings.max_pairs, _last_on_pair)
    risk, enforced_risk = risks_of(participants, pairs, settings, owed)
    return ConversationState(
        updated,
        index + 1,
        scores,
        stages,
        participants,
        pairs,
        state.fired,
        state.fired_shadow,
        state.escalation,
        risk,
        enforced_risk,
        state.language if language is None else language,
        state.pending if pending is None else pending,  # the engine's (pending.py)
        owed,
    )


def _declaring(p: Participant, matches: Iterable[Match]) -> Participant:
    """``p`` with the ages ``matches`` declare added (enforced, or shadow
    for shadow matches not also enforced); ``p`` itself when none is new."""
    declaring = [(_DECLARES[m.signal], m.shadow) for m in matches if m.signal in _DECLARES]
    enforced = p.declared | {band for band, shadow in declaring if not shadow}
    shadow = (p.shadow_declared | {band for band, _ in declaring}) - enforced
    if enforced != p.declared or shadow != p.shadow_declared:
        return Participant(p.attested, enforced, shadow, p.last_seen, p.years)
    return p


_ATTESTED: Final = {"minor": Band.MINOR, "adult": Band.ADULT}


def _seen(p: Participant | None, attested: str | None, index: int) -> Participant:
    """A participant seen at ``index``; a minor/adult attestation replaces the
    stored one, "unknown" (or none) never erases it."""
    band = _ATTESTED.get(attested) if attested else None
    if p is None:
        return Participant(band or Band.UNKNOWN, last_seen=index)
    band = band or p.attested
    if band is p.attested and p.last_seen == index:
        return p
    return Participant(band, p.declared, p.shadow_declared, index, p.years)


def _reader(
    targets: Sequence[tuple[str, str]],
    pairs: Mapping[tuple[str, str], PairState],
    index: int,
    sender: str,
) -> str | None:
    """Whom a declaration about "you" ("ur only 13", "u look older than 13")
    declares: the one target of a direct or named message; in a room message
    that names no one, the person who sent the message before, when they are
    among its targets: such a message is most often a reply ("first cosplay at
    13 lol" / "u look way older than 13 in it"). Otherwise no one."""
    if len(targets) == 1:
        key = targets[0][1]
        return None if key == ROOM_AUDIENCE else key
    last = next((who for (who, _), pair in pairs.items() if pair.last == index - 1), None)
    if last is None or last in (sender, ROOM_AUDIENCE):
        return None
    return last if any(key == last for _, key in targets) else None


def _targets(
    obs: Observation, sender: str, participants: Mapping[str, Participant], settings: RiskSettings
) -> list[tuple[str, str]]:
    """The recipients that get a pair of their own: all of them up to
    ``max_fanout``; beyond that only minors, the rest share ``ROOM_AUDIENCE``."""
    if len(obs.recipients) == 1:  # a direct message: most messages
        user = obs.recipients[0]
        key = participant_key(user)
        return [(user, key)] if key != sender else [(ROOM_AUDIENCE, ROOM_AUDIENCE)]
    named = [(u, participant_key(u)) for u in dict.fromkeys(obs.recipients)]
    named = [(u, k) for u, k in named if k != sender]
    if not named:
        return [(ROOM_AUDIENCE, ROOM_AUDIENCE)]
    if len(named) <= settings.max_fanout:
        return named

    def minor(user: str, key: str) -> bool:
        band = attested_band(obs.recipient_ages.get(user))
        return band.minorish or (
            band is Band.UNKNOWN and (participants.get(key) or Participant()).band(True).minorish
        )

    minors = [(u, k) for u, k in named if minor(u, k)][: settings.max_fanout]
    return [*minors, (ROOM_AUDIENCE, ROOM_AUDIENCE)]


# A score is stored to 6 significant digits: float(f"{value:.6g}"), written
# inline below because it runs for every score on every message. Relative,
# not absolute, rounding: with a fixed number of decimals a small score would
# stop decaying in a busy conversation (each short step rounding back to the
# same value).
_Contribution = tuple[str, float, Stage | None, bool]  # (score key, weight, stage, shadow)


def _added(
    scores: Mapping[str, float],
    contributions: list[_Contribution],
    top: float,
    shadow: bool | None,
) -> dict[str, float]:
    """A copy of ``scores`` with the contributions (of that mode; ``None``:
    all) added one after the other, each clamped to ``top`` and stored."""
    out = dict(scores)
    for key, weight, _, is_shadow in contributions:
        if shadow is None or is_shadow is shadow:
            value = float(f"{min(out.get(key, 0.0) + weight, top):.6g}")  # stored
            if value < MIN_SCORE:
                out.pop(key, None)
            else:
                out[key] = value
    return out


def _staged(
    stages: Mapping[Stage, int],
    contributions: list[_Contribution],
    index: int,
    shadow: bool | None,
) -> Mapping[Stage, int]:
    """``stages`` with the stages the contributions (of that mode; ``None``:
    all) reach for the first time; ``stages`` itself when none is new (most
    scoring messages), so that what is worked out from it is kept."""
    new = [
        stage
        for _, _, stage, is_shadow in contributions
        if stage is not None and stage not in stages and (shadow is None or is_shadow is shadow)
    ]
    if not new:
        return stages
    out = dict(stages)
    for stage in new:
        out.setdefault(stage, index)
    return out


def _scaled(scores: Mapping[str, float], k: float) -> dict[str, float]:
    out = {}
    for key, v in scores.items():
        v = float(f"{v * k:.6g}")  # stored: 6 significant digits
        if v >= MIN_SCORE:
            out[key] = v
    return out


_V = TypeVar("_V")


def _last_seen(p: Participant) -> int:
    return p.last_seen


def _last_on_pair(p: PairState) -> int:
    return p.last


def _newest(items: dict[_V, Any], limit: int, last: Callable[[Any], int]) -> dict[_V, Any]:
    if len(items) <= limit:
        return items
    keep = sorted(items.items(), key=lambda kv: (last(kv[1]), repr(kv[0])), reverse=True)[:limit]
    return dict(keep)


# --- Risk ------------------------------------------------------------------------


def _with_risk(state: ConversationState, settings: RiskSettings) -> ConversationState:
    risk, enforced = risks_of(state.participants, state.pairs, settings, state.owed)
    if risk == state.risk and enforced == state.enforced_risk:
        return state
    return state.replace(risk=risk, enforced_risk=enforced)


# --- Thresholds and severity ---------------------------------------------------------


def threshold_key(threshold: Threshold) -> str:
    return threshold.key


def has_minor(state: ConversationState, *, include_shadow: bool = False) -> bool:
    return any(p.band(include_shadow).minorish for p in state.participants.values())


def cross_thresholds(
    state: ConversationState, thresholds: Iterable[Threshold]
) -> tuple[ConversationState, list[tuple[Threshold, bool]]]:
    """Thresholds reached for the first time, each with whether it fired only in
    shadow (reached only thanks to shadow matches). Each fires once per
    conversation; one fired in shadow can still fire for real later."""
    ordered = sorted(thresholds, key=lambda t: t.at)[:MAX_THRESHOLDS]
    crossed: list[tuple[Threshold, bool]] = []
    top = max(state.risk, state.enforced_risk)
    if not ordered or top < ordered[0].at:
        return state, crossed  # below every threshold: most messages
    # The state's sets are only read: in a conversation above its
    # thresholds most messages fire nothing new, and need no copies.
    fired, fired_shadow = state.fired, state.fired_shadow
    new: set[str] = set()  # fired for real by this message
    new_shadow: set[str] = set()  # fired in shadow by this message
    for th in ordered:
        if th.at > top:
            break  # in order: neither risk reaches this one or any after it
        key = threshold_key(th)
        if key in fired or key in new:
            continue
        if state.enforced_risk >= th.at and (not th.require_minor or has_minor(state)):
            new.add(key)
            crossed.append((th, False))
        elif (
            key not in fired_shadow
            and key not in new_shadow
            and state.risk >= th.at
            and (not th.require_minor or has_minor(state, include_shadow=True))
        ):
            new_shadow.add(key)
            crossed.append((th, True))
    if not crossed:
        return state, crossed
    return state.replace(fired=fired | new, fired_shadow=(fired_shadow | new_shadow) - new), crossed


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def escalation_severity(
    risk: float,
    state: ConversationState,
    settings: RiskSettings = DEFAULT_SETTINGS,
    *,
    include_shadow: bool = False,
) -> str:
    """The severity of an escalation that names none: the highest band of
    ``severity_at`` that ``risk`` reaches; at least ``sexual_with_minor_severity``
    once a minor's relationship with a non-minor reached the sexual stage; never
    below what this conversation was already escalated at."""
    severity = "low"
    for name in SEVERITIES[1:]:
        if risk >= settings.severity_at[name]:
            severity = name
    candidates = [severity, state.escalation or "low"]
    if _sexual_with_minor(state, include_shadow):
        candidates.append(settings.sexual_with_minor_severity)
    return max(candidates, key=severity_rank)


def _sexual_with_minor(state: ConversationState, include_shadow: bool) -> bool:
    for (x, y), pair in state.pairs.items():
        # The stages of ``pair.view(include_shadow)``, without copying them.
        sexual = Stage.SEXUAL in pair.stages or (
            include_shadow and Stage.SEXUAL in pair.shadow_stages
        )
        if ROOM_AUDIENCE in (x, y) or not sexual:
            continue
        bx, by = ((state.participants.get(k) or Participant()).band(include_shadow) for k in (x, y))
        if bx.minorish != by.minorish:
            return True
    return False


def record_escalation(state: ConversationState, severity: str) -> ConversationState:
    """The state remembering an (enforced) escalation at ``severity``; a severity
    outside ``SEVERITIES`` is ignored."""
    if severity not in SEVERITIES or (
        state.escalation is not None and severity_rank(state.escalation) >= severity_rank(severity)
    ):
        return state
    return state.replace(escalation=severity)
