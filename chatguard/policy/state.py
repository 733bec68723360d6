"""Conversation state: what ChatGuard remembers about one conversation, and
its stored form.

This module owns ``ConversationState`` and its parts (``Participant``: what is
known about one person's age; ``PairState``: one direction sender→recipient),
the age ``Band``s, and the compact JSON the state store keeps
(``to_json``/``from_json``). How a message changes the state and how risk is
read out of it is ``risk.py``'s.

Invariants:

1. Immutable: a state and its parts are never changed in place; values may
   be shared between successive states for that reason. The three records
   are plain classes whose attributes are ``Final``: ``mypy --strict``
   refuses any assignment after ``__init__`` (and the compiled build, where
   they are native classes, refuses one at run time as well). They are not
   frozen dataclasses because mypyc can build and read a native class
   directly, and a dataclass only through Python (``native.py``); what the
   code needs of a dataclass they have: equality and ``repr`` by their
   fields, a hash for ``Participant``, and ``ConversationState.replace``.
2. Bounded: ``to_json`` output never exceeds ``state_size_bound(settings)``;
   user ids that are long or need escaping are stored as a digest
   (``participant_key``).
3. ``ConversationState.from_json(s.to_json()) == s`` for every state built by
   ``risk.observe``; ``from_json`` raises ``ValueError`` for anything else.
4. The stored format has a version (``VERSION``); changing any JSON code
   means a new one. Optional keys (``l``, ``q``) may be added without one: a
   reader ignores keys it does not know; so may optional trailing items of a
   participant's record (the fifth, their age in years), which a reader
   that does not know them never reads. Every earlier version is still read
   (``READABLE``): version 1 stored scores already decayed to ``updated``,
   which reads as a version 2 state that owes no decay.
5. Scores decay lazily. The stored scores are as of the last message that
   scored; ``owed`` counts the half-lives of decay since then (each silence
   counted up to ``max_idle_decay``). Whoever reads a score multiplies it by
   ``0.5 ** owed`` and ignores it below ``MIN_READ`` (``risk_formula``);
   the next message that scores applies the decay, rounds, drops the faded
   scores and sets ``owed`` back to 0 (``risk.observe``).

Never: read a clock, do I/O, or look at message text.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from chatguard.policy.frozen import record_repr
from chatguard.policy.model import Stage
from chatguard.policy.risk_settings import (
    AGE_CONTRADICTION,
    DEFAULT_SETTINGS,
    SEVERITIES,
    RiskSettings,
)

VERSION = 2
READABLE = (1, 2)  # the versions from_json reads
ROOM_AUDIENCE: Final = "*"  # the recipient of a message with no (or too many) named recipients
_MAX_ID_BYTES: Final = 64
MAX_THRESHOLDS: Final = 64
_MAX_LANGUAGE = 16  # a language code such as "pt-br"
MAX_PENDING: Final = 8  # pending questions per conversation (pending.py)
MIN_SCORE: Final = 1e-3  # a score that decayed below it counts as gone, and is dropped
# The least decayed value that is still read: the least that, stored to 6
# significant digits, is MIN_SCORE. A score read before its decay is applied
# then counts exactly as long as it would be kept once the decay is applied.
MIN_READ: Final = 0.0009999995
# Decay owed is kept below this many half-lives: after 64 halvings any score
# up to the largest ``max_score`` (1e9) is below MIN_SCORE, so more changes
# nothing, and the number stays bounded however long the silence.
MAX_OWED: Final = 64.0


class Band(enum.StrEnum):
    MINOR = "minor"
    ADULT = "adult"
    UNKNOWN = "unknown"
    LIKELY_MINOR = "likely_minor"
    LIKELY_ADULT = "likely_adult"

    @property
    def minorish(self) -> bool:
        return self in MINORISH

    @property
    def adultish(self) -> bool:
        return self in ADULTISH

    @property
    def collapsed(self) -> Band:
        """The band as a rule scope spells it: minor, adult or unknown."""
        return Band.MINOR if self.minorish else Band.ADULT if self.adultish else Band.UNKNOWN


_UNKNOWN: Final = Band.UNKNOWN  # a module constant: enum member lookups cost on hot paths
MINORISH: Final = frozenset({Band.MINOR, Band.LIKELY_MINOR})
ADULTISH: Final = frozenset({Band.ADULT, Band.LIKELY_ADULT})


def attested_band(value: str | None) -> Band:
    """A platform attestation as a band; anything but minor/adult is unknown."""
    return Band.MINOR if value == "minor" else Band.ADULT if value == "adult" else Band.UNKNOWN


_PARTICIPANT_FIELDS: Final = ("attested", "declared", "shadow_declared", "last_seen", "years")


class Participant:
    """What is known about one person's age, and when they were last active."""

    __slots__ = _PARTICIPANT_FIELDS

    def __init__(
        self,
        attested: Band = Band.UNKNOWN,
        declared: frozenset[Band] = frozenset(),
        shadow_declared: frozenset[Band] = frozenset(),
        last_seen: int = 0,
        years: int = 0,
    ) -> None:
        self.attested: Final = attested  # the latest minor/adult attestation
        self.declared: Final = declared  # self-declarations (MINOR, ADULT) by enforced rules
        self.shadow_declared: Final = shadow_declared  # ... only by shadow rules
        self.last_seen: Final = last_seen  # index of the last message they sent or received
        # The age in years they last said of themselves by an enforced rule
        # ("im 17", a bare "13" to an age question); 0 when none was said.
        self.years: Final = years

    def _fields(self) -> tuple[object, ...]:
        return (self.attested, self.declared, self.shadow_declared, self.last_seen, self.years)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Participant):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return record_repr(self, _PARTICIPANT_FIELDS, self._fields())

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


