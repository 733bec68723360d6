"""Recording banner impressions and their outcomes.

What it owns:

* ``OutcomeTracker``: takes what viewers of banners do next (answers to a
  prompt, messages, reports, leaving, further risk signals) from the chat
  path without making it wait, and applies it to the shared
  ``BannerHistory`` (``banner_history.py``), where the impressions still
  waiting for an outcome live — so they survive a restart and a viewer who
  reconnects to another replica is followed there. Each outcome decided
  (``effectiveness.classify``, pure) is counted in Prometheus and logged.
* ``OutcomeLog``: every impression and outcome as one JSON line in
  ``<data_dir>/banners/events-<instance>.jsonl``, rotated by size, so that
  ``chatguard banners report`` can read them later on any machine.

Invariants:

* Bounded: at most ``queue_limit`` changes wait for the store (beyond that
  they are dropped and counted in ``chatguard_banner_history_errors_total``);
  the history bounds what it keeps (see its module); each log file is at
  most ``max_bytes`` and at most ``keep`` rotated files are kept
  (``events-<instance>.1.jsonl`` newest).
* An impression gets exactly one outcome event, written by the replica whose
  change decided it; ``notice`` impressions get none.
* Impression events are written where the banner is shown; outcome events
  where the deciding act was seen. ``banners report`` reads every
  instance's files together, so the split does not matter to it.
* A log write or store call that fails is counted and never stops chat.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from . import banner_history as history
from .banner_history import BannerHistory, HistoryConflict
from .effectiveness import Impression, Observation
from .metrics import Metrics
from .stores import StoreError

log = logging.getLogger(__name__)

#: Changes waiting for the history (config: ``banners.history_queue``).
DEFAULT_QUEUE_LIMIT = 10_000


def new_id() -> str:
    return f"i-{secrets.token_hex(8)}"


class OutcomeLog:
    def __init__(self, directory: Path, instance: str, max_bytes: int, keep: int) -> None:
        self.directory = directory
        self.path = directory / f"events-{instance}.jsonl"
        self.instance = instance
        self.max_bytes = max_bytes
        self.keep = keep
        self._file: IO[str] | None = None

    def write(self, event: Mapping[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n"
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        if self._file.tell() + len(line.encode()) > self.max_bytes and self._file.tell() > 0:
            self._rotate()
        assert self._file is not None
        self._file.write(line)
        self._file.flush()

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        stem = self.path.name[: -len(".jsonl")]
        for n in range(self.keep, 0, -1):
            older = self.directory / f"{stem}.{n}.jsonl"
            if n == self.keep:
                older.unlink(missing_ok=True)
            elif older.exists():
                os.replace(older, self.directory / f"{stem}.{n + 1}.jsonl")
        if self.keep > 0:
            os.replace(self.path, self.directory / f"{stem}.1.jsonl")
        else:
            self.path.unlink(missing_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_events(paths: Iterable[Path]) -> tuple[list[dict[str, Any]], int]:
    """Events from files and folders (``*.jsonl``); malformed lines are skipped and counted."""
    events: list[dict[str, Any]] = []
    skipped = 0
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.jsonl")) if path.is_dir() else [path])
    for file in files:
        with file.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                try:
                    event = json.loads(line)
                except ValueError:
                    skipped += 1
                    continue
                if isinstance(event, dict) and "id" in event and "event" in event:
                    events.append(event)
                else:
                    skipped += 1
    return events, skipped


class OutcomeTracker:
    """Impressions and what their viewers do next, decided in the shared history.

    The chat path calls ``shown``, ``answered`` and ``observe`` without
    waiting: each queues one change (bounded by ``queue_limit``; beyond it the
    change is dropped and counted) and ``run`` applies them to the
    ``BannerHistory`` in order. ``tick`` does what time does: presence marks,
    ``left`` for viewers connected nowhere, windows that ended.
    """

    def __init__(
        self,
        metrics: Metrics,
        log_: OutcomeLog | None,
        history: BannerHistory,
        *,
        window: float,
        deterrence_window: float,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
    ) -> None:
        self.metrics = metrics
        self.log = log_
        self.history = history
        self.window = window
        self.deterrence_window = deterrence_window
        self.queue_limit = queue_limit
        self._queue: deque[Callable[[], Awaitable[None]]] = deque()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        """Changes waiting to be applied."""
        return len(self._queue)

    # -- the chat path: never waits ------------------------------------------

    def shown(self, impression: Impression, hold: str | None = None) -> None:
        self.metrics.banner_impressions.labels(
            banner=impression.banner,
            variant=impression.variant,
            audience=impression.audience,
            trigger=impression.trigger,
        ).inc()
        self._write(
            {
                "event": "impression",
                "id": impression.id,
                "banner": impression.banner,
                "variant": impression.variant,
                "audience": impression.audience,
                "trigger": impression.trigger,
                "kind": impression.kind,
                "user": impression.user,
                "conversation": impression.conversation,
                "at": impression.at,
            }
        )
        self._enqueue(lambda: self._shown(impression, hold))

    def answered(self, hold: str, what: str, at: float) -> None:
        """The viewer answered (or let time out) the prompt of ``hold``."""
        self._enqueue(lambda: self._answered(hold, what, at))

    def observe(self, user: str, observation: Observation) -> None:
        """Something ``user`` did: offer it to their open impressions."""
        self._enqueue(lambda: self._observe(user, observation, _relevant))

    def _enqueue(self, change: Callable[[], Awaitable[None]]) -> None:
        if len(self._queue) >= self.queue_limit:
            self.metrics.banner_history_errors.labels(reason="queue_full").inc()
            return
        self._queue.append(change)
        self._wake.set()

    # -- applying changes ------------------------------------------------------

    async def run(self) -> None:
        """Apply queued changes as they come (a background task)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Cancelling this task (at stop) must not cut a change in half:
            # the flush in progress finishes, and ``stop`` flushes the rest.
            await asyncio.shield(self.flush())

    async def flush(self) -> None:
        """Apply every queued change now (tests, and before a stop)."""
        async with self._lock:
            while self._queue:
                change = self._queue.popleft()
                try:
                    await change()
                except HistoryConflict:
                    self.metrics.banner_history_errors.labels(reason="conflict").inc()
                except StoreError:
                    # The store is down: this change is lost, chat goes on.
                    self.metrics.banner_history_errors.labels(reason="store").inc()

    def _window(self, kind: str) -> float:
        return self.deterrence_window if kind == "deterrence" else self.window

    async def _shown(self, impression: Impression, hold: str | None) -> None:
        deadline = impression.at + self._window(impression.kind)
        item = history.item_of(impression, deadline, hold)
        per_user = self.history.per_user
        user = impression.user
        await self._apply(
            user, lambda items, change: history.add(items, user, item, per_user, change)
        )
        if hold is not None and impression.kind != "notice":
            await self.history.remember_hold(hold, user, impression.id, self.window + 60.0)
        for other in await self.history.over_limit():
            # Too many viewers waiting: the nearest deadlines are closed early.
            await self._close(other, impression.at, force=True)

    async def _answered(self, hold: str, what: str, at: float) -> None:
        found = await self.history.take_hold(hold)
        if found is None:
            return
        user, impression_id = found
        await self._apply(
            user,
            lambda items, change: history.answer(items, user, impression_id, what, at, change),
        )

    async def _observe(
        self,
        user: str,
        observation: Observation,
        relevant: Callable[[Impression, Observation], bool],
    ) -> None:
        await self._apply(
            user,
            lambda items, change: history.observe(items, user, observation, relevant, change),
        )

    async def _close(self, user: str, now: float, *, force: bool = False) -> None:
        await self._apply(
            user, lambda items, change: history.sweep(items, user, now, change, force=force)
        )

    async def _apply(
        self, user: str, edit: Callable[[list[history.Item], history.Change], None]
    ) -> None:
        change = await self.history.update(user, edit)
        for item, outcome, at in change.decided:
            self._decided(item, outcome, at)

    def _decided(self, item: Mapping[str, Any], outcome: str, at: float) -> None:
        self.metrics.banner_outcomes.labels(
            banner=item["banner"], variant=item["variant"], outcome=outcome
        ).inc()
        self._write(
            {
                "event": "outcome",
                "id": item["id"],
                "banner": item["banner"],
                "variant": item["variant"],
                "kind": item["kind"],
                "outcome": outcome,
                "at": at,
            }
        )

    # -- time ---------------------------------------------------------------------

    async def tick(self, now: float, online: set[str], instance: str, presence_ttl: float) -> None:
        """Presence, leaving and ended windows, for every viewer with open impressions.

        ``online`` are the users connected to this instance (``instance``),
        which marks them present for ``presence_ttl`` seconds. A viewer who is
        not here and whose mark is this instance's own loses the mark; one
        with no mark at the next tick has left: another instance holding them
        has had a tick to mark them (and a crashed instance's marks expire).
        """
        async with self._lock:
            try:
                waiting = await self.history.open_users()
                for user, _ in waiting:
                    if user in online:
                        await self.history.mark_here(user, instance, presence_ttl)
                for user, deadline in waiting:
                    if user not in online:
                        marked = await self.history.here(user)
                        if marked == instance:
                            await self.history.unmark_here(user, instance)
                        elif marked is None:
                            await self._observe(user, Observation("left", now), _relevant)
                    if deadline <= now:
                        await self._close(user, now)
            except HistoryConflict:
                self.metrics.banner_history_errors.labels(reason="conflict").inc()
            except StoreError:
                self.metrics.banner_history_errors.labels(reason="store").inc()

    def _write(self, event: dict[str, Any]) -> None:
        if self.log is None:
            return
        try:
            self.log.write(event)
        except OSError:
            log.exception("banner outcome log write failed")
            self.metrics.banner_log_errors.inc()


def _relevant(impression: Impression, observation: Observation) -> bool:
    if impression.kind == "deterrence":
        return observation.what == "signals"
    if observation.what in ("send", "cancel", "timeout", "signals"):
        return False
    # Prompts and warnings are about one conversation.
    return not observation.conversation or observation.conversation == impression.conversation
