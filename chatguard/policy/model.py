"""The policy vocabulary: signals, rules, matches, actions and assessments.

This module owns the data every part of the policy engine shares: the
loader (``rules.py``) builds ``Rule`` and ``Policy`` values from YAML, the
matcher (``matcher.py``) turns normalised text into ``Match`` values, the risk
model (``risk.py``) folds matches into conversation state, and the engine
(``engine.py``) returns an ``Assessment`` with ``Action`` values for the
pipeline to carry out.

Invariants: everything here is a frozen, slotted dataclass or an enum; no
I/O, no clock reads. Signal names are a closed vocabulary (``Signal``) so that
banners, metrics and reports can rely on them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatguard.policy.signal_model import SignalModel

from chatguard.policy.frozen import quick_init


class Signal(enum.StrEnum):
    """What a rule detects. Grounded in the grooming literature (O'Connell's
    stages and later work); see ``policies/README.md`` for the sources."""

    AGE_PROBE = "age_probe"  # "how old are you", "asl"
    MINOR_SELF = "minor_self_declared"  # "im 13", "8th grade"
    ADULT_SELF = "adult_self_declared"  # "I'm 34", "my wife and kids"
    FLATTERY = "flattery"  # "you're so mature for your age"
    EXCLUSIVITY = "exclusivity"  # "you're the only one who gets me"
    SECRECY = "secrecy"  # "don't tell your parents", "our secret"
    RISK_CHECK = "risk_assessment"  # "are your parents home?", "are you alone"
    ISOLATION = "isolation"  # move to another app, to the phone
    PI_REQUEST = "pi_request"  # asking for address, school, phone number
    PI_SHARE = "pi_share"  # a phone number, an address, being shared
    IMAGE_REQUEST = "image_request"  # "send a pic", "turn on your cam"
    SEXUAL = "sexual"  # sexual content
    GIFT_LURE = "gift_lure"  # gifts, in-game currency
    MEETING = "meeting"  # arranging to meet offline
    SEXTORTION = "sextortion"  # threats to share images, demands
    SAFEGUARDING = "safeguarding"  # a child disclosing abuse or self-harm
    KINSHIP = "kinship"  # "ok mum", "love, dad": writer and reader are family
    OPENNESS = "openness"  # "ask your mum to sign it", "I'll copy your dad in": parents brought in
    EVASION = "evasion"  # deliberate obfuscation found by the normaliser


class Stage(enum.StrEnum):
    """O'Connell's grooming stages, plus the harms that end them."""

    FRIENDSHIP = "friendship_forming"
    RELATIONSHIP = "relationship_forming"
    RISK_ASSESSMENT = "risk_assessment"
    EXCLUSIVITY = "exclusivity"
    SEXUAL = "sexual"
    CONTACT = "contact"  # meeting or moving off-platform


#: The stage each signal belongs to (signals absent here belong to none).
STAGE_OF: Mapping[Signal, Stage] = {
    Signal.AGE_PROBE: Stage.FRIENDSHIP,
    Signal.FLATTERY: Stage.RELATIONSHIP,
    Signal.GIFT_LURE: Stage.RELATIONSHIP,
    Signal.EXCLUSIVITY: Stage.EXCLUSIVITY,
    Signal.SECRECY: Stage.EXCLUSIVITY,
    Signal.RISK_CHECK: Stage.RISK_ASSESSMENT,
    Signal.PI_REQUEST: Stage.RISK_ASSESSMENT,
    Signal.IMAGE_REQUEST: Stage.SEXUAL,
    Signal.SEXUAL: Stage.SEXUAL,
    Signal.SEXTORTION: Stage.SEXUAL,
    Signal.ISOLATION: Stage.CONTACT,
    Signal.MEETING: Stage.CONTACT,
}


class Mode(enum.StrEnum):
    ENFORCE = "enforce"  # actions are carried out
    SHADOW = "shadow"  # actions are recorded as "would have", not carried out


class ActionType(enum.StrEnum):
    BANNER = "banner"  # show a banner (params: banner, audience)
    HOLD = "hold"  # hold the sender's message until they confirm (params: banner)
    REDACT = "redact"  # deliver with matched spans masked (params: mask)
    BLOCK = "block"  # do not deliver (params: notice)
    CAPTURE = "capture"  # record evidence (params: before, after)
    ESCALATE = "escalate"  # open or update a case (params: severity, category)


class Audience(enum.StrEnum):
    SENDER = "sender"
    RECIPIENTS = "recipients"
    ROOM = "room"
    MINOR_PARTICIPANTS = "minor_participants"


class Where(enum.StrEnum):
    ANY = "any"
    ROOM = "room"
    DIRECT = "direct"


class PatternKind(enum.StrEnum):
    PHRASE = "phrase"  # a literal phrase, word-bounded, spaces match any spacing
    WORD = "word"  # one literal word, word-bounded
    REGEX = "regex"  # a `regex`-module expression, fuzzy matching allowed


@dataclass(frozen=True, slots=True)
class Pattern:
    """One pattern of a rule, ready for the matcher.

    ``expression`` is a `regex`-module expression that matches ``folded``
    normalised text (lowercase, diacritics removed, leet read, runs of a
    letter squeezed to two). For phrases and words the loader builds it from
    the literal, which it normalises and folds the same way as messages.
    ``literal`` keeps that folded literal so a multi-literal matcher
    (Aho-Corasick, Hyperscan) can use it directly.
    """

    kind: PatternKind
    source: str  # as written in the rule file
    expression: str
    literal: str | None = None
    fuzzy: int = 0  # edits allowed (regex `{e<=n}`); phrases/words only
    line: int = 0


@dataclass(frozen=True, slots=True)
class Scope:
    """When a rule applies. ``None`` means any."""

    origins: frozenset[str] = frozenset({"client"})  # "client", "upstream"
    where: Where = Where.ANY
    sender_age: frozenset[str] | None = None  # age bands: minor, adult, unknown
    recipient_age: frozenset[str] | None = None
    exempt_roles: frozenset[str] = frozenset({"moderator"})


@dataclass(frozen=True, slots=True)
class Action:
    type: ActionType
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    description: str
    signal: Signal
    languages: frozenset[str]
    patterns: tuple[Pattern, ...]
    scope: Scope = field(default_factory=Scope)
    weight: float = 1.0
    actions: tuple[Action, ...] = ()
    mode: Mode | None = None  # None: the policy's mode
    unless: tuple[Pattern, ...] = ()  # a match of any of these cancels the rule
    # A match of any of these cancels the rule and says the message does not
    # carry the rule's signal at all (a lesson or a quotation, a photo of a
    # pet, a birthday surprise), so the signal model does not find it either.
    signal_unless: tuple[Pattern, ...] = ()
    yes_means: Signal | None = None  # a recipient's bare "yes" to it counts as this signal
    # An age declaration that speaks for the person it is said to as well
    # ("we're both 15"): in a message to one person, it declares them too.
    declares_recipient: bool = False
    # ``False`` on such a rule whose words speak of the recipient alone ("ur
    # only 13", "smart for 12"): it declares the recipient and not the sender.
    declares_sender: bool = True
    # A sextortion or safeguarding match escalates at once (the risk model's
    # direct trigger). ``False`` on a rule whose words are often said in jest
    # ("i want to die"): its own actions apply (a help banner) and its match
    # is stored, but it triggers only when the same person says it again
    # within about a half-life (``engine.SAID_AGAIN``), and never when its own
    # actions escalate (a listener's answer to a disclosure).
    trigger: bool = True
    examples_match: tuple[str, ...] = ()
    examples_no_match: tuple[str, ...] = ()
    file: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class Threshold:
    """Actions taken once conversation risk reaches ``at``."""

    at: float
    actions: tuple[Action, ...]
    require_minor: bool = False  # only when a minor takes part
    # How a conversation's state records that this threshold fired ("8",
    # "4m"): formatted once here, since it is read for every message of a
    # conversation above its lowest threshold.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.at:g}{'m' if self.require_minor else ''}")


@dataclass(frozen=True, slots=True)
class ModelUse:
    """How a pack uses its signal model (``policy.yaml``, ``signal_model:``)."""

    mode: Mode | None = None  # None: the policy's mode; "off" is ``enabled=False``
    enabled: bool = True
    weight: float = 1.0  # the weight of a signal only the model found
    weights: Mapping[Signal, float] = field(default_factory=dict)  # per signal
    triggers: bool = True  # a learned sextortion or safeguarding signal acts at once...
    trigger_at: float = 0.97  # ...when the model is at least this sure (a probability)

    def weight_of(self, signal: Signal) -> float:
        return self.weights.get(signal, self.weight)


@dataclass(frozen=True, slots=True)
class Policy:
    """A loaded, validated policy pack. ``version`` is a hash of its content."""

    rules: tuple[Rule, ...]
    thresholds: tuple[Threshold, ...]
    version: str
    mode: Mode = Mode.ENFORCE
    half_life: float = 1800.0  # seconds for a signal's weight to halve
    max_chars: int = 4096  # longer messages are evaluated on this prefix
    settings: Mapping[str, Any] = field(default_factory=dict)
    signal_model: SignalModel | None = None  # signal_model/model.json, when the pack has one
    model_use: ModelUse = field(default_factory=ModelUse)
    # Per language (base code), the words that tell a message is in it (language.py).
    function_words: Mapping[str, frozenset[str]] = field(default_factory=dict)


@quick_init
@dataclass(frozen=True, slots=True)
class Match:
    """One rule matching one message. Spans index the *original* text."""

    rule_id: str
    signal: Signal
    weight: float
    spans: tuple[tuple[int, int], ...]
    shadow: bool = False
    quoted: bool = False  # found only inside a quotation: weighs less, reaches no stage


@quick_init
@dataclass(frozen=True, slots=True)
class PlannedAction:
    """An action the engine decided on, and why."""

    type: ActionType
    params: Mapping[str, Any]
    reason: str  # rule id or "risk>=X"
    shadow: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type.value,
            **self.params,
            "reason": self.reason,
            "shadow": self.shadow,
        }


@quick_init
@dataclass(frozen=True, slots=True)
class Assessment:
    """What the engine concluded about one message."""

    conversation: str
    risk: float
    signals: tuple[Signal, ...]
    matches: tuple[Match, ...]
    actions: tuple[PlannedAction, ...]
    evasions: frozenset[str] = frozenset()
    policy_version: str = ""
