"""``chatguard policy test|explain|replay``, run in-process: output contracts and exit codes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chatguard.cli import main
from tests.support.examples import IMAGES
from tests.support.examples import write as write_examples
from tests.support.pack import RULES

Pack = tuple[Path, Path]
START = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
EXAMPLES_IN_TEST_PACK = 11


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out: str) -> list[dict[str, Any]]:
    records = [json.loads(text) for text in out.splitlines()]
    assert all(isinstance(r, dict) for r in records)
    return records


def line(second: float, sender: str, to: str, text: str, **extra: Any) -> str:
    stamp = (START + timedelta(seconds=second)).isoformat().replace("+00:00", "Z")
    return json.dumps({"ts": stamp, "sender": sender, "recipients": [to], "text": text, **extra})


TRANSCRIPT = (
    line(0, "cat", "dan", "hello", sender_attrs={"age_band": "adult"}),
    line(1, "amy", "bob", "hi", sender_attrs={"age_band": "minor"}),
    line(2, "bob", "amy", "add me on snap", sender_attrs={"age_band": "adult"}),
    "",  # blank lines are skipped
    line(3, "dan", "cat", "add me on snap", sender_attrs={"age_band": "adult"}),
    line(4, "bob", "amy", "send me a pic"),
    line(5, "amy", "bob", "call me 555 123 4567"),
    line(6, "x", "y", "forbiddenword", conversation="c-3"),
)


@pytest.fixture
def transcript(tmp_path: Path) -> Path:
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(TRANSCRIPT) + "\n", encoding="utf-8")
    return path


def break_rules(pack: Pack) -> tuple[Path, int]:
    """Append a rule with a YAML syntax error; its file and the line reported."""
    rules = pack[0] / "en" / "rules.yaml"
    rules.write_text(RULES + "  - id: [broken\n", encoding="utf-8")
    return rules, len(RULES.splitlines()) + 2


# -- policy test ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["auto", "fallback", "hyperscan"])
def test_a_sound_pack_passes(
    capsys: pytest.CaptureFixture[str], test_pack: Pack, backend: str
) -> None:
    code, out, err = run(
        capsys, "policy", "test", str(test_pack[0]), "--json", "--backend", backend
    )
    assert (code, err) == (0, "")
    [report] = json_lines(out)
    assert re.fullmatch(r"[0-9a-f]{64}", report.pop("version"))
    assert report == {
        "ok": True,
        "rules": 5,
        "examples": EXAMPLES_IN_TEST_PACK,
        "failures": [],
        "errors": [],
    }


def test_failing_examples_exit_1_and_are_listed(
    capsys: pytest.CaptureFixture[str], test_pack: Pack
) -> None:
    rules = test_pack[0] / "en" / "rules.yaml"
    rules.write_text(
        RULES.replace("match: [add me on snap,", "match: [add me on kik, add me on snap,"),
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "policy", "test", str(test_pack[0]), "--json")
    assert code == 1
    [report] = json_lines(out)
    assert report["ok"] is False
    assert report["examples"] == EXAMPLES_IN_TEST_PACK + 1
    at = RULES.splitlines().index("  - id: t.isolation.move_app") + 1
    assert report["failures"] == [
        f"{rules}:{at}: t.isolation.move_app: should match but does not: 'add me on kik'"
    ]

    code, out, _ = run(capsys, "policy", "test", str(test_pack[0]))
    assert code == 1
    assert out.splitlines() == [
        f"{rules}:{at}: t.isolation.move_app: should match but does not: 'add me on kik'",
        f"{test_pack[0]}: 5 rules, 12 examples, 1 failed: FAILED",
    ]


def test_the_plain_report_of_a_sound_pack(
    capsys: pytest.CaptureFixture[str], test_pack: Pack
) -> None:
    code, out, _ = run(capsys, "policy", "test", str(test_pack[0]))
    assert code == 0
    assert out == f"{test_pack[0]}: 5 rules, {EXAMPLES_IN_TEST_PACK} examples, 0 failed: ok\n"


def test_a_pack_with_a_syntax_error_exits_1_naming_file_and_line(
    capsys: pytest.CaptureFixture[str], test_pack: Pack
) -> None:
    rules, at = break_rules(test_pack)
    code, out, err = run(capsys, "policy", "test", str(test_pack[0]), "--json")
    assert code == 1
    [report] = json_lines(out)
    assert report["ok"] is False
    assert report["failures"] == []
    [error] = report["errors"]
    assert error.startswith(f"{rules}:{at}: ")
    assert err.startswith(f"{rules}:{at}: ")

    code, out, err = run(capsys, "policy", "test", str(test_pack[0]))
    assert code == 1
    assert failed_json(out)  # nothing replayed; the errors are on stdout too
    assert err.startswith(f"{rules}:{at}: ")


def test_a_missing_pack_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "policy", "test", str(tmp_path / "nowhere"))
    assert code == 1
    assert f"{tmp_path / 'nowhere'}: not a directory" in err


# -- policy explain ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        ("well, ADD me on  Snap ok?", {"t.isolation.move_app": ["ADD me on  Snap"]}),
        ("😀 send me a pic", {"t.image_request.minor": ["send me a pic"]}),
        ("nothing to see", {}),
    ],
)
def test_explain_prints_one_object_with_spans_into_the_text(
    capsys: pytest.CaptureFixture[str], test_pack: Pack, text: str, rules: dict[str, list[str]]
) -> None:
    code, out, err = run(capsys, "policy", "explain", text, "--policy", str(test_pack[0]), "--json")
    assert (code, err) == (0, "")
    [result] = json_lines(out)
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
    assert result["model"] == []  # the test pack has no signal model
    assert result["text"] == text
    assert {r["rule"]: [s["text"] for s in r["spans"]] for r in result["rules"]} == rules
    for rule in result["rules"]:
        assert set(rule) == {"rule", "signal", "weight", "description", "file", "spans"}
        assert re.fullmatch(rf"{re.escape(str(test_pack[0]))}/en/rules\.yaml:\d+", rule["file"])
        for span in rule["spans"]:
            assert text[span["start"] : span["end"]] == span["text"]


def test_explain_in_plain_text(capsys: pytest.CaptureFixture[str], test_pack: Pack) -> None:
    code, out, _ = run(capsys, "policy", "explain", "add me on snap", "--policy", str(test_pack[0]))
    assert code == 0
    assert "t.isolation.move_app (isolation, weight 1.0): 'add me on snap'" in out
    code, out, _ = run(capsys, "policy", "explain", "fine", "--policy", str(test_pack[0]))
    assert code == 0
    assert "no rule matched" in out


def test_the_commands_keep_a_cache_and_it_changes_nothing(
    capsys: pytest.CaptureFixture[str],
    test_pack: Pack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regex verdicts and the Hyperscan database go to ``$XDG_CACHE_HOME/
    chatguard`` unless ``--cache DIR`` names another place; ``--no-cache``
    writes nothing; a command run from the cache gives the same answer."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    explain = ("policy", "explain", "add me on snap", "--policy", str(test_pack[0]), "--json")
    hyperscan = ("--backend", "hyperscan")

    code, fresh, _ = run(capsys, *explain, *hyperscan, "--no-cache")
    assert code == 0
    assert not (tmp_path / "xdg").exists()

    code, out, _ = run(capsys, *explain, *hyperscan)
    assert (code, out) == (0, fresh)
    home = tmp_path / "xdg" / "chatguard"
    assert {p.name for p in home.iterdir()} >= {"regex-safe.json"}
    assert len(list(home.glob("hs-*.db"))) == 1

    elsewhere = tmp_path / "elsewhere"
    code, out, _ = run(capsys, *explain, *hyperscan, "--cache", str(elsewhere))
    assert (code, out) == (0, fresh)
    assert len(list(elsewhere.glob("hs-*.db"))) == 1
    code, out, _ = run(capsys, *explain, *hyperscan, "--cache", str(elsewhere))  # from it
    assert (code, out) == (0, fresh)

    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    code, out, _ = run(capsys, *explain, *hyperscan, "--cache", str(blocked / "cache"))
    assert (code, out) == (0, fresh)  # a cache that cannot be written is not an error


def test_explain_with_a_broken_pack_exits_1(
    capsys: pytest.CaptureFixture[str], test_pack: Pack
) -> None:
    rules, at = break_rules(test_pack)
    code, out, err = run(capsys, "policy", "explain", "hi", "--policy", str(test_pack[0]), "--json")
    assert code == 1
    assert failed_json(out)  # nothing replayed; the errors are on stdout too
    assert err.startswith(f"{rules}:{at}: ")


# -- policy replay -------------------------------------------------------------------


def test_replay_prints_one_object_per_event(
    capsys: pytest.CaptureFixture[str], test_pack: Pack, transcript: Path
) -> None:
    code, out, err = run(
        capsys, "policy", "replay", str(transcript), "--policy", str(test_pack[0]), "--json"
    )
    assert (code, err) == (0, "")
    records = json_lines(out)
    assert [set(r) for r in records] == [
        {"index", "conversation", "risk", "signals", "actions"}
    ] * 7
    assert [r["index"] for r in records] == list(range(7))
    assert [r["conversation"] for r in records] == [
        "dm:cat:dan",
        "dm:amy:bob",
        "dm:amy:bob",
        "dm:cat:dan",
        "dm:amy:bob",
        "dm:amy:bob",
        "c-3",
    ]
    assert [[a["type"] for a in r["actions"]] for r in records] == [
        [],
        [],
        ["banner"],
        [],  # between adults
        ["banner", "capture", "escalate"],
        ["hold"],
        ["block"],
    ]
    assert records[4]["signals"] == ["image_request"]


def test_replay_summary_prints_one_object_per_conversation(
    capsys: pytest.CaptureFixture[str], test_pack: Pack, transcript: Path
) -> None:
    code, out, _ = run(
        capsys,
        "policy",
        "replay",
        str(transcript),
        "--policy",
        str(test_pack[0]),
        "--summary",
        "--json",
    )
    assert code == 0
    cat_dan, amy_bob, other = json_lines(out)
    assert cat_dan == {
        "conversation": "dm:cat:dan",
        "escalated": False,
        "first_escalation_index": None,
        "max_risk": 0.0,
        "banners": {},
        "shadow_escalated": False,
    }
    assert amy_bob["conversation"] == "dm:amy:bob"
    assert amy_bob["escalated"] is True
    assert amy_bob["first_escalation_index"] == 2  # amy and bob's third event, the file's fifth
    assert amy_bob["banners"] == {
        "deterrence_image_request": 1,
        "off_platform_warning": 1,
        "pi_share_confirm": 1,
    }
    assert other["conversation"] == "c-3"
    assert other["escalated"] is False


def test_replay_in_plain_text(
    capsys: pytest.CaptureFixture[str], test_pack: Pack, transcript: Path
) -> None:
    code, out, _ = run(capsys, "policy", "replay", str(transcript), "--policy", str(test_pack[0]))
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 7
    assert "signals: image_request  actions: banner, capture, escalate" in lines[4]
    code, out, _ = run(
        capsys, "policy", "replay", str(transcript), "--policy", str(test_pack[0]), "--summary"
    )
    assert code == 0
    assert out.splitlines()[0] == "dm:cat:dan: max risk 0.00, not escalated"
    assert "escalated at message 2" in out.splitlines()[1]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "an event must be a JSON object"),
        (json.dumps({"sender": "a", "recipients": ["b"], "text": "x"}), "`ts`"),
        (line(0, "a", "b", "x").replace("Z", ""), "`ts` needs a time zone"),
        (
            json.dumps({"ts": "2026-03-01T18:00:00Z", "sender": "a", "text": "x"}),
            "no `conversation`",
        ),
        (line(0, "a", "b", "x", recipients="b"), "`recipients` must be a list"),
    ],
)
def test_a_bad_transcript_line_exits_1_naming_file_and_line(
    capsys: pytest.CaptureFixture[str], test_pack: Pack, tmp_path: Path, bad: str, reason: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([TRANSCRIPT[0], "", bad, TRANSCRIPT[1]]) + "\n", encoding="utf-8")
    code, out, err = run(
        capsys, "policy", "replay", str(path), "--policy", str(test_pack[0]), "--json"
    )
    assert code == 1
    assert failed_json(out)  # nothing replayed; the errors are on stdout too
    assert err.startswith(f"{path}:3: ")
    assert reason in err


def failed_json(out: str) -> bool:
    """``--json`` output of a refused command: one ``{"ok": false, "errors"}`` object."""
    if not out:
        return True  # the command was run without --json
    body = json.loads(out)
    return body["ok"] is False and bool(body["errors"])


def test_a_missing_transcript_exits_1(
    capsys: pytest.CaptureFixture[str], test_pack: Pack, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.jsonl"
    code, _, err = run(capsys, "policy", "replay", str(missing), "--policy", str(test_pack[0]))
    assert code == 1
    assert err.startswith(f"{missing}: cannot read")


def test_replay_with_a_broken_pack_exits_1(
    capsys: pytest.CaptureFixture[str], test_pack: Pack, transcript: Path
) -> None:
    rules, at = break_rules(test_pack)
    code, out, err = run(capsys, "policy", "replay", str(transcript), "--policy", str(test_pack[0]))
    assert code == 1
    assert failed_json(out)  # nothing replayed; the errors are on stdout too
    assert err.startswith(f"{rules}:{at}: ")


@pytest.mark.parametrize("summary", [[], ["--summary"]])
def test_both_matcher_backends_replay_the_same(
    capsys: pytest.CaptureFixture[str], test_pack: Pack, transcript: Path, summary: list[str]
) -> None:
    outputs = []
    for backend in ("fallback", "hyperscan"):
        argv = ["policy", "replay", str(transcript), "--policy", str(test_pack[0]), "--json"]
        code, out, _ = run(capsys, *argv, *summary, "--backend", backend)
        assert code == 0
        outputs.append(out)
    assert outputs[0] == outputs[1]
    assert outputs[0]


# -- policy evaluate -----------------------------------------------------------------


def labels(tmp_path: Path, other_escalates: bool = False) -> Path:
    """Labels for ``TRANSCRIPT``: amy and bob's conversation should be escalated
    at its third event; ``c-3`` too when ``other_escalates``."""
    path = tmp_path / "labels.yaml"
    other = "true\n  category: sextortion\n  escalate_at: 0" if other_escalates else "false"
    path.write_text(
        "dm:cat:dan:\n  escalate: false\n  slices: [adults]\n"
        "dm:amy:bob:\n  escalate: true\n  category: grooming\n  escalate_at: 2\n"
        "  slices: [attested]\n"
        f"c-3:\n  escalate: {other}\n",
        encoding="utf-8",
    )
    return path


def test_evaluate_prints_the_figures_as_json(
    capsys: pytest.CaptureFixture[str], test_pack: Pack, transcript: Path, tmp_path: Path
) -> None:
    argv = ["policy", "evaluate", str(transcript), "--policy", str(test_pack[0]), "--json"]
    code, out, _ = run(capsys, *argv, "--labels", str(labels(tmp_path)))
    assert code == 0
    report = json.loads(out)
    overall = report["overall"]
    assert (overall["tp"], overall["fp"], overall["fn"], overall["tn"]) == (1, 0, 0, 2)
    assert overall["precision"] == overall["recall"] == 1.0
    assert overall["median_delay"] == 0
    assert report["by_category"]["grooming"]["tp"] == 1
    assert report["misses"] == []
    code, out, _ = run(capsys, *argv, "--labels", str(labels(tmp_path, other_escalates=True)))
    assert code == 0
    report = json.loads(out)
    assert report["overall"]["recall"] == 0.5
    assert report["misses"] == ["c-3: missed"]


def test_evaluate_in_plain_text(
    capsys: pytest.CaptureFixture[str], test_pack: Pack, transcript: Path, tmp_path: Path
) -> None:
    argv = ["policy", "evaluate", str(transcript), "--policy", str(test_pack[0])]
    code, out, _ = run(capsys, *argv, "--labels", str(labels(tmp_path, other_escalates=True)))
    assert code == 0
    rows = out.splitlines()
    assert rows[0].split() == [
        "group",
        "n",
        "precision",
        "recall",
        "false",
        "alarms",
        "median",
        "delay",
    ]
    assert rows[1].split() == ["all", "3", "1.00", "0.50", "0.00", "0.00"]
    assert "category: grooming" in out
    assert "slice: attested" in out
    assert rows[-1] == "  c-3: missed"


def test_evaluate_with_bad_or_missing_labels_exits_1(
    capsys: pytest.CaptureFixture[str], test_pack: Pack, transcript: Path, tmp_path: Path
) -> None:
    argv = ["policy", "evaluate", str(transcript), "--policy", str(test_pack[0]), "--json"]
    unlabelled = tmp_path / "partial.yaml"
    unlabelled.write_text("dm:cat:dan:\n  escalate: false\n", encoding="utf-8")
    code, out, _ = run(capsys, *argv, "--labels", str(unlabelled))
    assert code == 1
    assert failed_json(out)
    code, out, err = run(capsys, *argv, "--labels", str(tmp_path / "missing.yaml"))
    assert code == 1
    assert failed_json(out)
    assert "missing.yaml" in err


# -- policy coverage -----------------------------------------------------------------


def messages(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


COVERAGE = (
    "- {id: a, signal: isolation, expect: true, text: add me on snap}\n"
    "- {id: b, signal: isolation, expect: true, text: come chat on my other app}\n"
    "- {id: c, signal: image_request, expect: false, text: send me a pic of the dog}\n"
)


def test_coverage_prints_the_figures_as_json(
    capsys: pytest.CaptureFixture[str], test_pack: Pack, tmp_path: Path
) -> None:
    es = messages(
        tmp_path,
        "es.yaml",
        "- {id: d, signal: pi_share, expect: true, text: 555 123 4567, from: unknown}\n",
    )
    argv = ["policy", "coverage", str(messages(tmp_path, "en.yaml", COVERAGE)), str(es)]
    code, out, _ = run(capsys, *argv, "--policy", str(test_pack[0]), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["overall"] == {
        "positives": 3,
        "caught": 2,
        "recall": 0.667,
        "negatives": 1,
        "false_signals": 1,
        "false_signal_rate": 1.0,
    }
    assert report["by_group"]["es"]["pi_share"]["caught"] == 1
    assert report["by_signal"]["isolation"]["recall"] == 0.5
    assert report["misses"] == [
        {"id": "b", "signal": "isolation", "text": "come chat on my other app", "found": []}
    ]
    assert [m["id"] for m in report["false_signals"]] == ["c"]


def test_coverage_in_plain_text(
    capsys: pytest.CaptureFixture[str], test_pack: Pack, tmp_path: Path
) -> None:
    argv = ["policy", "coverage", str(messages(tmp_path, "en.yaml", COVERAGE))]
    code, out, _ = run(capsys, *argv, "--policy", str(test_pack[0]))
    assert code == 0
    rows = out.splitlines()
    assert rows[0].split() == ["signal", "en", "all"]
    assert rows[1].split() == ["image_request", "-", "-"]
    assert rows[2].split() == ["isolation", "0.50", "(0/0)", "0.50", "(0/0)"]
    assert rows[3].split() == ["all", "0.50", "(1/1)", "0.50", "(1/1)"]
    assert "  missed b [isolation] 'come chat on my other app' -> -" in rows
    assert "  false signal c [image_request] 'send me a pic of the dog'" in rows


def test_coverage_with_bad_or_missing_messages_exits_1(
    capsys: pytest.CaptureFixture[str], test_pack: Pack, tmp_path: Path
) -> None:
    bad = messages(tmp_path, "bad.yaml", "- {id: a, signal: snap, expect: true, text: hi}\n")
    for path, shown in (
        (bad, "bad.yaml:1: unknown signal 'snap'"),
        (tmp_path / "nope.yaml", "nope.yaml"),
    ):
        argv = ["policy", "coverage", str(path), "--policy", str(test_pack[0]), "--json"]
        code, out, err = run(capsys, *argv)
        assert code == 1
        assert failed_json(out)
        assert shown in err


# -- usage ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["policy"],
        ["policy", "explain"],
        ["policy", "replay"],
        ["policy", "coverage"],
        ["policy", "test", "--backend", "nope"],
        ["policy", "frobnicate"],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "usage:" in capsys.readouterr().err


# -- policy train, and a pack with a signal model -------------------------------------


def with_examples(pack: Pack) -> Path:
    examples = pack[0] / "signal_model" / "examples"
    write_examples(examples)
    return examples


def test_train_writes_a_model_the_pack_then_uses(
    capsys: pytest.CaptureFixture[str], test_pack: Pack
) -> None:
    with_examples(test_pack)
    code, out, err = run(capsys, "policy", "test", str(test_pack[0]))
    assert code == 1
    assert "examples without a model: run chatguard policy train" in out

    code, out, err = run(capsys, "policy", "train", str(test_pack[0]), "--json")
    assert (code, err) == (0, "")
    [result] = json_lines(out)
    assert result["ok"]
    assert result["model"] == str(test_pack[0] / "signal_model/model.json")
    assert result["quality"]["image_request"]["examples"] == len(IMAGES) + 1

    code, out, _ = run(capsys, "policy", "test", str(test_pack[0]))
    assert code == 0, out
    code, out, _ = run(
        capsys, "policy", "explain", "send a photo of you", "--policy", str(test_pack[0]), "--json"
    )
    [result] = json_lines(out)
    [found] = result["model"]
    assert found["signal"] == "image_request"
    assert 0.5 <= found["probability"] <= 1
    assert found["weight"] == 1.0
    assert found["features"]
    code, out, _ = run(
        capsys, "policy", "explain", "send a photo of you", "--policy", str(test_pack[0])
    )
    assert "model: image_request (probability" in out


def test_a_model_trained_on_other_examples_fails_the_pack_test(
    capsys: pytest.CaptureFixture[str], test_pack: Pack
) -> None:
    examples = with_examples(test_pack)
    assert run(capsys, "policy", "train", str(test_pack[0]))[0] == 0
    (examples / "en.yaml").write_text(
        (examples / "en.yaml").read_text() + '    - "one more none"\n', encoding="utf-8"
    )
    code, out, _ = run(capsys, "policy", "test", str(test_pack[0]), "--json")
    assert code == 1
    [result] = json_lines(out)
    assert result["failures"] == [
        f"{test_pack[0] / 'signal_model/model.json'}: trained on other examples: "
        "run chatguard policy train"
    ]


def test_train_with_bad_examples_exits_1_and_keeps_the_old_model(
    capsys: pytest.CaptureFixture[str], test_pack: Pack
) -> None:
    examples = with_examples(test_pack)
    assert run(capsys, "policy", "train", str(test_pack[0]))[0] == 0
    model = (test_pack[0] / "signal_model/model.json").read_bytes()
    (examples / "bad.yaml").write_text("examples:\n  meetin:\n    - hi\n", encoding="utf-8")
    code, out, err = run(capsys, "policy", "train", str(test_pack[0]), "--json")
    assert code == 1
    assert failed_json(out)
    assert err.startswith(f"{examples / 'bad.yaml'}:2: unknown signal 'meetin'")
    assert (test_pack[0] / "signal_model/model.json").read_bytes() == model


def test_train_with_a_negative_weight_and_out_of_range_settings(
    capsys: pytest.CaptureFixture[str], test_pack: Pack
) -> None:
    with_examples(test_pack)
    model_file = test_pack[0] / "signal_model/model.json"
    assert run(capsys, "policy", "train", str(test_pack[0]))[0] == 0
    plain = json.loads(model_file.read_bytes())["thresholds"]
    assert run(capsys, "policy", "train", str(test_pack[0]), "--negative-weight", "20")[0] == 0
    rare = json.loads(model_file.read_bytes())["thresholds"]
    assert all(r >= p for r, p in zip(rare, plain, strict=True))
    assert rare != plain
    trained = model_file.read_bytes()
    for flag, value in (("--negative-weight", "0"), ("--precision", "2")):
        code, out, err = run(capsys, "policy", "train", str(test_pack[0]), flag, value, "--json")
        assert code == 1
        assert failed_json(out)
        assert "must be" in err
        assert model_file.read_bytes() == trained
