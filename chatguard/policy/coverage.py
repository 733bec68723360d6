"""Signal coverage: how many of the ways people phrase a move the pack reads.

What it owns: the labelled-message format (``tests/eval/messages/*.yaml``, a
list of ``{id, signal, expect, text, from, to}``) and its figures, per signal
and per file: *recall* over the messages that carry the signal
(``expect: true``) and *false signals* over the near-misses that must not
(``expect: false``).

Conversation figures (``evaluation.py``) say whether a pack escalates; these
say which phrasings of one move (a pick-up, a cover story, a gift for a
picture) it reads at all. A missed conversation is usually one that peaked
just below the threshold because one of its moves was said in words no rule
had; a few hundred phrasings of each move find those words far faster than
a few hundred conversations, and a set written by someone else estimates how
well the rules reach phrasings nobody wrote a rule for.

Each message is read as the first thing its sender says in a direct
conversation of its own, after one greeting from the recipient, so that both
age bands are known: by default an adult writing to a child, and for
``safeguarding`` a child writing to an adult. A message carries a signal when
the engine's assessment of it lists the signal (rules after their scopes and
guards, and the signal model), exactly as in a live conversation.

Invariants: pure (messages in, transcript events out; replay steps in, a
report out). Reading reports every problem as ``file:line: reason``
(``PolicyError``) and measures nothing; an id is used once across every file
read together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import PurePath
from typing import Any

import yaml

from chatguard.policy.model import Signal
from chatguard.policy.replay import ReplayStep
from chatguard.policy.yaml_reader import PolicyError, PolicyIssue, Reader
from chatguard.transcript import TranscriptEvent

BANDS = ("adult", "minor", "unknown")
MAX_MESSAGES = 100_000  # per measurement: each message is two replayed events
MAX_TEXT_CHARS = 4_000
_KEYS = ("id", "signal", "expect", "text", "from", "to")
_SIGNALS = [s.value for s in Signal]
# Any fixed instant: a message and its greeting are 20 s apart, and every
# message has a conversation of its own, so no decay crosses messages.
_START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LabelledMessage:
    id: str
    signals: frozenset[Signal]  # the message carries any one of these
    expect: bool  # True: it should carry one; False: a near-miss that must not
    text: str
    sender: str  # age band
    recipient: str  # age band
    group: str  # the file it came from, by name ("es" for es.yaml)
    file: str
    line: int

    @property
    def label(self) -> str:
        """The signal as the file names it ("flattery/exclusivity" for a list)."""
        return "/".join(sorted(s.value for s in self.signals))


def read_messages(files: Sequence[tuple[str, str]]) -> list[LabelledMessage]:
    """The messages of ``(path, text)`` pairs; raises ``PolicyError`` listing every problem."""
    issues: list[PolicyIssue] = []
    out: list[LabelledMessage] = []
    first: dict[str, str] = {}
    for path, text in files:
        r = Reader(path, issues)
        before = len(issues)
        root = r.compose(text)
        if root is None:
            if len(issues) == before:
                r.error(0, "no messages")
            continue
        group = PurePath(path).stem
        for node in r.items(root, "messages"):
            message = _message(r, node, group)
            if message is None:
                continue
            if message.id in first:
                r.error(node, f"id {message.id!r} is used twice (first at {first[message.id]})")
                continue
            first[message.id] = f"{path}:{message.line}"
            out.append(message)
    if len(out) > MAX_MESSAGES:
        issues.append(PolicyIssue(files[0][0], 0, f"more than {MAX_MESSAGES} messages"))
    if issues:
        raise PolicyError(issues)
    return out


def _message(r: Reader, node: yaml.Node, group: str) -> LabelledMessage | None:
    keys = r.mapping(node, "a message", _KEYS, ("id", "signal", "expect", "text"))
    if keys is None or not {"id", "signal", "expect", "text"} <= keys.keys():
        return None
    ident = r.text(keys["id"], "id")
    signals = [r.choice(n, "signal", _SIGNALS) for n in _signal_nodes(keys["signal"])]
    if not signals:
        r.error(keys["signal"], "'signal' is empty")
    expect = r.boolean(keys["expect"], "expect")
    text = r.text(keys["text"], "text")
    if text is not None and len(text) > MAX_TEXT_CHARS:
        r.error(keys["text"], f"'text' is longer than {MAX_TEXT_CHARS} characters")
        text = None
    default_from, default_to = (
        ("minor", "adult") if "safeguarding" in signals else ("adult", "minor")
    )
    sender = r.choice(keys["from"], "from", BANDS) if "from" in keys else default_from
    recipient = r.choice(keys["to"], "to", BANDS) if "to" in keys else default_to
    if (
        ident is None
        or not signals
        or None in signals
        or expect is None
        or text is None
        or sender is None
        or recipient is None
    ):
        return None
    return LabelledMessage(
        ident,
        frozenset(Signal(s) for s in signals if s is not None),
        expect,
        text,
        sender,
        recipient,
        group,
        r.file,
        node.start_mark.line + 1,
    )


def _signal_nodes(node: yaml.Node) -> list[yaml.Node]:
    return list(node.value) if isinstance(node, yaml.SequenceNode) else [node]


def events(messages: Iterable[LabelledMessage]) -> list[TranscriptEvent]:
    """Two events a message: the recipient's greeting, then the message."""
    out: list[TranscriptEvent] = []
    for m in messages:
        sender, recipient = f"sender-{m.id}", f"recipient-{m.id}"
        room = f"dm:{sender}:{recipient}"
        for offset, (who, to, band, text) in enumerate(
            ((recipient, sender, m.recipient, "hi"), (sender, recipient, m.sender, m.text))
        ):
            out.append(
                TranscriptEvent(
                    ts=_START + timedelta(seconds=20 * offset),
                    conversation=f"coverage:{m.id}",
                    room=room,
                    sender=who,
                    recipients=(to,),
                    text=text,
                    sender_attrs={"age_band": band},
                )
            )
    return out


