"""The policy engine: one chat message in, an ``Assessment`` out.

``Engine.assess`` is the one place that says in which order a message meets
the policy:

1. **normalise** the text (at most ``policy.max_chars`` characters);
2. **scan**: the matcher returns the rules whose patterns match (a rule whose
   ``unless`` or ``signal_unless`` patterns match is not returned);
3. **scope**: drop rules whose scope excludes this message: origin, room or
   direct, the sender's and the recipients' age bands, exempt roles;
4. **matches**: one ``Match`` per remaining rule, marked shadow when the rule
   or the pack is in shadow mode; for a signal matched by rules of several
   languages, only one language's matches count (``one_language``; the
   others still carry out their actions); kinship and openness, which
   lower risk, count only from rules of the message's own language when
   its function words make that clear (``language.py``);
   **learned**: the pack's signal model (``signal_model.py``) adds a match,
   ``model.<signal>``, for each signal it finds that no rule matched (a
   moderator's messages are not scored); plus one ``evasion`` match when
   the normaliser undid a disguise *and* a rule or the model matched
   (disguises alone are ordinary chat);
5. **risk**: fold the matches into the conversation state (``risk.observe``);
6. **actions**: the rules' own actions, the direct triggers (sextortion,
   a child's safeguarding disclosure; found by a rule, or by the model when
   the pack lets it trigger; a rule marked ``trigger: false`` triggers only
   when the same person said it again within about a half-life), and the
   thresholds the conversation risk reached for the first time; merged so
   that each action appears once.

Age bands in scopes. A person's bands are their attested band and their
effective band (see ``risk``), read as a scope spells them (likely minor as
``minor``, likely adult as ``adult``). A sender is in a ``sender_age`` scope
when *either* band is listed, and a recipient in a ``recipient_age`` scope
likewise, so a claim can bring someone into a rule's scope but never take
them out of it: an unknown sender who says "im 13" is still caught by rules
for unknown senders, and a child who says "im 18" is still protected as a
minor. A message with no named recipients has one unknown recipient.

Shadow. A shadow match's actions are marked ``shadow=True``; it still updates
the state (in the shadow part, see ``risk``), so replay shows what would have
happened. Shadow rules are scoped with shadow self-declarations counted;
enforced rules only with enforced ones. A threshold fires for real only when
the risk without shadow matches reaches it. When the pack is in shadow mode
every rule is, whatever its own ``mode``.

Never: I/O, clock reads (``now`` is passed in), asyncio, or mutating state in
place (a new ``ConversationState`` is returned). The conversation's language
(the language its rules last matched in) is kept in the state only to break
ties in step 4.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final, Protocol

from chatguard.policy.addressing import addressed
from chatguard.policy.frozen import record_repr
from chatguard.policy.language import LanguageGuesser, base_language
from chatguard.policy.model import (
    ActionType,
    Assessment,
    Audience,
    Match,
    Mode,
    PlannedAction,
    Policy,
    Rule,
    Scope,
    Signal,
    Where,
)
from chatguard.policy.normalise import Evasion, Normalised, normalise
from chatguard.policy.pending import AGE_RULE, answer, answered_age, ask
from chatguard.policy.quotations import without_quotations
from chatguard.policy.risk import (
    MAX_THRESHOLDS,
    Band,
    ConversationState,
    Observation,
    Participant,
    RiskSettings,
    Trigger,
    attested_band,
    cross_thresholds,
    escalation_severity,
    observe,
    parse_settings,
    participant_key,
    record_escalation,
    severity_rank,
)

EVASION_RULE: Final = "normalise.evasion"  # the rule id of the evasion match
# Letters drawn out ("siii", "pleaseee") are how children write when they
# are excited, not a disguise: recorded, but not the evasion signal.
_EXPRESSIVE: Final = frozenset({Evasion.REPEAT})
MODEL_RULE_PREFIX: Final = "model."  # a learned match's rule id: "model.image_request"
MODEL_EXEMPT_ROLES: Final = frozenset({"moderator"})  # as rules' default ``exempt_roles``
_CONTEXT_SIGNALS: Final = frozenset({Signal.KINSHIP, Signal.OPENNESS})
# Enum members read on every message, as module constants: on Python 3.11 a
# member read through its class (``Mode.SHADOW``) goes through the enum
# type's ``__getattr__`` hook, several times the cost of a global.
_SHADOW: Final = Mode.SHADOW
_ESCALATE: Final = ActionType.ESCALATE
_ANY_WHERE: Final = Where.ANY
_UNKNOWN: Final = Band.UNKNOWN
# How a band is spelled in a scope: its own value, and its collapsed one.
_SCOPE_VALUE: Final = {band: band.value for band in Band}
_COLLAPSED_VALUE: Final = {band: band.collapsed.value for band in Band}


_MESSAGE_FIELDS: Final = (
    "text", "conversation", "sender", "recipients", "where",
    "origin", "sender_age", "recipient_ages", "sender_roles", "room",
)  # fmt: skip


class MessageContext:
    """One chat message and what the platform attests about its people.

    A record: its attributes are ``Final`` and it compares and shows itself
    by them, as a frozen dataclass would; a plain class, so that the
    compiled build makes it a native one (``native.py``, invariant 2)."""

    __slots__ = _MESSAGE_FIELDS

    def __init__(
        self,
        text: str,
        conversation: str,
        sender: str,
        recipients: tuple[str, ...],
        where: Where,
        origin: str = "client",
        sender_age: str = "unknown",
        recipient_ages: Mapping[str, str] | None = None,
        sender_roles: frozenset[str] = frozenset(),
        room: str | None = None,
    ) -> None:
        self.text: Final = text
        self.conversation: Final = conversation
        self.sender: Final = sender
        self.recipients: Final = recipients
        self.where: Final = where  # Where.ROOM or Where.DIRECT
        self.origin: Final = origin  # "client" | "upstream": the side that sent it
        self.sender_age: Final = sender_age  # attested: "minor" | "adult" | "unknown"
        # Attested, per recipient (``None``: a new empty map).
        self.recipient_ages: Final[Mapping[str, str]] = (
            {} if recipient_ages is None else recipient_ages
        )
        self.sender_roles: Final = sender_roles
        self.room: Final = room

    def _fields(self) -> tuple[object, ...]:
        return (
            self.text, self.conversation, self.sender, self.recipients, self.where,
            self.origin, self.sender_age, self.recipient_ages, self.sender_roles, self.room,
        )  # fmt: skip

    def __eq__(self, other: object) -> bool:  # no __hash__: its map is not hashable
        if not isinstance(other, MessageContext):
            return NotImplemented
        return self._fields() == other._fields()

    def __repr__(self) -> str:
        return record_repr(self, _MESSAGE_FIELDS, self._fields())


class ScanHit(Protocol):
    """A rule that matched, with spans in the original text."""

    @property
    def rule(self) -> Rule: ...

    @property
    def spans(self) -> Sequence[tuple[int, int]]: ...


class RuleScanner(Protocol):
    """What the engine needs from a matcher (``matcher.Matcher`` is one)."""

    def scan(self, norm: Normalised) -> Sequence[ScanHit]: ...

    def talked_about(self, norm: Normalised, signals: Sequence[Signal]) -> set[Signal]: ...


class Engine:
    """Assesses messages against one policy. Holds no per-conversation state."""

    def __init__(self, policy: Policy, matcher: RuleScanner) -> None:
        self.policy = policy
        self.settings: RiskSettings = parse_settings(policy.settings, half_life=policy.half_life)
        self._matcher = matcher
        self._thresholds = tuple(sorted(policy.thresholds, key=lambda t: t.at))
        # Once every threshold has fired for real, no message can fire one.
        self._every_threshold = frozenset(t.key for t in self._thresholds[:MAX_THRESHOLDS])
        use = policy.model_use
        self._model = policy.signal_model if use.enabled else None
        self._model_shadow = policy.mode is Mode.SHADOW or use.mode is Mode.SHADOW
        self._languages = LanguageGuesser(policy.function_words) if policy.function_words else None
        # Rules that escalate through their own actions: a soft match of one
        # needs no trigger (a property of the rule, so worked out once).
        self._escalating = frozenset(
            r.id for r in policy.rules if any(a.type is _ESCALATE for a in r.actions)
        )

    def assess(
        self, msg: MessageContext, state: ConversationState | None, now: float
    ) -> tuple[Assessment, ConversationState]:
        """Assess one message sent at ``now`` in a conversation whose state is
        ``state`` (``None`` for a new one); return the assessment and the new
        state to store. ``state`` itself is never changed."""
        before = state or ConversationState()
        norm = normalise(msg.text, max_chars=self.policy.max_chars)
        matched = self._matches(msg, before, self._matcher.scan(norm))
        if self._languages is not None and matched:
            matched = in_own_language(matched, norm.folded, self._languages)
        counted = one_language(matched, before.language) if len(matched) > 1 else matched
        matches = [m for m, _ in counted]
        found = self._learned(msg, norm, matched) if self._model is not None else []
        learned = [m for m, _ in found]
        matches += learned
        # What the sender says in their own words, outside quotations: looked
        # at only when something matched (most messages match nothing).
        own = _OwnWords(self, msg.text) if matches else _NOTHING_OWN
        if matches:
            matches = self._quoted_weigh_less(matches, own)
        yes, pending = answer(before, msg.sender, before.messages, norm.folded)
        if yes is not None:
            matches.append(yes)
        if (
            matches
            and norm.evasions
            and not norm.evasions <= _EXPRESSIVE
            and (yes is None or len(matches) > 1)
        ):
            shadow = all(m.shadow for m in matches)
            matches.append(
                Match(EVASION_RULE, Signal.EVASION, self.settings.evasion_weight, (), shadow)
            )
        recipients = addressed(msg.text, msg.recipients) if matches else msg.recipients
        obs = Observation(
            msg.sender,
            recipients,
            tuple(matches),
            msg.sender_age,
            msg.recipient_ages,
            _for_recipient(matched, matches) if matched else (),
            _reader_only(matched) if matched else _NO_IDS,
            _years_said(matched, yes, msg.text, norm.folded) if matched or yes is not None else 0,
        )
        pending = ask(
            pending,
            matched,
            # A room question that names its person ("how old are you elsie?")
            # is asked of that person, and their bare "10" answers it.
            recipients,
            before.messages,
            self.settings.answer_window,
            matches,
            norm.folded,
        )
        language = _language_of(counted) if counted else None
        # The new state is built once, with the engine's parts in it.
        after = observe(before, obs, self.settings, now, pending=pending, language=language)

        planned: list[PlannedAction] = []
        acting = self._acting(msg, after, matched, own) if matched else matched
        if acting:
            planned = [
                PlannedAction(a.type, dict(a.params), rule.id, m.shadow)
                for m, rule in acting
                for a in rule.actions
            ]
        sure = self._sure(msg, after, found, own) if found else []
        if acting or sure:
            triggering = [m for m, rule in acting if rule.trigger] + sure
            # A rule that escalates through its own actions needs no trigger.
            soft = [m for m, rule in acting if not rule.trigger and rule.id not in self._escalating]
            if soft:
                triggering += _said_again(after, msg.sender, soft)
            planned += self._triggers(msg, after, triggering) if triggering else []
        if (
            self._thresholds
            and max(after.risk, after.enforced_risk) >= self._thresholds[0].at
            and not self._every_threshold <= after.fired
        ):
            after, crossed = cross_thresholds(after, self._thresholds)
            for th, shadow in crossed:
                reason = f"risk>={th.at:g}"
                planned += [
                    PlannedAction(a.type, dict(a.params), reason, shadow) for a in th.actions
                ]
        actions = merge_actions(self._complete(a, after) for a in planned) if planned else ()
        for a in actions:
            if a.type is _ESCALATE and not a.shadow:
                after = record_escalation(after, str(a.params["severity"]))

        signals = tuple(dict.fromkeys(m.signal for m in matches)) if matches else ()
        # By position, in the order of its fields (conversation, risk, signals,
        # matches, actions, evasions, policy version): a dataclass's keyword
        # arguments are matched by name, a measurable part of every message.
        assessment = Assessment(
            msg.conversation,
            after.risk,
            signals,
            tuple(matches),
            actions,
            frozenset(norm.evasions),
            self.policy.version,
        )
        return assessment, after

    # --- steps ---------------------------------------------------------------------

    def _shadow(self, rule: Rule) -> bool:
        return self.policy.mode is _SHADOW or rule.mode is _SHADOW

    def _matches(
        self, msg: MessageContext, state: ConversationState, hits: Iterable[ScanHit]
    ) -> list[tuple[Match, Rule]]:
        spans: dict[str, tuple[Rule, set[tuple[int, int]]]] = {}
        for hit in hits:
            spans.setdefault(hit.rule.id, (hit.rule, set()))[1].update(hit.spans)
        if not spans:
            return []
        bands = _MessageBands(msg, state)
        out: list[tuple[Match, Rule]] = []
        for rule_id, (rule, found) in spans.items():
            shadow = self._shadow(rule)
            if bands.in_scope(rule.scope, shadow):
                match = Match(rule_id, rule.signal, rule.weight, tuple(sorted(found)), shadow)
                out.append((match, rule))
        return out

    def _learned(
        self, msg: MessageContext, norm: Normalised, matched: list[tuple[Match, Rule]]
    ) -> list[tuple[Match, float]]:
        """The signals only the signal model found, with its probability: a
        signal a rule matched (in any language) is the rule's, a signal the
        rules' ``signal_unless`` guards say the message does not carry ("if
        anyone asks you to...", "a pic of your cat") is dropped, and a
        moderator's message is not scored. In a message that shows a family
        or brings the parents in, the model, which reads words and not
        relations, finds nothing: "I'll call your mum to organise it,
        otherwise..." is a nurse, not a threat."""
        assert self._model is not None
        if msg.sender_roles and MODEL_EXEMPT_ROLES & msg.sender_roles:
            return []
        found = self._model.found(norm.folded)
        if not found:
            return []
        if any(m.signal in _CONTEXT_SIGNALS for m, _ in matched):
            return []
        # A signal only ``trigger: false`` rules matched (a sign that counts
        # once and acts when said again) is still the model's to read: such a
        # rule adds caution to what it matches, never takes a catch away.
        ruled = {m.signal for m, r in matched if r.trigger}
        found = [(s, p) for s, p in found if s not in ruled]
        if found:
            about = self._matcher.talked_about(norm, [s for s, _ in found])
            found = [(s, p) for s, p in found if s not in about]
        use = self.policy.model_use
        return [
            (Match(MODEL_RULE_PREFIX + s.value, s, use.weight_of(s), (), self._model_shadow), p)
            for s, p in found
        ]

    def _quoted_weigh_less(self, matches: list[Match], own: _OwnWords) -> list[Match]:
        """Someone quoting grooming lines (a lesson, a news story, a training
        room, a pupil's homework, a child retelling what was said) is talking
        *about* them: a match found only inside quotations weighs
        ``quoted_weight`` of its weight. Whoever quotes: a child's quotation
        still *acts* (``_acting``), but the words are not a move the child
        makes toward whoever they tell."""
        rules = own.rules()
        if rules is None:
            return matches
        signals = own.signals()
        k = self.settings.quoted_weight
        return [
            m
            if (
                m.rule_id in rules
                or (m.rule_id.startswith(MODEL_RULE_PREFIX) and m.signal in signals)
            )
            else replace(m, weight=m.weight * k, quoted=True)
            for m in matches
        ]

    def _sure(
        self,
        msg: MessageContext,
        state: ConversationState,
        found: list[tuple[Match, float]],
        own: _OwnWords,
    ) -> list[Match]:
        """The learned matches that may trigger at once: the pack lets them,
        the model is at least ``trigger_at`` sure (it found nothing in a
        message that shows a family or brings the parents in), a learned
        sextortion threat is not said to someone the conversation has shown
        to be the sender's family (a grandmother's "show me your room" on a
        video call), and, as in ``_acting``, the signal is not found only
        inside a quotation by someone not known as a child."""
        use = self.policy.model_use
        if not use.triggers:
            return []
        sure = [m for m, p in found if p >= use.trigger_at]
        if sure and any(m.signal is Signal.SEXTORTION for m in sure) and _kin(state, msg):
            sure = [m for m in sure if m.signal is not Signal.SEXTORTION]
        if not sure or _minorish(state, msg.sender) or own.rules() is None:
            return sure
        still = own.signals()
        return [m for m in sure if m.signal in still]

    def _acting(
        self,
        msg: MessageContext,
        state: ConversationState,
        matched: list[tuple[Match, Rule]],
        own: _OwnWords,
    ) -> list[tuple[Match, Rule]]:
        """The matches that may act on their own message (rule actions and
        direct triggers). Someone not known as a child quoting a threat or a
        cry for help (a training room, a news story, a lesson) is talking
        *about* it: a match wholly inside a quotation still scores (less, see
        ``_quoted_weigh_less``), but does not act at once. A child quoting
        what was said to them still acts: that is a disclosure."""
        if _minorish(state, msg.sender):
            return matched
        still = own.rules()
        if still is None:
            return matched
        return [(m, r) for m, r in matched if m.rule_id in still]

    def _triggers(
        self, msg: MessageContext, state: ConversationState, matched: Sequence[Match]
    ) -> list[PlannedAction]:
        out: list[PlannedAction] = []
        for signal, trigger in (
            (Signal.SEXTORTION, self.settings.sextortion),
            (Signal.SAFEGUARDING, self.settings.safeguarding),
        ):
            hits = [m for m in matched if m.signal is signal]
            if trigger is None or not hits:
                continue
            shadow = all(m.shadow for m in hits)
            if signal is Signal.SAFEGUARDING:
                # Only a child's (or a possible child's) disclosure: an adult
                # describing abuse is a matter for ordinary moderation.
                band = _participant(state, msg.sender, None).band(include_shadow=shadow)
                if band.adultish:
                    continue
            out += _trigger_actions(trigger, hits[0].rule_id, shadow)
        return out

    def _complete(self, action: PlannedAction, state: ConversationState) -> PlannedAction:
        """An escalation without a severity gets the one its risk calls for."""
        if action.type is not _ESCALATE or "severity" in action.params:
            return action
        risk = state.risk if action.shadow else state.enforced_risk
        severity = escalation_severity(risk, state, self.settings, include_shadow=action.shadow)
        params = {"category": "grooming", **action.params, "severity": severity}
        return PlannedAction(action.type, params, action.reason, action.shadow)


