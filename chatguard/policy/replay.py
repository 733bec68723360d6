"""Offline use of a policy pack: example checks, explanations and transcript replay.

What it owns: the three things T&S staff do with a pack before it goes live —
check every rule's examples (``check_examples``), see what the engine makes
of one message (``explain``), and replay a transcript to see what would have
happened (``replay``, ``summarise``). The command line (``chatguard policy``)
only formats what these return.

Invariants: pure apart from reading nothing at all — callers load the pack
and the transcript; time comes from each event's ``ts``; one conversation's
state never affects another's; events are processed in the order given.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from chatguard.policy.engine import Engine, MessageContext, counts_in_own_language
from chatguard.policy.language import LanguageGuesser
from chatguard.policy.matcher import Matcher
from chatguard.policy.model import ActionType, Assessment, Policy, Where
from chatguard.policy.normalise import normalise
from chatguard.policy.risk import ConversationState
from chatguard.transcript import TranscriptEvent


@dataclass(frozen=True, slots=True)
class ExampleFailure:
    rule_id: str
    file: str
    line: int
    example: str
    expected: bool  # True: should have matched

    def __str__(self) -> str:
        want = "should match but does not" if self.expected else "should not match but does"
        return f"{self.file}:{self.line}: {self.rule_id}: {want}: {self.example!r}"


def check_examples(policy: Policy, matcher: Matcher) -> list[ExampleFailure]:
    """Every rule's ``match`` examples match it, and its ``no_match`` ones do not.

    Examples test the patterns, not the scope: a rule for adults talking to
    minors is checked on its words alone. A kinship or openness example in
    another language counts as the engine counts it (``in_own_language``):
    French "mamie" in the Polish "musze powiedziec mamie" is no match.
    """
    failures: list[ExampleFailure] = []
    languages = LanguageGuesser(policy.function_words) if policy.function_words else None
    for rule in policy.rules:
        for example, expected in [(e, True) for e in rule.examples_match] + [
            (e, False) for e in rule.examples_no_match
        ]:
            norm = normalise(example, max_chars=policy.max_chars)
            hits = matcher.scan(norm)
            matched = any(hit.rule.id == rule.id for hit in hits) and counts_in_own_language(
                rule, norm.folded, languages
            )
            if matched != expected:
                failures.append(ExampleFailure(rule.id, rule.file, rule.line, example, expected))
    return failures


def explain(text: str, policy: Policy, matcher: Matcher) -> dict[str, Any]:
    """What normalisation and matching make of one message (no scope, no state)."""
    norm = normalise(text, max_chars=policy.max_chars)
    rules = []
    for hit in matcher.scan(norm):
        rule = hit.rule
        rules.append(
            {
                "rule": rule.id,
                "signal": rule.signal.value,
                "weight": rule.weight,
                "description": rule.description,
                "file": f"{rule.file}:{rule.line}",
                "spans": [{"start": a, "end": b, "text": norm.original[a:b]} for a, b in hit.spans],
            }
        )
    return {
        "text": text,
        "normalised": norm.text,
        "folded": norm.folded,
        "evasions": sorted(e.value for e in norm.evasions),
        "features": sorted(f.value for f in norm.features),
        "truncated": norm.truncated,
        "rules": rules,
        "model": _learned(policy, norm.folded),
    }


def _learned(policy: Policy, folded: str) -> list[dict[str, Any]]:
    """What the signal model finds in a message, with the words that weigh most."""
    model = policy.signal_model
    if model is None or not policy.model_use.enabled:
        return []
    return [
        {
            "signal": signal.value,
            "probability": round(p, 3),
            "weight": policy.model_use.weight_of(signal),
            "features": [f for f, _ in model.reasons(folded, signal)],
        }
        for signal, p in model.found(folded)
    ]


@dataclass(frozen=True, slots=True)
class ReplayStep:
    """The engine's view of one transcript event."""

    index: int  # position in the transcript
    conversation_index: int  # position among this conversation's events
    event: TranscriptEvent
    assessment: Assessment

    def to_json(self) -> dict[str, Any]:
        a = self.assessment
        return {
            "index": self.index,
            "conversation": self.event.conversation,
            "risk": round(a.risk, 4),
            "signals": [s.value for s in a.signals],
            "actions": [action.to_json() for action in a.actions],
        }


def replay(events: Iterable[TranscriptEvent], engine: Engine) -> Iterator[ReplayStep]:
    """Run each event through the engine, each conversation with its own state."""
    states: dict[str, ConversationState] = {}
    counts: dict[str, int] = {}
    ages: dict[str, str] = {}
    for index, event in enumerate(events):
        band = event.sender_attrs.get("age_band")
        if band:
            ages[event.sender] = band
        roles = event.sender_attrs.get("roles", event.sender_attrs.get("role", ""))
        message = MessageContext(
            text=event.text,
            conversation=event.conversation,
            sender=event.sender,
            recipients=event.recipients,
            where=Where.DIRECT if event.direct else Where.ROOM,
            origin="client",
            sender_age=ages.get(event.sender, "unknown"),
            recipient_ages={r: ages.get(r, "unknown") for r in event.recipients},
            sender_roles=frozenset(r.strip() for r in roles.split(",") if r.strip()),
            room=event.room,
        )
        assessment, states[event.conversation] = engine.assess(
            message, states.get(event.conversation), event.ts.timestamp()
        )
        position = counts.get(event.conversation, 0)
        counts[event.conversation] = position + 1
        yield ReplayStep(index, position, event, assessment)


@dataclass
class ConversationSummary:
    conversation: str
    escalated: bool = False
    first_escalation_index: int | None = None
    max_risk: float = 0.0
    banners: dict[str, int] = field(default_factory=dict)
    shadow_escalated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "conversation": self.conversation,
            "escalated": self.escalated,
            "first_escalation_index": self.first_escalation_index,
            "max_risk": round(self.max_risk, 4),
            "banners": dict(sorted(self.banners.items())),
            "shadow_escalated": self.shadow_escalated,
        }


def summarise(steps: Iterable[ReplayStep]) -> list[ConversationSummary]:
    """One summary per conversation, in order of first appearance.

    ``escalated`` counts enforced escalations only; what shadow rules would
    have escalated is reported as ``shadow_escalated``.
    """
    summaries: dict[str, ConversationSummary] = {}
    for step in steps:
        s = summaries.setdefault(
            step.event.conversation, ConversationSummary(step.event.conversation)
        )
        s.max_risk = max(s.max_risk, step.assessment.risk)
        for action in step.assessment.actions:
            if action.type is ActionType.ESCALATE:
                if action.shadow:
                    s.shadow_escalated = True
                elif not s.escalated:
                    s.escalated = True
                    s.first_escalation_index = step.conversation_index
            elif action.type in (ActionType.BANNER, ActionType.HOLD) and not action.shadow:
                banner = action.params.get("banner")
                if isinstance(banner, str):
                    s.banners[banner] = s.banners.get(banner, 0) + 1
    return list(summaries.values())
