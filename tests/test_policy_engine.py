"""Tests for ``chatguard.policy.engine``.

Rules are built here in Python (regex patterns checked by the loader's
``regex_pattern``) and matched by the real matcher. The tables: scripted
conversations (grooming must escalate, ordinary chat must stay quiet), rule
scopes, direct triggers; then shadow mode, evasion and the merging of
actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from chatguard.policy.engine import (
    EVASION_RULE,
    Engine,
    MessageContext,
    in_scope,
    merge_actions,
)
from chatguard.policy.matcher import build_matcher
from chatguard.policy.model import (
    Action,
    ActionType,
    Assessment,
    Mode,
    Pattern,
    PlannedAction,
    Policy,
    Rule,
    Scope,
    Signal,
    Threshold,
    Where,
)
from chatguard.policy.risk import Band, ConversationState
from chatguard.policy.rules import regex_pattern

S = Signal
A = ActionType


def rx(expression: str) -> Pattern:
    return regex_pattern(expression)


def rule(
    rule_id: str,
    signal: Signal,
    weight: float,
    expression: str,
    *,
    scope: Scope | None = None,
    actions: tuple[Action, ...] = (),
    mode: Mode | None = None,
    unless: tuple[str, ...] = (),
) -> Rule:
    return Rule(
        id=rule_id,
        description=rule_id,
        signal=signal,
        languages=frozenset({"en"}),
        patterns=(rx(expression),),
        scope=scope or Scope(),
        weight=weight,
        actions=actions,
        mode=mode,
        unless=tuple(rx(u) for u in unless),
    )


RULES = (
    rule("en.age_probe.how_old", S.AGE_PROBE, 1, r"\bhow old (are|r) (you|u)\b|\basl\b"),
    rule("en.minor.age", S.MINOR_SELF, 1, r"\b(i'?m|i am) (1[0-7]|[5-9])\b|^1[0-7]\b"),
    rule("en.adult.age", S.ADULT_SELF, 1, r"\b(i'?m|i am) ([2-9][0-9]|1[89])\b"),
    rule(
        "en.flattery.mature", S.FLATTERY, 1.5, r"\bso mature\b|\b(you'?re|ur) (so )?(pretty|cute)\b"
    ),
    rule("en.exclusivity.only_one", S.EXCLUSIVITY, 2, r"\bonly one who (understands|gets) me\b"),
    rule("en.risk.parents", S.RISK_CHECK, 2, r"\bare (your|ur) parents (home|around)\b"),
    rule("en.secrecy.dont_tell", S.SECRECY, 2, r"\b(don'?t|dont) tell (anyone|your parents)\b"),
    rule("en.isolation.move_app", S.ISOLATION, 3, r"\btext me on (whatsapp|snap)\b"),
    rule("en.pi.ask", S.PI_REQUEST, 1.5, r"\bwhat school\b|\bwhat'?s (your|ur) number\b"),
    rule("en.pi.share", S.PI_SHARE, 1, r"\b\d{3}-\d{3}-\d{4}\b|\bi go to \w+"),
    rule("en.image.send", S.IMAGE_REQUEST, 3, r"\bsend (me )?(a )?(pic|photo)s?\b"),
    rule("en.sexual.words", S.SEXUAL, 3, r"\b(sex|naked|nudes?)\b"),
    rule(
        "en.meeting.meet", S.MEETING, 2, r"\bpick (you|u) up\b|\bmeet (me|up)\b|\bsee (you|u) at\b"
    ),
    rule("en.sextortion.threat", S.SEXTORTION, 5, r"\bi'?ll (send|post) (your|ur) (pics|nudes)\b"),
    rule("en.safeguarding.hurt", S.SAFEGUARDING, 3, r"\b(he|she) (hurts|hits) me\b"),
)
BANNER = Action(A.BANNER, {"banner": "stay_safe_reminder", "audience": "minor_participants"})
THRESHOLDS = (
    Threshold(4, (BANNER,), require_minor=True),
    Threshold(
        8,
        (
            Action(A.CAPTURE, {"before": 20, "after": 5}),
            Action(A.ESCALATE, {"category": "grooming"}),
        ),
    ),
)


def engine(
    rules: tuple[Rule, ...] = RULES,
    *,
    mode: Mode = Mode.ENFORCE,
    settings: Mapping[str, Any] | None = None,
    thresholds: tuple[Threshold, ...] = THRESHOLDS,
) -> Engine:
    policy = Policy(rules, thresholds, "test-1", mode=mode, settings=settings or {})
    return Engine(policy, build_matcher(rules))


def message(
    sender: str,
    text: str,
    to: tuple[str, ...] = (),
    ages: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> MessageContext:
    ages = ages or {}
    return MessageContext(
        text=text,
        conversation="c-1",
        sender=sender,
        recipients=to,
        where=kwargs.pop("where", Where.DIRECT),
        sender_age=ages.get(sender, "unknown"),
        recipient_ages={r: ages[r] for r in to if r in ages},
        **kwargs,
    )


@dataclass
class Chat:
    """A scripted direct conversation between two people, 30 seconds a message."""

    ages: dict[str, str]
    engine: Engine = field(default_factory=engine)
    state: ConversationState | None = None
    now: float = 1.7e9
    log: list[Assessment] = field(default_factory=list)

    def say(self, sender: str, text: str) -> Assessment:
        other = tuple(p for p in self.ages if p != sender)
        assessment, self.state = self.engine.assess(
            message(sender, text, other, self.ages), self.state, self.now
        )
        self.now += 30.0
        self.log.append(assessment)
        return assessment


# --- Scripted conversations ----------------------------------------------------------

GROOMING = [
    ("g", "hey how old are you"),
    ("kid", "im 13"),
    ("g", "wow you're so mature"),
    ("g", "you're the only one who understands me"),
    ("g", "are your parents home?"),
    ("g", "don't tell anyone about us"),
    ("g", "send me a pic"),
    ("g", "lets meet up"),
]


@pytest.mark.parametrize(
    "ages",
    [
        {"g": "adult", "kid": "minor"},
        {"g": "unknown", "kid": "unknown"},  # only "im 13" says who the child is
        {"g": "unknown", "kid": "minor"},
    ],
)
def test_grooming_escalates_by_the_sexual_stage(ages: dict[str, str]) -> None:
    chat = Chat(ages)
    escalated_at = None
    for i, (who, text) in enumerate(GROOMING):
        a = chat.say(who, text)
        if escalated_at is None and any(x.type is A.ESCALATE and not x.shadow for x in a.actions):
            escalated_at = i
    sexual_at = next(i for i, a in enumerate(chat.log) if S.IMAGE_REQUEST in a.signals)
    assert escalated_at is not None
    assert escalated_at <= sexual_at + 2
    assert chat.log[-1].risk > chat.log[2].risk
    assert chat.state is not None
    assert chat.state.escalation in ("medium", "high")
    assert any(x.type is A.BANNER and x.reason == "risk>=4" for a in chat.log for x in a.actions)


def test_grooming_toward_a_known_child_escalates_as_high() -> None:
    chat = Chat({"g": "adult", "kid": "minor"})
    for who, text in [*GROOMING, ("g", "you look so naked in my head")]:
        chat.say(who, text)
    escalations = [x for a in chat.log for x in a.actions if x.type is A.ESCALATE]
    assert [x.params["severity"] for x in escalations] == ["medium"]  # fired once
    assert chat.state is not None
    assert chat.state.fired == {"4m", "8"}


# name: (attested ages, script, risk must stay below). With a minor in the
# conversation, below the first (banner) threshold; between adults, who get no
# banner, below the escalation threshold.
QUIET: dict[str, tuple[dict[str, str], list[tuple[str, str]], float]] = {
    "teens talk age and school": (
        {"a": "minor", "b": "minor"},
        [
            ("a", "how old r u"),
            ("b", "im 14"),
            ("a", "im 15, what school do you go to?"),
            ("b", "i go to lincoln"),
            ("a", "haha ur cute"),
            ("b", "how old are you really lol"),
        ],
        4.0,
    ),
    "teens, ages from chat only": (
        {"a": "unknown", "b": "unknown"},
        [("a", "asl"), ("b", "im 14"), ("a", "im 15 what school"), ("b", "i go to lincoln")],
        4.0,
    ),
    "a parent arranges pickup": (
        {"mum": "adult", "kid": "minor"},
        [
            ("mum", "I'll pick you up from school at 5"),
            ("kid", "ok see you at the gate"),
            ("mum", "don't forget your coat, love you"),
            ("kid", "can u pick me up at 6 instead"),
            ("mum", "ok see you at 6"),
        ],
        4.0,
    ),
    "adults swap numbers": (
        {"a": "adult", "b": "adult"},
        [
            ("a", "what's your number?"),
            ("b", "555-123-4567"),
            ("a", "text me on whatsapp"),
            ("b", "i'm 34 btw, meet up for coffee?"),
        ],
        4.0,
    ),
    "unattested adults swap numbers": (
        {"a": "unknown", "b": "unknown"},
        [
            ("a", "i'm 29"),
            ("b", "what's your number?"),
            ("a", "555-123-4567"),
            ("b", "text me on whatsapp"),
        ],
        8.0,
    ),
}


@pytest.mark.parametrize("name", list(QUIET))
def test_ordinary_conversations_stay_quiet(name: str) -> None:
    ages, script, ceiling = QUIET[name]
    chat = Chat(dict(ages))
    for who, text in script:
        a = chat.say(who, text)
        assert a.actions == (), (who, text)
        assert a.risk < ceiling, (who, text)
    assert any(a.signals for a in chat.log)  # the rules did see something


def test_an_adult_posing_as_a_child_is_flagged() -> None:
    chat = Chat({"a": "adult", "kid": "minor"})
    a = chat.say("a", "im 13 too")
    assert chat.state is not None
    assert chat.state.bands("a") == (Band.ADULT, Band.ADULT)
    participant = chat.state.participant("a")
    assert participant is not None
    assert participant.contradiction
    assert [x.reason for x in a.actions] == ["risk>=4"]


# --- Scope ---------------------------------------------------------------------------

SECRET = r"\bsecret\b"
KID_13 = ("kid", "im 13")  # said first, so that the kid is a likely minor
ADULT_18 = ("kid", "im 18")

# (scope, message keyword arguments, something said earlier, applies)
SCOPES: list[tuple[Scope, dict[str, Any], tuple[str, str] | None, bool]] = [
    (Scope(), {}, None, True),
    (Scope(), {"origin": "upstream"}, None, False),
    (Scope(origins=frozenset({"upstream"})), {"origin": "upstream"}, None, True),
    (Scope(where=Where.DIRECT), {"where": Where.ROOM}, None, False),
    (Scope(where=Where.ROOM), {"where": Where.ROOM}, None, True),
    (Scope(), {"sender_roles": frozenset({"moderator"})}, None, False),
    (Scope(), {"sender_roles": frozenset({"vip"})}, None, True),
    (Scope(exempt_roles=frozenset()), {"sender_roles": frozenset({"moderator"})}, None, True),
    # sender age
    (Scope(sender_age=frozenset({"adult", "unknown"})), {"sender": "x"}, None, True),
    (
        Scope(sender_age=frozenset({"adult", "unknown"})),
        {"sender": "kid", "sender_age": "minor"},
        None,
        False,
    ),
    (
        Scope(sender_age=frozenset({"adult", "unknown"})),
        {"sender": "kid"},
        KID_13,
        True,
    ),  # never out
    (Scope(sender_age=frozenset({"minor"})), {"sender": "kid"}, KID_13, True),  # but in
    (
        Scope(sender_age=frozenset({"minor"})),
        {"sender": "kid", "sender_age": "adult"},
        KID_13,
        False,
    ),
    # recipient age: any recipient
    (
        Scope(recipient_age=frozenset({"minor"})),
        {"to": ("a", "b"), "ages": {"b": "minor"}},
        None,
        True,
    ),
    (
        Scope(recipient_age=frozenset({"minor"})),
        {"to": ("a", "b"), "ages": {"b": "adult"}},
        None,
        False,
    ),
    (Scope(recipient_age=frozenset({"minor"})), {"to": ("kid",)}, KID_13, True),
    (
        Scope(recipient_age=frozenset({"minor"})),
        {"to": ("kid",), "ages": {"kid": "minor"}},
        ADULT_18,
        True,
    ),
    (
        Scope(recipient_age=frozenset({"adult"})),
        {"to": ("kid",), "ages": {"kid": "minor"}},
        ADULT_18,
        False,
    ),
    (Scope(recipient_age=frozenset({"minor"})), {"to": ()}, None, False),
    (Scope(recipient_age=frozenset({"unknown"})), {"to": ()}, None, True),
    (Scope(recipient_age=frozenset({"minor"})), {"to": ("x",)}, None, False),
]


@pytest.mark.parametrize(("scope", "kwargs", "earlier", "applies"), SCOPES)
def test_scope(
    scope: Scope, kwargs: dict[str, Any], earlier: tuple[str, str] | None, applies: bool
) -> None:
    rules = (*RULES, rule("t.secret", S.SECRECY, 1, SECRET, scope=scope))
    eng = engine(rules)
    state = None
    if earlier is not None:
        _, state = eng.assess(message(earlier[0], earlier[1], ("x",)), None, 0.0)
    kwargs = dict(kwargs)
    sender, to, ages = (
        kwargs.pop("sender", "x"),
        kwargs.pop("to", ("y",)),
        dict(kwargs.pop("ages", {})),
    )
    if "sender_age" in kwargs:
        ages[sender] = kwargs.pop("sender_age")
    a, _ = eng.assess(message(sender, "its a secret", to, ages, **kwargs), state, 1.0)
    assert (S.SECRECY in a.signals) is applies
    assert (
        in_scope(scope, message(sender, "", to, ages, **kwargs), state or ConversationState())
        is applies
    )


# --- Direct triggers -----------------------------------------------------------------


@pytest.mark.parametrize("ages", [{"a": "adult", "b": "adult"}, {"a": "unknown", "b": "minor"}])
def test_sextortion_escalates_critical_and_captures_at_once(ages: dict[str, str]) -> None:
    chat = Chat(ages)
    a = chat.say("a", "pay up or i'll post your nudes")
    assert (A.CAPTURE, {"before": 50, "after": 10}) in [(x.type, x.params) for x in a.actions]
    escalate = next(x for x in a.actions if x.type is A.ESCALATE)
    assert escalate.params == {"severity": "critical", "category": "sextortion"}
    assert escalate.reason == "en.sextortion.threat"
    assert chat.state is not None
    assert chat.state.escalation == "critical"


@pytest.mark.parametrize(("age", "fires"), [("minor", True), ("unknown", True), ("adult", False)])
def test_a_childs_safeguarding_disclosure_gets_help_and_a_moderator(age: str, fires: bool) -> None:
    chat = Chat({"kid": age, "friend": "minor"})
    a = chat.say("kid", "he hurts me when mum is out")
    got = {(x.type, tuple(sorted(x.params.items()))) for x in a.actions}
    assert (
        (A.BANNER, (("audience", "sender"), ("banner", "safeguarding_help"))) in got
        and (A.ESCALATE, (("category", "safeguarding"), ("severity", "high"))) in got
    ) is fires


def test_a_self_declared_child_counts_for_safeguarding() -> None:
    chat = Chat({"kid": "unknown", "x": "unknown"})
    chat.say("kid", "im 12 and i'm 19")  # a minor claim wins over an adult one
    a = chat.say("kid", "she hits me")
    assert any(x.params.get("banner") == "safeguarding_help" for x in a.actions)


def test_direct_triggers_can_be_turned_off() -> None:
    settings = {"risk": {"sextortion": False, "safeguarding": False}}
    chat = Chat({"a": "unknown", "b": "unknown"}, engine(settings=settings))
    assert chat.say("a", "i'll post your pics").actions == ()
    chat = Chat({"a": "unknown", "b": "minor"}, engine(settings=settings))
    assert chat.say("b", "he hurts me").actions == ()


def test_direct_triggers_add_to_rule_actions() -> None:
    own = rule("t.sext", S.SEXTORTION, 1, r"\bpost your pics\b", actions=(Action(A.BLOCK, {}),))
    chat = Chat({"a": "unknown", "b": "unknown"}, engine((own,)))
    a = chat.say("a", "i will post your pics")
    assert [x.type for x in a.actions] == [A.BLOCK, A.CAPTURE, A.ESCALATE]
    assert {x.reason for x in a.actions} == {"t.sext"}


WISH = replace(
    rule(
        "t.wish",
        S.SAFEGUARDING,
        4,
        r"\bi want to die\b",
        actions=(Action(A.BANNER, {"banner": "safeguarding_help", "audience": "sender"}),),
    ),
    trigger=False,
)


def test_a_rule_that_does_not_trigger_shows_its_banner_and_escalates_only_when_said_again() -> None:
    chat = Chat({"kid": "minor", "pal": "minor"}, engine((WISH,)))
    first = chat.say("kid", "i want to die")
    assert [(x.type, x.reason) for x in first.actions] == [(A.BANNER, "t.wish")]
    assert first.risk == 0.0  # a safeguarding signal scores nothing
    assert chat.say("pal", "i want to die").actions[0].type is A.BANNER  # someone else: not again
    chat.say("pal", "why")
    again = chat.say("kid", "idk. i want to die")
    escalate = [x for x in again.actions if x.type is A.ESCALATE]
    assert [(x.params, x.reason) for x in escalate] == [
        ({"severity": "high", "category": "safeguarding"}, "t.wish")
    ]


def test_a_rule_that_does_not_trigger_and_escalates_itself_acts_only_through_its_actions() -> None:
    help_them = Action(A.BANNER, {"banner": "safeguarding_help", "audience": "recipients"})
    escalate = Action(A.ESCALATE, {"severity": "high", "category": "safeguarding"})
    reply = replace(
        rule("t.reply", S.SAFEGUARDING, 4, r"\bare you safe\b", actions=(help_them, escalate)),
        trigger=False,
    )
    chat = Chat({"pal": "minor", "kid": "minor"}, engine((reply,)))
    for _ in range(2):  # said twice: still its own two actions, no banner for the sender
        a = chat.say("pal", "are you safe")
        assert [(x.type, x.params.get("audience")) for x in a.actions] == [
            (A.BANNER, "recipients"),
            (A.ESCALATE, None),
        ]


def test_a_rule_that_does_not_trigger_is_not_said_again_after_a_long_silence() -> None:
    chat = Chat({"kid": "minor", "pal": "minor"}, engine((WISH,)))
    chat.say("kid", "i want to die")
    chat.now += 6 * 3600.0  # hours later the first one has all but faded
    later = chat.say("kid", "i want to die")
    assert [x.type for x in later.actions] == [A.BANNER]


@pytest.mark.parametrize(
    ("sender_age", "text", "acts"),
    [
        # Talking about a threat: a quotation framed by the speaker's own words.
        ("adult", 'scammers write "i\'ll post your pics" to teens', False),
        ("unknown", "they say \u201ci'll post your pics\u201d, report it", False),
        ("adult", "sie schreiben \u201ei'll post your pics\u201c", False),
        # The threat itself, in or out of quotation marks.
        ("adult", "i'll post your pics", True),
        ("adult", '"i\'ll post your pics"', True),
        ("adult", 'pay or i\'ll post your pics. "everyone" will see', True),
        ("adult", "he said \"i'll post your pics", True),  # an unclosed mark quotes nothing
        # A child quoting what was said to them is a disclosure.
        ("minor", 'he said "i\'ll post your pics" if i stop', True),
    ],
)
def test_a_quoted_threat_scores_but_does_not_act_at_once(
    sender_age: str, text: str, acts: bool
) -> None:
    chat = Chat({"a": sender_age, "b": "adult"})
    a = chat.say("a", text)
    assert S.SEXTORTION in a.signals  # still seen and scored
    assert any(x.type is A.ESCALATE for x in a.actions) is acts


def test_a_childs_quotation_still_acts_but_weighs_a_tenth() -> None:
    chat = Chat({"kid": "minor", "pal": "minor"})
    told = chat.say("kid", 'he said "i\'ll post your pics" if i stop')
    (m,) = [m for m in told.matches if m.signal is S.SEXTORTION]
    assert (m.quoted, m.weight) == (True, 0.5)
    assert any(x.type is A.ESCALATE for x in told.actions)  # a disclosure acts
    homework = Chat({"kid": "minor", "tutor": "adult"})
    listed = homework.say("kid", 'red flags: 1. "send me a pic" 2. "are your parents home"')
    assert {m.signal for m in listed.matches} == {S.IMAGE_REQUEST, S.RISK_CHECK}
    assert all(m.quoted for m in listed.matches)
    asked = Chat({"kid": "minor", "tutor": "adult"})
    own = asked.say("kid", "send me a pic. are your parents home")
    assert listed.risk < own.risk / 5


# --- Shadow --------------------------------------------------------------------------


def test_a_shadow_rule_records_what_it_would_have_done() -> None:
    warn = Action(A.BANNER, {"banner": "off_platform_warning", "audience": "recipients"})
    trial = rule("t.trial", S.ISOLATION, 10, r"\bsnap\b", mode=Mode.SHADOW, actions=(warn,))
    chat = Chat({"a": "adult", "kid": "minor"}, engine((*RULES, trial)))
    a = chat.say("a", "add me on snap")
    assert [(m.rule_id, m.shadow) for m in a.matches] == [("t.trial", True)]
    assert all(x.shadow for x in a.actions)
    assert {x.reason for x in a.actions} == {"t.trial", "risk>=4", "risk>=8"}
    assert chat.state is not None
    assert chat.state.risk > 8
    assert chat.state.enforced_risk == 0.0
    assert chat.state.fired == set()
    assert chat.state.fired_shadow == {"4m", "8"}
    assert chat.state.escalation is None  # a shadow escalation is not a real one
    b = chat.say("a", "send me a pic")  # an enforced rule now reaches the thresholds
    assert {(x.reason, x.shadow) for x in b.actions} == {
        ("risk>=4", False),
        ("risk>=8", False),
    }


def test_a_shadow_pack_acts_on_nothing() -> None:
    enforced = rule("t.enforced", S.SEXTORTION, 5, r"\bpost your nudes\b", mode=Mode.ENFORCE)
    chat = Chat({"a": "adult", "kid": "minor"}, engine((*RULES, enforced), mode=Mode.SHADOW))
    assessments = [chat.say(who, text) for who, text in GROOMING] + [
        chat.say("a", "i'll post your nudes")
    ]
    actions = [x for a in assessments for x in a.actions]
    assert actions
    assert all(x.shadow for x in actions)
    assert all(m.shadow for a in assessments for m in a.matches)
    assert chat.state is not None
    assert chat.state.risk > 8
    assert chat.state.enforced_risk == 0.0


# --- Evasion, matches, spans ---------------------------------------------------------


def test_a_declaration_for_both_declares_the_person_it_is_said_to() -> None:
    """A rule with ``declares_recipient`` ("we're both 15"), said to one
    person, declares them too; without it, only the sender."""
    both = replace(
        rule("en.minor.both", S.MINOR_SELF, 0.5, r"\bwe'?re both 1[0-7]\b"),
        declares_recipient=True,
    )
    eng = engine((*RULES, both))
    _, state = eng.assess(message("amara", "we're both 15, u can tell me", ("joel",)), None, 1.7e9)
    assert state.bands("joel")[1] is Band.LIKELY_MINOR
    plain = engine((*RULES, replace(both, declares_recipient=False)))
    _, state = plain.assess(
        message("amara", "we're both 15, u can tell me", ("joel",)), None, 1.7e9
    )
    assert state.bands("amara")[1] is Band.LIKELY_MINOR
    assert state.bands("joel")[1] is Band.UNKNOWN


def test_a_declaration_of_the_reader_declares_them_and_not_the_sender() -> None:
    """A rule with ``declares_sender: false`` ("ur only 13"), said by an
    attested adult to one person, declares that person a likely minor; the
    adult declares nothing, so it is no age contradiction either."""
    reader = replace(
        rule("en.minor.reader", S.MINOR_SELF, 0.5, r"\bur only 1[0-7]\b"),
        declares_recipient=True,
        declares_sender=False,
    )
    ages = {"tyler": "adult"}
    _, state = engine((*RULES, reader)).assess(
        message("tyler", "bc ur sweet and ur only 13", ("chloe",), ages), None, 1.7e9
    )
    assert state.bands("chloe")[1] is Band.LIKELY_MINOR
    tyler = state.participant("tyler")
    assert tyler is not None
    assert not tyler.declared
    assert not tyler.contradiction
    assert set(state.pairs[("tyler", "chloe")].scores) == {S.MINOR_SELF.value}
    # The same words as a declaration for both would make the adult claim to be 13.
    both = replace(reader, declares_sender=True)
    _, state = engine((*RULES, both)).assess(
        message("tyler", "bc ur sweet and ur only 13", ("chloe",), ages), None, 1.7e9
    )
    tyler = state.participant("tyler")
    assert tyler is not None
    assert tyler.contradiction


@pytest.mark.parametrize(
    ("script", "years"),
    [
        ([("sam", "i'm 17 lol")], 17),
        ([("kim", "how old are u"), ("sam", "13, why")], 13),  # a bare answer
        ([("kim", "how old are u"), ("sam", "year 8. why")], 0),  # a school year, not an age
        ([("sam", "ur only 13")], 0),  # said of the reader: nothing of the sender
        ([("sam", "i'm 16"), ("sam", "so mature")], 16),  # kept until another is said
        ([("sam", "i'm 16"), ("sam", "i'm 17 now")], 17),
    ],
)
def test_the_age_a_declaration_gives_is_kept(script: list[tuple[str, str]], years: int) -> None:
    reader = replace(
        rule("en.minor.reader", S.MINOR_SELF, 0.5, r"\bur only 1[0-7]\b"),
        declares_recipient=True,
        declares_sender=False,
    )
    chat = Chat({"sam": "unknown", "kim": "unknown"}, engine((*RULES, reader)))
    for sender, text in script:
        chat.say(sender, text)
    assert chat.state is not None
    sam = chat.state.participant("sam")
    assert (sam.years if sam is not None else 0) == years


def test_evasion_counts_only_with_a_rule_match() -> None:
    chat = Chat({"a": "unknown", "b": "unknown"})
    plain = chat.say("a", "ｈｅｌｌｏ ｔｈｅｒｅ")  # fullwidth, nothing else
    assert plain.evasions == {"compat"}
    assert plain.signals == ()
    assert plain.risk == 0.0
    a = chat.say("a", "s3nd me a p1c")
    assert a.signals == (S.IMAGE_REQUEST, S.EVASION)
    evasion = a.matches[-1]
    assert (evasion.rule_id, evasion.weight, evasion.spans) == (EVASION_RULE, 0.5, ())
    assert a.risk == pytest.approx(3.0 + 0.5)


def test_letters_drawn_out_are_recorded_but_are_not_the_evasion_signal() -> None:
    chat = Chat({"a": "unknown", "b": "unknown"})
    a = chat.say("a", "sooo send me a pic")
    assert a.evasions == {"repeat"}
    assert a.signals == (S.IMAGE_REQUEST,)
    b = chat.say("a", "sooo s3nd me a p1c!")
    assert S.EVASION in b.signals


def test_match_spans_index_the_original_text() -> None:
    chat = Chat({"a": "unknown", "b": "minor"})
    text = "ok ｓｅｎｄ me a pic!"
    a = chat.say("a", text)
    (m, *_) = a.matches
    assert [text[s:e] for s, e in m.spans] == ["ｓｅｎｄ me a pic"]


def test_the_assessment_describes_this_message() -> None:
    chat = Chat({"a": "unknown", "b": "unknown"})
    chat.say("a", "don't tell anyone")
    a = chat.say("a", "how old are you? send a pic")
    assert a.conversation == "c-1"
    assert a.policy_version == "test-1"
    assert a.signals == (S.AGE_PROBE, S.IMAGE_REQUEST)
    assert chat.state is not None
    assert a.risk == chat.state.risk
    assert chat.state.messages == 2


def test_assess_never_changes_the_state_it_is_given() -> None:
    eng = engine()
    _, state = eng.assess(message("a", "send me a pic", ("b",)), None, 0.0)
    data = state.to_json()
    eng.assess(message("a", "send me a pic", ("b",)), state, 10.0)
    assert state.to_json() == data


def test_an_unless_pattern_cancels_its_rule() -> None:
    snap = rule("t.snap", S.ISOLATION, 3, r"\bsnapchat\b", unless=(r"\bdeleted snapchat\b",))
    chat = Chat({"a": "unknown", "b": "unknown"}, engine((snap,)))
    assert chat.say("a", "i deleted snapchat").signals == ()
    assert chat.say("a", "add me on snapchat").signals == (S.ISOLATION,)


# --- Actions -------------------------------------------------------------------------


def planned(
    type_: ActionType, reason: str = "r", shadow: bool = False, **params: Any
) -> PlannedAction:
    return PlannedAction(type_, params, reason, shadow)


MERGES = [
    (
        [
            planned(A.BANNER, "r1", banner="x", audience="sender"),
            planned(A.BANNER, "r2", banner="x", audience="sender"),
        ],
        [planned(A.BANNER, "r1", banner="x", audience="sender")],
    ),
    (
        [
            planned(A.BANNER, banner="x", audience="sender"),
            planned(A.BANNER, banner="y", audience="sender"),
        ],
        [
            planned(A.BANNER, banner="x", audience="sender"),
            planned(A.BANNER, banner="y", audience="sender"),
        ],
    ),
    (
        [
            planned(A.CAPTURE, "r1", before=20, after=5),
            planned(A.CAPTURE, "r2", before=50, after=1),
        ],
        [planned(A.CAPTURE, "r1", before=50, after=5)],
    ),
    (
        [
            planned(A.ESCALATE, "r1", severity="medium", category="grooming"),
            planned(A.ESCALATE, "r2", severity="critical", category="grooming"),
            planned(A.ESCALATE, "r3", severity="high", category="sextortion"),
        ],
        [
            planned(A.ESCALATE, "r2", severity="critical", category="grooming"),
            planned(A.ESCALATE, "r3", severity="high", category="sextortion"),
        ],
    ),
    (
        [planned(A.BLOCK, "r1", shadow=True), planned(A.BLOCK, "r2")],
        [planned(A.BLOCK, "r2")],
    ),
    (
        [planned(A.CAPTURE, "r1", before=1), planned(A.CAPTURE, "r2", shadow=True, before=99)],
        [planned(A.CAPTURE, "r1", before=1)],
    ),
]


@pytest.mark.parametrize(("actions", "merged"), MERGES)
def test_merge_actions(actions: list[PlannedAction], merged: list[PlannedAction]) -> None:
    assert list(merge_actions(actions)) == merged


def test_rule_actions_are_merged_with_threshold_actions() -> None:
    capture = Action(A.CAPTURE, {"before": 5, "after": 30})
    greedy = rule("t.pic", S.IMAGE_REQUEST, 10, r"\bpic\b", actions=(capture, BANNER))
    chat = Chat({"a": "adult", "kid": "minor"}, engine((greedy,)))
    a = chat.say("a", "pic")
    assert [(x.type, x.reason) for x in a.actions] == [
        (A.CAPTURE, "t.pic"),
        (A.BANNER, "t.pic"),
        (A.ESCALATE, "risk>=8"),
    ]
    assert a.actions[0].params == {"before": 20, "after": 30}


def test_an_escalation_without_severity_gets_one_from_risk() -> None:
    chat = Chat({"a": "unknown", "b": "unknown"})
    for text in ["don't tell anyone", "don't tell your parents", "dont tell anyone"] * 2:
        a = chat.say("a", text)
    escalate = [x for lg in chat.log for x in lg.actions if x.type is A.ESCALATE]
    assert [x.params for x in escalate] == [{"category": "grooming", "severity": "medium"}]
    assert a.actions == ()
    assert chat.state is not None
    assert chat.state.escalation == "medium"


# --- languages ---------------------------------------------------------------------


def in_language(r: Rule, *languages: str) -> Rule:
    return Rule(
        id=r.id,
        description=r.description,
        signal=r.signal,
        languages=frozenset(languages),
        patterns=r.patterns,
        weight=r.weight,
        actions=r.actions,
    )


SNAP = r"\bsnap\b"
LANGUAGE_CASES = [
    # (rules, counted rule ids, the conversation's hint)
    pytest.param(
        [in_language(rule("en.snap", S.ISOLATION, 1, SNAP), "en"),
         in_language(rule("es.snap", S.ISOLATION, 1, SNAP), "es")],
        ["en.snap"], None, id="one word in two lists counts once",
    ),
    pytest.param(
        [in_language(rule("en.snap", S.ISOLATION, 1, SNAP), "en"),
         in_language(rule("es.snap", S.ISOLATION, 1, SNAP), "es")],
        ["es.snap"], "es", id="a tie goes to the conversation's language",
    ),
    pytest.param(
        [in_language(rule("en.snap", S.ISOLATION, 1, SNAP), "en"),
         in_language(rule("es.snap", S.ISOLATION, 2, r"\bsnap\b"), "es"),
         in_language(rule("es.on", S.ISOLATION, 1, r"\bon snap\b"), "es")],
        ["es.snap", "es.on"], "en", id="the language giving most weight wins over the hint",
    ),
    pytest.param(
        [in_language(rule("en.snap", S.ISOLATION, 1, SNAP), "en"),
         in_language(rule("all.snap", S.ISOLATION, 1, SNAP), "en", "es"),
         in_language(rule("es.snap", S.ISOLATION, 1, SNAP), "es")],
        ["en.snap", "all.snap"], None, id="a rule for several languages counts with each",
    ),
    pytest.param(
        [in_language(rule("en.snap", S.ISOLATION, 1, SNAP), "en"),
         in_language(rule("es.secret", S.SECRECY, 1, r"\bsecret\b"), "es")],
        ["en.snap", "es.secret"], None, id="different signals both count",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("rules", "counted", "hint"), LANGUAGE_CASES)
def test_a_signal_counts_in_one_language_per_message(
    rules: list[Rule], counted: list[str], hint: str | None
) -> None:
    e = Engine(
        Policy(rules=tuple(rules), thresholds=(), version="t"),
        build_matcher(rules, backend="fallback"),
    )
    state = ConversationState(language=hint)
    assessment, after = e.assess(message("x", "add me on snap its our secret", ("y",)), state, 1.0)
    assert [m.rule_id for m in assessment.matches] == counted
    expected: dict[str, float] = {}
    for r in rules:
        if r.id in counted:
            expected[r.signal.value] = expected.get(r.signal.value, 0.0) + r.weight
    assert after.scores == pytest.approx(expected)


def test_the_conversation_remembers_the_language_its_rules_matched_in() -> None:
    rules = [
        in_language(rule("en.snap", S.ISOLATION, 1, r"\badd me\b"), "en"),
        in_language(rule("es.snap", S.ISOLATION, 1, r"\bagregame\b"), "es"),
    ]
    e = Engine(Policy(rules=tuple(rules), thresholds=(), version="t"),
               build_matcher(rules, backend="fallback"))  # fmt: skip
    _, state = e.assess(message("x", "agregame", ("y",)), None, 1.0)
    assert state.language == "es"
    _, state = e.assess(message("x", "hola", ("y",)), state, 2.0)
    assert state.language == "es"  # a message without a match changes nothing
    assert ConversationState.from_json(state.to_json()) == state
    _, state = e.assess(message("x", "add me", ("y",)), state, 3.0)
    assert state.language == "en"


FAMILY_WORDS = {
    "pl": frozenset({"nie", "mi", "wiec", "moge", "jest"}),
    "es": frozenset({"mi", "ya", "estoy", "en", "que"}),
}


@pytest.mark.parametrize(
    ("text", "counted"),
    [
        # Polish "mama" is the child's mum, not the Spanish address "mamá".
        ("mama mi sprawdza telefon wiec nie moge duzo pisac", []),
        ("mama ya estoy en casa", ["es.kinship"]),
        ("ok mama", ["es.kinship"]),  # too short to tell: nothing is dropped
    ],
)
def test_family_words_count_only_in_the_messages_own_language(
    text: str, counted: list[str]
) -> None:
    kin = in_language(rule("es.kinship", S.KINSHIP, 1, r"\bmama\b"), "es")
    policy = Policy(rules=(kin,), thresholds=(), version="t", function_words=FAMILY_WORDS)
    e = Engine(policy, build_matcher((kin,), backend="fallback"))
    assessment, _ = e.assess(message("x", text, ("y",)), None, 1.0)
    assert [m.rule_id for m in assessment.matches] == counted


def test_only_family_words_are_read_in_the_messages_own_language() -> None:
    rules = (
        in_language(rule("es.snap", S.ISOLATION, 1, r"\bsnap\b"), "es"),
        in_language(rule("xx.kinship", S.KINSHIP, 1, r"\bmama\b"), "xx"),
    )
    policy = Policy(rules=rules, thresholds=(), version="t", function_words=FAMILY_WORDS)
    e = Engine(policy, build_matcher(rules, backend="fallback"))
    text = "mama mi sprawdza snap wiec nie moge"
    assessment, _ = e.assess(message("x", text, ("y",)), None, 1.0)
    # Other signals are read in every language; a rule of a language the
    # pack has no function words for cannot be judged, so it stays.
    assert [m.rule_id for m in assessment.matches] == ["es.snap", "xx.kinship"]


def test_a_message_context_compares_and_shows_itself_by_its_fields() -> None:
    msg = MessageContext("hi", "c", "amy", ("bob",), Where.DIRECT)
    assert msg == MessageContext("hi", "c", "amy", ("bob",), Where.DIRECT, "client", "unknown", {})
    assert msg != MessageContext("hi", "c", "amy", ("bob",), Where.DIRECT, room="#r")
    assert msg.recipient_ages == {}
    assert repr(msg) == (
        "MessageContext(text='hi', conversation='c', sender='amy', recipients=('bob',), "
        "where=<Where.DIRECT: 'direct'>, origin='client', sender_age='unknown', "
        "recipient_ages={}, sender_roles=frozenset(), room=None)"
    )
