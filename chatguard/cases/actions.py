"""Moderator actions carried into the live chat.

What it owns: what warn, mute, kick and ban do to a user — the sanction
written to the store (so it holds on every replica and expires by itself) and
the directive published to the user's live sessions (a notice, or a close
with the reason), wherever they are connected.

Invariants:

* The sanction is written before the directive is published: the directive
  is at-most-once (store pub/sub), the sanction is what lasts. A replica that
  misses a ban directive still refuses the user's next message and
  reconnect, because the ``sanctions`` step and the relay's admission check
  read the store.
* A timed sanction is stored with its ``until``; the store expires it. A
  permanent ban has ``until=None``.
* A store failure surfaces as ``StoreError`` to the caller (the book), which
  then does not record the action as taken.
* Dismiss, escalate and report have no live effect; they only change the case.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ..events import Notice, Severity
from ..relay.delivery import Directive
from ..stores import Sanction, SanctionKind, Store
from .model import ModeratorAction

#: WebSocket close code for kicks and bans: 1008, policy violation (RFC 6455).
CLOSE_POLICY = 1008


class DirectiveSender(Protocol):
    async def send(self, directive: Directive) -> bool: ...


def until_text(until: float | None) -> str:
    if until is None:
        return "permanently"
    return "until " + datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%d %H:%M UTC")


def mute_notice(sanction: Sanction) -> Notice:
    """What a muted user sees (on the mute, and on each message dropped while muted)."""
    text = f"A moderator has muted you {until_text(sanction.until)}; your messages are not sent."
    if sanction.reason:
        text += f" Reason: {sanction.reason}"
    return Notice(
        kind="sanction",
        text=text,
        severity=Severity.WARNING,
        extra={"sanction": "mute", "until": sanction.until},
    )


#: A WebSocket close reason must fit in 123 bytes; the relay keeps 120.
MAX_CLOSE_REASON_BYTES = 120


def close_reason(text: str) -> str:
    """``text`` cut to fit a close frame, never in the middle of a character."""
    return text.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


def ban_reason(sanction: Sanction) -> str:
    reason = f"banned {until_text(sanction.until)}"
    return close_reason(f"{reason}: {sanction.reason}" if sanction.reason else reason)


@dataclass(frozen=True, slots=True)
class Effect:
    """What an action did, for the audit entry and the case history."""

    target: str | None
    until: float | None = None
    delivered: bool = False

    def details(self) -> dict[str, Any]:
        return {"target": self.target, "until": self.until, "delivered": self.delivered}


class Actions:
    """Applies live actions through the store and the delivery channel."""

    def __init__(
        self,
        store: Store,
        deliveries: DirectiveSender | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.deliveries = deliveries
        self.clock = clock

    async def apply(self, action: ModeratorAction, target: str, moderator: str) -> Effect:
        now = self.clock()
        reason = action.reason.strip()
        if action.type == "warn":
            notice = Notice(
                kind="moderator",
                text=f"A moderator warns you: {reason}" if reason else "A moderator warns you.",
                severity=Severity.WARNING,
                extra={"action": "warn"},
            )
            return Effect(target, None, await self._send(Directive(target, notice=notice)))
        if action.type == "mute":
            assert action.duration is not None  # ModeratorAction.check
            sanction = Sanction(target, SanctionKind.MUTE, reason, now + action.duration, moderator)
            await self.store.put_sanction(sanction, now)
            delivered = await self._send(Directive(target, notice=mute_notice(sanction)))
            return Effect(target, sanction.until, delivered)
        if action.type == "kick":
            close = f"kicked by a moderator: {reason}" if reason else "kicked by a moderator"
            directive = Directive(target, close_code=CLOSE_POLICY, close_reason=close_reason(close))
            return Effect(target, None, await self._send(directive))
        if action.type == "ban":
            until = None if action.duration is None else now + action.duration
            sanction = Sanction(target, SanctionKind.BAN, reason, until, moderator)
            await self.store.put_sanction(sanction, now)
            directive = Directive(
                target, close_code=CLOSE_POLICY, close_reason=ban_reason(sanction)
            )
            return Effect(target, until, await self._send(directive))
        return Effect(None)

    async def _send(self, directive: Directive) -> bool:
        if self.deliveries is None:
            return False
        return await self.deliveries.send(directive)
