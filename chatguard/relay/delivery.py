"""Delivering ChatGuard's own messages to a user, wherever their session is.

Something decided in one place — a banner for the recipient of a message, a
moderator's warning, a kick — must reach a user's live session, and with
several replicas that session may be held by another process. Every replica
subscribes to one channel of the shared store; a ``Directive`` names the user;
each replica applies it to its own sessions of that user.

Invariants:

* Directives are small JSON documents; a malformed one is counted and ignored,
  never fatal to the listener.
* Delivery is at most once (store pub/sub): it carries live effects only.
  Anything that must not be lost (evidence, cases, sanctions) is written to
  the store or the evidence log first; a directive only tells live sessions.
* The listener survives the store going away: it retries with a bounded
  backoff, and chat keeps flowing meanwhile.
* A directive with ``after`` (a banner about a message) is shown after that
  message reaches the session, or after ``wait`` seconds at the latest
  (``following.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..events import Inject, Notice, Severity, Side
from ..following import Key
from ..metrics import Metrics
from ..stores import Store, StoreError
from .core import SessionCore

log = logging.getLogger(__name__)

CHANNEL = "deliver"
#: Backoff bounds (seconds) while the store is unavailable.
RETRY_MIN, RETRY_MAX = 0.2, 5.0


@dataclass(frozen=True, slots=True)
class Directive:
    """What to do to a user's live sessions: show a notice, or close them."""

    user: str
    notice: Notice | None = None
    close_code: int | None = None
    close_reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    after: Key | None = None  # (conversation, sender, text digest) the notice follows

    def to_json(self) -> bytes:
        body: dict[str, Any] = {"user": self.user}
        if self.notice is not None:
            n = self.notice
            body["notice"] = {
                "kind": n.kind,
                "text": n.text,
                "banner": n.banner_id,
                "severity": n.severity.value,
                "room": n.room,
                "with": n.with_user,
                "extra": dict(n.extra),
                "meta": dict(n.meta),
            }
        if self.after is not None:
            body["after"] = list(self.after)
        if self.close_code is not None:
            body["close"] = {"code": self.close_code, "reason": self.close_reason}
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Directive:
        body = json.loads(data)
        if not isinstance(body, dict) or not isinstance(body.get("user"), str):
            raise ValueError("a directive needs a user")
        notice = None
        if (n := body.get("notice")) is not None:
            notice = Notice(
                kind=str(n["kind"]),
                text=str(n["text"]),
                banner_id=n.get("banner"),
                severity=Severity(n.get("severity", "info")),
                room=n.get("room"),
                with_user=n.get("with"),
                extra=dict(n.get("extra") or {}),
                meta={str(k): str(v) for k, v in (n.get("meta") or {}).items()},
            )
        close = body.get("close")
        after = body.get("after")
        if after is not None and (
            not isinstance(after, list)
            or len(after) != 3
            or not all(isinstance(x, str) for x in after)
        ):
            raise ValueError("after must be [conversation, sender, digest]")
        return cls(
            user=body["user"],
            notice=notice,
            close_code=int(close["code"]) if close else None,
            close_reason=str(close.get("reason", "")) if close else "",
            after=(after[0], after[1], after[2]) if after else None,
        )


class Deliveries:
    """Publishes directives and applies those addressed to local sessions."""

    def __init__(
        self,
        store: Store,
        sessions: Callable[[], Iterable[SessionCore]],
        metrics: Metrics,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.metrics = metrics
        self.ready = asyncio.Event()
        #: Seconds a notice with ``after`` waits for its message.
        self.wait = 2.0
        #: Told of every notice with ``meta`` shown to a session (impressions).
        self.on_shown: Callable[[SessionCore, Notice], object] | None = None
        self.clock: Callable[[], float] = time.time

    async def send(self, directive: Directive) -> bool:
        """Publish; False when the store is unavailable (the effect is lost)."""
        try:
            await self.store.publish(CHANNEL, directive.to_json())
        except StoreError:
            self.metrics.deliveries.labels(outcome="unpublished").inc()
            return False
        return True

    async def run(self) -> None:
        """Listen until cancelled, re-subscribing after store failures."""
        delay = RETRY_MIN
        while True:
            try:
                subscription = await self.store.subscribe(CHANNEL)
            except StoreError:
                self.ready.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = RETRY_MIN
            self.ready.set()
            try:
                async for message in subscription:
                    await self.apply(message)
            except StoreError:
                log.warning("delivery channel lost; re-subscribing")
            finally:
                self.ready.clear()
                await subscription.close()

    async def apply(self, message: bytes) -> int:
        """Apply one directive to local sessions; returns how many it reached."""
        try:
            directive = Directive.from_json(message)
        except (ValueError, KeyError, TypeError):
            self.metrics.deliveries.labels(outcome="malformed").inc()
            return 0
        reached = 0
        for session in list(self.sessions()):
            identity = session.context.identity
            if identity is None or identity.user_id != directive.user:
                continue
            reached += 1
            try:
                if directive.notice is not None:
                    await self._show(session, directive.notice, directive.after)
                if directive.close_code is not None:
                    await session.close(directive.close_code, directive.close_reason, "directive")
            except (ConnectionError, RuntimeError):
                # The session is going away on its own; nothing left to tell it.
                continue
        if reached:
            self.metrics.deliveries.labels(outcome="delivered").inc()
        return reached

    async def _show(self, session: SessionCore, notice: Notice, after: Key | None) -> None:
        notices = [notice]
        if after is not None:
            notices = session.context.seen.following.park(after, notice, self.clock(), self.wait)
        for item in notices:
            await self.show(session, item)

    async def show(self, session: SessionCore, notice: Notice) -> None:
        """Inject a notice into a session, telling ``on_shown`` about banners."""
        await session.inject(Inject(Side.CLIENT, notice))
        if notice.meta and self.on_shown is not None:
            self.on_shown(session, notice)