class _OwnWords:
    """A message's own words: what still matches once its quotations are
    blanked out. Scanned at most once, and only when asked."""

    __slots__ = ("_engine", "_rules", "_signals", "_text", "_unquoted")

    def __init__(self, engine: Engine | None, text: str) -> None:
        self._engine = engine
        self._text = text
        self._unquoted: Normalised | bool | None = False  # False: not looked yet
        self._rules: set[str] | None = None
        self._signals: set[Signal] | None = None

    def _norm(self) -> Normalised | None:
        if self._engine is None:
            return None
        if self._unquoted is False:
            unquoted = without_quotations(self._text)
            max_chars = self._engine.policy.max_chars
            self._unquoted = None if unquoted is None else normalise(unquoted, max_chars=max_chars)
        return self._unquoted if isinstance(self._unquoted, Normalised) else None

    def rules(self) -> set[str] | None:
        """Ids of the rules the own words match; ``None`` when the message
        quotes nothing (everything in it is the sender's own words)."""
        norm = self._norm()
        if norm is None or self._engine is None:
            return None
        if self._rules is None:
            # Rescanned rather than judged by spans: a pattern anchored at the
            # start of the message has a span that begins outside the quotation.
            self._rules = {h.rule.id for h in self._engine._matcher.scan(norm)}
        return self._rules

    def signals(self) -> set[Signal]:
        """The signals the model finds in the own words (empty without a model)."""
        norm = self._norm()
        model = self._engine._model if self._engine is not None else None
        if norm is None or model is None:
            return set()
        if self._signals is None:
            self._signals = {signal for signal, _ in model.found(norm.folded)}
        return self._signals


