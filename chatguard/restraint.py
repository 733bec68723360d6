"""Restraint: how often one person may see banners.

A banner shown too often stops being read. What this module owns: the
decision whether a banner may be shown to a user now — a cap per user per
banner per window, a cooldown between two showings of one banner, a budget
of banners per user per minute, and "once per session" for room-entry
notices — with the counters in the shared ``Store`` so the limits hold
whichever replica serves the user.

Invariants:

* ``decide`` is pure; ``Restraint`` only reads and writes the store.
* Critical banners (safeguarding help, deterrence) do not spend or obey the
  per-minute budget or the default cap: only their own catalogue ``cap`` and
  ``cooldown`` hold them back, so a reminder can never silence them.
* A store failure shows the banner (a safety message rather than silence)
  and is counted.
* The checks read, then count: replicas racing on one user may overshoot a
  limit by one each, never more.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from .banners import Banner
from .events import Severity
from .stores import Store, StoreError

RATE_WINDOW = 60.0


@dataclass(frozen=True, slots=True)
class RestraintPolicy:
    cap: int = 3  # impressions per user per banner per cap_window
    cap_window: float = 3600.0
    cooldown: float = 60.0  # seconds between two impressions of one banner
    per_minute: int = 3  # banners of any kind per user per minute; 0 = no limit
    session_once_ttl: float = 86400.0  # how long a "once per session" mark is kept


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits that apply to one banner."""

    cap: int | None
    cap_window: float
    cooldown: float
    per_minute: int | None


def limits_for(banner: Banner, policy: RestraintPolicy) -> Limits:
    critical = banner.severity is Severity.CRITICAL
    return Limits(
        cap=banner.cap if banner.cap is not None else (None if critical else policy.cap),
        cap_window=banner.cap_window or policy.cap_window,
        cooldown=banner.cooldown
        if banner.cooldown is not None
        else (0.0 if critical else policy.cooldown),
        per_minute=None if critical or not policy.per_minute else policy.per_minute,
    )


def decide(limits: Limits, *, cooling: bool, shown: int, this_minute: int) -> str | None:
    """None when the banner may be shown, else the reason it may not."""
    if cooling:
        return "cooldown"
    if limits.cap is not None and shown >= limits.cap:
        return "cap"
    if limits.per_minute is not None and this_minute >= limits.per_minute:
        return "per_minute"
    return None


class Restraint:
    def __init__(self, store: Store, policy: RestraintPolicy) -> None:
        self.store = store
        self.policy = policy

    async def allow(self, user: str, banner: Banner) -> str | None:
        """Count the banner as shown and return None, or the reason it is held back."""
        limits = limits_for(banner, self.policy)
        # Escaped, so that user "a:b" and banner "c" never share a key with
        # user "a" and banner "b:c".
        who, what = _escape(user), _escape(banner.id)
        cap_key = f"banner:cap:{who}:{what}"
        cool_key = f"banner:cool:{who}:{what}"
        rate_key = f"banner:rate:{who}"
        try:
            cooling = limits.cooldown > 0 and await self.store.get(cool_key) is not None
            shown = int(await self.store.get(cap_key) or 0)
            this_minute = int(await self.store.get(rate_key) or 0)
        except (StoreError, ValueError):
            return None
        reason = decide(limits, cooling=cooling, shown=shown, this_minute=this_minute)
        if reason is not None:
            return reason
        with contextlib.suppress(StoreError):
            await self.store.incr(cap_key, ttl=limits.cap_window)
            if limits.per_minute is not None:
                await self.store.incr(rate_key, ttl=RATE_WINDOW)
            if limits.cooldown > 0:
                await self.store.set(cool_key, b"1", ttl=limits.cooldown)
        return None

    async def once_per_session(self, session_id: str, what: str) -> bool:
        """True the first time ``what`` happens in this session (store failure: True)."""
        try:
            return await self.store.set_if_absent(
                f"banner:once:{session_id}:{what}", b"1", ttl=self.policy.session_once_ttl
            )
        except StoreError:
            return True


def _escape(part: str) -> str:
    return part.replace("%", "%25").replace(":", "%3A")
