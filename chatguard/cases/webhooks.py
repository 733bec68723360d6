"""Webhooks: telling an outside system (paging, a ticket queue) about new cases.

What it owns: the JSON summary of a new case, its signature, a bounded queue
of summaries to send, delivery with retries and exponential backoff, and a
bounded in-memory delivery log.

The request::

    POST <url>
    Content-Type: application/json
    X-ChatGuard-Timestamp: <unix seconds>
    X-ChatGuard-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body>
    X-ChatGuard-Delivery: <case id>/<attempt>

A receiver recomputes the HMAC over the timestamp, a dot and the raw body
with the shared secret, compares in constant time, and rejects timestamps
too far from its own clock (``verify`` does all three).

Invariants:

* No message content is ever sent: cases hold none. ``include_content``
  adds the escalations' policy reasons, signals and risk scores only.
* Bounded: at most ``max_queue`` summaries wait (a new one beyond that is
  dropped, logged and counted), at most ``max_attempts`` attempts per case,
  waits capped at ``backoff_max``, at most ``log_size`` log entries.
* ``offer`` never blocks and never raises: a webhook can never slow or stop
  case creation. Delivery is best effort — summaries waiting when the
  process stops are not sent (the case itself is safe in the store).
* A 2xx answer is delivered; anything else, a timeout or a connection error
  is retried until the attempts run out.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from ..config import ConfigError
from ..metrics import Metrics
from .model import Case, severity_rank

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-ChatGuard-Signature"
TIMESTAMP_HEADER = "X-ChatGuard-Timestamp"
DELIVERY_HEADER = "X-ChatGuard-Delivery"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float,
    tolerance: float = 300.0,
) -> bool:
    """What a receiver checks: the signature, and a timestamp near ``now``."""
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature)


def summary(case: Case, include_content: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": "case.opened",
        "case": {
            "id": case.id,
            "status": case.status.value,
            "severity": case.severity,
            "categories": list(case.categories),
            "conversation": case.conversation,
            "participants": list(case.participants),
            "subject": case.subject,
            "created_at": case.created_at,
            "due_at": case.due_at,
            "evidence": len(case.evidence),
            "sources": sorted({e.source for e in case.escalations}),
        },
    }
    if include_content:
        body["case"]["escalations"] = [
            {
                "source": e.source,
                "severity": e.severity,
                "category": e.category,
                "risk": e.risk,
                "signals": list(e.signals),
                "reason": e.reason,
            }
            for e in case.escalations
        ]
    return body


@dataclass(frozen=True, slots=True)
class Attempt:
    """One line of the delivery log."""

    at: float
    case_id: str
    attempt: int
    outcome: str  # delivered | retry | failed | dropped
    status: int | None = None
    error: str = ""


class CaseWebhooks:
    """Queue and deliver signed case summaries to one URL."""

    def __init__(
        self,
        url: str,
        secret: bytes,
        metrics: Metrics,
        *,
        min_severity: str = "high",
        include_content: bool = False,
        timeout: float = 5.0,
        max_attempts: int = 5,
        backoff: float = 1.0,
        backoff_max: float = 60.0,
        max_queue: int = 1000,
        log_size: int = 200,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not secret:
            raise ValueError("a webhook needs a secret")
        self.url = url
        self.secret = secret
        self.metrics = metrics
        self.min_severity = min_severity
        self.include_content = include_content
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.clock = clock
        self.sleep = sleep
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=max_queue)
        self.log: deque[Attempt] = deque(maxlen=log_size)
        self._client: aiohttp.ClientSession | None = None

    @classmethod
    def from_config(cls, cfg: Any, metrics: Metrics) -> CaseWebhooks | None:
        """From ``cases.webhook``; None when no URL is configured."""
        if not cfg.url:
            return None
        secret = cfg.secret
        if cfg.secret_file:
            try:
                secret = Path(cfg.secret_file).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    "<config>", "cases.webhook.secret_file", f"cannot read: {exc}"
                ) from exc
            if not secret:
                raise ConfigError("<config>", "cases.webhook.secret_file", "the file is empty")
        return cls(
            cfg.url,
            secret.encode(),
            metrics,
            min_severity=cfg.min_severity,
            include_content=cfg.include_content,
            timeout=cfg.timeout,
            max_attempts=cfg.max_attempts,
            backoff=cfg.backoff,
            backoff_max=cfg.backoff_max,
            max_queue=cfg.max_queue,
            log_size=cfg.log_size,
        )

    def offer(self, case: Case) -> bool:
        """Queue the case's summary if its severity qualifies; False when not queued."""
        if severity_rank(case.severity) < severity_rank(self.min_severity):
            return False
        body = json.dumps(summary(case, self.include_content), separators=(",", ":")).encode()
        try:
            self.queue.put_nowait((case.id, body))
        except asyncio.QueueFull:
            self._record(Attempt(self.clock(), case.id, 0, "dropped", error="queue full"))
            log.warning("webhook queue full; summary of %s dropped", case.id)
            return False
        return True

    async def run(self) -> None:
        """Send queued summaries until cancelled."""
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as client:
            self._client = client
            try:
                while True:
                    case_id, body = await self.queue.get()
                    await self.deliver(case_id, body)
            finally:
                self._client = None

    async def deliver(self, case_id: str, body: bytes) -> bool:
        """Send one summary, retrying with backoff; True when delivered."""
        assert self._client is not None, "deliver runs inside run()"
        for attempt in range(1, self.max_attempts + 1):
            timestamp = str(int(self.clock()))
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self.secret, timestamp, body),
                DELIVERY_HEADER: f"{case_id}/{attempt}",
            }
            status: int | None = None
            error = ""
            try:
                async with self._client.post(self.url, data=body, headers=headers) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = type(exc).__name__
            if status is not None and 200 <= status < 300:
                self._record(Attempt(self.clock(), case_id, attempt, "delivered", status))
                return True
            if attempt == self.max_attempts:
                self._record(Attempt(self.clock(), case_id, attempt, "failed", status, error))
                log.warning("webhook for %s given up after %d attempts", case_id, attempt)
                return False
            self._record(Attempt(self.clock(), case_id, attempt, "retry", status, error))
            await self.sleep(min(self.backoff * 2 ** (attempt - 1), self.backoff_max))
        return False  # pragma: no cover - the loop always returns

    def _record(self, attempt: Attempt) -> None:
        self.log.append(attempt)
        self.metrics.webhook_deliveries.labels(outcome=attempt.outcome).inc()
