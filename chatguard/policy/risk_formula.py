"""The risk formula: how risky a conversation's state is, read out of it.

This module owns the reading side of the risk model (``docs/risk-model.md``,
"The formula"): per dyad, the capped and weighted signal totals, the
dangerous combinations, the relationship multiplier ``m`` and the stage
progression bonus ``P``; a conversation's risk is its worst dyad.
``risk.observe`` calls ``risks_of`` after every message.

Scores are read as decayed (``state.py``, invariant 5): each stored score
times ``0.5 ** owed``, and a score that decayed below ``MIN_READ`` is not
read at all, as if it had been dropped.

Invariants: pure functions of a state and settings (no I/O, no clock); the
order of the float additions is fixed (it decides the last digit, and the
stored risk must not change between versions without a reason); every
reading of the same state gives the same number. What a direction's reading
needs besides its decay (each score's factor and cap, the combinations it
can form by position, its stage bonus, its least score) is remembered for
its score and stage maps, which are never changed and are shared by the
states of a conversation until a message scores (``_static``); the stage
bonus also per stage map alone, which most scoring messages keep
(``_bonus``): bounded memos, keyed by those very objects, that change no
result. While every score of such a direction is still read (its least
score decayed is still read), the reading is one pass over a list.
Never: change a state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from chatguard.policy.model import Signal, Stage
from chatguard.policy.risk_settings import DEFAULT_SETTINGS, RiskSettings
from chatguard.policy.state import (
    ADULTISH,
    MIN_READ,
    MINORISH,
    ROOM_AUDIENCE,
    Band,
    ConversationState,
    PairState,
    Participant,
)

#: Phases of O'Connell's stages: building rapport, testing and isolating, harm.
_PHASE: Final = {
    Stage.FRIENDSHIP: 0, Stage.RELATIONSHIP: 0, Stage.RISK_ASSESSMENT: 1,
    Stage.EXCLUSIVITY: 1, Stage.SEXUAL: 2, Stage.CONTACT: 2,
}  # fmt: skip


def in_grooming_order(stages: Mapping[Stage, int]) -> bool:
    """Whether every stage of an earlier phase was first reached no later than
    every stage of a later phase (the same message counts as in order)."""
    first = [math.inf, math.inf, math.inf]  # per phase: earliest first index
    last = [-math.inf, -math.inf, -math.inf]  # per phase: latest first index
    for stage, i in stages.items():
        phase = _PHASE[stage]
        if i < first[phase]:
            first[phase] = i
        if i > last[phase]:
            last[phase] = i
    return last[0] <= first[1] and last[0] <= first[2] and last[1] <= first[2]


def progression(stages: Mapping[Stage, int], settings: RiskSettings = DEFAULT_SETTINGS) -> float:
    """P: 0 below ``min_stages`` distinct stages, then ``stage_bonus`` per stage
    from the ``min_stages``-th on, plus ``order_bonus`` when in grooming order."""
    if len(stages) < settings.min_stages:
        return 0.0
    bonus = settings.stage_bonus * (len(stages) - settings.min_stages + 1)
    return bonus + (settings.order_bonus if in_grooming_order(stages) else 0.0)


def multiplier(a: Band, b: Band, settings: RiskSettings, *, attested_adults: bool = False) -> float:
    """m: the weight of a relationship between people of bands ``a`` and ``b``."""
    a_minor = a in MINORISH
    if a_minor != (b in MINORISH):
        other = b if a_minor else a
        return settings.adult_to_minor if other in ADULTISH else settings.unknown_to_minor
    if a_minor:
        return settings.minor_to_minor
    return settings.adult_to_adult if attested_adults else 1.0


def dyad_risks(
    state: ConversationState, settings: RiskSettings, *, include_shadow: bool = True
) -> dict[tuple[str, str], float]:
    """R_D for every dyad (two participant keys, sorted) as of ``state.updated``."""
    dyads = {(x, y) if x < y else (y, x) for x, y in state.pairs}
    k = 0.5**state.owed
    return {
        d: _dyad_risk(state.participants, state.pairs, d, settings, include_shadow, k)
        for d in sorted(dyads)
    }


_KINSHIP: Final = Signal.KINSHIP.value
_OPENNESS: Final = Signal.OPENNESS.value
_SECRECY: Final = Signal.SECRECY.value
_ADULT: Final = Band.ADULT  # a module constant: enum member lookups cost on hot paths
_NOBODY: Final = Participant()
_NO_STAGES: Final[Mapping[Stage, int]] = {}  # read, never changed
_PLAIN: Final = (1.0, math.inf)  # (factor, cap) of a score key the settings do not name


def _decayed(scores: Mapping[str, float], k: float) -> dict[str, float]:
    """Scores as read: times ``k``, the faded ones left out."""
    out = {}
    for key, s in scores.items():
        s *= k
        if s >= MIN_READ:
            out[key] = s
    return out


def _shadow_view(pair: PairState, k: float) -> tuple[dict[str, float], dict[Stage, int]]:
    """``pair.view(True)`` of the scores as read: enforced and shadow scores
    decay, and fade, each on their own before they are added."""
    scores = _decayed(pair.scores, k)
    for key, v in _decayed(pair.shadow_scores, k).items():
        scores[key] = scores.get(key, 0.0) + v
    stages = dict(pair.stages)
    for st, i in pair.shadow_stages.items():
        stages[st] = min(stages.get(st, i), i)
    return scores, stages


def _dyad_risk(
    participants: Mapping[str, Participant],
    pairs: Mapping[tuple[str, str], PairState],
    dyad: tuple[str, str],
    settings: RiskSettings,
    include_shadow: bool,
    k: float,
) -> float:
    # Runs for every message of a conversation that has any score, so it is
    # written for speed; the arithmetic (and its order, which decides the
    # float result) is the formula's in the module docstring. ``k`` is the
    # decay the stored scores owe.
    a, b = dyad
    pa, pb = participants.get(a) or _NOBODY, participants.get(b) or _NOBODY
    band_a = Band.UNKNOWN if a == ROOM_AUDIENCE else pa.band(include_shadow)
    band_b = Band.UNKNOWN if b == ROOM_AUDIENCE else pb.band(include_shadow)
    # Each direction that holds anything: (scores, stages, toward a minor,
    # the decay its scores still owe, whether they are the stored maps).
    views: list[tuple[Mapping[str, float], Mapping[Stage, int], bool, float, bool]] = []
    for x, y, to_minor in ((a, b, band_b in MINORISH), (b, a, band_a in MINORISH)):
        pair = pairs.get((x, y))
        if pair is None:
            continue
        if include_shadow and (pair.shadow_scores or pair.shadow_stages):
            views.append((*_shadow_view(pair, k), to_minor, 1.0, False))
        elif pair.scores or pair.stages:  # an empty direction adds nothing
            views.append((pair.scores, pair.stages, to_minor, k, True))
    totals: dict[str, float] = {}
    stages: Mapping[Stage, int] = _NO_STAGES
    kin = False  # the dyad showed the two are family (a kinship score still read)
    open_ = False  # the adult brought the child's parents in (an openness score still read)
    family = 1.0  # the share of their weight ordinary signals keep in this dyad
    combinations = settings.combinations
    bonus: float | None = None  # the stage bonus, when already known
    stored_stages = True  # ``stages`` is a stored map, never changed
    if len(views) == 1 and _KINSHIP not in views[0][0] and _OPENNESS not in views[0][0]:
        # One direction of people not shown to be family (most dyads): the
        # sum over directions is the direction itself, capped as it is read.
        scores, stages, to_minor, owed, stored = views[0]
        stored_stages = stored
        if stored:
            static = _static(scores, stages, to_minor, settings)
            if static.least * owed >= MIN_READ:
                # Every score is still read (the usual case): the capped
                # values in the maps' order, summed as the dict below would be.
                values = []
                for s, f, cap in static.factors:
                    v = f * (s * owed)
                    values.append(cap if v > cap else v)
                total = sum(values, 0.0)
                total += sum([c * min(values[i], values[j]) for i, j, c in static.pairs], 0.0)
                return _weighed(
                    total, static.bonus, 1.0, False, dyad, pa, pb, band_a, band_b, settings
                )
            # Some score faded below what is read (a long silence): by key.
            items, combinations, bonus = static.items(), static.combinations(), static.bonus
        else:
            items = _read(scores, settings._reading[to_minor])
        for key, s, f, cap in items:
            s *= owed
            if s >= MIN_READ:
                v = f * s
                totals[key] = cap if v > cap else v
    else:
        for scores, pair_stages, to_minor, owed, stored in views:
            reading = settings._reading[to_minor]
            for key, s in scores.items():
                s *= owed
                if s >= MIN_READ:
                    totals[key] = totals.get(key, 0.0) + reading.get(key, _PLAIN)[0] * s
                    if key == _KINSHIP:
                        kin = True
                    elif key == _OPENNESS:
                        open_ = True
            if not stages:
                stages = pair_stages
                stored_stages = stored
            elif pair_stages:
                merged = dict(stages)
                for st, i in pair_stages.items():
                    merged[st] = min(merged.get(st, i), i)
                stages = merged
                stored_stages = False
        # Someone who also asks for secrecy is not bringing the parents in.
        family = (
            settings.kinship_factor
            if kin
            else settings.openness_factor
            if open_ and _SECRECY not in totals
            else 1.0
        )
        if family != 1.0:
            for key in settings.kinship_signals:
                if key in totals:
                    totals[key] *= family
        caps = settings.signal_caps
        for key, v in totals.items():
            limit = caps.get(key)
            if limit is not None and v > limit:
                totals[key] = limit
    if not totals:
        return 0.0
    # Sums start at 0.0, not sum()'s int 0 (the same value), so that they
    # are floats to the type checker and to a compiled build alike.
    total = sum(totals.values(), 0.0)
    # A combination with a missing signal adds c * 0.0, which changes no sum.
    total += sum(
        [c * min(totals[x], totals[y]) for x, y, c in combinations if x in totals and y in totals],
        0.0,
    )
    if bonus is None:
        # A merged stage map is new on every reading: not worth remembering.
        bonus = _bonus(stages, settings) if stored_stages else progression(stages, settings)
    return _weighed(total, bonus, family, kin, dyad, pa, pb, band_a, band_b, settings)


def _weighed(
    total: float,
    bonus: float,
    family: float,
    kin: bool,
    dyad: tuple[str, str],
    pa: Participant,
    pb: Participant,
    band_a: Band,
    band_b: Band,
    settings: RiskSettings,
) -> float:
    """R_D from the dyad's sum of signals and combinations: times the
    relationship multiplier and the progression bonus."""
    minors = band_a in MINORISH and band_b in MINORISH
    # Two minors who said ages years apart are not peers (``minor_age_gap``).
    apart = (
        minors
        and settings.minor_age_gap > 0
        and pa.years > 0
        and pb.years > 0
        and abs(pa.years - pb.years) >= settings.minor_age_gap
    )
    if bonus and minors and not apart:
        bonus *= settings.progression_between_minors
    bonus *= family
    m = 1.0
    if ROOM_AUDIENCE not in dyad:
        both_adult = pa.attested is _ADULT and pb.attested is _ADULT
        if apart:
            m = settings.minor_gap_multiplier
        else:
            m = multiplier(band_a, band_b, settings, attested_adults=both_adult)
        if kin and m > 1.0:
            m = 1.0  # a parent and their child are not a stranger and a child
    return m * total * (1.0 + bonus)


_Item = tuple[str, float, float, float]  # (score key, stored score, factor, cap)


class _Static:
    """What reading one direction's stored maps takes besides the decay: each
    score with its factor and cap (in the maps' order, which the sums keep),
    the combinations both of whose signals it holds (in the settings' order,
    by position), the stage bonus, and the least stored score, which says
    whether every score is still read (decay keeps the order of scores)."""

    __slots__ = ("bonus", "factors", "keys", "least", "pairs")

    def __init__(
        self,
        scores: Mapping[str, float],
        stages: Mapping[Stage, int],
        to_minor: bool,
        settings: RiskSettings,
    ) -> None:
        # Built once per scoring message: one plain loop, no generators.
        reading = settings._reading[to_minor]
        position: dict[str, int] = {}
        factors: list[tuple[float, float, float]] = []
        for key, s in scores.items():
            f, cap = reading.get(key, _PLAIN)
            position[key] = len(factors)
            factors.append((s, f, cap))
        self.keys = tuple(position)
        self.factors = factors
        self.pairs = [
            (position[x], position[y], c)
            for x, y, c in settings.combinations
            if x in position and y in position
        ]
        self.bonus = _bonus(stages, settings)
        self.least = min(scores.values()) if scores else 0.0

    def combinations(self) -> tuple[tuple[str, str, float], ...]:
        """The combinations it can form, by score key."""
        keys = self.keys
        return tuple((keys[i], keys[j], c) for i, j, c in self.pairs)

    def items(self) -> tuple[_Item, ...]:
        """Each score with its factor and cap, by score key."""
        return tuple((k, *sfc) for k, sfc in zip(self.keys, self.factors, strict=True))


# Keyed by the identities of the maps and settings, which each entry holds,
# so that no identity is reused while its entry lives. Cleared when full:
# it only saves work, and a conversation's maps are read again at once.
_STATICS: Final[dict[tuple[int, int, bool, int], tuple[object, object, object, _Static]]] = {}
_MAX_STATICS: Final = 4096
# The stage bonus per stage map: a message that scores changes the score map
# and, far less often, the stage map (``risk.observe`` shares it until then).
_BONUSES: Final[dict[tuple[int, int], tuple[object, object, float]]] = {}


def _read(
    scores: Mapping[str, float], reading: Mapping[str, tuple[float, float]]
) -> tuple[_Item, ...]:
    """Each score with its factor and cap, in the map's order."""
    return tuple((k, s, *reading.get(k, _PLAIN)) for k, s in scores.items())


def _bonus(stages: Mapping[Stage, int], settings: RiskSettings) -> float:
    """``progression``, remembered per stage map (see the docstring)."""
    if not stages:
        return progression(stages, settings)
    key = (id(stages), id(settings))
    got = _BONUSES.get(key)
    if got is None or got[0] is not stages or got[1] is not settings:
        if len(_BONUSES) >= _MAX_STATICS:
            _BONUSES.clear()
        got = _BONUSES[key] = (stages, settings, progression(stages, settings))
    return got[2]


def _static(
    scores: Mapping[str, float], stages: Mapping[Stage, int], to_minor: bool, settings: RiskSettings
) -> _Static:
    """What reading one direction's stored maps takes besides the decay,
    remembered per maps (see the docstring)."""
    key = (id(scores), id(stages), to_minor, id(settings))
    got = _STATICS.get(key)
    if got is None or got[0] is not scores or got[1] is not stages or got[2] is not settings:
        if len(_STATICS) >= _MAX_STATICS:
            _STATICS.clear()
        got = _STATICS[key] = (
            scores,
            stages,
            settings,
            _Static(scores, stages, to_minor, settings),
        )
    return got[3]


def _max_risk(
    participants: Mapping[str, Participant],
    pairs: Mapping[tuple[str, str], PairState],
    settings: RiskSettings,
    include_shadow: bool,
    k: float,
) -> float:
    if len(pairs) == 1:  # a conversation where one person has spoken to one other
        ((x, y),) = pairs
        dyad = (x, y) if x < y else (y, x)
        risk = _dyad_risk(participants, pairs, dyad, settings, include_shadow, k)
        return round(max(0.0, risk), 4)
    worst = 0.0
    seen: set[tuple[str, str]] = set()
    for x, y in pairs:
        dyad = (x, y) if x < y else (y, x)
        if dyad not in seen:
            seen.add(dyad)
            risk = _dyad_risk(participants, pairs, dyad, settings, include_shadow, k)
            worst = max(worst, risk)
    return round(worst, 4)


def conversation_risk(
    state: ConversationState, settings: RiskSettings, *, include_shadow: bool = True
) -> float:
    """The conversation's risk as of ``state.updated``: its worst dyad."""
    return _max_risk(state.participants, state.pairs, settings, include_shadow, 0.5**state.owed)


def risks_of(
    participants: Mapping[str, Participant],
    pairs: Mapping[tuple[str, str], PairState],
    settings: RiskSettings,
    owed: float = 0.0,
) -> tuple[float, float]:
    """(risk, enforced risk), the pairs' scores owing ``owed`` half-lives of
    decay. Zero without reading anything when no pair has a score (ordinary
    chat); one reading when no pair has a shadow score."""
    scored = shadow = False
    for p in pairs.values():
        if p.shadow_scores:
            scored = shadow = True
            break
        if p.scores:
            scored = True
    if not scored:
        return 0.0, 0.0
    k = 0.5**owed
    risk = _max_risk(participants, pairs, settings, True, k)
    if not shadow:
        return risk, risk
    return risk, _max_risk(participants, pairs, settings, False, k)