_NOTHING_OWN: Final = _OwnWords(None, "")  # for a message that matched nothing: never asked


def _for_recipient(matched: list[tuple[Match, Rule]], matches: list[Match]) -> tuple[Match, ...]:
    """The age declarations that speak for the recipient too ("we're both
    15"), outside quotations."""
    ids = {m.rule_id for m, rule in matched if rule.declares_recipient}
    return tuple(m for m in matches if m.rule_id in ids and not m.quoted) if ids else ()


_NO_IDS: Final[frozenset[str]] = frozenset()


def _reader_only(matched: list[tuple[Match, Rule]]) -> frozenset[str]:
    """The rule ids of the age declarations that speak for the recipient
    alone ("ur only 13"): the sender declares nothing by them."""
    ids = [m.rule_id for m, rule in matched if not rule.declares_sender]
    return frozenset(ids) if ids else _NO_IDS


_DECLARING: Final = frozenset({Signal.MINOR_SELF, Signal.ADULT_SELF})
# A number of years, not an ordinal ("8th", "en 3e", "9te", "8º"); a span
# that names a school year in words ("year 11", "7. Klasse") is ``_SCHOOL``'s.
_NUMBER: Final = re.compile(
    r"(?<![0-9])([0-9]{1,2})(?![0-9])(?!\s?(?:th|st|nd|rd|e[a-zA-Z]?\b|eme|ème|te\b|º|ª|o\b))"
)
_SCHOOL: Final = re.compile(
    r"\b(?:year|yr|grade|klass\w*|klas\w*|class\w*|série|serie|ano|año|curso|coll[eè]ge|lyc[eé]e"
    r"|primaria|secundaria|eso|schule|szko\w*|sixth form)\b",
    re.IGNORECASE,
)


