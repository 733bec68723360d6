"""Benchmark for the evidence log: appends per second, and export/verify of a large case.

Two measurements, each the median of several runs, in one process on a fresh
temporary data directory per run:

* **append**: records per second acknowledged by ``EvidenceLog`` (the real
  path: queue, writer task, sign, hash, write, fsync), with ``--concurrency``
  records in flight, for ``fsync: always`` (an fsync per record) and
  ``fsync: batch`` (group commit). The baseline in the same run is the
  ledger appending without any fsync: the cost of signing and hashing alone.
  CPU per record is process CPU time over records.
* **case**: a log holding one conversation of ``--case-records`` capture
  records (plus as many of other conversations); the time to export it as a
  bundle and the time to verify that bundle offline, and the bundle's size.

Run from the repository root: ``.venv/bin/python -m bench.evidence``
(``--quick``: one run, fewer records).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chatguard.audit import AuditEntry
from chatguard.config import EvidenceConfig
from chatguard.events import ChatEvent, EventKind, Side
from chatguard.evidence import bundle, records
from chatguard.evidence.ledger import Ledger
from chatguard.evidence.log import EvidenceLog
from chatguard.metrics import Metrics
from chatguard.policy.model import ActionType, Assessment, Match, PlannedAction, Signal


def _capture(n: int, conversation: str) -> dict[str, Any]:
    text = f"message {n}: you can send me a pic, nobody has to know"
    raw = json.dumps({"type": "dm", "to": "amy", "text": text})
    event = ChatEvent(EventKind.DIRECT, Side.CLIENT, raw, "bob", None, ("amy",), text)
    assessment = Assessment(
        conversation,
        12.0,
        (Signal.IMAGE_REQUEST,),
        (Match("en.image_request", Signal.IMAGE_REQUEST, 4.0, ((16, 28),)),),
        (PlannedAction(ActionType.CAPTURE, {}, "en.image_request"),),
        policy_version="bench",
    )
    before = [records.message_entry(event, 1_700_000_000.0 + n, None) for _ in range(3)]
    return records.capture_record(
        record_id=f"cap-{conversation}-{n}",
        instance="bench",
        at=1_700_000_000.0 + n,
        conversation=conversation,
        trigger="policy",
        reason="en.image_request",
        event=event,
        frame=raw,
        sender="bob",
        reported_person=None,
        assessment=assessment,
        params={},
        before=before,
        after_expected=0,
    )


async def _append_run(fsync: str, count: int, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cg-bench-") as tmp:
        config = EvidenceConfig(
            enabled=True,
            fsync=fsync,  # type: ignore[arg-type]
            checkpoint_interval=0.0,
            purge_interval=0.0,
            queue_size=max(concurrency * 2, 16),
        )
        log = EvidenceLog(config, Path(tmp), "bench", Metrics())
        await log.start()
        entry = AuditEntry(0.0, "bench", "note", "case:bench", "x" * 200)
        cpu, wall = time.process_time(), time.perf_counter()
        done = 0
        while done < count:
            wave = min(concurrency, count - done)
            await asyncio.gather(*(log.audit(entry) for _ in range(wave)))
            done += wave
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        await log.stop()
    return {"records_per_s": count / wall, "cpu_us_per_record": cpu / count * 1e6}


def _baseline_run(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cg-bench-") as tmp:
        ledger = Ledger(Path(tmp), instance="bench", now=time.time)
        batch = [
            records.audit_record(
                record_id=f"a{i}",
                instance="bench",
                at=0.0,
                actor="bench",
                action="note",
                subject="case:bench",
                reason="x" * 200,
                details={},
            )
            for i in range(count)
        ]
        cpu, wall = time.process_time(), time.perf_counter()
        ledger.append_many(batch, sync=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        ledger.close()
    return {"records_per_s": count / wall, "cpu_us_per_record": cpu / count * 1e6}


def _case_run(case_records: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cg-bench-") as tmp:
        ledger = Ledger(Path(tmp), instance="bench", now=time.time)
        batch = []
        for n in range(case_records):
            batch.append(_capture(n, "dm:amy:bob"))
            batch.append(_capture(n, f"dm:other:{n % 97}"))
            if len(batch) >= 1000:
                ledger.append_many(batch)
                batch = []
                ledger.checkpoint()
        ledger.append_many(batch)
        start = time.perf_counter()
        data = bundle.export(
            ledger, conversation="dm:amy:bob", actor="bench", reason="bench", now=time.time()
        )
        export_s = time.perf_counter() - start
        ledger.close()
    start = time.perf_counter()
    report = bundle.verify_bundle(data)
    verify_s = time.perf_counter() - start
    if not report.ok:
        raise SystemExit(f"bundle did not verify: {report.item}: {report.reason}")
    return {"export_s": export_s, "verify_s": verify_s, "bundle_mb": len(data) / 1e6}


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--records", type=int, default=2000, help="records per append run")
    parser.add_argument("--concurrency", type=int, default=64, help="records in flight")
    parser.add_argument("--case-records", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.records, args.case_records = 1, 300, 1000

    results: dict[str, dict[str, float]] = {}
    results["baseline (no fsync)"] = _median(
        [_baseline_run(args.records) for _ in range(args.runs)]
    )
    for fsync in ("always", "batch"):
        runs = [
            asyncio.run(_append_run(fsync, args.records, args.concurrency))
            for _ in range(args.runs)
        ]
        results[f"fsync: {fsync}"] = _median(runs)
    case = _median([_case_run(args.case_records) for _ in range(args.runs)])

    if args.json:
        print(json.dumps({"append": results, "case": case, "args": vars(args)}, indent=1))
        return 0
    base = results["baseline (no fsync)"]["records_per_s"]
    print(f"append: {args.records} records, {args.concurrency} in flight, median of {args.runs}")
    print(f"{'mode':<22}{'records/s':>12}{'x baseline':>12}{'CPU µs/rec':>12}")
    for mode, row in results.items():
        print(
            f"{mode:<22}{row['records_per_s']:>12.0f}{row['records_per_s'] / base:>12.3f}"
            f"{row['cpu_us_per_record']:>12.0f}"
        )
    print(f"\ncase of {args.case_records} records (in a log of {2 * args.case_records}):")
    print(
        f"export {case['export_s']:.2f} s, verify {case['verify_s']:.2f} s, "
        f"bundle {case['bundle_mb']:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
