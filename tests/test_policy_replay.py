"""Offline use of a pack: example checks, explanations, transcript replay and summaries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chatguard.policy.engine import Engine
from chatguard.policy.matcher import build_matcher
from chatguard.policy.model import Policy, Rule, Signal
from chatguard.policy.replay import (
    ExampleFailure,
    check_examples,
    explain,
    replay,
    summarise,
)
from chatguard.policy.rules import load_policy, regex_pattern
from chatguard.transcript import TranscriptEvent, read
from tests.support.pack import POLICY, RULES

Pack = tuple[Path, Path]
START = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
STEP_KEYS = {"index", "conversation", "risk", "signals", "actions"}
SUMMARY_KEYS = {
    "conversation",
    "escalated",
    "first_escalation_index",
    "max_risk",
    "banners",
    "shadow_escalated",
}


def engine_for(policies: Path, backend: str = "fallback") -> Engine:
    policy = load_policy(policies)
    return Engine(policy, build_matcher(policy.rules, backend=backend))


def line(
    second: float,
    sender: str,
    to: str,
    text: str,
    *,
    band: str | None = None,
    roles: str | None = None,
    conversation: str | None = None,
) -> str:
    """One transcript line: a direct message ``second`` seconds after START."""
    event: dict[str, Any] = {
        "ts": (START + timedelta(seconds=second)).isoformat().replace("+00:00", "Z"),
        "sender": sender,
        "recipients": [to],
        "text": text,
    }
    attrs = {k: v for k, v in (("age_band", band), ("roles", roles)) if v is not None}
    if attrs:
        event["sender_attrs"] = attrs
    if conversation is not None:
        event["conversation"] = conversation
    return json.dumps(event)


def events(*lines: str) -> list[TranscriptEvent]:
    return list(read(lines, "test.jsonl"))


#: amy (a child) and bob (an adult): bob asks her to move apps, then for a picture.
GROOMING = (
    line(0, "amy", "bob", "hi", band="minor"),
    line(5, "bob", "amy", "hey", band="adult"),
    line(10, "bob", "amy", "add me on snap"),
    line(15, "bob", "amy", "send me a pic"),
    line(20, "amy", "bob", "call me 555 123 4567"),
)
#: cat and dan, two adults chatting.
BENIGN = (
    line(1, "cat", "dan", "hello", band="adult"),
    line(2, "dan", "cat", "add me on snap", band="adult"),
    line(3, "cat", "dan", "send me a pic of the view"),
)


# -- examples ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["fallback", "hyperscan"])
def test_the_test_pack_passes_its_own_examples(test_pack: Pack, backend: str) -> None:
    policy = load_policy(test_pack[0])
    # Examples test the words, not the scope: scoped rules pass on their text alone.
    assert check_examples(policy, build_matcher(policy.rules, backend=backend)) == []


@pytest.mark.parametrize(
    ("old", "new", "rule", "expected", "example"),
    [
        (
            "match: [add me on snap, text me on whatsapp]",
            "match: [add me on snap, add me on kik]",
            "t.isolation.move_app",
            True,
            "add me on kik",
        ),
        (
            "no_match: [route 66]",
            "no_match: [route 66, ring 555 000 1111]",
            "t.pi_share.phone_unknown",
            False,
            "ring 555 000 1111",
        ),
        (
            "no_match: [this is fine]",
            "no_match: [this is fine, FORBIDDENWORD]",
            "t.block.forbidden",
            False,
            "FORBIDDENWORD",
        ),
    ],
)
def test_a_failing_example_is_reported_with_file_and_line(
    test_pack: Pack, old: str, new: str, rule: str, expected: bool, example: str
) -> None:
    rules = test_pack[0] / "en" / "rules.yaml"
    assert old in RULES
    rules.write_text(RULES.replace(old, new), encoding="utf-8")
    policy = load_policy(test_pack[0])
    failures = check_examples(policy, build_matcher(policy.rules, backend="fallback"))
    line_of_rule = RULES.splitlines().index(f"  - id: {rule}") + 1
    assert failures == [ExampleFailure(rule, str(rules), line_of_rule, example, expected)]
    want = "should match but does not" if expected else "should not match but does"
    assert str(failures[0]) == f"{rules}:{line_of_rule}: {rule}: {want}: {example!r}"


def test_a_family_example_in_another_language_counts_as_the_engine_counts_it() -> None:
    kin = Rule(
        id="es.kinship.mama",
        description="calls the reader mama",
        signal=Signal.KINSHIP,
        languages=frozenset({"es"}),
        patterns=(regex_pattern(r"\bmama\b"),),
        examples_match=("mama ya estoy en casa", "ok mama"),
        # Polish "mama" is the child's mum, not the Spanish address: the
        # engine drops it (``in_own_language``), so the example must not match.
        examples_no_match=("mama mi sprawdza telefon wiec nie moge duzo pisac",),
    )
    words = {
        "pl": frozenset({"nie", "mi", "wiec", "moge", "jest"}),
        "es": frozenset({"mi", "ya", "estoy", "en", "que"}),
    }
    policy = Policy(rules=(kin,), thresholds=(), version="t", function_words=words)
    matcher = build_matcher(policy.rules, backend="fallback")
    assert check_examples(policy, matcher) == []
    # Without function words the language is never clear: the word alone decides.
    wordless = Policy(rules=(kin,), thresholds=(), version="t")
    assert [f.example for f in check_examples(wordless, matcher)] == [
        "mama mi sprawdza telefon wiec nie moge duzo pisac"
    ]


# -- explain ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("hello there", {}),
        ("add me on snap", {"t.isolation.move_app": ["add me on snap"]}),
        ("ok ADD   me on SNAP!", {"t.isolation.move_app": ["ADD   me on SNAP"]}),
        ("😀😀 Ádd mé on snäp", {"t.isolation.move_app": ["Ádd mé on snäp"]}),
        ("ａｄｄ me on snap", {"t.isolation.move_app": ["ａｄｄ me on snap"]}),
        (
            "call 555 123 4567 or 555-987-6543",
            {
                "t.pi_share.phone_minor": ["555 123 4567", "555-987-6543"],
                "t.pi_share.phone_unknown": ["555 123 4567", "555-987-6543"],
            },
        ),
        ("send me a pic", {"t.image_request.minor": ["send me a pic"]}),
    ],
)
def test_explain_shows_every_rule_with_spans_into_the_original_text(
    test_pack: Pack, text: str, found: dict[str, list[str]]
) -> None:
    policy = load_policy(test_pack[0])
    result = explain(text, policy, build_matcher(policy.rules, backend="fallback"))
    assert set(result) == {
        "text",
        "normalised",
        "folded",
        "evasions",
        "features",
        "truncated",
        "rules",
        "model",
    }
    assert result["text"] == text
    assert result["truncated"] is False
    assert result["evasions"] == sorted(result["evasions"])
    json.dumps(result)  # the CLI prints it as it is
    assert {r["rule"]: [s["text"] for s in r["spans"]] for r in result["rules"]} == found
    rules_file = test_pack[0] / "en" / "rules.yaml"
    for rule in result["rules"]:
        assert set(rule) == {"rule", "signal", "weight", "description", "file", "spans"}
        assert rule["file"].startswith(f"{rules_file}:")
        for span in rule["spans"]:
            assert text[span["start"] : span["end"]] == span["text"]


def test_explain_reports_what_the_normaliser_undid(test_pack: Pack) -> None:
    policy = load_policy(test_pack[0])
    matcher = build_matcher(policy.rules, backend="fallback")
    result = explain("ａｄｄ me on snap", policy, matcher)
    assert result["evasions"] == ["compat"]
    assert result["folded"] == "add me on snap"
    long = explain("x " * 5000 + "add me on snap", policy, matcher)
    assert long["truncated"] is True
    assert long["rules"] == []  # beyond max_chars: not evaluated


# -- replay -------------------------------------------------------------------------------


def test_replay_yields_one_step_per_event_in_transcript_order(test_pack: Pack) -> None:
    transcript = events(GROOMING[0], BENIGN[0], *GROOMING[1:], *BENIGN[1:])
    steps = list(replay(transcript, engine_for(test_pack[0])))
    records = [s.to_json() for s in steps]
    assert all(set(r) == STEP_KEYS for r in records)
    assert [r["index"] for r in records] == list(range(len(transcript)))
    assert [s.event for s in steps] == transcript
    assert [r["conversation"] for r in records] == [
        "dm:amy:bob",
        "dm:cat:dan",
        "dm:amy:bob",
        "dm:amy:bob",
        "dm:amy:bob",
        "dm:amy:bob",
        "dm:cat:dan",
        "dm:cat:dan",
    ]
    assert [s.conversation_index for s in steps] == [0, 0, 1, 2, 3, 4, 1, 2]
    json.dumps(records)

    move_app, pic, phone = records[3], records[4], records[5]
    assert move_app["signals"] == ["isolation"]
    assert move_app["actions"] == [
        {
            "type": "banner",
            "banner": "off_platform_warning",
            "audience": "recipients",
            "reason": "t.isolation.move_app",
            "shadow": False,
        }
    ]
    assert pic["signals"] == ["image_request"]
    assert [(a["type"], a["reason"]) for a in pic["actions"]] == [
        ("banner", "t.image_request.minor"),
        ("capture", "t.image_request.minor"),
        ("escalate", "t.image_request.minor"),
    ]
    assert [a["type"] for a in phone["actions"]] == ["hold"]
    # The same words between two adults are no rule's business.
    assert all(r["signals"] == [] for r in records if r["conversation"] == "dm:cat:dan")


def test_summaries_count_each_conversations_own_events(test_pack: Pack) -> None:
    # cat and dan speak first, so amy and bob's events sit later in the file.
    transcript = events(*BENIGN, *GROOMING)
    summaries = summarise(replay(transcript, engine_for(test_pack[0])))
    records = [s.to_json() for s in summaries]
    assert all(set(r) == SUMMARY_KEYS for r in records)
    benign, grooming = records
    assert benign == {
        "conversation": "dm:cat:dan",
        "escalated": False,
        "first_escalation_index": None,
        "max_risk": 0.0,
        "banners": {},
        "shadow_escalated": False,
    }
    assert grooming["conversation"] == "dm:amy:bob"
    assert grooming["escalated"] is True
    assert grooming["first_escalation_index"] == 3  # "send me a pic", amy and bob's 4th event
    assert grooming["shadow_escalated"] is False
    assert grooming["max_risk"] >= 30
    assert grooming["banners"] == {
        "deterrence_image_request": 1,
        "off_platform_warning": 1,
        "pi_share_confirm": 1,  # the hold's banner
    }
    assert list(grooming["banners"]) == sorted(grooming["banners"])


def test_a_shadow_pack_escalates_only_in_shadow(test_pack: Pack) -> None:
    (test_pack[0] / "policy.yaml").write_text(
        POLICY.replace("mode: enforce", "mode: shadow"), encoding="utf-8"
    )
    [summary] = summarise(replay(events(*GROOMING), engine_for(test_pack[0])))
    assert summary.to_json() | {"max_risk": 0} == {
        "conversation": "dm:amy:bob",
        "escalated": False,
        "first_escalation_index": None,
        "max_risk": 0,
        "banners": {},
        "shadow_escalated": True,
    }
    assert summary.max_risk >= 30


def test_conversations_are_independent(test_pack: Pack) -> None:
    engine = engine_for(test_pack[0])
    alone = [s.to_json() for s in replay(events(*GROOMING), engine)]
    again = [line(100 + n, "bob", "amy", "add me on snap", conversation="c-2") for n in range(3)]
    mixed = [
        s.to_json()
        for s in replay(events(*again, *BENIGN, *GROOMING[:2], *again, *GROOMING[2:]), engine)
    ]
    mine = [{**r, "index": 0} for r in mixed if r["conversation"] == "dm:amy:bob"]
    assert mine == [{**r, "index": 0} for r in alone]
    # Each conversation accumulates only its own messages.
    assert [r["risk"] for r in mixed if r["conversation"] == "c-2"] == [
        0.0,
        0.0,
        0.0,
        3.0,
        6.0,
        9.0,
    ]


@pytest.mark.parametrize(
    ("transcript", "escalated"),
    [
        # amy's band is attested by her own first message...
        ((line(0, "amy", "bob", "hi", band="minor"), line(1, "bob", "amy", "send me a pic")), True),
        # ...which, later in the file, cannot change what came before it.
        (
            (line(0, "bob", "amy", "send me a pic"), line(1, "amy", "bob", "hi", band="minor")),
            False,
        ),
        # a band, once attested, holds for the sender's later events
        (
            (
                line(0, "amy", "bob", "hi", band="minor"),
                line(1, "amy", "bob", "how are you"),
                line(2, "bob", "amy", "send me a pic", band="adult"),
            ),
            True,
        ),
        # moderators are exempt
        (
            (
                line(0, "amy", "bob", "hi", band="minor"),
                line(1, "bob", "amy", "send me a pic", roles="moderator"),
            ),
            False,
        ),
    ],
)
def test_replay_respects_transcript_order_and_attested_attributes(
    test_pack: Pack, transcript: tuple[str, ...], escalated: bool
) -> None:
    [summary] = summarise(replay(events(*transcript), engine_for(test_pack[0])))
    assert summary.escalated is escalated


@pytest.mark.parametrize(("gap", "risk"), [(0, 6.0), (3600, 3.0), (7200, 1.5)])
def test_replay_time_comes_from_each_events_timestamp(
    test_pack: Pack, gap: int, risk: float
) -> None:
    transcript = events(
        line(0, "amy", "bob", "hi", band="minor"),
        line(1, "bob", "amy", "add me on snap", band="adult"),
        line(1, "bob", "amy", "add me on snap"),
        line(1 + gap, "amy", "bob", "ok"),
    )
    last = list(replay(transcript, engine_for(test_pack[0])))[-1]
    assert last.assessment.risk == pytest.approx(risk, abs=1e-3)


def test_both_matcher_backends_replay_the_same(test_pack: Pack) -> None:
    transcript = events(
        *GROOMING, *BENIGN, line(30, "amy", "bob", "ADD ME ON SNAPCHAT", band="adult")
    )
    fallback = [s.to_json() for s in replay(transcript, engine_for(test_pack[0], "fallback"))]
    hyperscan = [s.to_json() for s in replay(transcript, engine_for(test_pack[0], "hyperscan"))]
    assert fallback == hyperscan