def _years_said(
    matched: list[tuple[Match, Rule]], yes: Match | None, text: str, folded: str
) -> int:
    """The age in years the sender gives of themselves by an enforced
    declaration: a bare answer's number ("13, year 8"), or the first one- or
    two-digit number inside a declaring rule's match ("im 17", "tengo 13
    años"); 0 when none gives one (an age in words, or the signal model's)."""
    if yes is not None and yes.rule_id == AGE_RULE and not yes.shadow:
        age = answered_age(folded, years_only=True)
        if age is not None:
            return age
    for m, rule in matched:
        if m.signal in _DECLARING and not m.shadow and not m.quoted and rule.declares_sender:
            for start, end in m.spans:
                if _SCHOOL.search(text, start, end) is not None:
                    continue  # "im year 11 at st aidan's": a school year, not an age
                found = _NUMBER.search(text, start, end)
                if found is not None and int(found.group(1)) >= 8:
                    return int(found.group(1))
    return 0


# A ``trigger: false`` match acts as a trigger when the same person's score
# for its signal, this message included, is at least this many times its
# weight: they said it again within about a half-life.
SAID_AGAIN: Final = 1.5


def _said_again(state: ConversationState, sender: str, soft: Sequence[Match]) -> list[Match]:
    """The matches of ``trigger: false`` rules (``soft``) that the sender's
    own stored scores show said before, recently: a second "i want to die"
    is not a joke about a test."""
    key = participant_key(sender)
    mine = [p for (x, _), p in state.pairs.items() if x == key]
    out = []
    for m in soft:
        signal = m.signal.value
        said = max(
            (
                p.scores.get(signal, 0.0) + (p.shadow_scores.get(signal, 0.0) if m.shadow else 0.0)
                for p in mine
            ),
            default=0.0,
        )
        if said >= SAID_AGAIN * m.weight:
            out.append(m)
    return out


