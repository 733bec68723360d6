"""Risk settings: every number of the risk model, and how a pack overrides them.

This module owns ``RiskSettings`` (the defaults, explained for analysts in
``docs/risk-model.md``), the direct ``Trigger`` of a single message, and
``parse_settings``, which reads ``settings.risk`` of a ``policy.yaml``.

Invariants: settings are immutable once built; ``parse_settings`` refuses an
unknown key or a bad value with a ``ValueError`` naming ``settings.risk.<key>``
so that a pack with a typo is refused at load and never half-applied.
Never: read files, or know anything about a conversation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from chatguard.policy.model import Signal

AGE_CONTRADICTION = "age_contradiction"  # a score key that is not a rule signal
SEVERITIES = ("low", "medium", "high", "critical")

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
    # Kinship is context, never risk: it lowers a family dyad's ordinary
    # signals (``kinship_factor``) and adds nothing itself.
    _S.KINSHIP: 0.0,
    _S.OPENNESS: 0.0,
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
#: Signals a family says every day ("are you home alone?", "I'll pick you up",
#: "don't tell your sister"): in a dyad shown to be family they count for
#: ``kinship_factor`` of their weight. Sexual content, sextortion and a
#: child's disclosure are not among them: they count in full in any family.
_KINSHIP_SIGNALS = frozenset(
    {
        _S.AGE_PROBE, _S.MINOR_SELF, _S.ADULT_SELF, _S.FLATTERY, _S.EXCLUSIVITY,
        _S.SECRECY, _S.RISK_CHECK, _S.ISOLATION, _S.PI_REQUEST, _S.PI_SHARE,
        _S.IMAGE_REQUEST, _S.GIFT_LURE, _S.MEETING, _S.EVASION,
    }
)  # fmt: skip
_COMBINATIONS: tuple[tuple[str, str, float], ...] = (
    (_S.MEETING, _S.SECRECY, 3.0),  # a secret meeting with a child is the classic case
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
    # A silence decays at most this many seconds' worth: grooming often runs
    # over days in short sittings, and without a cap a slow burn starts from
    # nothing at every sitting. Infinite (no cap) unless the pack sets it.
    max_idle_decay: float = math.inf
    # Messages of the conversation within which a yes answers a rule's
    # question (``yes_means``; pending.py).
    answer_window: int = 4
    adult_to_minor: float = 2.0
    unknown_to_minor: float = 1.5
    adult_to_adult: float = 0.5
    # Two children (or likely children): teenagers of an age flirting and
    # swapping snaps is not grooming; a peer's threat still triggers at once.
    minor_to_minor: float = 0.6
    # ... unless both said their ages and they are this many years apart or
    # more (0: never): a 17-year-old who picks a 13-year-old up from school
    # is not her classmate. Such a pair counts ``minor_gap_multiplier``, and
    # the stage bonus in full.
    minor_age_gap: int = 3
    minor_gap_multiplier: float = 1.0
    minor_target_factor: float = 1.5
    minor_target_signals: frozenset[str] = frozenset({_S.IMAGE_REQUEST, _S.SEXUAL, _S.ISOLATION})
    signal_factors: Mapping[str, float] = field(default_factory=lambda: dict(_FACTORS))
    signal_caps: Mapping[str, float] = field(default_factory=lambda: dict(_CAPS))
    combinations: tuple[tuple[str, str, float], ...] = _COMBINATIONS
    min_stages: int = 3
    stage_bonus: float = 0.25
    order_bonus: float = 0.5
    progression_between_minors: float = 0.0
    # A dyad in which either person showed the two are family (``kinship``):
    # its ordinary signals, its stage bonus and its relationship multiplier
    # count this much (docs/risk-model.md, "Families").
    kinship_factor: float = 0.25
    # A dyad in which the adult brings the child's parents in (``openness``:
    # "ask your mum to sign the form", "I'll copy your dad in") and nobody
    # asked for secrecy: its ordinary signals and stage bonus count this much.
    openness_factor: float = 0.5
    kinship_signals: frozenset[str] = _KINSHIP_SIGNALS
    evasion_weight: float = 0.5
    # A match found only inside quotations, by someone not known as a child,
    # weighs this much of its weight: quoting is talking about, not doing.
    quoted_weight: float = 0.1
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
    # Derived from the fields above for the risk reading's inner loop, one
    # table per direction (``_reading[toward_a_minor]``): score key ->
    # (factor, cap), the cap infinite where there is none; a key not in it
    # has factor 1.0 and no cap.
    _reading: tuple[Mapping[str, tuple[float, float]], Mapping[str, tuple[float, float]]] = field(
        init=False, repr=False, compare=False, default=({}, {})
    )

    def __post_init__(self) -> None:
        caps = self.signal_caps
        reading: tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float]]] = ({}, {})
        for key in _SCORE_KEYS_ALL:
            f = self.signal_factors.get(key, 1.0)
            to_minor = f * self.minor_target_factor if key in self.minor_target_signals else f
            cap = caps.get(key, math.inf)
            reading[0][key] = (f, cap)
            reading[1][key] = (to_minor, cap)
        for key, cap in caps.items():  # a cap on a key no rule scores (settings built by hand)
            for table in reading:
                table.setdefault(key, (1.0, cap))
        object.__setattr__(self, "_reading", reading)

    def factor(self, key: str) -> float:
        return self.signal_factors.get(key, 1.0)


DEFAULT_SETTINGS = RiskSettings()
_SCORE_KEYS = frozenset([*(s.value for s in Signal), AGE_CONTRADICTION])
_FLOATS = {
    "adult_to_minor": 100.0,
    "unknown_to_minor": 100.0,
    "adult_to_adult": 100.0,
    "minor_to_minor": 100.0,
    "minor_gap_multiplier": 100.0,
    "minor_target_factor": 100.0,
    "stage_bonus": 100.0,
    "order_bonus": 100.0,
    "progression_between_minors": 1.0,
    "kinship_factor": 1.0,
    "openness_factor": 1.0,
    "evasion_weight": 100.0,
    "quoted_weight": 1.0,
    "max_score": 1e9,
    "max_idle_decay": math.inf,
}
_INTS = {
    "min_stages": 6,
    "max_participants": 1000,
    "max_pairs": 1000,
    "max_fanout": 1000,
    "answer_window": 100,
    "minor_age_gap": 100,
}


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
            positive = key in ("max_score", "max_idle_decay")
            changes[key] = _number(where, value, _FLOATS[key], positive=positive)
        elif key in _INTS:
            changes[key] = _whole(where, value, 1, _INTS[key])
        elif key in ("minor_target_signals", "kinship_signals"):
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
