"""Banners ChatGuard shows on events, and what a session's client sees.

What it owns: room-entry notices (once per session and room), first-contact
banners (the first direct message between two users within
``banners.first_contact_ttl``, counted in the store), and — for every chat
message the upstream sends a session — releasing the banners that waited for
it (``following.py``), remembering it as report context, and telling the
outcome tracker when the user leaves a room.

Invariants:

* A first-contact banner goes to the recipient through ``Deliveries`` and
  follows the message, like any banner for someone else.
* A store failure shows no first-contact banner (it cannot tell) and never
  stops chat; room entry then shows the notice (restraint fails open).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..effectiveness import Observation
from ..events import PASS, ChatEvent, EventKind, Inject, Side, Verdict
from ..following import message_key
from ..live_policy import LivePolicy
from ..metrics import Metrics
from ..outcome_log import OutcomeTracker
from ..pipeline import SessionContext
from ..policy.model import Audience
from ..restraint import Restraint
from ..stores import Store, StoreError
from .showing import BannerShower, Showing

_CHAT = (EventKind.MESSAGE, EventKind.DIRECT)


class EventBanners:
    def __init__(
        self,
        shower: BannerShower,
        metrics: Metrics,
        *,
        live: LivePolicy | None,
        store: Store | None,
        restraint: Restraint | None,
        tracker: OutcomeTracker | None,
        recipient_wait: float,
        first_contact_ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.shower = shower
        self.metrics = metrics
        self.live = live
        self.store = store
        self.restraint = restraint
        self.tracker = tracker
        self.recipient_wait = recipient_wait
        self.first_contact_ttl = first_contact_ttl
        self.clock = clock

    async def first_contact(
        self, event: ChatEvent, session: SessionContext, verdict: Verdict
    ) -> None:
        catalogue = self.live.current.catalogue if self.live and self.live.current else None
        if catalogue is None or self.store is None or not event.recipients or not event.sender:
            return
        banners = catalogue.for_event("first_contact")
        if not banners:
            return
        try:
            first = await self.store.set_if_absent(
                f"contact:{event.conversation}", b"1", ttl=self.first_contact_ttl
            )
        except StoreError:
            return
        if not first:
            return
        recipient = event.recipients[0]
        text = event.text
        if verdict.replacement is not None and session.codec is not None:
            decoded = session.codec.decode(verdict.replacement, Side.CLIENT)
            text = decoded.text if decoded is not None else text
        showing = Showing(
            trigger="first_contact",
            audience=Audience.RECIPIENTS.value,
            kind="warning",
            conversation=event.conversation or "",
            sender=event.sender,
            with_user=recipient,
            after=message_key(event.conversation, event.sender, text),
        )
        for banner in banners:
            await self.shower.show(catalogue, banner, recipient, session, showing)

    # -- what the client sees -----------------------------------------------------

    async def upstream(self, event: ChatEvent, session: SessionContext) -> Verdict:
        now = self.clock()
        own = session.identity.user_id if session.identity else None
        if event.kind in _CHAT:
            key = message_key(event.conversation, event.sender, event.text)
            session.seen.saw(now, event.conversation or "", event.sender or "", event.text or "")
            released = session.seen.following.passed(key, now, self.recipient_wait)
            for notice in released:
                self.shower.shown(session, notice)
            if released:
                return Verdict(inject=tuple(Inject(Side.CLIENT, n) for n in released))
            return PASS
        if event.room is None or own is None or event.sender != own:
            return PASS
        if event.kind is EventKind.LEAVE:
            if self.tracker is not None:
                self.tracker.observe(own, Observation("left", now, f"room:{event.room}"))
            return PASS
        return await self._room_entry(event.room, own, session)

    async def _room_entry(self, room: str, user: str, session: SessionContext) -> Verdict:
        catalogue = self.live.current.catalogue if self.live and self.live.current else None
        if catalogue is None:
            return PASS
        inject: list[Inject] = []
        for banner in catalogue.for_event("room_entry"):
            if self.restraint is not None and not await self.restraint.once_per_session(
                session.session_id, f"{banner.id}:{room}"
            ):
                self.metrics.banners_suppressed.labels(reason="once_per_session").inc()
                continue
            showing = Showing(
                trigger="room_entry",
                audience=Audience.SENDER.value,
                kind="notice",
                conversation=f"room:{room}",
                sender=user,
                room=room,
            )
            shown = await self.shower.show(
                catalogue, banner, user, session, showing, restrained=False
            )
            if shown is not None:
                inject.append(shown)
        return Verdict(inject=tuple(inject)) if inject else PASS