_KIN: Final = Signal.KINSHIP.value


def _kin(state: ConversationState, msg: MessageContext) -> bool:
    """Whether the conversation has shown the sender and one of the message's
    recipients to be family: a kinship score in either direction of a pair.
    The model reads words, not relations, so its threat between family is
    ordinary family talk; a rule's threat still acts."""
    me = participant_key(msg.sender)
    others = {participant_key(r) for r in msg.recipients}
    return any(
        p.scores.get(_KIN, 0.0) > 0.0
        for (x, y), p in state.pairs.items()
        if (x == me and y in others) or (y == me and x in others)
    )


def _minorish(state: ConversationState, user: str) -> bool:
    return _participant(state, user, None).band(include_shadow=True).minorish


def _trigger_actions(trigger: Trigger, reason: str, shadow: bool) -> list[PlannedAction]:
    out: list[PlannedAction] = []
    if trigger.capture is not None:
        before, after = trigger.capture
        out.append(
            PlannedAction(ActionType.CAPTURE, {"before": before, "after": after}, reason, shadow)
        )
    escalate = {"severity": trigger.severity, "category": trigger.category}
    out.append(PlannedAction(ActionType.ESCALATE, escalate, reason, shadow))
    if trigger.banner is not None:
        banner = {"banner": trigger.banner, "audience": Audience.SENDER.value}
        out.append(PlannedAction(ActionType.BANNER, banner, reason, shadow))
    return out