_PAIR_FIELDS: Final = ("last", "scores", "stages", "shadow_scores", "shadow_stages")


class PairState:
    """One direction sender→recipient: decayed score per signal, first stages.
    A map not given (``None``) is a new empty one."""

    __slots__ = _PAIR_FIELDS

    def __init__(
        self,
        last: int,
        scores: Mapping[str, float] | None = None,
        stages: Mapping[Stage, int] | None = None,
        shadow_scores: Mapping[str, float] | None = None,
        shadow_stages: Mapping[Stage, int] | None = None,
    ) -> None:
        self.last: Final = last  # index of the last message on this pair
        self.scores: Final[Mapping[str, float]] = {} if scores is None else scores
        # stage -> first message index
        self.stages: Final[Mapping[Stage, int]] = {} if stages is None else stages
        self.shadow_scores: Final[Mapping[str, float]] = (
            {} if shadow_scores is None else shadow_scores
        )
        self.shadow_stages: Final[Mapping[Stage, int]] = (
            {} if shadow_stages is None else shadow_stages
        )

    def _fields(self) -> tuple[object, ...]:
        return (self.last, self.scores, self.stages, self.shadow_scores, self.shadow_stages)

    def __eq__(self, other: object) -> bool:  # no __hash__: its maps are not hashable
        if not isinstance(other, PairState):
            return NotImplemented
        return self._fields() == other._fields()

    def __repr__(self) -> str:
        return record_repr(self, _PAIR_FIELDS, self._fields())

    def view(self, include_shadow: bool) -> tuple[dict[str, float], dict[Stage, int]]:
        scores, stages = dict(self.scores), dict(self.stages)
        if include_shadow:
            for k, v in self.shadow_scores.items():
                scores[k] = scores.get(k, 0.0) + v
            for st, i in self.shadow_stages.items():
                stages[st] = min(stages.get(st, i), i)
        return scores, stages


