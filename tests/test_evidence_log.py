"""EvidenceLog: the capture hand-off, context follow-ups, custody, back-pressure, crashes."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from chatguard.audit import AuditEntry
from chatguard.config import EvidenceConfig
from chatguard.events import ChatEvent, EventKind, Identity, Side
from chatguard.evidence.ledger import Ledger
from chatguard.evidence.log import EvidenceLog
from chatguard.metrics import Metrics
from chatguard.pipeline import Findings, SessionContext
from chatguard.policy.model import ActionType, Assessment, Match, PlannedAction, Signal
from chatguard.steps.handoff import CaptureRequest, CaptureStep
from tests.support.clock import FakeClock
from tests.support.timing import eventually, unit

BOB = SessionContext(
    "s-bob", "10.0.0.2:4000", 0.0, "Chat/1", identity=Identity("bob", "Bob", {"age_band": "adult"})
)
AMY = SessionContext("s-amy", "10.0.0.3:4001", 0.0, identity=Identity("amy", "Amy"))
CONV = "dm:amy:bob"

Make = Callable[..., Awaitable[EvidenceLog]]


def dm(sender: str, to: str, text: str, origin: Side = Side.CLIENT, mid: str | None = None) -> Any:
    frame = {"type": "dm", "to": to, "text": text}
    if origin is Side.UPSTREAM:
        frame |= {"from": sender, "id": mid}
    return ChatEvent(
        EventKind.DIRECT, origin, json.dumps(frame), sender, None, (to,), text, message_id=mid
    )


def request(event: ChatEvent, clock: FakeClock, **params: Any) -> CaptureRequest:
    action = PlannedAction(ActionType.CAPTURE, params, "r.pic")
    assessment = Assessment(
        CONV,
        30.0,
        (Signal.IMAGE_REQUEST,),
        (Match("r.pic", Signal.IMAGE_REQUEST, 10.0, ((0, 4),)),),
        (action,),
    )
    return CaptureRequest(
        clock(), CONV, "s-bob", event.sender, event.raw, assessment, params, "r.pic", event=event
    )


@pytest.fixture
async def make_log(tmp_path: Path) -> AsyncIterator[Make]:
    logs: list[EvidenceLog] = []

    async def factory(clock: FakeClock | None = None, **settings: Any) -> EvidenceLog:
        config = EvidenceConfig(
            **{"enabled": True, "checkpoint_interval": 0.0, "purge_interval": 0.0, **settings}
        )
        ids = itertools.count()
        log = EvidenceLog(
            config,
            tmp_path,
            "t-1",
            Metrics(),
            clock=clock or FakeClock(),
            new_id=lambda: f"r{next(ids)}",
            tick=0.01,
        )
        await log.start()
        logs.append(log)
        return log

    yield factory
    for log in logs:
        await log.stop()


def metric(log: EvidenceLog, name: str, **labels: str) -> float:
    return log.metrics.registry.get_sample_value(name, labels) or 0.0


async def records_of(log: EvidenceLog) -> list[dict[str, Any]]:
    await log.checkpoint()  # every queued record is written before a checkpoint
    assert log.ledger is not None
    return [r for i in range(log.ledger.size) if (r := log.ledger.record(i)) is not None]


@pytest.mark.parametrize("fsync", ["always", "batch"])
async def test_a_capture_is_written_with_the_messages_before_it(make_log: Make, fsync: str) -> None:
    clock = FakeClock()
    log = await make_log(clock, fsync=fsync)
    for n in range(4):
        log.observe(dm("amy", "bob", f"hello {n}"), AMY)
        log.observe(dm("amy", "bob", f"hello {n}", Side.UPSTREAM, f"m{n}"), BOB)
    trigger = dm("bob", "amy", "pics please")
    log.observe(trigger, BOB)
    record_id = await log.capture(request(trigger, clock, before=2, after=0))
    assert record_id == "r0"
    [capture] = [r for r in await records_of(log) if r["kind"] == "capture"]
    assert capture["id"] == "r0"
    assert [e["text"] for e in capture["context_before"]] == ["hello 2", "hello 3"]
    assert capture["context_before"][0]["message_id"] == "m2"
    assert capture["reported_person"]["session_id"] == "s-bob"
    assert capture["reported_person"]["ip_capture_events"][0]["ip_address"] == "10.0.0.2"
    assert capture["message"]["text"] == "pics please"
    assert metric(log, "chatguard_evidence_records_total", kind="capture") == 1


async def test_the_window_is_capped_by_the_configuration(make_log: Make) -> None:
    clock = FakeClock()
    log = await make_log(clock, context_before=2)
    for n in range(5):
        log.observe(dm("amy", "bob", f"m{n}"), AMY)
    trigger = dm("bob", "amy", "pic")
    log.observe(trigger, BOB)
    await log.capture(request(trigger, clock, before=50))
    [capture] = [r for r in await records_of(log) if r["kind"] == "capture"]
    # The buffer holds the trigger and the two before it.
    assert [e["text"] for e in capture["context_before"]] == ["m3", "m4"]


async def test_the_messages_after_a_capture_follow_in_a_linked_record(make_log: Make) -> None:
    clock = FakeClock()
    log = await make_log(clock)
    trigger = dm("bob", "amy", "pic")
    log.observe(trigger, BOB)
    capture_id = await log.capture(request(trigger, clock, after=2))
    log.observe(dm("amy", "bob", "no"), AMY)
    log.observe(dm("carl", "dan", "elsewhere"), AMY)
    log.observe(dm("bob", "amy", "come on"), BOB)
    log.observe(dm("amy", "bob", "one too many"), AMY)
    [context] = [r for r in await records_of(log) if r["kind"] == "context"]
    assert (context["capture"], context["complete"]) == (capture_id, True)
    assert [e["text"] for e in context["context_after"]] == ["no", "come on"]


async def test_a_follow_up_is_written_partially_when_its_wait_is_over(make_log: Make) -> None:
    clock = FakeClock()
    log = await make_log(clock, context_wait=60.0)
    trigger = dm("bob", "amy", "pic")
    log.observe(trigger, BOB)
    await log.capture(request(trigger, clock, after=3))
    log.observe(dm("amy", "bob", "no"), AMY)
    clock.advance(61)
    await eventually(lambda: metric(log, "chatguard_evidence_records_total", kind="context") == 1)
    [context] = [r for r in await records_of(log) if r["kind"] == "context"]
    assert context["complete"] is False
    assert [e["text"] for e in context["context_after"]] == ["no"]


async def test_stopping_writes_follow_ups_as_they_stand_and_checkpoints(
    make_log: Make, tmp_path: Path
) -> None:
    clock = FakeClock()
    log = await make_log(clock)
    trigger = dm("bob", "amy", "pic")
    log.observe(trigger, BOB)
    await log.capture(request(trigger, clock, after=3))
    await log.stop()
    ledger = Ledger(tmp_path, instance=None, now=clock)
    try:
        assert ledger.kinds == ["capture", "context", "checkpoint"]
        assert ledger.verify() == []
    finally:
        ledger.close()


async def test_audit_returns_once_the_record_is_written(make_log: Make) -> None:
    log = await make_log()
    record_id = await log.audit(
        AuditEntry(1.0, "mod:kim", "case.opened", "case:9", "risk", {"conversation": CONV})
    )
    assert log.ledger is not None
    index = log.ledger.by_id[record_id]
    record = log.ledger.record(index)
    assert record is not None
    assert (record["actor"], record["subject"], record["details"]) == (
        "mod:kim",
        "case:9",
        {"conversation": CONV},
    )
    assert log.ledger.case("9") == ({CONV}, set())


async def test_a_full_queue_is_counted_and_then_drops_instead_of_stalling_chat(
    make_log: Make,
) -> None:
    clock = FakeClock()
    log = await make_log(clock, queue_size=1, queue_wait=0.05)
    release = threading.Event()
    # A stalled disk: the writer cannot get at the ledger until released.
    stalled = asyncio.create_task(log.run_io(lambda _: release.wait(unit(5))))
    await asyncio.sleep(0.05)
    trigger = dm("bob", "amy", "pic")
    first = await log.capture(request(trigger, clock))  # taken by the writer, which waits
    await eventually(lambda: log._queue.empty())
    second = await log.capture(request(trigger, clock))  # fills the queue
    third = await log.capture(request(trigger, clock))  # waits 50 ms, then is dropped
    assert (first, second, third) == ("r0", "r1", None)
    assert metric(log, "chatguard_evidence_queue_full_total") == 1
    assert metric(log, "chatguard_evidence_dropped_total", kind="capture") == 1
    release.set()
    await stalled
    kinds = [r["kind"] for r in await records_of(log)]
    assert kinds.count("capture") == 2


async def test_retention_purge_keeps_the_log_verifiable(make_log: Make) -> None:
    clock = FakeClock()
    log = await make_log(clock)
    trigger = dm("bob", "amy", "pic")
    log.observe(trigger, BOB)
    await log.capture(request(trigger, clock, after=0))
    note_before = await log.checkpoint()
    assert await log.purge() == 0
    clock.advance(31 * 86_400)
    assert await log.purge() == 1
    assert metric(log, "chatguard_evidence_purged_total") == 1
    assert log.ledger is not None
    assert log.ledger.kinds[0] == "purged"
    assert "tombstone" in log.ledger.kinds
    assert log.ledger.verify() == []
    assert note_before in [n for _, n in log.ledger.checkpoints]


async def test_the_capture_step_feeds_the_window_before_handing_off(make_log: Make) -> None:
    clock = FakeClock()
    log = await make_log(clock)
    step = CaptureStep(log, log.metrics, clock, observe=log.observe)
    assert (Side.UPSTREAM, EventKind.MESSAGE) in step.interests
    assert (Side.CLIENT, EventKind.DIRECT) in step.interests
    await step(dm("amy", "bob", "hi", Side.UPSTREAM, "m1"), BOB, Findings())
    trigger = dm("bob", "amy", "pic")
    findings = Findings(assessment=request(trigger, clock, after=0).assessment)
    await step(trigger, BOB, findings)
    assert findings.notes["evidence"] == ["r0"]
    [capture] = [r for r in await records_of(log) if r["kind"] == "capture"]
    assert [e["text"] for e in capture["context_before"]] == ["hi"]
    assert capture["reported_person"]["platform_id"] == "bob"


# -- crash safety -----------------------------------------------------------------


def _crash_once(data_dir: Path, fsync: str, rng: random.Random) -> set[str]:
    """Run the writer, SIGKILL it at a random point; the ids it acknowledged."""
    with subprocess.Popen(
        [sys.executable, "-m", "tests.support.evidence_writer", str(data_dir), fsync],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        lines: list[bytes] = []

        def read() -> None:
            assert proc.stdout is not None
            lines.extend(proc.stdout)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        threading.Event().wait(rng.uniform(0.02, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join(unit(5))
    # A line cut by the kill was not fully written, so it was not an ack.
    return {line.strip().decode() for line in lines if line.endswith(b"\n")}


def _check_survivors(data_dir: Path, acknowledged: set[str]) -> None:
    ledger = Ledger(data_dir, instance=None, now=FakeClock())
    try:
        missing = acknowledged - set(ledger.by_id)
        assert not missing, f"{len(missing)} acknowledged records lost"
        assert ledger.verify() == []
    finally:
        ledger.close()


def _crash_test(tmp_path: Path, iterations: int, seed: int) -> None:
    rng = random.Random(seed)
    acknowledged: set[str] = set()
    for i in range(iterations):
        fsync = "always" if i % 2 else "batch"
        acknowledged |= _crash_once(tmp_path, fsync, rng)
        _check_survivors(tmp_path, acknowledged)
    assert acknowledged, "the writer acknowledged nothing: the test proved nothing"


def test_acknowledged_records_survive_sigkill(tmp_path: Path) -> None:
    _crash_test(tmp_path, iterations=3, seed=5)


@pytest.mark.slow
def test_acknowledged_records_survive_many_sigkills(tmp_path: Path) -> None:
    _crash_test(tmp_path, iterations=60, seed=2026)


async def test_after_stop_captures_are_dropped_and_audits_refused(make_log: Make) -> None:
    clock = FakeClock()
    log = await make_log(clock)
    await log.stop()
    assert await log.capture(request(dm("bob", "amy", "pic"), clock)) is None
    assert metric(log, "chatguard_evidence_dropped_total", kind="capture") == 1
    with pytest.raises(RuntimeError, match="not open"):
        await log.audit(AuditEntry(1.0, "a", "b", "c"))