# --- languages -----------------------------------------------------------------------


def one_language(
    matched: Sequence[tuple[Match, Rule]], hint: str | None = None
) -> list[tuple[Match, Rule]]:
    """The matches that count toward risk: for each signal, those of one
    language only.

    The same words are often in two languages' lists ("snap", "te recojo",
    "whatsapp"), and every rule runs on every message, so one phrase could
    count once per language. For each signal matched by rules of more than
    one language, the language whose rules give that signal the most weight
    wins (a rule written for several languages counts with each of them);
    on a tie, the conversation's language ``hint``, then the first rule
    matched. Matches of the other languages are dropped here; their rules'
    own actions still apply (``Engine.assess`` takes those from all matches).
    """
    # Positions in ``matched``, not the pairs' identities: a compiled build
    # may hand out a new tuple object each time a pair is read.
    by_signal: dict[Signal, list[int]] = {}
    for i, (m, _) in enumerate(matched):
        by_signal.setdefault(m.signal, []).append(i)
    drop: set[int] = set()
    for group in by_signal.values():
        if len({matched[i][1].languages for i in group}) < 2:
            continue
        weight: dict[str, float] = {}
        for i in group:
            m, rule = matched[i]
            for language in sorted(rule.languages):
                weight[language] = weight.get(language, 0.0) + m.weight
        best = max(weight.values())
        tied = [language for language, w in weight.items() if w == best]
        winner = hint if hint in tied else tied[0]
        drop.update(i for i in group if winner not in matched[i][1].languages)
    return [pair for i, pair in enumerate(matched) if i not in drop] if drop else list(matched)