_STATE_FIELDS: Final = (
    "updated", "messages", "scores", "stages", "participants", "pairs", "fired",
    "fired_shadow", "escalation", "risk", "enforced_risk", "language", "pending", "owed",
)  # fmt: skip


class ConversationState:
    """All that is remembered about one conversation. Scores (conversation and
    pairs) are as of the last message that scored and still owe ``owed``
    half-lives of decay (invariant 5); ``risk`` is as of ``updated``. A map
    not given (``None``) is a new empty one."""

    __slots__ = _STATE_FIELDS

    def __init__(
        self,
        updated: float = 0.0,
        messages: int = 0,
        scores: Mapping[str, float] | None = None,
        stages: Mapping[Stage, int] | None = None,
        participants: Mapping[str, Participant] | None = None,
        pairs: Mapping[tuple[str, str], PairState] | None = None,
        fired: frozenset[str] = frozenset(),
        fired_shadow: frozenset[str] = frozenset(),
        escalation: str | None = None,
        risk: float = 0.0,
        enforced_risk: float = 0.0,
        language: str | None = None,
        pending: Mapping[str, tuple[str, int, float, bool]] | None = None,
        owed: float = 0.0,
    ) -> None:
        self.updated: Final = updated  # the ``now`` of the last message
        self.messages: Final = messages  # messages seen; a message's index is the count before it
        # Whole conversation, raw:
        self.scores: Final[Mapping[str, float]] = {} if scores is None else scores
        self.stages: Final[Mapping[Stage, int]] = {} if stages is None else stages
        self.participants: Final[Mapping[str, Participant]] = (
            {} if participants is None else participants
        )
        self.pairs: Final[Mapping[tuple[str, str], PairState]] = {} if pairs is None else pairs
        self.fired: Final = fired  # thresholds fired (enforced), see threshold_key
        self.fired_shadow: Final = fired_shadow  # thresholds fired only in shadow
        self.escalation: Final = escalation  # highest severity escalated so far (enforced)
        self.risk: Final = risk  # conversation risk as of ``updated``, shadow matches included
        self.enforced_risk: Final = enforced_risk  # the same without shadow matches
        self.language: Final = language  # the language its rules last matched in (a tie-breaker)
        # Questions a recipient's yes would answer (pending.py): participant key ->
        # (signal, last message index it may be answered at, weight, shadow).
        self.pending: Final[Mapping[str, tuple[str, int, float, bool]]] = (
            {} if pending is None else pending
        )
        self.owed: Final = owed  # half-lives of decay the stored scores owe, 0 to MAX_OWED

    def _fields(self) -> tuple[object, ...]:
        return (
            self.updated, self.messages, self.scores, self.stages, self.participants,
            self.pairs, self.fired, self.fired_shadow, self.escalation, self.risk,
            self.enforced_risk, self.language, self.pending, self.owed,
        )  # fmt: skip

    def __eq__(self, other: object) -> bool:  # no __hash__: its maps are not hashable
        if not isinstance(other, ConversationState):
            return NotImplemented
        return self._fields() == other._fields()

    def __repr__(self) -> str:
        return record_repr(self, _STATE_FIELDS, self._fields())

    def replace(
        self,
        *,
        updated: float | None = None,
        scores: Mapping[str, float] | None = None,
        pairs: Mapping[tuple[str, str], PairState] | None = None,
        fired: frozenset[str] | None = None,
        fired_shadow: frozenset[str] | None = None,
        escalation: str | None = None,
        risk: float | None = None,
        enforced_risk: float | None = None,
        pending: Mapping[str, tuple[str, int, float, bool]] | None = None,
        owed: float | None = None,
    ) -> ConversationState:
        """A copy with the given parts replaced (``None``: as it was). Only
        the parts that change after a message is folded in: its decay, risk,
        fired thresholds, escalation, pending questions."""
        return ConversationState(
            self.updated if updated is None else updated,
            self.messages,
            self.scores if scores is None else scores,
            self.stages,
            self.participants,
            self.pairs if pairs is None else pairs,
            self.fired if fired is None else fired,
            self.fired_shadow if fired_shadow is None else fired_shadow,
            self.escalation if escalation is None else escalation,
            self.risk if risk is None else risk,
            self.enforced_risk if enforced_risk is None else enforced_risk,
            self.language,
            self.pending if pending is None else pending,
            self.owed if owed is None else owed,
        )

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
                # Optional: an age said is a fifth item; older states have four.
                + ([p.years] if p.years else [])
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
            "o": self.owed,
        }
        if self.language is not None:
            # Optional: a state without it reads as before, and older readers ignore it.
            obj["l"] = self.language
        if self.pending:
            # Optional like "l": older states have none, older readers ignore it.
            obj["q"] = {
                k: [_SIG_CODE[g], i, w, int(sh)] for k, (g, i, w, sh) in self.pending.items()
            }
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> ConversationState:
        """Decode ``to_json`` output; ``ValueError`` for anything else (callers
        may then start afresh: a lost state forgets risk, it never invents it)."""
        try:
            obj = json.loads(data)
            if obj["v"] not in READABLE:
                raise ValueError(f"version {obj['v']!r}, expected one of {READABLE}")
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
                        _BAND_OF[v[0]],
                        _dec_bands(v[1]),
                        _dec_bands(v[2]),
                        _int(v[3]),
                        _years(v[4]) if len(v) > 4 else 0,
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
                pending=_dec_pending(obj.get("q", {})),
                owed=_owed(obj["o"]) if obj["v"] >= 2 else 0.0,
            )
        except (KeyError, TypeError, IndexError, AttributeError, ValueError, RecursionError) as exc:
            raise ValueError(f"unreadable conversation state: {exc}") from exc


