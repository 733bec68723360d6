"""Showing one banner to one person: targeting, restraint, wording, measurement.

What it owns: for a banner and a viewer — whether the viewer's age band is
one the banner is for, whether restraint lets it through, which variant and
wording they get (locale, adult or child wording, placeholders), and how it
reaches them: into this session, or through ``Deliveries`` after the
message it is about. It also turns shown banners into impressions for the
outcome tracker.

Invariants:

* A viewer never learns which rule fired unless the banner says
  ``reveal_rule: true`` (``banners.render``).
* Banners for anyone but this session's user go through ``Deliveries`` and
  are recorded as impressions where they are shown (``shown``), so the
  viewer's later acts are seen by the instance that holds their session.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..banners import Banner, Catalogue, render
from ..directory import Directory
from ..effectiveness import Impression, assign_variant
from ..events import Inject, Notice, Side
from ..following import Key
from ..metrics import Metrics
from ..outcome_log import OutcomeTracker, new_id
from ..pipeline import SessionContext
from ..policy.risk import ConversationState
from ..relay.delivery import Deliveries, Directive
from ..restraint import Restraint

_MINOR = frozenset({"minor", "likely_minor"})


@dataclass(frozen=True, slots=True)
class Showing:
    """Why and where a banner is shown."""

    trigger: str  # "signal:<name>", "threshold", "room_entry", "first_contact", "report"
    audience: str
    kind: str  # impression kind when the banner does not say (``measure``)
    conversation: str
    sender: str  # who sent the message (or did the act) it is about
    room: str | None = None
    with_user: str | None = None
    rule: str | None = None
    after: Key | None = None  # the message a banner for someone else must follow


class BannerShower:
    def __init__(
        self,
        deliveries: Deliveries,
        directory: Directory | None,
        metrics: Metrics,
        *,
        restraint: Restraint | None,
        tracker: OutcomeTracker | None,
        default_locale: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.deliveries = deliveries
        self.directory = directory
        self.metrics = metrics
        self.restraint = restraint
        self.tracker = tracker
        self.default_locale = default_locale
        self.clock = clock

    async def show(
        self,
        catalogue: Catalogue,
        banner: Banner,
        user: str,
        session: SessionContext,
        showing: Showing,
        state: ConversationState | None = None,
        *,
        restrained: bool = True,
        record: list[dict[str, Any]] | None = None,
    ) -> Inject | None:
        """Show ``banner`` to ``user``: an injection for this session, or sent on.

        ``record``, when given, gets one entry per banner that passed targeting
        and restraint (the evidence of this message lists them).
        """
        own = session.identity is not None and session.identity.user_id == user
        band, locale, region = await self._viewer(user, session, own, state)
        if banner.ages is not None and not band & banner.ages:
            return None
        if restrained and self.restraint is not None:
            reason = await self.restraint.allow(user, banner)
            if reason is not None:
                self.metrics.banners_suppressed.labels(reason=reason).inc()
                return None
        variant = assign_variant(user, banner.id, [(v.id, v.weight) for v in banner.variants])
        # The other person: for the one who sent the message, whom they wrote
        # to (in a direct message); for everyone else, who sent it.
        is_sender = user == showing.sender
        other = showing.with_user if is_sender else showing.sender
        rendered = render(
            catalogue,
            banner,
            locale=locale,
            default_locale=self.default_locale,
            adult="adult" in band and not band & _MINOR,
            variant=variant,
            region=region,
            other=other,
            room=showing.room,
            rule=showing.rule,
        )
        notice = Notice(
            "banner",
            rendered.text,
            banner_id=banner.id,
            severity=banner.severity,
            room=showing.room,
            with_user=None if showing.room else other,
            meta={
                "variant": variant,
                "audience": showing.audience,
                "trigger": showing.trigger,
                "kind": banner.measure or showing.kind,
                "conversation": showing.conversation,
            },
        )
        if own:
            impression = self.shown(session, notice)
            if record is not None:
                record.append(entry(notice, user, self.clock(), impression))
            return Inject(Side.CLIENT, notice)
        await self.deliveries.send(Directive(user, notice=notice, after=showing.after))
        if record is not None:
            # Shown where the viewer's session is; its impression id is made there.
            record.append(entry(notice, user, self.clock(), None))
        return None

    def shown(
        self, session: SessionContext, notice: Notice, hold: str | None = None
    ) -> Impression | None:
        """Record that ``notice`` (a banner with ``meta``) reached this session's user."""
        if self.tracker is None or session.identity is None or not notice.meta:
            return None
        meta = notice.meta
        impression = Impression(
            id=new_id(),
            banner=notice.banner_id or "",
            variant=meta.get("variant", "default"),
            audience=meta.get("audience", ""),
            trigger=meta.get("trigger", ""),
            user=session.identity.user_id,
            at=self.clock(),
            kind=meta.get("kind", "notice"),
            conversation=meta.get("conversation", ""),
            risky=tuple(meta.get("risky", "").split("\x00")) if meta.get("risky") else (),
        )
        self.tracker.shown(impression, hold=hold)
        return impression

    async def _viewer(
        self, user: str, session: SessionContext, own: bool, state: ConversationState | None
    ) -> tuple[frozenset[str], str | None, str | None]:
        """The viewer's age bands, locale and region, as far as they are known."""
        bands: set[str] = set()
        if own and session.identity is not None:
            attrs = session.identity.attrs
            bands.add(session.identity.age_band)
            locale, region = attrs.get("locale"), attrs.get("region")
        else:
            if self.directory is not None:
                bands.add(await self.directory.age_band(user))
                locale = await self.directory.attr(user, "locale")
                region = await self.directory.attr(user, "region")
            else:
                bands.add("unknown")
                locale = region = None
        if state is not None:
            bands.update(b.value for b in state.bands(user))
        return frozenset(bands), locale, region


def entry(notice: Notice, user: str, at: float, impression: Impression | None) -> dict[str, Any]:
    """A banner shown for the message now in the pipeline, as evidence lists it."""
    meta = notice.meta or {}
    return {
        "id": impression.id if impression is not None else None,
        "user": user,
        "banner": notice.banner_id,
        "variant": meta.get("variant", "default"),
        "audience": meta.get("audience"),
        "trigger": meta.get("trigger"),
        "kind": meta.get("kind"),
        "conversation": meta.get("conversation"),
        "at": impression.at if impression is not None else at,
        "outcome": None,
        "decided_at": None,
    }