def in_own_language(
    matched: list[tuple[Match, Rule]], folded: str, languages: LanguageGuesser
) -> list[tuple[Match, Rule]]:
    """The matches without kinship and openness read in a language the
    message is not written in: those signals lower risk, so a word that is
    family in another language ("mama", "opa", "pais") must not make a
    stranger look like family. Only when the message's language is clear,
    and only rules whose languages the guesser knows, are dropped."""
    context = [m.signal in _CONTEXT_SIGNALS for m, _ in matched]
    if not any(context):
        return matched
    own = languages.guess(folded)
    if own is None:
        return matched
    return [
        pair
        for pair, ctx in zip(matched, context, strict=True)
        if not (ctx and _foreign(pair[1], own, languages))
    ]


def counts_in_own_language(rule: Rule, folded: str, languages: LanguageGuesser | None) -> bool:
    """Whether a match of ``rule`` in ``folded`` counts as ``in_own_language``
    decides: always, except kinship and openness read in a language the
    message is clearly not written in. For checking a rule's examples the way
    the engine reads them."""
    if languages is None or rule.signal not in _CONTEXT_SIGNALS:
        return True
    own = languages.guess(folded)
    return own is None or not _foreign(rule, own, languages)


def _foreign(rule: Rule, own: str, languages: LanguageGuesser) -> bool:
    """Only rules whose languages the guesser knows are foreign to ``own``."""
    codes = {base_language(c) for c in rule.languages}
    return own not in codes and codes <= languages.languages


def _language_of(counted: Sequence[tuple[Match, Rule]]) -> str | None:
    """The one language of this message's single-language rules, if they agree."""
    found = {next(iter(rule.languages)) for _, rule in counted if len(rule.languages) == 1}
    return found.pop() if len(found) == 1 else None


# --- scope ---------------------------------------------------------------------------


def _participant(state: ConversationState, user: str, attested: str | None) -> Participant:
    """A person as stored, with this message's attestation (if minor/adult) applied."""
    p = state.participant(user) or Participant()
    band = attested_band(attested)
    if band is _UNKNOWN:
        return p
    return Participant(band, p.declared, p.shadow_declared, p.last_seen, p.years)


