"""The evidence log of a running sidecar: the evidence and audit sink.

What it owns: the asynchronous ring around ``ledger.Ledger`` — a bounded
queue, one writer task doing group commits off the event loop, the context
windows fed by every chat message, the checkpoint and purge schedules, and
the custody records of reads, exports and purges.

It implements ``steps.handoff.EvidenceSink`` (``capture``) and
``audit.AuditSink`` (``audit``).

Invariants:

* Capture never blocks chat on disk: ``capture`` builds the record from
  memory and puts it on the queue. When the queue is full it counts the
  back-pressure (``chatguard_evidence_queue_full_total``), waits at most
  ``evidence.queue_wait`` seconds, then drops the record and counts it
  (``chatguard_evidence_dropped_total``) rather than stall the chat path.
  The record id is returned when queued; the record is acknowledged (counted
  in ``chatguard_evidence_records_total``) only once durable.
* ``audit`` waits until its record is durable before returning its id:
  custody records are never dropped.
* Every access to the ledger runs in a worker thread, one at a time (the
  ``_io`` lock), so the ledger sees a single writer.
* No evidence content in application logs: log lines name ids and counts only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..audit import AuditEntry
from ..config import EvidenceConfig
from ..events import ChatEvent, Side
from ..metrics import Metrics
from ..pipeline import SessionContext
from ..steps.handoff import CaptureRequest
from . import bundle, records, retention
from .context import ContextBuffer, FollowUp
from .ledger import Ledger
from .segments import load_key

__all__ = ["EvidenceLog", "purge_due"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(slots=True)
class _Item:
    record: dict[str, Any]
    done: asyncio.Future[int] | None = None


class EvidenceLog:
    def __init__(
        self,
        config: EvidenceConfig,
        data_dir: Path,
        instance: str,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        tick: float = 1.0,
    ) -> None:
        self.config = config
        self.tick = tick
        self.data_dir = data_dir
        self.instance = instance
        self.metrics = metrics
        self.clock = clock
        self.new_id = new_id
        self.context = ContextBuffer(
            before=config.context_before,
            conversations=config.context_conversations,
            followups=config.context_followups,
            max_bytes=config.context_max_bytes,
        )
        self.ledger: Ledger | None = None
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue(config.queue_size)
        self._io = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._checkpointed = -1

    # -- life cycle --------------------------------------------------------

    async def start(self) -> None:
        key_file = self.config.encryption_key_file
        key = load_key(Path(key_file)) if key_file else None
        self.ledger = await asyncio.to_thread(
            Ledger,
            self.data_dir,
            instance=self.instance,
            now=self.clock,
            segment_bytes=self.config.segment_bytes,
            key=key,
            new_id=self.new_id,
        )
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="evidence-writer"),
            asyncio.create_task(self._tick_loop(), name="evidence-schedule"),
        ]
        log.info("evidence log open: %d records", self.ledger.size)

    async def stop(self) -> None:
        """Write what is queued (follow-ups as they stand), checkpoint, close."""
        if self.ledger is None:
            return
        for follow in self.context.drain():
            self._enqueue_followup(follow)
        await self._queue.put(None)
        writer, *others = self._tasks
        for task in others:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await writer
        await self.run_io(lambda ledger: ledger.checkpoint())
        ledger, self.ledger = self.ledger, None
        await asyncio.to_thread(ledger.close)

    async def run_io(self, fn: Callable[[Ledger], T]) -> T:
        """Run ``fn(ledger)`` in a worker thread, alone: for export, purge, verify."""
        if self.ledger is None:
            raise RuntimeError("the evidence log is not open")
        ledger = self.ledger
        async with self._io:
            return await asyncio.to_thread(fn, ledger)

    # -- the chat path ----------------------------------------------------

    def observe(self, event: ChatEvent, session: SessionContext) -> None:
        """Feed one chat message into its conversation's context window."""
        conversation = event.conversation
        if conversation is None:
            return
        sender = session if event.origin is Side.CLIENT else None
        entry = records.message_entry(event, self.clock(), sender)
        for follow in self.context.add(conversation, entry):
            self._enqueue_followup(follow)

    async def capture(self, request: CaptureRequest) -> str | None:
        cfg = self.config
        if self.ledger is None:
            # Not started, or stopped: nothing will write it.
            self.metrics.evidence_dropped.labels(kind="capture").inc()
            return None
        before_n = _bounded(request.params.get("before"), cfg.context_before)
        after_n = _bounded(request.params.get("after"), cfg.context_after)
        recent = self.context.recent(request.conversation, before_n + 1)
        trigger = records.frame_fields(request.frame)["raw_sha256"]
        reported: dict[str, Any] | None = None
        if recent and recent[-1].get("raw_sha256") == trigger:
            reported = recent[-1].get("sender_session")
            recent = recent[:-1]
        record_id = self.new_id()
        record = records.capture_record(
            record_id=record_id,
            instance=self.instance,
            at=request.at,
            conversation=request.conversation,
            trigger=request.trigger,
            reason=request.reason,
            event=request.event,
            frame=request.frame,
            sender=request.sender,
            reported_person=reported,
            assessment=request.assessment,
            params=request.params,
            banners=request.banners,
            before=recent[-before_n:] if before_n else [],
            after_expected=after_n,
        )
        if not await self._offer(_Item(record)):
            return None
        for follow in self.context.follow(
            record_id, request.conversation, after_n, self.clock() + cfg.context_wait
        ):
            self._enqueue_followup(follow)
        return record_id

    async def capture_window(self, conversation: str, *, actor: str, reason: str) -> str | None:
        """Keep ``conversation``'s context window now, as a moderator asked.

        The record (``trigger: "moderator"``) holds the last
        ``context_before`` messages of the window, goes through the same
        queue as every capture and collects ``context_after`` follow-up
        messages; a custody record names the moderator. None when the record
        was dropped (the queue stayed full) or the log is not open.
        """
        cfg = self.config
        if self.ledger is None:
            self.metrics.evidence_dropped.labels(kind="capture").inc()
            return None
        # No message triggered this capture: the whole window is "before".
        window = self.context.recent(conversation, cfg.context_before + 1)
        before = window[-cfg.context_before :] if cfg.context_before else []
        record_id = self.new_id()
        now = self.clock()
        record = records.moderator_capture_record(
            record_id=record_id,
            instance=self.instance,
            at=now,
            conversation=conversation,
            actor=actor,
            reason=reason,
            before=before,
            after_expected=cfg.context_after,
        )
        if not await self._offer(_Item(record)):
            return None
        for follow in self.context.follow(
            record_id, conversation, cfg.context_after, now + cfg.context_wait
        ):
            self._enqueue_followup(follow)
        # Returns once durable; the capture queued before it is durable too.
        await self.audit(
            AuditEntry(
                now,
                actor,
                "capture",
                f"conversation:{conversation}",
                reason,
                {"conversation": conversation, "evidence": [record_id], "trigger": "moderator"},
            )
        )
        return record_id

    async def _offer(self, item: _Item) -> bool:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.metrics.evidence_queue_full.inc()
            try:
                await asyncio.wait_for(self._queue.put(item), self.config.queue_wait)
            except TimeoutError:
                self.metrics.evidence_dropped.labels(kind=item.record["kind"]).inc()
                log.warning("evidence queue full: record %s dropped", item.record["id"])
                return False
        self.metrics.evidence_queue_depth.set(self._queue.qsize())
        return True

    def _enqueue_followup(self, follow: FollowUp) -> None:
        record = records.context_record(
            record_id=self.new_id(),
            instance=self.instance,
            at=self.clock(),
            capture_id=follow.capture_id,
            conversation=follow.conversation,
            after=follow.entries,
            complete=follow.complete,
        )
        try:
            self._queue.put_nowait(_Item(record))
        except asyncio.QueueFull:
            self.metrics.evidence_dropped.labels(kind="context").inc()

    # -- custody ------------------------------------------------------------

    async def audit(self, entry: AuditEntry) -> str:
        """Write a custody or case record; returns its id once it is durable."""
        if self.ledger is None:
            raise RuntimeError("the evidence log is not open")
        record_id = self.new_id()
        record = records.audit_record(
            record_id=record_id,
            instance=self.instance,
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            subject=entry.subject,
            reason=entry.reason,
            details=entry.details,
        )
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(record, done))
        await done
        return record_id

    async def checkpoint(self) -> bytes:
        """Sign a checkpoint now (everything queued before this call is in it)."""
        await self._barrier()
        note = await self.run_io(lambda ledger: ledger.checkpoint())
        assert self.ledger is not None
        self._checkpointed = self.ledger.size
        return note

    async def _barrier(self) -> None:
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item({}, done))
        await done

    async def purge(self, actor: str = "retention", reason: str = "retention period over") -> int:
        """Run retention once: purge what is due; the number of payloads removed."""
        cfg = self.config
        now = self.clock()

        def run(ledger: Ledger) -> int:
            return purge_due(
                ledger,
                now=now,
                captured_days=cfg.captured_days,
                escalated_days=cfg.escalated_days,
                actor=actor,
                reason=reason,
            )

        await self._barrier()
        count = await self.run_io(run)
        self.metrics.evidence_purged.inc(count)
        if count:
            log.info("retention purged %d evidence payloads", count)
        return count

    # -- for the console -----------------------------------------------------

    async def export(
        self,
        *,
        conversation: str | None = None,
        case: str | None = None,
        actor: str,
        reason: str,
    ) -> bytes:
        """A verifiable bundle of a case or conversation (the export is audited)."""
        await self._barrier()
        now = self.clock()
        return await self.run_io(
            lambda ledger: bundle.export(
                ledger, conversation=conversation, case=case, actor=actor, reason=reason, now=now
            )
        )

    async def read(self, record_id: str, *, actor: str, reason: str) -> dict[str, Any] | None:
        """One record's content, for a person; the read is audited first."""
        await self.audit(AuditEntry(self.clock(), actor, "read", f"record:{record_id}", reason))
        found = await self.records([record_id])
        return found[0] if found else None

    async def records(self, record_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The records with these ids that exist (purged payloads left out), in
        the order asked. Not audited here: callers audit the view they serve."""
        wanted = list(record_ids)

        def read(ledger: Ledger) -> list[dict[str, Any]]:
            out = []
            for record_id in wanted:
                index = ledger.by_id.get(record_id)
                record = None if index is None else ledger.record(index)
                if record is not None:
                    out.append(record)
            return out

        return await self.run_io(read)

    # -- background ---------------------------------------------------------

    async def _write_loop(self) -> None:
        """Group commit: each write takes what queued while the last one ran.

        A batch gathers while records keep arriving — at most ``batch_max``
        records and ``batch_delay`` seconds — and is written as soon as a pass
        finds nothing new, so a lone record is not held back for the delay.
        With ``fsync: always`` the batch is still written in one go, with an
        fsync per record.
        """
        loop = asyncio.get_running_loop()
        cfg = self.config
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            deadline = loop.time() + cfg.batch_delay
            while len(batch) < cfg.batch_max and not stopping:
                before = len(batch)
                while len(batch) < cfg.batch_max and not self._queue.empty():
                    item = self._queue.get_nowait()
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                if len(batch) == before or loop.time() >= deadline:
                    break
                # Let producers that are running now add to this batch.
                await asyncio.sleep(0)
            self.metrics.evidence_queue_depth.set(self._queue.qsize())
            await self._commit(batch)

    async def _commit(self, batch: list[_Item]) -> None:
        per_record = self.config.fsync == "always"
        writes = [item.record for item in batch if item.record]

        def write(ledger: Ledger) -> list[int]:
            if per_record:
                return [ledger.append(record) for record in writes]
            return ledger.append_many(writes)

        try:
            indices = await self.run_io(write) if writes else []
        except Exception as exc:
            log.exception("evidence write failed; %d records not acknowledged", len(writes))
            self.metrics.evidence_write_errors.inc()
            for item in batch:
                if item.done is not None and not item.done.done():
                    item.done.set_exception(exc)
            return
        for record in writes:
            self.metrics.evidence_records.labels(kind=record["kind"]).inc()
        position = iter(indices)
        for item in batch:
            index = next(position) if item.record else -1
            if item.done is not None and not item.done.done():
                item.done.set_result(index)

    async def _tick_loop(self) -> None:
        cfg = self.config
        next_checkpoint = self.clock() + cfg.checkpoint_interval
        next_purge = self.clock() + cfg.purge_interval
        while True:
            await asyncio.sleep(self.tick)
            now = self.clock()
            for follow in self.context.expire(now):
                self._enqueue_followup(follow)
            try:
                if cfg.checkpoint_interval and now >= next_checkpoint:
                    next_checkpoint = now + cfg.checkpoint_interval
                    if self.ledger is not None and self.ledger.size != self._checkpointed:
                        await self.checkpoint()
                if cfg.purge_interval and now >= next_purge:
                    next_purge = now + cfg.purge_interval
                    await self.purge()
            except Exception:
                log.exception("evidence schedule failed; will retry at the next interval")


def purge_due(
    ledger: Ledger,
    *,
    now: float,
    captured_days: float,
    escalated_days: float,
    actor: str,
    reason: str,
) -> int:
    """Purge every payload whose retention is over (and not held); the count.

    The purge is itself audited (``action: purge``), naming its tombstone.
    """
    entries = []
    for index in range(ledger.size):
        if ledger.kinds[index] in ("capture", "context", "audit"):
            record = ledger.record(index)
            if record is not None:
                entries.append((index, record))
    plan = retention.plan_purge(
        entries, now=now, captured_days=captured_days, escalated_days=escalated_days
    )
    if not plan.purge:
        return 0
    tombstone = ledger.purge(plan.purge, reason)
    ledger.audit(actor, "purge", "retention", reason, {"tombstone": tombstone})
    return len(plan.purge)


def _bounded(value: Any, limit: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return min(value, limit)
    return limit
