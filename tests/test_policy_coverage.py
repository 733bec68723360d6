"""Signal coverage: reading labelled messages, replaying them, and the figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatguard.policy.coverage import LabelledMessage, events, measure, read_messages
from chatguard.policy.engine import Engine
from chatguard.policy.matcher import build_matcher
from chatguard.policy.model import Signal
from chatguard.policy.replay import replay
from chatguard.policy.rules import load_policy
from chatguard.policy.yaml_reader import PolicyError

MESSAGES = """\
- {id: snap-1, signal: isolation, expect: true, text: "add me on snap"}
- {id: snap-2, signal: isolation, expect: true, text: "lets keep talking somewhere else"}
- {id: snap-3, signal: isolation, expect: false, text: "add me on snap", from: adult, to: adult}
- id: pic-1
  signal: [image_request, sexual]
  expect: false
  text: send me a pic of the cat
- {id: help-1, signal: safeguarding, expect: true, text: "he hurts me"}
"""


def read(text: str, name: str = "en.yaml") -> list[LabelledMessage]:
    return read_messages([(name, text)])


def test_messages_are_read_with_their_defaults() -> None:
    snap, _, adults, pic, help_ = read(MESSAGES)
    assert (snap.id, snap.signals, snap.expect, snap.text) == (
        "snap-1",
        frozenset({Signal.ISOLATION}),
        True,
        "add me on snap",
    )
    # An adult writing to a child unless the file says otherwise...
    assert (snap.sender, snap.recipient, adults.sender, adults.recipient) == (
        "adult",
        "minor",
        "adult",
        "adult",
    )
    # ...and a child telling an adult, for a disclosure.
    assert (help_.sender, help_.recipient) == ("minor", "adult")
    assert pic.signals == frozenset({Signal.IMAGE_REQUEST, Signal.SEXUAL})
    assert pic.label == "image_request/sexual"
    assert (snap.group, snap.file, snap.line, pic.line) == ("en", "en.yaml", 1, 4)


def test_every_problem_is_reported_with_its_line() -> None:
    bad = """\
