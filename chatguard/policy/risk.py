"""Conversation risk: what a conversation's history says about danger to a child.

This module owns ``ConversationState`` (everything ChatGuard remembers about
one conversation between two messages) and the pure functions that fold one
message's matches into it and read a risk score out of it. The formula, its
defaults and its sources are explained for analysts in ``docs/risk-model.md``.
In short, for each *dyad* D (two people; each direction x→y of it keeps its own
decayed score S per signal):

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
4. ``ConversationState.from_json(s.to_json()) == s`` for every state built here.

Never: decide actions (``engine.py`` does), look at message text, or let a
self-declared age override an attested one.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from chatguard.policy.model import STAGE_OF, Match, Signal, Stage, Threshold

VERSION = 1
AGE_CONTRADICTION = "age_contradiction"  # a score key that is not a rule signal
ROOM_AUDIENCE = "*"  # the recipient of a message with no (or too many) named recipients
SEVERITIES = ("low", "medium", "high", "critical")
_EPSILON = 1e-3
_MAX_ID_BYTES = 64
_MAX_THRESHOLDS = 64
_MAX_LANGUAGE = 16  # a language code such as "pt-br"


class Band(enum.StrEnum):
    MINOR = "minor"
    ADULT = "adult"
    UNKNOWN = "unknown"
    LIKELY_MINOR = "likely_minor"
    LIKELY_ADULT = "likely_adult"

    @property
    def minorish(self) -> bool:
        return self in _MINORISH

    @property
    def adultish(self) -> bool:
        return self in _ADULTISH

    @property
    def collapsed(self) -> Band:
        """The band as a rule scope spells it: minor, adult or unknown."""
        return Band.MINOR if self.minorish else Band.ADULT if self.adultish else Band.UNKNOWN


_UNKNOWN = Band.UNKNOWN  # a module constant: enum member lookups cost on hot paths
_MINORISH = frozenset({Band.MINOR, Band.LIKELY_MINOR})
_ADULTISH = frozenset({Band.ADULT, Band.LIKELY_ADULT})


def attested_band(value: str | None) -> Band:
    """A platform attestation as a band; anything but minor/adult is unknown."""
    return Band.MINOR if value == "minor" else Band.ADULT if value == "adult" else Band.UNKNOWN


# --- Settings ------------------------------------------------------------------------

_S = Signal
_SCORE_KEYS_ALL = (*(s.value for s in Signal), "age_contradiction")
#: Per-signal factor (default 1.0): ordinary-in-isolation signals count less.
_FACTORS: Mapping[str, float] = {
    _S.AGE_PROBE: 0.5,
    _S.MINOR_SELF: 0.25,
    _S.ADULT_SELF: 0.25,
    _S.FLATTERY: 0.5,
    _S.PI_REQUEST: 0.75,
    _S.PI_SHARE: 0.5,
    _S.MEETING: 0.5,
    _S.GIFT_LURE: 0.75,
    # A disclosure says the child needs help, not that the listener is a danger;
    # its own trigger acts on it.
    _S.SAFEGUARDING: 0.0,
    AGE_CONTRADICTION: 3.0,
}
#: Per-dyad ceiling of ordinary signals: asking ten times is not ten times as bad.
_CAPS: Mapping[str, float] = {
    _S.AGE_PROBE: 0.5,
    _S.MINOR_SELF: 0.5,
    _S.ADULT_SELF: 0.5,
    _S.FLATTERY: 1.5,
    _S.PI_SHARE: 1.0,
    _S.MEETING: 1.5,
    _S.EVASION: 1.0,
}
_COMBINATIONS: tuple[tuple[str, str, float], ...] = (
    (_S.MEETING, _S.SECRECY, 1.0),
    (_S.IMAGE_REQUEST, _S.SECRECY, 1.0),
    (_S.ISOLATION, _S.SECRECY, 0.5),
    (_S.RISK_CHECK, _S.MEETING, 0.5),
    (_S.GIFT_LURE, _S.IMAGE_REQUEST, 0.5),
)


@dataclass(frozen=True, slots=True)
class Trigger:
    """A signal that acts on its own message, whatever the accumulated risk."""

    severity: str
    category: str
    banner: str | None = None  # shown to the sender
    capture: tuple[int, int] | None = None  # messages of context (before, after)


_TRIGGERS = {
    "sextortion": Trigger("critical", "sextortion", capture=(50, 10)),
    "safeguarding": Trigger("high", "safeguarding", banner="safeguarding_help"),
}


@dataclass(frozen=True, slots=True)
class RiskSettings:
    """Every number of the risk model. ``settings.risk`` in ``policy.yaml``
    overrides them (``parse_settings``); ``half_life`` is the pack's own."""

    half_life: float = 1800.0
    adult_to_minor: float = 2.0
    unknown_to_minor: float = 1.5
    adult_to_adult: float = 0.5
    minor_target_factor: float = 1.5
    minor_target_signals: frozenset[str] = frozenset({_S.IMAGE_REQUEST, _S.SEXUAL, _S.ISOLATION})
    signal_factors: Mapping[str, float] = field(default_factory=lambda: dict(_FACTORS))
    signal_caps: Mapping[str, float] = field(default_factory=lambda: dict(_CAPS))
    combinations: tuple[tuple[str, str, float], ...] = _COMBINATIONS
    min_stages: int = 3
    stage_bonus: float = 0.25
    order_bonus: float = 0.5
    progression_between_minors: float = 0.0
    evasion_weight: float = 0.5
    severity_at: Mapping[str, float] = field(
        default_factory=lambda: {"medium": 8.0, "high": 16.0, "critical": 32.0}
    )
    sexual_with_minor_severity: str = "high"
    sextortion: Trigger | None = _TRIGGERS["sextortion"]
    safeguarding: Trigger | None = _TRIGGERS["safeguarding"]
    max_participants: int = 50
    max_pairs: int = 32
    max_fanout: int = 8
    max_score: float = 1000.0
    # Derived from the fields above for the risk reading's inner loop: score
    # key -> (factor, factor toward a minor); keys not in it have factor 1.0.
    _factors: Mapping[str, tuple[float, float]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        table = {}
        for key in _SCORE_KEYS_ALL:
            f = self.signal_factors.get(key, 1.0)
            table[key] = (
                f,
                f * self.minor_target_factor if key in self.minor_target_signals else f,
            )
        object.__setattr__(self, "_factors", table)

    def factor(self, key: str) -> float:
        return self.signal_factors.get(key, 1.0)


DEFAULT_SETTINGS = RiskSettings()
_SCORE_KEYS = frozenset([*(s.value for s in Signal), AGE_CONTRADICTION])
_FLOATS = {
    "adult_to_minor": 100.0,
    "unknown_to_minor": 100.0,
    "adult_to_adult": 100.0,
    "minor_target_factor": 100.0,
    "stage_bonus": 100.0,
    "order_bonus": 100.0,
    "progression_between_minors": 1.0,
    "evasion_weight": 100.0,
    "max_score": 1e9,
}
_INTS = {"min_stages": 6, "max_participants": 1000, "max_pairs": 1000, "max_fanout": 1000}


def parse_settings(settings: Mapping[str, Any], *, half_life: float = 1800.0) -> RiskSettings:
    """``RiskSettings`` from a policy's ``settings`` (its ``risk`` key).

    Raises ``ValueError`` naming ``settings.risk.<key>`` for an unknown key or
    a bad value, so a pack with a typo is refused at load.
    """
    raw = settings.get("risk")
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ValueError("settings.risk: must be a mapping")
    base = RiskSettings(half_life=_number("half_life", half_life, math.inf, positive=True))
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"settings.risk.{key}"
        if key in _FLOATS:
            changes[key] = _number(where, value, _FLOATS[key], positive=key == "max_score")
        elif key in _INTS:
            changes[key] = _whole(where, value, 1, _INTS[key])
        elif key == "minor_target_signals":
            changes[key] = frozenset(_signal(where, s) for s in _list(where, value))
        elif key in ("signal_factors", "signal_caps"):
            merged = dict(getattr(base, key))
            for name, number in _mapping(where, value).items():
                name = _score_key(f"{where}.{name}", name)
                if number is None and key == "signal_caps":
                    merged.pop(name, None)
                else:
                    merged[name] = _number(f"{where}.{name}", number, 1000.0)
            changes[key] = merged
        elif key == "combinations":
            changes[key] = tuple(
                _combination(f"{where}[{i}]", c) for i, c in enumerate(_list(where, value))
            )
        elif key == "severity_at":
            bands = dict(base.severity_at)
            for name, number in _mapping(where, value).items():
                if name not in SEVERITIES[1:]:
                    raise ValueError(f"{where}.{name}: must be one of medium, high, critical")
                bands[name] = _number(f"{where}.{name}", number, 1e9)
            if not bands["medium"] <= bands["high"] <= bands["critical"]:
                raise ValueError(f"{where}: must satisfy medium <= high <= critical")
            changes[key] = bands
        elif key == "sexual_with_minor_severity":
            changes[key] = _severity(where, value)
        elif key in ("sextortion", "safeguarding"):
            changes[key] = _trigger(where, value, _TRIGGERS[key])
        else:
            raise ValueError(f"{where}: unknown setting")
    return replace(base, **changes)


def _number(where: str, value: object, most: float, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{where}: must be a number, got {value!r}")
    if value < 0 or (positive and value == 0) or value > most:
        raise ValueError(f"{where}: must be {'>' if positive else '>='} 0 and <= {most:g}")
    return float(value)


def _whole(where: str, value: object, least: int, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise ValueError(f"{where}: must be a whole number from {least} to {most}")
    return value


def _list(where: str, value: object) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{where}: must be a list")
    return list(value)


def _mapping(where: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: must be a mapping")
    return value


def _signal(where: str, value: object) -> str:
    if value not in {s.value for s in Signal}:
        raise ValueError(f"{where}: unknown signal {value!r}")
    return str(value)


def _score_key(where: str, value: object) -> str:
    if value not in _SCORE_KEYS:
        raise ValueError(f"{where}: unknown signal {value!r}")
    return str(value)


def _severity(where: str, value: object) -> str:
    if value not in SEVERITIES:
        raise ValueError(f"{where}: must be one of {', '.join(SEVERITIES)}")
    return str(value)


def _combination(where: str, value: object) -> tuple[str, str, float]:
    item = _list(where, value)
    if len(item) != 3:
        raise ValueError(f"{where}: must be [signal, signal, bonus]")
    return _signal(where, item[0]), _signal(where, item[1]), _number(where, item[2], 100.0)


def _trigger(where: str, value: object, default: Trigger) -> Trigger | None:
    if value is False or value is None:
        return None
    known = {"severity", "category", "banner", "capture"}
    raw = _mapping(where, value)
    if unknown := set(raw) - known:
        raise ValueError(f"{where}.{sorted(unknown)[0]}: unknown setting")
    trigger = default
    if "severity" in raw:
        trigger = replace(trigger, severity=_severity(f"{where}.severity", raw["severity"]))
    if "category" in raw:
        if not isinstance(raw["category"], str) or not raw["category"]:
            raise ValueError(f"{where}.category: must be a non-empty string")
        trigger = replace(trigger, category=raw["category"])
    if "banner" in raw:
        if raw["banner"] not in (None, False) and not isinstance(raw["banner"], str):
            raise ValueError(f"{where}.banner: must be a banner id or null")
        trigger = replace(trigger, banner=raw["banner"] or None)
    if "capture" in raw:
        capture = raw["capture"]
        if capture in (None, False):
            trigger = replace(trigger, capture=None)
        else:
            c = _mapping(f"{where}.capture", capture)
            before = _whole(f"{where}.capture.before", c.get("before", 0), 0, 1000)
            after = _whole(f"{where}.capture.after", c.get("after", 0), 0, 1000)
            trigger = replace(trigger, capture=(before, after))
    return trigger


# --- State ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Participant:
    """What is known about one person's age, and when they were last active."""

    attested: Band = Band.UNKNOWN  # the latest minor/adult attestation
    declared: frozenset[Band] = frozenset()  # self-declarations (MINOR, ADULT) by enforced rules
    shadow_declared: frozenset[Band] = frozenset()  # ... only by shadow rules
    last_seen: int = 0  # index of the last message they sent or received

    def band(self, include_shadow: bool) -> Band:
        if self.attested is not _UNKNOWN:
            return self.attested
        declared = self.declared | self.shadow_declared if include_shadow else self.declared
        if not declared:
            return _UNKNOWN
        if Band.MINOR in declared:
            return Band.LIKELY_MINOR
        return Band.LIKELY_ADULT if Band.ADULT in declared else _UNKNOWN

    @property
    def effective(self) -> Band:
        """The band that protection and risk use (enforced declarations only)."""
        return self.band(include_shadow=False)

    @property
    def contradiction(self) -> bool:
        """An attested adult claiming to be a minor."""
        return self.attested is Band.ADULT and Band.MINOR in self.declared


@dataclass(frozen=True, slots=True)
class PairState:
    """One direction sender→recipient: decayed score per signal, first stages."""

    last: int  # index of the last message on this pair
    scores: Mapping[str, float] = field(default_factory=dict)
    stages: Mapping[Stage, int] = field(default_factory=dict)  # stage -> first message index
    shadow_scores: Mapping[str, float] = field(default_factory=dict)
    shadow_stages: Mapping[Stage, int] = field(default_factory=dict)

    def view(self, include_shadow: bool) -> tuple[dict[str, float], dict[Stage, int]]:
        scores, stages = dict(self.scores), dict(self.stages)
        if include_shadow:
            for k, v in self.shadow_scores.items():
                scores[k] = scores.get(k, 0.0) + v
            for st, i in self.shadow_stages.items():
                stages[st] = min(stages.get(st, i), i)
        return scores, stages


@dataclass(frozen=True, slots=True)
class ConversationState:
    """All that is remembered about one conversation. Scores are as of ``updated``."""

    updated: float = 0.0  # the ``now`` of the last message
    messages: int = 0  # messages seen; a message's index is the count before it
    scores: Mapping[str, float] = field(default_factory=dict)  # whole conversation, raw
    stages: Mapping[Stage, int] = field(default_factory=dict)  # whole conversation
    participants: Mapping[str, Participant] = field(default_factory=dict)
    pairs: Mapping[tuple[str, str], PairState] = field(default_factory=dict)
    fired: frozenset[str] = frozenset()  # thresholds fired (enforced), see threshold_key
    fired_shadow: frozenset[str] = frozenset()  # thresholds fired only in shadow
    escalation: str | None = None  # highest severity escalated so far (enforced)
    risk: float = 0.0  # conversation risk as of ``updated``, shadow matches included
    enforced_risk: float = 0.0  # the same without shadow matches
    language: str | None = None  # the language its rules last matched in (a tie-breaker)

    def participant(self, user: str) -> Participant | None:
        return self.participants.get(participant_key(user))

    def bands(self, user: str) -> tuple[Band, Band]:
        """``(attested, effective)`` for a user (unknown when not remembered)."""
        p = self.participant(user) or Participant()
        return p.attested, p.effective

    def to_json(self) -> bytes:
        obj = {
            "v": VERSION,
            "t": self.updated,
            "n": self.messages,
            "s": _enc_scores(self.scores),
            "g": _enc_stages(self.stages),
            "p": {
                k: [
                    _BAND_CODE[p.attested],
                    _enc_bands(p.declared),
                    _enc_bands(p.shadow_declared),
                    p.last_seen,
                ]
                for k, p in self.participants.items()
            },
            "d": [
                [x, y, p.last, _enc_scores(p.scores), _enc_stages(p.stages)]
                + (
                    [_enc_scores(p.shadow_scores), _enc_stages(p.shadow_stages)]
                    if p.shadow_scores or p.shadow_stages
                    else []
                )
                for (x, y), p in self.pairs.items()
            ],
            "f": sorted(self.fired),
            "fs": sorted(self.fired_shadow),
            "e": self.escalation,
            "r": self.risk,
            "re": self.enforced_risk,
        }
        if self.language is not None:
            # Optional: a state without it reads as before, and older readers ignore it.
            obj["l"] = self.language
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> ConversationState:
        """Decode ``to_json`` output; ``ValueError`` for anything else (callers
        may then start afresh: a lost state forgets risk, it never invents it)."""
        try:
            obj = json.loads(data)
            if obj["v"] != VERSION:
                raise ValueError(f"version {obj['v']!r}, expected {VERSION}")
            pairs: dict[tuple[str, str], PairState] = {}
            for item in obj["d"]:
                if len(item) not in (5, 7):
                    raise ValueError("bad pair")
                x, y, last = _str(item[0]), _str(item[1]), _int(item[2])
                shadow = item[5:] or [{}, {}]
                pairs[(x, y)] = PairState(
                    last,
                    _dec_scores(item[3]),
                    _dec_stages(item[4]),
                    _dec_scores(shadow[0]),
                    _dec_stages(shadow[1]),
                )
            escalation = obj["e"]
            if escalation is not None and escalation not in SEVERITIES:
                raise ValueError(f"bad severity {escalation!r}")
            return cls(
                updated=_num(obj["t"]),
                messages=_int(obj["n"]),
                scores=_dec_scores(obj["s"]),
                stages=_dec_stages(obj["g"]),
                participants={
                    _str(k): Participant(
                        _BAND_OF[v[0]], _dec_bands(v[1]), _dec_bands(v[2]), _int(v[3])
                    )
                    for k, v in obj["p"].items()
                },
                pairs=pairs,
                fired=frozenset(_str(f) for f in obj["f"]),
                fired_shadow=frozenset(_str(f) for f in obj["fs"]),
                escalation=escalation,
                risk=_num(obj["r"]),
                enforced_risk=_num(obj["re"]),
                language=_language(obj.get("l")),
            )
        except (KeyError, TypeError, IndexError, AttributeError, ValueError, RecursionError) as exc:
            raise ValueError(f"unreadable conversation state: {exc}") from exc


# Compact JSON codes; changing any of them means a new VERSION.
_SIG_CODE = {
    "age_probe": "ap", "minor_self_declared": "ms", "adult_self_declared": "as", "flattery": "fl",
    "exclusivity": "ex", "secrecy": "se", "risk_assessment": "ra", "isolation": "is",
    "pi_request": "pq", "pi_share": "ps", "image_request": "ir", "sexual": "sx", "gift_lure": "gl",
    "meeting": "me", "sextortion": "so", "safeguarding": "sg", "evasion": "ev",
    AGE_CONTRADICTION: "ac",
}  # fmt: skip
_SIG_OF = {v: k for k, v in _SIG_CODE.items()}
_STAGE_CODE = {
    Stage.FRIENDSHIP: "fr", Stage.RELATIONSHIP: "rl", Stage.RISK_ASSESSMENT: "ra",
    Stage.EXCLUSIVITY: "ex", Stage.SEXUAL: "sx", Stage.CONTACT: "ct",
}  # fmt: skip
_STAGE_OF_CODE = {v: k for k, v in _STAGE_CODE.items()}
_BAND_CODE = {Band.MINOR: "m", Band.ADULT: "a", Band.UNKNOWN: "u"}
_BAND_OF = {v: k for k, v in _BAND_CODE.items()}


def _enc_scores(scores: Mapping[str, float]) -> dict[str, float]:
    return {_SIG_CODE[k]: v for k, v in scores.items()}


def _enc_stages(stages: Mapping[Stage, int]) -> dict[str, int]:
    return {_STAGE_CODE[k]: v for k, v in stages.items()}


def _enc_bands(bands: frozenset[Band]) -> str:
    return "".join(sorted(_BAND_CODE[b] for b in bands))


def _dec_scores(obj: Any) -> dict[str, float]:
    return {_SIG_OF[k]: _num(v) for k, v in obj.items()}


def _dec_stages(obj: Any) -> dict[Stage, int]:
    return {_STAGE_OF_CODE[k]: _int(v) for k, v in obj.items()}


def _dec_bands(obj: Any) -> frozenset[Band]:
    bands = frozenset(_BAND_OF[c] for c in _str(obj))
    if not bands <= {Band.MINOR, Band.ADULT}:
        raise ValueError("bad declared band")
    return bands


def _num(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError(f"expected a number, got {v!r}")
    return float(v)


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"expected an integer, got {v!r}")
    return v


def _language(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not 0 < len(v) <= _MAX_LANGUAGE or not v.isprintable():
        raise ValueError(f"bad language {v!r}")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected a string, got {v!r}")
    return v


@functools.lru_cache(maxsize=4096)
def participant_key(user: str) -> str:
    """How a user id is stored: as itself, or as a digest when it is longer than
    64 UTF-8 bytes, needs JSON escaping, or could be mistaken for a digest or
    for ``ROOM_AUDIENCE``."""
    if (
        len(user) <= _MAX_ID_BYTES
        and user not in ("", ROOM_AUDIENCE)
        and not user.startswith("#")
        and all(c.isprintable() and c not in '"\\' for c in user)
        and len(user.encode()) <= _MAX_ID_BYTES
    ):
        return user
    digest = hashlib.blake2b(user.encode("utf-8", "surrogatepass"), digest_size=12)
    return "#" + digest.hexdigest()


def state_size_bound(settings: RiskSettings = DEFAULT_SETTINGS) -> int:
    """An upper bound on ``len(state.to_json())`` for any state under ``settings``
    (with at most 64 thresholds in the pack)."""
    key = _MAX_ID_BYTES + 2  # a quoted id; digests are shorter
    num, score = 24, 12  # any JSON number; a stored score (6 digits, 0.001 to 1e9)
    scores = 2 + len(_SIG_CODE) * (4 + 1 + score + 1)
    stages = 2 + len(_STAGE_CODE) * (4 + 1 + num + 1)
    pair = 2 + 2 * key + num + 2 * (scores + stages) + 8
    person = key + 1 + 2 + 3 + 5 + 5 + num + 4
    fired = 2 + _MAX_THRESHOLDS * 30
    header = 200 + 4 * num + scores + stages + 2 * fired + 8 + _MAX_LANGUAGE
    return header + settings.max_pairs * pair + settings.max_participants * person


# --- Update --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observation:
    """One message as the risk model sees it: who, to whom, which matches."""

    sender: str
    recipients: tuple[str, ...]
    matches: tuple[Match, ...]
    sender_age: str = "unknown"  # attested: minor | adult | unknown
    recipient_ages: Mapping[str, str] = field(default_factory=dict)


def decay(
    state: ConversationState, settings: RiskSettings, now: float, *, with_risk: bool = True
) -> ConversationState:
    """The state as of ``now``: every score times 2^(-(now - updated) / half_life).

    ``with_risk=False`` leaves ``risk`` as it was.
    """
    if not math.isfinite(now):
        raise ValueError("now must be a finite number")
    dt = now - state.updated
    if dt <= 0:
        return state
    k = 0.5 ** (dt / settings.half_life)
    pairs = dict(state.pairs)
    _decay_pairs(pairs, k)
    decayed = replace(state, updated=float(now), scores=_scaled(state.scores, k), pairs=pairs)
    return _with_risk(decayed, settings) if with_risk else decayed


def _decay_pairs(
    pairs: dict[tuple[str, str], PairState],
    k: float,
    before: Mapping[str, float] | None = None,
    after: dict[str, float] | None = None,
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


_DECLARES = {Signal.MINOR_SELF: Band.MINOR, Signal.ADULT_SELF: Band.ADULT}
_KEY_OF = {s: s.value for s in Signal}  # a dict read is cheaper than .value
_NO_PAIR = PairState(0)  # read, never changed: copied before any update


def observe(
    state: ConversationState, obs: Observation, settings: RiskSettings, now: float
) -> ConversationState:
    """Fold one message into the state (``now`` is when it was sent).

    Why it is written this way: this runs for every chat message, so it works
    on mutable copies of the few maps a message changes and builds exactly one
    new state at the end; values it does not change (score maps of a pair
    without new matches, participants seen again at the same index) are shared
    with the old state, never mutated. A message without matches costs the
    decay of existing scores, two last-seen updates and, only when some pair
    has a score, one reading of the risk.
    """
    if not math.isfinite(now):
        raise ValueError("now must be a finite number")
    index = state.messages
    updated, scores_in = state.updated, state.scores
    pairs = dict(state.pairs)
    dt = now - updated
    if dt > 0:
        updated = float(now)
        k = 0.5 ** (dt / settings.half_life)
        scores_in = _scaled(state.scores, k)
        _decay_pairs(pairs, k, state.scores, scores_in)

    participants = dict(state.participants)
    sender = participant_key(obs.sender)
    me = _seen(participants.get(sender), obs.sender_age, index)
    matches = obs.matches
    if matches or me.shadow_declared:
        enforced = me.declared | {
            _DECLARES[m.signal] for m in matches if m.signal in _DECLARES and not m.shadow
        }
        shadow = (
            me.shadow_declared | {_DECLARES[m.signal] for m in matches if m.signal in _DECLARES}
        ) - enforced
        if enforced != me.declared or shadow != me.shadow_declared:
            me = Participant(me.attested, enforced, shadow, me.last_seen)
    participants[sender] = me
    targets = _targets(obs, sender, participants, settings)
    for user, key in targets:
        if key != ROOM_AUDIENCE:
            participants[key] = _seen(participants.get(key), obs.recipient_ages.get(user), index)

    scores: Mapping[str, float] = scores_in
    stages: Mapping[Stage, int] = state.stages
    if matches:
        contributions: list[_Contribution] = []
        contradiction = me.attested is Band.ADULT
        for m in matches:
            key = (
                AGE_CONTRADICTION
                if contradiction and m.signal is Signal.MINOR_SELF
                else _KEY_OF[m.signal]
            )
            contributions.append((key, m.weight, STAGE_OF.get(m.signal), m.shadow))
        top = settings.max_score
        scores = _added(scores_in, contributions, top, None)
        stages = _staged(state.stages, contributions, index, None)
        any_shadow = any(c[3] for c in contributions)
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
    risk, enforced_risk = _risks(participants, pairs, settings)
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
        state.language,
    )


_ATTESTED = {"minor": Band.MINOR, "adult": Band.ADULT}


def _seen(p: Participant | None, attested: str | None, index: int) -> Participant:
    """A participant seen at ``index``; a minor/adult attestation replaces the
    stored one, "unknown" (or none) never erases it."""
    band = _ATTESTED.get(attested) if attested else None
    if p is None:
        return Participant(band or Band.UNKNOWN, last_seen=index)
    band = band or p.attested
    if band is p.attested and p.last_seen == index:
        return p
    return Participant(band, p.declared, p.shadow_declared, index)


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


def _stored(value: float) -> float:
    """A score as stored: 6 significant digits. Relative, not absolute, rounding:
    with a fixed number of decimals a small score would stop decaying in a busy
    conversation (each short step rounding back to the same value)."""
    return float(f"{value:.6g}")


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
            value = float(f"{min(out.get(key, 0.0) + weight, top):.6g}")  # _stored, inlined
            if value < _EPSILON:
                out.pop(key, None)
            else:
                out[key] = value
    return out


def _staged(
    stages: Mapping[Stage, int],
    contributions: list[_Contribution],
    index: int,
    shadow: bool | None,
) -> dict[Stage, int]:
    out = dict(stages)
    for _, _, stage, is_shadow in contributions:
        if stage is not None and (shadow is None or is_shadow is shadow):
            out.setdefault(stage, index)
    return out


def _scaled(scores: Mapping[str, float], k: float) -> dict[str, float]:
    out = {}
    for key, v in scores.items():
        v = float(f"{v * k:.6g}")  # _stored, inlined: this runs for every score on every message
        if v >= _EPSILON:
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


# --- Reading risk --------------------------------------------------------------------

#: Phases of O'Connell's stages: building rapport, testing and isolating, harm.
_PHASE = {
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
    a_minor = a in _MINORISH
    if a_minor != (b in _MINORISH):
        other = b if a_minor else a
        return settings.adult_to_minor if other in _ADULTISH else settings.unknown_to_minor
    return settings.adult_to_adult if attested_adults else 1.0


def dyad_risks(
    state: ConversationState, settings: RiskSettings, *, include_shadow: bool = True
) -> dict[tuple[str, str], float]:
    """R_D for every dyad (two participant keys, sorted) as of ``state.updated``."""
    dyads = {(x, y) if x < y else (y, x) for x, y in state.pairs}
    return {
        d: _dyad_risk(state.participants, state.pairs, d, settings, include_shadow)
        for d in sorted(dyads)
    }


_NOBODY = Participant()
_NO_STAGES: Mapping[Stage, int] = {}  # read, never changed


def _dyad_risk(
    participants: Mapping[str, Participant],
    pairs: Mapping[tuple[str, str], PairState],
    dyad: tuple[str, str],
    settings: RiskSettings,
    include_shadow: bool,
) -> float:
    # Runs for every message of a conversation that has any score, so it is
    # written for speed; the arithmetic (and its order, which decides the
    # float result) is the formula's in the module docstring.
    a, b = dyad
    pa, pb = participants.get(a) or _NOBODY, participants.get(b) or _NOBODY
    band_a = Band.UNKNOWN if a == ROOM_AUDIENCE else pa.band(include_shadow)
    band_b = Band.UNKNOWN if b == ROOM_AUDIENCE else pb.band(include_shadow)
    table = settings._factors
    totals: dict[str, float] = {}
    stages: Mapping[Stage, int] = _NO_STAGES
    for x, y, to_minor in ((a, b, band_b in _MINORISH), (b, a, band_a in _MINORISH)):
        pair = pairs.get((x, y))
        if pair is None:
            continue
        scores: Mapping[str, float]
        pair_stages: Mapping[Stage, int]
        if include_shadow and (pair.shadow_scores or pair.shadow_stages):
            scores, pair_stages = pair.view(True)
        else:
            scores, pair_stages = pair.scores, pair.stages
        which = 1 if to_minor else 0
        for key, s in scores.items():
            f = table[key][which] if key in table else 1.0
            totals[key] = totals.get(key, 0.0) + f * s
        if not stages:
            stages = pair_stages
        elif pair_stages:
            merged = dict(stages)
            for st, i in pair_stages.items():
                merged[st] = min(merged.get(st, i), i)
            stages = merged
    if not totals:
        return 0.0
    caps = settings.signal_caps
    for key, v in totals.items():
        cap = caps.get(key)
        if cap is not None and v > cap:
            totals[key] = cap
    total = sum(totals.values())
    # A combination with a missing signal adds c * 0.0, which changes no sum.
    total += sum(
        [
            c * min(totals[x], totals[y])
            for x, y, c in settings.combinations
            if x in totals and y in totals
        ]
    )
    bonus = progression(stages, settings) if len(stages) >= settings.min_stages else 0.0
    if bonus and band_a.minorish and band_b.minorish:
        bonus *= settings.progression_between_minors
    m = 1.0
    if ROOM_AUDIENCE not in dyad:
        both_adult = pa.attested is Band.ADULT and pb.attested is Band.ADULT
        m = multiplier(band_a, band_b, settings, attested_adults=both_adult)
    return m * total * (1.0 + bonus)


def _max_risk(
    participants: Mapping[str, Participant],
    pairs: Mapping[tuple[str, str], PairState],
    settings: RiskSettings,
    include_shadow: bool,
) -> float:
    worst = 0.0
    seen: set[tuple[str, str]] = set()
    for x, y in pairs:
        dyad = (x, y) if x < y else (y, x)
        if dyad not in seen:
            seen.add(dyad)
            worst = max(worst, _dyad_risk(participants, pairs, dyad, settings, include_shadow))
    return round(worst, 4)


def conversation_risk(
    state: ConversationState, settings: RiskSettings, *, include_shadow: bool = True
) -> float:
    """The conversation's risk as of ``state.updated``: its worst dyad."""
    return _max_risk(state.participants, state.pairs, settings, include_shadow)


def _risks(
    participants: Mapping[str, Participant],
    pairs: Mapping[tuple[str, str], PairState],
    settings: RiskSettings,
) -> tuple[float, float]:
    """(risk, enforced risk). Zero without reading anything when no pair has a
    score (ordinary chat); one reading when no pair has a shadow score."""
    scored = shadow = False
    for p in pairs.values():
        if p.shadow_scores:
            scored = shadow = True
            break
        if p.scores:
            scored = True
    if not scored:
        return 0.0, 0.0
    risk = _max_risk(participants, pairs, settings, True)
    if not shadow:
        return risk, risk
    return risk, _max_risk(participants, pairs, settings, False)


def _with_risk(state: ConversationState, settings: RiskSettings) -> ConversationState:
    risk, enforced = _risks(state.participants, state.pairs, settings)
    if risk == state.risk and enforced == state.enforced_risk:
        return state
    return replace(state, risk=risk, enforced_risk=enforced)


# --- Thresholds and severity ---------------------------------------------------------


def threshold_key(threshold: Threshold) -> str:
    return f"{threshold.at:g}{'m' if threshold.require_minor else ''}"


def has_minor(state: ConversationState, *, include_shadow: bool = False) -> bool:
    return any(p.band(include_shadow).minorish for p in state.participants.values())


def cross_thresholds(
    state: ConversationState, thresholds: Iterable[Threshold]
) -> tuple[ConversationState, list[tuple[Threshold, bool]]]:
    """Thresholds reached for the first time, each with whether it fired only in
    shadow (reached only thanks to shadow matches). Each fires once per
    conversation; one fired in shadow can still fire for real later."""
    ordered = sorted(thresholds, key=lambda t: t.at)[:_MAX_THRESHOLDS]
    crossed: list[tuple[Threshold, bool]] = []
    if not ordered or max(state.risk, state.enforced_risk) < ordered[0].at:
        return state, crossed  # below every threshold: most messages
    fired, fired_shadow = set(state.fired), set(state.fired_shadow)
    for th in ordered:
        key = threshold_key(th)
        if key in fired:
            continue
        if state.enforced_risk >= th.at and (not th.require_minor or has_minor(state)):
            fired.add(key)
            fired_shadow.discard(key)
            crossed.append((th, False))
        elif (
            key not in fired_shadow
            and state.risk >= th.at
            and (not th.require_minor or has_minor(state, include_shadow=True))
        ):
            fired_shadow.add(key)
            crossed.append((th, True))
    if not crossed:
        return state, crossed
    return replace(state, fired=frozenset(fired), fired_shadow=frozenset(fired_shadow)), crossed


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
        if ROOM_AUDIENCE in (x, y) or Stage.SEXUAL not in pair.view(include_shadow)[1]:
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
    return replace(state, escalation=severity)
