"""The outcome tracker and the banner event log: outcomes once, files bounded."""

from __future__ import annotations

import json
from pathlib import Path

from chatguard.effectiveness import Impression, Observation, report
from chatguard.metrics import Metrics
from chatguard.outcome_log import OutcomeLog, OutcomeTracker, read_events


def imp(iid: str, kind: str, user: str = "amy", at: float = 100.0) -> Impression:
    return Impression(iid, "b", "a", "recipients", "signal:isolation", user, at, kind, "dm:amy:bob")


def outcome_count(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "chatguard_banner_outcomes_total", {"banner": "b", "variant": "a", "outcome": outcome}
    )
    return value or 0.0


def tracker(tmp_path: Path, **kw: int) -> tuple[OutcomeTracker, Metrics, OutcomeLog]:
    metrics = Metrics()
    log = OutcomeLog(tmp_path / "banners", "test", kw.get("max_bytes", 1 << 20), 2)
    t = OutcomeTracker(
        metrics, log, window=60.0, deterrence_window=600.0, limit=kw.get("limit", 100)
    )
    return t, metrics, log


def test_each_impression_gets_one_outcome_written_and_counted(tmp_path: Path) -> None:
    t, metrics, log = tracker(tmp_path)
    t.shown(imp("w1", "warning"))
    t.shown(imp("w2", "warning", user="cat"))
    t.shown(imp("d1", "deterrence", user="bob"))
    t.shown(imp("p1", "prompt"), hold="h-1")
    t.shown(imp("n1", "notice"))
    t.observe("amy", Observation("report", 110.0, "dm:amy:bob"))
    t.observe("amy", Observation("report", 111.0, "dm:amy:bob"))  # decided already
    t.observe("bob", Observation("signals", 120.0, "dm:bob:cat"))  # any conversation
    t.answered("h-1", "send", 105.0)
    t.answered("h-unknown", "send", 105.0)  # ignored
    assert len(t) == 1  # cat's warning waits for its window
    t.sweep(150.0)
    assert len(t) == 1
    t.sweep(160.0)
    assert len(t) == 0
    log.close()
    events, skipped = read_events([tmp_path / "banners"])
    assert skipped == 0
    outcomes = {e["id"]: e["outcome"] for e in events if e["event"] == "outcome"}
    assert outcomes == {"w1": "reported", "d1": "reoffended", "p1": "sent_anyway", "w2": "no_reply"}
    assert len([e for e in events if e["event"] == "impression"]) == 5
    assert outcome_count(metrics, "reported") == 1.0
    impressions = metrics.registry.get_sample_value(
        "chatguard_banner_impressions_total",
        {"banner": "b", "variant": "a", "audience": "recipients", "trigger": "signal:isolation"},
    )
    assert impressions == 5.0


def test_open_impressions_are_bounded(tmp_path: Path) -> None:
    t, metrics, log = tracker(tmp_path, limit=2)
    for i in range(3):
        t.shown(imp(f"w{i}", "warning", at=100.0 + i))
    log.close()
    assert len(t) == 2
    assert outcome_count(metrics, "no_reply") == 1.0  # the oldest closed early


def test_the_log_rotates_by_size_and_keeps_a_bounded_number_of_files(tmp_path: Path) -> None:
    log = OutcomeLog(tmp_path, "x", max_bytes=200, keep=2)
    for i in range(30):
        log.write({"event": "impression", "id": f"i{i}", "banner": "b", "variant": "a", "at": i})
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["events-x.1.jsonl", "events-x.2.jsonl", "events-x.jsonl"]
    assert all(p.stat().st_size <= 200 for p in tmp_path.iterdir())
    events, _ = read_events([tmp_path])
    assert events[-1]["id"] == "i29"


def test_malformed_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "events-y.jsonl"
    good = {"event": "impression", "id": "i1", "banner": "b", "variant": "a", "at": 1.0}
    path.write_text(json.dumps(good) + "\n{not json\n[1,2]\n", encoding="utf-8")
    result = report([tmp_path])
    assert result.skipped == 2
    assert result.variants[0].impressions == 1


def test_a_prompt_never_answered_leaves_nothing_behind(tmp_path: Path) -> None:
    t, metrics, log = tracker(tmp_path)
    t.shown(imp("p1", "prompt"), hold="h-1")
    t.sweep(1000.0)
    log.close()
    assert len(t) == 0
    assert t.users() == set()
    assert outcome_count(metrics, "timed_out") == 1.0
    t.answered("h-1", "send", 1001.0)  # too late: nothing left to decide
    assert outcome_count(metrics, "sent_anyway") == 0.0
