"""The outcome tracker and the banner event log: outcomes once, queue and files bounded."""

from __future__ import annotations

import json
from pathlib import Path

from chatguard.banner_history import BannerHistory
from chatguard.effectiveness import Impression, Observation, report
from chatguard.metrics import Metrics
from chatguard.outcome_log import OutcomeLog, OutcomeTracker, read_events
from chatguard.stores import Store
from chatguard.stores.memory import MemoryStore


def imp(iid: str, kind: str, user: str = "amy", at: float = 100.0) -> Impression:
    return Impression(iid, "b", "a", "recipients", "signal:isolation", user, at, kind, "dm:amy:bob")


def outcome_count(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "chatguard_banner_outcomes_total", {"banner": "b", "variant": "a", "outcome": outcome}
    )
    return value or 0.0


def tracker(
    tmp_path: Path, store: Store | None = None, **kw: int
) -> tuple[OutcomeTracker, Metrics, OutcomeLog]:
    metrics = Metrics()
    log = OutcomeLog(tmp_path / "banners", "test", kw.get("max_bytes", 1 << 20), 2)
    history = BannerHistory(
        store or MemoryStore(), per_user=kw.get("per_user", 50), open_limit=kw.get("limit", 100)
    )
    t = OutcomeTracker(
        metrics,
        log,
        history,
        window=60.0,
        deterrence_window=600.0,
        queue_limit=kw.get("queue_limit", 100),
    )
    return t, metrics, log


async def test_each_impression_gets_one_outcome_written_and_counted(tmp_path: Path) -> None:
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
    await t.flush()
    assert len(t) == 0
    assert [u for u, _ in await t.history.open_users()] == ["cat"]  # waits for its window
    await t.tick(150.0, online={"cat"}, instance="a", presence_ttl=3.0)
    assert [u for u, _ in await t.history.open_users()] == ["cat"]
    await t.tick(160.0, online={"cat"}, instance="a", presence_ttl=3.0)
    assert await t.history.open_users() == []
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
    shown = await t.history.shown("amy", 10)
    assert [(s["id"], s["outcome"]) for s in shown] == [
        ("n1", None),
        ("p1", "sent_anyway"),
        ("w1", "reported"),
    ]
    assert all("risky" not in s and "seen" not in s for s in shown)


async def test_open_impressions_are_bounded(tmp_path: Path) -> None:
    t, metrics, log = tracker(tmp_path, limit=2)
    for i in range(3):
        t.shown(imp(f"w{i}", "warning", user=f"u{i}", at=100.0 + i))
    await t.flush()
    log.close()
    assert [u for u, _ in await t.history.open_users()] == ["u1", "u2"]
    assert outcome_count(metrics, "no_reply") == 1.0  # the nearest deadline closed early


async def test_history_per_user_is_bounded_and_notices_go_first(tmp_path: Path) -> None:
    t, metrics, log = tracker(tmp_path, per_user=3)
    t.shown(imp("n1", "notice", at=100.0))
    t.shown(imp("w1", "warning", at=101.0))
    t.shown(imp("w2", "warning", at=102.0))
    t.shown(imp("w3", "warning", at=103.0))  # the notice makes room
    t.shown(imp("w4", "warning", at=104.0))  # the oldest (open) one is closed and goes
    await t.flush()
    log.close()
    assert [s["id"] for s in await t.history.shown("amy", 10)] == ["w4", "w3", "w2"]
    assert outcome_count(metrics, "no_reply") == 1.0


async def test_a_full_queue_drops_and_counts_and_chat_never_waits(tmp_path: Path) -> None:
    t, metrics, log = tracker(tmp_path, queue_limit=2)
    for i in range(5):
        t.observe("amy", Observation("message", 100.0 + i, "dm:amy:bob", "hi"))
    assert len(t) == 2
    dropped = metrics.registry.get_sample_value(
        "chatguard_banner_history_errors_total", {"reason": "queue_full"}
    )
    assert dropped == 3.0
    await t.flush()
    log.close()


async def test_a_store_that_is_down_costs_the_change_not_the_chat(tmp_path: Path) -> None:
    store = MemoryStore()
    t, metrics, log = tracker(tmp_path, store)
    await store.close()
    t.shown(imp("w1", "warning"))
    await t.flush()
    await t.tick(1000.0, online=set(), instance="a", presence_ttl=3.0)
    log.close()
    errors = metrics.registry.get_sample_value(
        "chatguard_banner_history_errors_total", {"reason": "store"}
    )
    assert errors == 2.0


async def test_a_viewer_connected_nowhere_has_left_once_her_mark_is_withdrawn(
    tmp_path: Path,
) -> None:
    t, metrics, log = tracker(tmp_path)
    t.shown(imp("w1", "warning", at=100.0))
    await t.flush()
    await t.tick(101.0, online={"amy"}, instance="a", presence_ttl=30.0)
    await t.tick(102.0, online=set(), instance="a", presence_ttl=30.0)  # her own mark goes
    assert outcome_count(metrics, "left") == 0.0  # another instance may be about to mark her
    await t.tick(103.0, online=set(), instance="a", presence_ttl=30.0)
    log.close()
    assert outcome_count(metrics, "left") == 1.0


async def test_presence_on_another_instance_keeps_the_viewer(tmp_path: Path) -> None:
    store = MemoryStore()
    a, metrics_a, log_a = tracker(tmp_path / "a", store)
    b, metrics_b, log_b = tracker(tmp_path / "b", store)
    a.shown(imp("w1", "warning", at=100.0))
    await a.flush()
    await a.tick(101.0, online={"amy"}, instance="a", presence_ttl=30.0)
    await b.tick(110.0, online={"amy"}, instance="b", presence_ttl=30.0)  # amy is on b now
    for now in (111.0, 112.0, 113.0):
        await a.tick(now, online=set(), instance="a", presence_ttl=30.0)  # a does not see her
    assert outcome_count(metrics_a, "left") == 0.0
    b.observe("amy", Observation("report", 114.0, "dm:amy:bob"))
    await b.flush()
    log_a.close()
    log_b.close()
    assert outcome_count(metrics_b, "reported") == 1.0
    assert outcome_count(metrics_a, "reported") == 0.0


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


async def test_a_prompt_never_answered_leaves_nothing_behind(tmp_path: Path) -> None:
    t, metrics, log = tracker(tmp_path)
    t.shown(imp("p1", "prompt"), hold="h-1")
    await t.flush()
    await t.tick(1000.0, online={"amy"}, instance="a", presence_ttl=3.0)
    assert await t.history.open_users() == []
    assert outcome_count(metrics, "timed_out") == 1.0
    t.answered("h-1", "send", 1001.0)  # too late: nothing left to decide
    await t.flush()
    log.close()
    assert outcome_count(metrics, "sent_anyway") == 0.0
    (item,) = await t.history.items("amy")
    assert "risky" not in item  # the held text went with the decision
