"""Measuring a pack: label parsing, the figures, and the default pack on the eval set."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chatguard.policy.engine import Engine
from chatguard.policy.evaluation import Label, LabelError, evaluate, parse_labels
from chatguard.policy.matcher import build_matcher
from chatguard.policy.model import Signal
from chatguard.policy.normalise import normalise
from chatguard.policy.replay import ConversationSummary, replay, summarise
from chatguard.policy.rules import load_policy
from chatguard.transcript import read

ROOT = Path(__file__).parent.parent
EVAL = ROOT / "tests" / "eval"


def summary(conversation: str, first: int | None) -> ConversationSummary:
    return ConversationSummary(conversation, first is not None, first)


def test_labels_parse() -> None:
    labels = parse_labels(
        {
            "c-1": {"escalate": True, "category": "grooming", "escalate_at": 4, "slices": ["es"]},
            "c-2": {"escalate": False, "category": "none"},
        }
    )
    assert labels["c-1"] == Label("c-1", True, "grooming", 4, ("es",))
    assert labels["c-2"] == Label("c-2", False, "none", None, ())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ([], "expected a mapping"),
        ({"c": {"category": "x"}}, "escalate"),
        ({"c": {"escalate": True}}, "escalate_at"),
        ({"c": {"escalate": True, "escalate_at": -1}}, "escalate_at"),
        ({"c": {"escalate": False, "slices": "es"}}, "slices"),
    ],
)
def test_bad_labels_are_refused(data: object, reason: str) -> None:
    with pytest.raises(LabelError, match=reason):
        parse_labels(data, "labels.yaml")


def test_figures_count_hits_misses_false_alarms_and_delay() -> None:
    labels = parse_labels(
        {
            "hit-early": {"escalate": True, "category": "grooming", "escalate_at": 5},
            "hit-late": {"escalate": True, "category": "grooming", "escalate_at": 5},
            "miss": {"escalate": True, "category": "sextortion", "escalate_at": 2},
            "quiet": {"escalate": False, "category": "none", "slices": ["teens"]},
            "alarm": {"escalate": False, "category": "none", "slices": ["teens"]},
        }
    )
    report = evaluate(
        [
            summary("hit-early", 4),
            summary("hit-late", 8),
            summary("miss", None),
            summary("quiet", None),
            summary("alarm", 1),
        ],
        labels,
    )
    overall = report.overall.to_json()
    assert (overall["tp"], overall["fp"], overall["fn"], overall["tn"]) == (2, 1, 1, 1)
    assert overall["precision"] == round(2 / 3, 3)
    assert overall["recall"] == round(2 / 3, 3)
    assert overall["false_alarm_rate"] == 0.5
    assert overall["median_delay"] == 1.0  # delays -1 and +3
    assert overall["max_delay"] == 3
    assert report.by_category["sextortion"].recall == 0.0
    assert report.by_slice["teens"].false_alarm_rate == 0.5
    assert sorted(report.misses) == ["alarm: false alarm", "miss: missed"]


def test_unlabelled_or_unseen_conversations_are_errors() -> None:
    labels = parse_labels({"a": {"escalate": False}})
    with pytest.raises(LabelError, match="without a label: b"):
        evaluate([summary("a", None), summary("b", None)], labels)
    with pytest.raises(LabelError, match="without a conversation: a"):
        evaluate([], labels)


def test_the_default_pack_meets_its_targets_on_the_evaluation_set(pack_cache: Path) -> None:
    """Conversation-level precision and recall >= 0.9 and median delay <= 2 messages.

    A regression guard: the set is the pack's own, so the pack is also
    measured on conversations it was not written against (docs/detection.md).
    """
    policy = load_policy(ROOT / "policies", cache_dir=pack_cache)
    engine = Engine(policy, build_matcher(policy.rules, backend="fallback"))
    events = []
    for path in sorted(EVAL.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            events.extend(read(handle, str(path)))
    labels = parse_labels(yaml.safe_load((EVAL / "labels.yaml").read_text(encoding="utf-8")))
    report = evaluate(summarise(replay(events, engine)), labels)
    overall = report.overall
    assert len(labels) >= 60
    assert overall.precision is not None
    assert overall.precision >= 0.9, report.misses
    assert overall.recall is not None
    assert overall.recall >= 0.9, report.misses
    assert overall.median_delay is not None
    assert overall.median_delay <= 2


def test_the_family_rules_never_take_a_stranger_for_family(pack_cache: Path) -> None:
    """Kinship lowers risk, so a false one hides grooming: on 300 messages with
    family words that do not show a family ("ask your mum", "call me daddy",
    "think of me as your second dad", a child's "no mum works late"), no
    family rule matches; and the rules find at least 45% of 420 that do."""
    policy = load_policy(ROOT / "policies", cache_dir=pack_cache)
    matcher = build_matcher([r for r in policy.rules if r.signal is Signal.KINSHIP])
    examples = yaml.safe_load((EVAL / "kinship.yaml").read_text(encoding="utf-8"))["examples"]

    def family(text: str) -> bool:
        return bool(matcher.scan(normalise(text)))

    strangers = [t for t in examples["none"] if family(t)]
    assert strangers == []
    found = sum(family(t) for t in examples["kinship"])
    assert found >= 0.45 * len(examples["kinship"])


def test_every_participant_of_the_evaluation_set_is_in_one_conversation() -> None:
    """Replay keeps a user's attested band across a whole transcript, so a
    name used in two conversations would carry one into the other
    (tests/eval/README.md)."""
    seen: dict[str, str] = {}
    shared = set()
    for path in sorted(EVAL.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for event in read(handle, str(path)):
                for user in (event.sender, *event.recipients):
                    if seen.setdefault(user, event.conversation) != event.conversation:
                        shared.add((user, seen[user], event.conversation))
    assert not shared, sorted(shared)
