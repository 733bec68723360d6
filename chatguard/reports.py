"""In-chat reports: ``chatguard.report`` frames and ``/report [reason]``.

What it owns: turning a user's report into an escalation for moderators —
with the recent messages of the reported conversation that this session
saw, and an evidence capture — and thanking the reporter with a banner.

Invariants:

* A report is consumed by the sidecar and never forwarded upstream (it is
  registered with ``ControlStep``, which guarantees that).
* A child's report is escalated with severity ``high``, as urgent as the
  most urgent automatic detection; anyone else's with ``medium``.
* Bad input gets an error frame and changes nothing: a report must name a
  room or a user (``with``) as short strings; its reason is cut to
  ``max_reason`` characters. A user may report at most ``per_minute`` times
  a minute (counted in the store, so across replicas).
* A failing sink never stops chat: the failure is logged and counted, and
  the reporter is still thanked (the case queue retries are its business).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .effectiveness import Observation
from .events import ChatEvent, EventKind, Inject, Notice, Severity, Side, Verdict, dm_key
from .live_policy import LivePolicy
from .metrics import Metrics
from .outcome_log import OutcomeTracker
from .pipeline import SessionContext, error_notice
from .steps.handoff import (
    MAX_BANNERS,
    CaptureRequest,
    EscalationRequest,
    EscalationSink,
    EvidenceSink,
)
from .steps.showing import BannerShower, Showing
from .stores import Store, StoreError

log = logging.getLogger(__name__)

THANKS = "Thank you for telling us. A moderator will look at this."
MAX_NAME = 128
MINOR_BANDS = frozenset({"minor", "likely_minor"})


@dataclass(frozen=True, slots=True)
class ReportPolicy:
    per_minute: int = 5
    max_reason: int = 500
    context: int = 20


class Reports:
    def __init__(
        self,
        evidence: EvidenceSink,
        escalations: EscalationSink,
        shower: BannerShower,
        live: LivePolicy | None,
        store: Store,
        metrics: Metrics,
        policy: ReportPolicy,
        *,
        tracker: OutcomeTracker | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.evidence = evidence
        self.escalations = escalations
        self.shower = shower
        self.live = live
        self.store = store
        self.metrics = metrics
        self.policy = policy
        self.tracker = tracker
        self.clock = clock

    async def control(self, event: ChatEvent, session: SessionContext) -> Verdict:
        """``{"type":"chatguard.report","room":R|null,"with":U|null,"reason":T}``."""
        body: Any = event.control or {}
        room, with_user, reason = body.get("room"), body.get("with"), body.get("reason", "")
        for name, value in (("room", room), ("with", with_user)):
            if value is not None and (not isinstance(value, str) or not 0 < len(value) <= MAX_NAME):
                return self._refuse(
                    f"`{name}` must be null or a name of 1 to {MAX_NAME} characters"
                )
        if room is None and with_user is None:
            return self._refuse("a report names a room or a user (`with`)")
        if not isinstance(reason, str):
            return self._refuse("`reason` must be text")
        return await self._report(event, session, room, with_user, reason)

    async def command(self, event: ChatEvent, session: SessionContext) -> Verdict:
        """``/report [reason]`` typed in a room or a direct message."""
        text = (event.text or "").strip()
        reason = text.split(maxsplit=1)[1] if len(text.split(maxsplit=1)) > 1 else ""
        with_user = (
            event.recipients[0] if event.kind is EventKind.DIRECT and event.recipients else None
        )
        room = None if event.kind is EventKind.DIRECT else event.room
        if room is None and with_user is None:
            return self._refuse("type /report in the room or conversation you want to report")
        return await self._report(event, session, room, with_user, reason)

    def _refuse(self, reason: str) -> Verdict:
        self.metrics.reports.labels(outcome="refused").inc()
        return Verdict(forward=False, inject=(error_notice(reason),))

    async def _report(
        self,
        event: ChatEvent,
        session: SessionContext,
        room: str | None,
        with_user: str | None,
        reason: str,
    ) -> Verdict:
        identity = session.identity
        if identity is None:
            return self._refuse("reports need a signed-in user")
        reporter = identity.user_id
        try:
            count = await self.store.incr(f"report:rate:{reporter}", ttl=60.0)
        except StoreError:
            count = 1  # the store is down: a report is worth more than the limit
        if count > self.policy.per_minute:
            self.metrics.reports.labels(outcome="limited").inc()
            return Verdict(
                forward=False,
                inject=(error_notice("too many reports in a minute; wait a little"),),
            )
        now = self.clock()
        reason = reason.strip()[: self.policy.max_reason]
        conversation = f"room:{room}" if room is not None else dm_key(reporter, with_user or "")
        context = [
            {"at": m.at, "sender": m.sender, "text": m.text}
            for m in session.seen.context(conversation, self.policy.context)
        ]
        child = identity.age_band in MINOR_BANDS
        banners = await self._banners({reporter, with_user or ""}, conversation)
        record: str | None = None
        try:
            record = await self.evidence.capture(
                CaptureRequest(
                    at=now,
                    conversation=conversation,
                    session_id=session.session_id,
                    sender=with_user,
                    frame=event.raw,
                    params={"before": self.policy.context, "after": 0, "context": context},
                    reason=reason,
                    trigger="report",
                    event=event,
                    banners=banners,
                )
            )
            self.metrics.handoffs.labels(kind="capture", outcome="ok").inc()
        except Exception:
            log.exception("evidence sink failed for a report")
            self.metrics.handoffs.labels(kind="capture", outcome="failed").inc()
        try:
            await self.escalations.escalate(
                EscalationRequest(
                    at=now,
                    conversation=conversation,
                    session_id=session.session_id,
                    sender=with_user,
                    recipients=(reporter,),
                    severity="high" if child else "medium",
                    category="user_report",
                    risk=0.0,
                    signals=(),
                    reason=reason or "reported in chat",
                    source="report",
                    reporter=reporter,
                    evidence=(record,) if record else (),
                )
            )
            self.metrics.handoffs.labels(kind="escalate", outcome="ok").inc()
        except Exception:
            log.exception("escalation sink failed for a report")
            self.metrics.handoffs.labels(kind="escalate", outcome="failed").inc()
        self.metrics.reports.labels(outcome="accepted").inc()
        if self.tracker is not None:
            self.tracker.observe(reporter, Observation("report", now, conversation))
        return Verdict(forward=False, inject=tuple(await self._thanks(session, room, with_user)))

    async def _banners(
        self, users: set[str], conversation: str
    ) -> tuple[Mapping[str, Any], ...] | None:
        """What the reporter and the reported were shown here (None: unknown)."""
        if self.tracker is None:
            return None
        try:
            found = await self.tracker.history.in_conversation(
                users - {""}, conversation, MAX_BANNERS
            )
        except StoreError:
            return None
        return tuple(found)

    async def _thanks(
        self, session: SessionContext, room: str | None, with_user: str | None
    ) -> list[Inject]:
        assert session.identity is not None
        catalogue = self.live.current.catalogue if self.live and self.live.current else None
        banners = catalogue.for_event("report") if catalogue is not None else ()
        out: list[Inject] = []
        user = session.identity.user_id
        for banner in banners:
            assert catalogue is not None
            showing = Showing(
                trigger="report",
                audience="sender",
                kind="notice",
                conversation=f"room:{room}" if room else dm_key(user, with_user or ""),
                sender=user,
                room=room,
                with_user=with_user,
            )
            shown = await self.shower.show(
                catalogue, banner, user, session, showing, restrained=False
            )
            if shown is not None:
                out.append(shown)
        if not out:
            notice = Notice(
                "banner", THANKS, severity=Severity.INFO, room=room, with_user=with_user
            )
            out.append(Inject(Side.CLIENT, notice))
        return out
