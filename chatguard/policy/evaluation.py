"""Measuring a policy pack against labelled conversations.

What it owns: the labels format (``tests/eval/labels.yaml``: per conversation
``escalate``, ``category``, ``escalate_at``, ``slices``) and the figures T&S
staff judge a pack by: conversation-level escalation precision and recall,
and the delay between the message at which a careful moderator would have
escalated and the one at which the pack did — overall, per category and per
slice (evasion, non-English, ...).

Invariants: pure (summaries and labels in, a report out); a conversation in
the transcripts without a label, or a label without a conversation, is an
error, never silently skipped.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chatguard.policy.replay import ConversationSummary


class LabelError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Label:
    conversation: str
    escalate: bool
    category: str
    escalate_at: int | None
    slices: tuple[str, ...] = ()


def parse_labels(data: Any, source: str = "<labels>") -> dict[str, Label]:
    if not isinstance(data, dict):
        raise LabelError(f"{source}: expected a mapping of conversation id to label")
    labels: dict[str, Label] = {}
    for conversation, spec in data.items():
        where = f"{source}: {conversation}"
        if not isinstance(spec, dict) or not isinstance(spec.get("escalate"), bool):
            raise LabelError(f"{where}: needs `escalate: true|false`")
        at = spec.get("escalate_at")
        if spec["escalate"] and (not isinstance(at, int) or at < 0):
            raise LabelError(f"{where}: an escalated conversation needs `escalate_at` (index)")
        slices = spec.get("slices") or []
        if not isinstance(slices, list) or not all(isinstance(s, str) for s in slices):
            raise LabelError(f"{where}: `slices` must be a list of names")
        labels[str(conversation)] = Label(
            str(conversation),
            spec["escalate"],
            str(spec.get("category", "none")),
            at if spec["escalate"] else None,
            tuple(slices),
        )
    return labels


@dataclass
class Figures:
    """Counts and rates for one group of conversations."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    delays: list[int] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def false_alarm_rate(self) -> float | None:
        """Of the conversations that should stay quiet, the share that escalated."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else None

    @property
    def median_delay(self) -> float | None:
        return float(statistics.median(self.delays)) if self.delays else None

    def add(self, label: Label, summary: ConversationSummary) -> None:
        if label.escalate and summary.escalated:
            self.tp += 1
            if label.escalate_at is not None and summary.first_escalation_index is not None:
                self.delays.append(summary.first_escalation_index - label.escalate_at)
        elif label.escalate:
            self.fn += 1
        elif summary.escalated:
            self.fp += 1
        else:
            self.tn += 1

    def to_json(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {
            "conversations": self.tp + self.fp + self.fn + self.tn,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "precision": r(self.precision),
            "recall": r(self.recall),
            "false_alarm_rate": r(self.false_alarm_rate),
            "median_delay": self.median_delay,
            "max_delay": max(self.delays) if self.delays else None,
        }


@dataclass
class Report:
    overall: Figures
    by_category: dict[str, Figures]
    by_slice: dict[str, Figures]
    misses: list[str]  # conversations escalated wrongly or not at all

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_json(),
            "by_category": {k: v.to_json() for k, v in sorted(self.by_category.items())},
            "by_slice": {k: v.to_json() for k, v in sorted(self.by_slice.items())},
            "misses": self.misses,
        }


def evaluate(summaries: Iterable[ConversationSummary], labels: Mapping[str, Label]) -> Report:
    seen = {s.conversation: s for s in summaries}
    unlabelled = sorted(set(seen) - set(labels))
    if unlabelled:
        raise LabelError(f"conversations without a label: {', '.join(unlabelled[:10])}")
    missing = sorted(set(labels) - set(seen))
    if missing:
        raise LabelError(f"labels without a conversation: {', '.join(missing[:10])}")
    overall = Figures()
    by_category: dict[str, Figures] = {}
    by_slice: dict[str, Figures] = {}
    misses: list[str] = []
    for conversation, label in labels.items():
        summary = seen[conversation]
        overall.add(label, summary)
        # Categories are what a conversation is; negatives count under the
        # category their escalations would have been filed as ("none").
        by_category.setdefault(label.category, Figures()).add(label, summary)
        for name in label.slices:
            by_slice.setdefault(name, Figures()).add(label, summary)
        if label.escalate != summary.escalated:
            kind = "missed" if label.escalate else "false alarm"
            misses.append(f"{conversation}: {kind}")
    return Report(overall, by_category, by_slice, misses)
