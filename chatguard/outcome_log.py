"""Recording banner impressions and their outcomes.

What it owns:

* ``OutcomeTracker``: the impressions still waiting for an outcome, in
  memory, fed with what their viewers do next (answers to a prompt,
  messages, reports, leaving, further risk signals); it decides each outcome
  with ``effectiveness.classify`` and counts it in Prometheus.
* ``OutcomeLog``: every impression and outcome as one JSON line in
  ``<data_dir>/banners/events-<instance>.jsonl``, rotated by size, so that
  ``chatguard banners report`` can read them later on any machine.

Invariants:

* Bounded: at most ``limit`` open impressions (the oldest is closed as if
  its window had ended); each log file is at most ``max_bytes`` and at most
  ``keep`` rotated files are kept (``events-<instance>.1.jsonl`` newest).
* An impression gets exactly one outcome event; ``notice`` impressions get
  none.
* A log write that fails is counted and never stops chat.
* Impressions are recorded where the banner is shown, so the viewer's later
  acts are seen by the same instance (their session lives there).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from .effectiveness import Impression, Observation, classify
from .metrics import Metrics

log = logging.getLogger(__name__)

DEFAULT_OPEN_LIMIT = 10_000


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
    def __init__(
        self,
        metrics: Metrics,
        log_: OutcomeLog | None,
        *,
        window: float,
        deterrence_window: float,
        limit: int = DEFAULT_OPEN_LIMIT,
    ) -> None:
        self.metrics = metrics
        self.log = log_
        self.window = window
        self.deterrence_window = deterrence_window
        self.limit = limit
        self._open: OrderedDict[str, tuple[Impression, list[Observation]]] = OrderedDict()
        self._holds: dict[str, str] = {}  # hold id -> impression id
        self._by_user: dict[str, list[str]] = {}  # viewer -> open impression ids
        self._hold_of: dict[str, str] = {}  # impression id -> hold id

    def __len__(self) -> int:
        return len(self._open)

    def users(self) -> set[str]:
        """Viewers with an impression still waiting for its outcome."""
        return set(self._by_user)

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
        if impression.kind == "notice":
            return
        if len(self._open) >= self.limit:
            oldest = next(iter(self._open))
            self._close(oldest, impression.at, force=True)
        self._open[impression.id] = (impression, [])
        self._by_user.setdefault(impression.user, []).append(impression.id)
        if hold is not None:
            self._holds[hold] = impression.id
            self._hold_of[impression.id] = hold

    def answered(self, hold: str, what: str, at: float) -> None:
        """The viewer answered (or let time out) the prompt of ``hold``."""
        impression_id = self._holds.pop(hold, None)
        entry = self._open.get(impression_id or "")
        if entry is not None:
            entry[1].append(Observation(what, at))
            self._decide(entry[0].id, at)

    def observe(self, user: str, observation: Observation) -> None:
        """Something ``user`` did: offer it to their open impressions."""
        for impression_id in list(self._by_user.get(user, ())):
            impression, seen = self._open[impression_id]
            if not _relevant(impression, observation):
                continue
            seen.append(observation)
            self._decide(impression_id, observation.at)

    def sweep(self, now: float) -> None:
        """Close every impression whose window has ended."""
        for impression_id, (impression, _) in list(self._open.items()):
            if impression.at + self._window(impression) <= now:
                self._close(impression_id, now, force=True)

    def _window(self, impression: Impression) -> float:
        return self.deterrence_window if impression.kind == "deterrence" else self.window

    def _decide(self, impression_id: str, now: float) -> None:
        self._close(impression_id, now, force=False)

    def _close(self, impression_id: str, now: float, *, force: bool) -> None:
        impression, seen = self._open[impression_id]
        outcome = classify(impression, seen, window_closed=force)
        if outcome is None:
            return
        del self._open[impression_id]
        hold = self._hold_of.pop(impression_id, None)
        if hold is not None:
            self._holds.pop(hold, None)
        ids = self._by_user[impression.user]
        ids.remove(impression_id)
        if not ids:
            del self._by_user[impression.user]
        self.metrics.banner_outcomes.labels(
            banner=impression.banner, variant=impression.variant, outcome=outcome
        ).inc()
        self._write(
            {
                "event": "outcome",
                "id": impression.id,
                "banner": impression.banner,
                "variant": impression.variant,
                "kind": impression.kind,
                "outcome": outcome,
                "at": now,
            }
        )

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