# Compact JSON codes; changing any of them means a new VERSION.
_SIG_CODE = {
    "age_probe": "ap", "minor_self_declared": "ms", "adult_self_declared": "as", "flattery": "fl",
    "exclusivity": "ex", "secrecy": "se", "risk_assessment": "ra", "isolation": "is",
    "pi_request": "pq", "pi_share": "ps", "image_request": "ir", "sexual": "sx", "gift_lure": "gl",
    "meeting": "me", "sextortion": "so", "safeguarding": "sg", "evasion": "ev",
    AGE_CONTRADICTION: "ac", "kinship": "kn", "openness": "op",
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


def _years(value: object) -> int:
    """An age in years as stored: 1 to 120."""
    years = _int(value)
    if not 1 <= years <= 120:
        raise ValueError(f"bad age {years!r}")
    return years


def _owed(v: Any) -> float:
    owed = _num(v)
    if not 0.0 <= owed <= MAX_OWED:
        raise ValueError(f"bad decay owed {owed!r}")
    return owed


def _language(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not 0 < len(v) <= _MAX_LANGUAGE or not v.isprintable():
        raise ValueError(f"bad language {v!r}")
    return v


def _dec_pending(obj: Any) -> dict[str, tuple[str, int, float, bool]]:
    if len(obj) > MAX_PENDING:
        raise ValueError("too many pending questions")
    out = {}
    for k, (g, i, w, sh) in obj.items():
        if sh not in (0, 1):
            raise ValueError("bad pending question")
        out[_str(k)] = (_SIG_OF[g], _int(i), _num(w), bool(sh))
    return out


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
    person = key + 1 + 2 + 3 + 5 + 5 + num + 4 + 4  # the last: ",120", an age in years
    fired = 2 + MAX_THRESHOLDS * 30
    header = 200 + 5 * num + scores + stages + 2 * fired + 8 + _MAX_LANGUAGE
    header += 8 + MAX_PENDING * (key + 2 + 1 + 2 + 4 + 1 + 2 * num + 4)  # "q", "#=" keys
    return header + settings.max_pairs * pair + settings.max_participants * person
