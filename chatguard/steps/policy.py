"""The ``policy`` step: assess each message a client sends, keep conversation state.

What it owns: turning a chat event and its session into the engine's
``MessageContext`` (who the recipients are, their attested age bands), loading
and saving the conversation's risk state in the store, and recording the
assessment in the event's findings for the steps after it. It also keeps the
directory's room membership current from the upstream's join and leave events.

Invariants:

* Only messages the *client* sends are assessed: the same message arriving at
  its recipients' sessions from the upstream is not assessed again.
* A store failure never stops chat: the message is assessed with the state
  that could be read (or none) and the new state is dropped.
* This step never changes the frame; it only finds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from ..directory import Directory
from ..events import PASS, ChatEvent, EventKind, Side, Verdict
from ..live_policy import LivePolicy
from ..metrics import Metrics
from ..pipeline import Findings, SessionContext
from ..policy.engine import MessageContext
from ..policy.model import Where
from ..policy.risk import ConversationState
from ..stores import Store, StoreError


class PolicyStep:
    #: Messages clients send, and who joins and leaves rooms.
    interests = frozenset(
        {
            (Side.CLIENT, EventKind.MESSAGE),
            (Side.CLIENT, EventKind.DIRECT),
            (Side.UPSTREAM, EventKind.JOIN),
            (Side.UPSTREAM, EventKind.LEAVE),
        }
    )

    def __init__(
        self,
        live: LivePolicy,
        store: Store,
        directory: Directory,
        metrics: Metrics,
        *,
        state_ttl: float,
        max_recipients: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.live = live
        self.store = store
        self.directory = directory
        self.metrics = metrics
        self.state_ttl = state_ttl
        self.max_recipients = max_recipients
        self.clock = clock

    async def __call__(
        self, event: ChatEvent, session: SessionContext, findings: Findings
    ) -> Verdict:
        if event.origin is Side.UPSTREAM:
            self._presence(event)
            return PASS
        loaded = self.live.current
        if (
            loaded is None
            or event.kind not in (EventKind.MESSAGE, EventKind.DIRECT)
            or not event.text
            or event.sender is None
            or event.conversation is None
        ):
            return PASS
        identity = session.identity
        direct = event.kind is EventKind.DIRECT
        if direct:
            recipients = event.recipients[: self.max_recipients]
        else:
            members = self.directory.members(event.room or "") - {event.sender}
            recipients = tuple(sorted(members))[: self.max_recipients]
        bands = await asyncio.gather(*(self.directory.age_band(r) for r in recipients))
        roles = (identity.attrs.get("roles", "") if identity else "").split(",")
        message = MessageContext(
            text=event.text,
            conversation=event.conversation,
            sender=event.sender,
            recipients=recipients,
            where=Where.DIRECT if direct else Where.ROOM,
            origin="client",
            sender_age=identity.age_band if identity else "unknown",
            recipient_ages=dict(zip(recipients, bands, strict=True)),
            sender_roles=frozenset(r.strip() for r in roles if r.strip()),
            room=event.room,
        )
        key = f"conv:{event.conversation}"
        state = await self._load(key)
        assessment, new_state = loaded.engine.assess(message, state, self.clock())
        with contextlib.suppress(StoreError):
            await self.store.set(key, new_state.to_json(), ttl=self.state_ttl)
        findings.assessment = assessment
        findings.notes["state"] = new_state
        findings.notes["recipients"] = recipients
        findings.notes["catalogue"] = loaded.catalogue
        findings.notes["rules"] = loaded.rules
        for signal in assessment.signals:
            self.metrics.signals.labels(signal=signal.value).inc()
        for action in assessment.actions:
            mode = "shadow" if action.shadow else "enforce"
            self.metrics.actions.labels(type=action.type.value, mode=mode).inc()
        return PASS

    async def _load(self, key: str) -> ConversationState | None:
        try:
            raw = await self.store.get(key)
        except StoreError:
            return None
        if raw is None:
            return None
        try:
            return ConversationState.from_json(raw)
        except ValueError:
            return None  # a state from an incompatible version starts afresh

    def _presence(self, event: ChatEvent) -> None:
        if event.room is None or event.sender is None:
            return
        if event.kind is EventKind.JOIN:
            self.directory.joined(event.room, event.sender)
        elif event.kind is EventKind.LEAVE:
            self.directory.left(event.room, event.sender)