def scope_bands(p: Participant, *, include_shadow: bool) -> frozenset[str]:
    """The bands a person counts as in a rule scope: attested and effective."""
    return frozenset({_SCOPE_VALUE[p.attested], _COLLAPSED_VALUE[p.band(include_shadow)]})


def in_scope(
    scope: Scope, msg: MessageContext, state: ConversationState, *, include_shadow: bool = False
) -> bool:
    """Whether a rule with ``scope`` applies to ``msg`` (see the module docstring)."""
    return _MessageBands(msg, state).in_scope(scope, include_shadow)


class _MessageBands:
    """Scope checks for one message, reading each person's bands once however
    many rules matched (a message often matches several)."""

    __slots__ = ("_msg", "_recipients", "_sender", "_state")

    def __init__(self, msg: MessageContext, state: ConversationState) -> None:
        self._msg, self._state = msg, state
        self._sender: dict[bool, frozenset[str]] = {}
        self._recipients: dict[bool, list[frozenset[str]]] = {}

    def sender(self, include_shadow: bool) -> frozenset[str]:
        bands = self._sender.get(include_shadow)
        if bands is None:
            msg = self._msg
            p = _participant(self._state, msg.sender, msg.sender_age)
            bands = self._sender[include_shadow] = scope_bands(p, include_shadow=include_shadow)
        return bands

    def recipients(self, include_shadow: bool) -> list[frozenset[str]]:
        bands = self._recipients.get(include_shadow)
        if bands is None:
            msg, state = self._msg, self._state
            recipients = [r for r in dict.fromkeys(msg.recipients) if r != msg.sender]
            bands = [
                scope_bands(
                    _participant(state, r, msg.recipient_ages.get(r)),
                    include_shadow=include_shadow,
                )
                for r in recipients
            ] or [frozenset({Band.UNKNOWN.value})]
            self._recipients[include_shadow] = bands
        return bands

    def in_scope(self, scope: Scope, include_shadow: bool) -> bool:
        msg = self._msg
        if msg.origin not in scope.origins:
            return False
        if scope.where is not _ANY_WHERE and scope.where != msg.where:
            return False
        if scope.exempt_roles & msg.sender_roles:
            return False
        if scope.sender_age is not None and not scope.sender_age & self.sender(include_shadow):
            return False
        if scope.recipient_age is not None:
            wanted = scope.recipient_age
            if not any(wanted & b for b in self.recipients(include_shadow)):
                return False
        return True


# --- merging actions -----------------------------------------------------------------


def _merge_key(a: PlannedAction) -> tuple[Any, ...]:
    if a.type in (ActionType.CAPTURE, ActionType.HOLD, ActionType.BLOCK):
        return (a.type,)
    if a.type is ActionType.ESCALATE:
        return (a.type, a.params.get("category"))
    return (a.type, tuple(sorted((k, repr(v)) for k, v in a.params.items())))


def _combine(a: PlannedAction, b: PlannedAction) -> PlannedAction:
    """One action for two with the same merge key: an enforced one wins over a
    shadow one; two of the same mode keep the wider capture window and the
    higher severity; otherwise the first wins."""
    if a.shadow != b.shadow:
        return b if a.shadow else a
    if a.type is ActionType.CAPTURE:
        params = dict(a.params)
        for k in ("before", "after"):
            values = [int(x.params[k]) for x in (a, b) if k in x.params]
            if values:
                params[k] = max(values)
        return PlannedAction(a.type, params, a.reason, a.shadow)
    if a.type is ActionType.ESCALATE:
        sa, sb = (severity_rank(str(x.params.get("severity"))) for x in (a, b))
        return b if sb > sa else a
    return a


def merge_actions(actions: Iterable[PlannedAction]) -> tuple[PlannedAction, ...]:
    """Actions with duplicates merged, in order of first appearance: one capture
    (widest window), one hold, one block, one escalation per category (highest
    severity), one of each distinct banner or redaction."""
    out: list[PlannedAction] = []
    where: dict[tuple[Any, ...], int] = {}
    for a in actions:
        key = _merge_key(a)
        if key in where:
            out[where[key]] = _combine(out[where[key]], a)
        else:
            where[key] = len(out)
            out.append(a)
    return tuple(out)