@dataclass
class Figures:
    positives: int = 0
    caught: int = 0
    negatives: int = 0
    false_signals: int = 0

    @property
    def recall(self) -> float | None:
        return self.caught / self.positives if self.positives else None

    @property
    def false_signal_rate(self) -> float | None:
        return self.false_signals / self.negatives if self.negatives else None

    def add(self, message: LabelledMessage, found: bool) -> None:
        if message.expect:
            self.positives += 1
            self.caught += found
        else:
            self.negatives += 1
            self.false_signals += found

    def to_json(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {
            "positives": self.positives,
            "caught": self.caught,
            "recall": r(self.recall),
            "negatives": self.negatives,
            "false_signals": self.false_signals,
            "false_signal_rate": r(self.false_signal_rate),
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    message: LabelledMessage
    found: tuple[str, ...]  # every signal the engine found in it

    def to_json(self) -> dict[str, Any]:
        m = self.message
        return {"id": m.id, "signal": m.label, "text": m.text, "found": list(self.found)}


@dataclass
class Report:
    overall: Figures = field(default_factory=Figures)
    by_signal: dict[str, Figures] = field(default_factory=dict)
    by_group: dict[str, dict[str, Figures]] = field(default_factory=dict)
    group_overall: dict[str, Figures] = field(default_factory=dict)
    misses: list[Outcome] = field(default_factory=list)
    false_signals: list[Outcome] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_json(),
            "by_signal": {k: v.to_json() for k, v in sorted(self.by_signal.items())},
            "by_group": {
                g: {k: v.to_json() for k, v in sorted(sigs.items())}
                for g, sigs in sorted(self.by_group.items())
            },
            "group_overall": {g: f.to_json() for g, f in sorted(self.group_overall.items())},
            "misses": [o.to_json() for o in self.misses],
            "false_signals": [o.to_json() for o in self.false_signals],
        }


def measure(messages: Sequence[LabelledMessage], steps: Iterable[ReplayStep]) -> Report:
    """The figures, from the replay of ``events(messages)``."""
    by_conversation = {f"coverage:{m.id}": m for m in messages}
    report = Report()
    seen: set[str] = set()
    for step in steps:
        if step.conversation_index != 1:
            continue  # the greeting
        m = by_conversation[step.event.conversation]
        seen.add(m.id)
        signals = step.assessment.signals
        found = any(s in m.signals for s in signals)
        report.overall.add(m, found)
        report.by_signal.setdefault(m.label, Figures()).add(m, found)
        report.by_group.setdefault(m.group, {}).setdefault(m.label, Figures()).add(m, found)
        report.group_overall.setdefault(m.group, Figures()).add(m, found)
        if m.expect != found:
            outcome = Outcome(m, tuple(s.value for s in signals))
            (report.misses if m.expect else report.false_signals).append(outcome)
    unread = [m.id for m in messages if m.id not in seen]
    if unread:
        raise ValueError(f"messages not replayed: {', '.join(unread[:10])}")
    return report