- {id: a, signal: isolation, expect: true, text: hi}
- {id: b, signal: isolaton, expect: yes please, text: hi}
- {id: c, signal: isolation, expect: true}
- {id: d, signal: isolation, expect: true, text: hi, from: teen}
- {id: a, signal: isolation, expect: true, text: again}
- {id: e, signal: isolation, expect: true, text: hi, colour: red}
- {id: f, signal: [], expect: true, text: hi}
"""
    with pytest.raises(PolicyError) as caught:
        read(bad, "pl.yaml")
    errors = [str(e) for e in caught.value.errors]
    assert errors == [
        "pl.yaml:2: unknown signal 'isolaton' (did you mean 'isolation'?)",
        "pl.yaml:2: 'expect' must be true or false",
        "pl.yaml:3: a message is missing 'text'",
        "pl.yaml:4: unknown from 'teen' (allowed: adult, minor, unknown)",
        "pl.yaml:5: id 'a' is used twice (first at pl.yaml:1)",
        "pl.yaml:6: unknown key 'colour' in a message (allowed: "
        "id, signal, expect, text, from, to)",
        "pl.yaml:7: 'signal' is empty",
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "en.yaml: no messages"),
        ("id: a\n", "en.yaml:1: 'messages' must be a list, not a mapping"),
        ("- [unclosed\n", "en.yaml:2: YAML syntax error"),
        ("- {id: a, signal: sexual, expect: true, text: " + "x" * 4001 + "}\n", "longer than"),
    ],
)
def test_a_file_that_is_not_a_list_of_messages_is_refused(text: str, reason: str) -> None:
    with pytest.raises(PolicyError, match=reason):
        read(text)


def test_an_id_is_used_once_across_files() -> None:
    one = "- {id: a, signal: sexual, expect: true, text: hi}\n"
    with pytest.raises(
        PolicyError, match=r"de.yaml:1: id 'a' is used twice \(first at es.yaml:1\)"
    ):
        read_messages([("es.yaml", one), ("de.yaml", one)])


def test_each_message_is_a_greeting_and_the_message_in_a_conversation_of_its_own() -> None:
    snap, *_ = read(MESSAGES)
    greeting, message = events([snap])
    assert greeting.conversation == message.conversation == "coverage:snap-1"
    assert (greeting.sender, greeting.recipients) == ("recipient-snap-1", ("sender-snap-1",))
    assert greeting.sender_attrs == {"age_band": "minor"}
    assert (message.sender, message.recipients, message.text) == (
        "sender-snap-1",
        ("recipient-snap-1",),
        "add me on snap",
    )
    assert message.sender_attrs == {"age_band": "adult"}
    assert message.direct
    assert message.ts > greeting.ts


def test_the_figures_follow_the_engine_with_its_scopes(test_pack: tuple[Path, Path]) -> None:
    """The test pack's isolation rule is scoped to a child: the same words
    between adults are no signal, and a near-miss that matches is counted."""
    policy = load_policy(test_pack[0])
    engine = Engine(policy, build_matcher(policy.rules, backend="fallback"))
    messages = read(MESSAGES) + read(
        "- {id: pic-2, signal: image_request, expect: false, text: send me a selfie}\n", "fr.yaml"
    )
    report = measure(messages, replay(events(messages), engine))
    assert report.overall.to_json() == {
        "positives": 3,
        "caught": 1,
        "recall": 0.333,
        "negatives": 3,
        "false_signals": 2,
        "false_signal_rate": 0.667,
    }
    assert report.by_signal["isolation"].to_json()["recall"] == 0.5
    assert report.by_signal["isolation"].false_signals == 0  # the adults' "add me on snap"
    assert report.by_group["fr"]["image_request"].false_signals == 1
    assert report.group_overall["en"].to_json()["recall"] == 0.333
    assert report.group_overall["fr"].negatives == 1
    assert [(o.message.id, o.found) for o in report.misses] == [("snap-2", ()), ("help-1", ())]
    assert [(o.message.id, o.found) for o in report.false_signals] == [
        ("pic-1", ("image_request",)),
        ("pic-2", ("image_request",)),
    ]
    shown = report.to_json()
    assert shown["misses"][0] == {
        "id": "snap-2",
        "signal": "isolation",
        "text": "lets keep talking somewhere else",
        "found": [],
    }
    assert list(shown["by_group"]) == list(shown["group_overall"]) == ["en", "fr"]


def test_steps_of_other_conversations_are_refused(test_pack: tuple[Path, Path]) -> None:
    policy = load_policy(test_pack[0])
    engine = Engine(policy, build_matcher(policy.rules, backend="fallback"))
    one, two, *_ = read(MESSAGES)
    with pytest.raises(ValueError, match="not replayed: snap-2"):
        measure([one, two], replay(events([one]), engine))


def test_the_default_pack_reads_the_coverage_set(pack_cache: Path) -> None:
    """A regression guard on tests/eval/messages: at least 85% of the phrasings
    of each move read as that move, at most 30% of the near-misses do (the
    near-misses are read without the family words around them, so some carry
    the signal by their words alone: policies/README.md, "Measuring a pack").
    The rules were broadened on three of its four sets; the fourth (u-*),
    written after them, is read at about 0.79 (docs/detection.md, round 14)."""
    root = Path(__file__).parent.parent
    policy = load_policy(root / "policies", cache_dir=pack_cache)
    engine = Engine(policy, build_matcher(policy.rules, backend="fallback"))
    paths = sorted((root / "tests" / "eval" / "messages").glob("*.yaml"))
    messages = read_messages([(str(p), p.read_text(encoding="utf-8")) for p in paths])
    report = measure(messages, replay(events(messages), engine))
    assert len(messages) >= 5000
    assert sorted(report.by_group) == ["de", "en", "es", "fr", "pl", "pt"]
    recall, false_rate = report.overall.recall, report.overall.false_signal_rate
    assert recall is not None
    assert recall >= 0.85, [o.message.id for o in report.misses]
    assert false_rate is not None
    assert false_rate <= 0.3, [o.message.id for o in report.false_signals]
