"""The ``sanctions`` step, and the admission check for banned users.

What it owns: enforcing the sanctions moderators set (``cases/actions.py``)
on every replica, from the shared store:

* a muted user's client messages are dropped, and they are told why and
  until when;
* a banned user's messages are dropped and their sessions are closed again
  (in case the close directive of the ban never reached this replica);
* ``Admission.check`` refuses a banned identity: at connect for gateway and
  JWT identities (HTTP 403 before the upstream is dialled), and as soon as
  the upstream's welcome frame attests a welcome identity (closed with 1008).

Invariants:

* Only sanctions in the store count; nothing a client says can lift one.
* A store failure never stops chat: the message passes (fail open); the
  failure is logged and counted in
  ``chatguard_sanctions_enforced_total{kind="unchecked"}``.
* Control frames are not this step's business (``control`` runs first), so a
  muted user can still answer a hold prompt or file a report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..cases.actions import CLOSE_POLICY, DirectiveSender, ban_reason, mute_notice
from ..events import PASS, ChatEvent, EventKind, Identity, Inject, Side, Verdict
from ..metrics import Metrics
from ..pipeline import Findings, SessionContext
from ..relay.delivery import Directive
from ..stores import Sanction, SanctionKind, Store, StoreError

log = logging.getLogger(__name__)


class SanctionsStep:
    """Drops messages from muted and banned users."""

    interests = frozenset({(Side.CLIENT, EventKind.MESSAGE), (Side.CLIENT, EventKind.DIRECT)})

    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        deliveries: DirectiveSender | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.deliveries = deliveries
        self.clock = clock

    async def __call__(
        self, event: ChatEvent, session: SessionContext, findings: Findings
    ) -> Verdict:
        identity = session.identity
        if identity is None:
            return PASS
        try:
            sanctions = await self.store.sanctions(identity.user_id, self.clock())
        except StoreError as exc:
            log.warning("sanctions unchecked, store unavailable: %s", exc)
            self.metrics.sanctions_enforced.labels(kind="unchecked").inc()
            return PASS
        ban = _find(sanctions, SanctionKind.BAN)
        if ban is not None:
            self.metrics.sanctions_enforced.labels(kind="ban").inc()
            if self.deliveries is not None:
                await self.deliveries.send(
                    Directive(
                        identity.user_id, close_code=CLOSE_POLICY, close_reason=ban_reason(ban)
                    )
                )
            return Verdict(forward=False, reason="banned")
        mute = _find(sanctions, SanctionKind.MUTE)
        if mute is not None:
            self.metrics.sanctions_enforced.labels(kind="mute").inc()
            return Verdict(
                forward=False, inject=(Inject(Side.CLIENT, mute_notice(mute)),), reason="muted"
            )
        return PASS


class Admission:
    """Whether an identity may have a session; the reason when it may not."""

    def __init__(
        self, store: Store, metrics: Metrics, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.clock = clock

    async def check(self, identity: Identity) -> str | None:
        try:
            sanctions = await self.store.sanctions(identity.user_id, self.clock())
        except StoreError as exc:
            # Fail open, as the step does: a store outage must not lock everyone out.
            log.warning("ban unchecked at connect, store unavailable: %s", exc)
            self.metrics.sanctions_enforced.labels(kind="unchecked").inc()
            return None
        ban = _find(sanctions, SanctionKind.BAN)
        if ban is None:
            return None
        self.metrics.sanctions_enforced.labels(kind="ban").inc()
        return ban_reason(ban)


def _find(sanctions: list[Sanction], kind: SanctionKind) -> Sanction | None:
    return next((s for s in sanctions if s.kind is kind), None)
