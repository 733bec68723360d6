"""The ``banners`` step: speed bumps in the live chat.

What it owns: carrying out the enforced banner, hold, redact and block
actions of an assessment — showing banners to the right audience, holding a
message until its sender confirms, masking matched text, refusing delivery —
and the sender's answers to a hold (``chatguard.confirm``, ``/send``,
``/cancel``).

Invariants:

* Shadow actions are never carried out (the policy step counted them).
* Block beats hold, hold beats redact: a message is either not delivered,
  held, delivered masked, or delivered as sent.
* Banners for the sender are injected into this session; banners for anyone
  else go through ``Deliveries`` to wherever their sessions are, and only
  for a message that is delivered now; they are shown after that message
  (``following.py``).
* Restraint (caps, cooldowns, per-minute budget) applies to banners, never
  to hold prompts: a child about to send a phone number is always asked.
* Room-entry notices are shown once per session and room; first-contact
  banners on the first direct message between two users.
* A banner that is not in the catalogue is skipped and counted, never shown
  as a bare id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..banners import Catalogue, render
from ..effectiveness import Observation, assign_variant
from ..events import PASS, ChatEvent, EventKind, Inject, Notice, Severity, Side, Verdict
from ..following import message_key
from ..holds import CHOICES, Held
from ..live_policy import LivePolicy
from ..metrics import Metrics
from ..outcome_log import OutcomeTracker
from ..pipeline import Findings, SessionContext, error_notice
from ..policy.engine import scope_bands
from ..policy.model import ActionType, Assessment, Audience, PlannedAction, Rule
from ..policy.risk import Band, ConversationState, Participant
from ..relay.delivery import Deliveries
from ..restraint import Restraint
from ..stores import Store
from .event_banners import EventBanners
from .showing import BannerShower, Showing, entry

MINOR_BANDS = frozenset({Band.MINOR, Band.LIKELY_MINOR})
UNMASKABLE_NOTICE = (
    "This message was not sent: it holds personal details that could not be hidden. "
    "Send it again without them."
)
DEFAULT_BLOCK_NOTICE = "This message was not delivered."
NOT_SENT = "Your message was not sent."
_CHAT = (EventKind.MESSAGE, EventKind.DIRECT)


@dataclass(frozen=True, slots=True)
class HoldPolicy:
    timeout: float
    on_timeout: str  # "send" or "cancel"


class SpeedBumpStep:
    interests = frozenset(
        {
            (Side.CLIENT, EventKind.MESSAGE),
            (Side.CLIENT, EventKind.DIRECT),
            # Recipient banners follow the message they are about; room entry.
            (Side.UPSTREAM, EventKind.MESSAGE),
            (Side.UPSTREAM, EventKind.DIRECT),
            (Side.UPSTREAM, EventKind.JOIN),
            (Side.UPSTREAM, EventKind.LEAVE),
        }
    )

    def __init__(
        self,
        deliveries: Deliveries,
        metrics: Metrics,
        holds: HoldPolicy,
        *,
        default_locale: str = "en",
        clock: Callable[[], float] = time.time,
        live: LivePolicy | None = None,
        store: Store | None = None,
        restraint: Restraint | None = None,
        tracker: OutcomeTracker | None = None,
        shower: BannerShower | None = None,
        recipient_wait: float = 2.0,
        first_contact_ttl: float = 30 * 86400.0,
    ) -> None:
        self.deliveries = deliveries
        self.metrics = metrics
        self.holds = holds
        self.default_locale = default_locale
        self.clock = clock
        self.tracker = tracker
        self.shower = shower or BannerShower(
            deliveries,
            None,
            metrics,
            restraint=restraint,
            tracker=tracker,
            default_locale=default_locale,
            clock=clock,
        )
        self.events = EventBanners(
            self.shower,
            metrics,
            live=live,
            store=store,
            restraint=restraint,
            tracker=tracker,
            recipient_wait=recipient_wait,
            first_contact_ttl=first_contact_ttl,
            clock=clock,
        )

    async def __call__(
        self, event: ChatEvent, session: SessionContext, findings: Findings
    ) -> Verdict:
        if event.origin is Side.UPSTREAM:
            return await self.events.upstream(event, session)
        if event.kind not in _CHAT:
            return PASS
        assessment = findings.assessment
        now = self.clock()
        if self.tracker is not None and event.sender is not None:
            conversation = event.conversation or ""
            self.tracker.observe(
                event.sender, Observation("message", now, conversation, event.text or "")
            )
            if isinstance(assessment, Assessment) and assessment.signals:
                self.tracker.observe(event.sender, Observation("signals", now, conversation))
        verdict = PASS
        if isinstance(assessment, Assessment):
            verdict = await self._actions(event, session, findings, assessment)
        if verdict.forward and event.kind is EventKind.DIRECT:
            await self.events.first_contact(event, session, verdict)
        return verdict

    async def _actions(
        self, event: ChatEvent, session: SessionContext, findings: Findings, assessment: Assessment
    ) -> Verdict:
        actions = [a for a in assessment.actions if not a.shadow]
        if not actions:
            return PASS
        catalogue: Catalogue = findings.notes["catalogue"]
        state: ConversationState = findings.notes["state"]
        recipients: tuple[str, ...] = findings.notes["recipients"]
        rules: Mapping[str, Rule] = findings.notes.get("rules", {})
        by_type = {t: [a for a in actions if a.type is t] for t in ActionType}
        # What this message showed, for the evidence step (``CaptureStep``).
        shown: list[dict[str, Any]] = findings.notes.setdefault("banners_shown", [])
        inject: list[Inject] = []
        forward, replacement, text = True, None, event.text

        if by_type[ActionType.BLOCK]:
            forward = False
            notice_text = str(
                by_type[ActionType.BLOCK][0].params.get("notice") or DEFAULT_BLOCK_NOTICE
            )
            inject.append(
                Inject(Side.CLIENT, Notice("banner", notice_text, severity=Severity.WARNING))
            )
        elif by_type[ActionType.HOLD]:
            forward = False
            inject.extend(
                self._hold(
                    event, session, by_type[ActionType.HOLD][0], catalogue, assessment, shown
                )
            )
        elif by_type[ActionType.REDACT] and session.codec is not None and event.text:
            text = _mask(event.text, assessment, by_type[ActionType.REDACT])
            replacement = session.codec.rewrite_text(event, text)
            if replacement is None:
                # The frame cannot be masked in place: sending it unmasked
                # would deliver exactly what redaction exists to keep back.
                forward = False
                inject.append(
                    Inject(
                        Side.CLIENT,
                        Notice("banner", UNMASKABLE_NOTICE, severity=Severity.WARNING),
                    )
                )

        for action in by_type[ActionType.BANNER]:
            inject.extend(
                await self._banner(
                    action,
                    event,
                    session,
                    state,
                    recipients,
                    catalogue,
                    rules,
                    forward,
                    text,
                    shown,
                )
            )
        return Verdict(forward, replacement, tuple(inject), reason="policy")

    # -- holds ------------------------------------------------------------------

    def _hold(
        self,
        event: ChatEvent,
        session: SessionContext,
        action: PlannedAction,
        catalogue: Catalogue,
        assessment: Assessment,
        shown: list[dict[str, Any]] | None = None,
    ) -> list[Inject]:
        banner_id = str(action.params.get("banner", ""))
        banner = catalogue.get(banner_id)
        user = event.sender or ""
        variant = "default"
        if banner is None:
            text = "Are you sure you want to send this?"
        else:
            variant = assign_variant(user, banner.id, [(v.id, v.weight) for v in banner.variants])
            identity = session.identity
            text = render(
                catalogue,
                banner,
                locale=_locale(session),
                default_locale=self.default_locale,
                adult=identity is not None and identity.age_band == "adult",
                variant=variant,
                region=identity.attrs.get("region") if identity else None,
                other=event.recipients[0] if event.kind is EventKind.DIRECT else None,
                room=event.room,
                rule=action.reason,
            ).text
        held, evicted = session.holds.hold(
            event.raw, event, banner_id, self.clock(), self.holds.timeout
        )
        self.metrics.holds.labels(outcome="held").inc()
        out = []
        if evicted is not None:
            out.extend(self.settle(evicted, expired=True))
        notice = Notice(
            "hold",
            text,
            banner_id=banner_id,
            severity=banner.severity if banner else Severity.WARNING,
            room=event.room,
            with_user=event.recipients[0] if event.kind is EventKind.DIRECT else None,
            extra={"hold": held.id, "choices": list(CHOICES)},
            meta={
                "variant": variant,
                "audience": Audience.SENDER.value,
                "trigger": f"signal:{assessment.signals[0].value}"
                if assessment.signals
                else "policy",
                "kind": "prompt",
                "conversation": event.conversation or "",
                "risky": "\x00".join(
                    [event.text or "", *_risky_spans(event.text or "", assessment, action)]
                ),
            },
        )
        if banner is not None:
            impression = self.shower.shown(session, notice, hold=held.id)
            if shown is not None and event.sender is not None:
                shown.append(entry(notice, event.sender, self.clock(), impression))
        out.append(Inject(Side.CLIENT, notice))
        return out

    def settle(self, held: Held, *, expired: bool, choice: str | None = None) -> list[Inject]:
        """What to send when a hold ends: the held frame upstream, or a notice."""
        choice = choice or self.holds.on_timeout
        self.metrics.holds.labels(outcome=_outcome(choice, expired)).inc()
        if self.tracker is not None:
            self.tracker.answered(held.id, "timeout" if expired else choice, self.clock())
        if choice == "send":
            return [Inject(Side.UPSTREAM, held.frame)]
        return [Inject(Side.CLIENT, Notice("banner", NOT_SENT, severity=Severity.INFO))]

    async def confirm(self, event: ChatEvent, session: SessionContext) -> Verdict:
        """``{"type": "chatguard.confirm", "hold": ID, "choice": "send"|"cancel"}``."""
        control = event.control or {}
        hold_id, choice = control.get("hold"), control.get("choice")
        if choice not in CHOICES:
            return Verdict(forward=False, inject=(error_notice("choice must be send or cancel"),))
        held = session.holds.release(hold_id) if isinstance(hold_id, str) else None
        if held is None:
            return Verdict(forward=False, inject=(error_notice("no such hold"),))
        return Verdict(forward=False, inject=tuple(self.settle(held, expired=False, choice=choice)))

    async def command(self, event: ChatEvent, session: SessionContext) -> Verdict:
        """``/send`` and ``/cancel`` answer the most recent hold."""
        choice = (event.text or "").strip().lstrip("/").split()[0].lower()
        latest = session.holds.latest()
        if latest is None:
            return Verdict(forward=False, inject=(error_notice("nothing is waiting to be sent"),))
        session.holds.release(latest.id)
        return Verdict(
            forward=False, inject=tuple(self.settle(latest, expired=False, choice=choice))
        )

    def tick(self, session: SessionContext, now: float) -> list[Inject]:
        """Time passing in one session: expired holds, notices that waited long enough."""
        out: list[Inject] = []
        for held in session.holds.expired(now):
            out.extend(self.settle(held, expired=True))
        for notice in session.seen.following.due(now):
            self.shower.shown(session, notice)
            out.append(Inject(Side.CLIENT, notice))
        return out

    # -- banners ----------------------------------------------------------------

    async def _banner(
        self,
        action: PlannedAction,
        event: ChatEvent,
        session: SessionContext,
        state: ConversationState,
        recipients: tuple[str, ...],
        catalogue: Catalogue,
        rules: Mapping[str, Rule],
        forward: bool,
        text: str | None,
        record: list[dict[str, Any]] | None = None,
    ) -> list[Inject]:
        banner_id = str(action.params.get("banner", ""))
        banner = catalogue.get(banner_id)
        if banner is None:
            self.metrics.deliveries.labels(outcome="unknown_banner").inc()
            return []
        audience = str(action.params.get("audience", Audience.SENDER.value))
        sender = event.sender or ""
        direct = event.kind is EventKind.DIRECT
        rule = rules.get(action.reason)
        if audience == Audience.RECIPIENTS and rule and rule.scope.recipient_age is not None:
            # A rule about messages *to minors* warns the minors who got it,
            # not every adult in the room.
            wanted = rule.scope.recipient_age
            recipients = tuple(
                r
                for r in recipients
                if wanted & scope_bands(state.participant(r) or Participant(), include_shadow=False)
            )
        if not forward:
            # Nobody else sees the message now: nothing to warn them about.
            recipients = ()
        showing = Showing(
            trigger=f"signal:{rule.signal.value}" if rule else "threshold",
            audience=audience,
            kind="deterrence",
            conversation=event.conversation or "",
            sender=sender,
            room=None if direct else event.room,
            with_user=event.recipients[0] if direct and event.recipients else None,
            rule=action.reason if rule else None,
            after=message_key(event.conversation, sender, text),
        )
        out: list[Inject] = []
        for user in _audience(audience, sender, recipients, state):
            kind = "deterrence" if user == sender else "warning"
            shown = await self.shower.show(
                catalogue, banner, user, session, _with_kind(showing, kind), state, record=record
            )
            if shown is not None:
                out.append(shown)
        return out


def _with_kind(showing: Showing, kind: str) -> Showing:
    return replace(showing, kind=kind)


def _risky_spans(text: str, assessment: Assessment, action: PlannedAction) -> list[str]:
    spans = [
        text[start:end]
        for match in assessment.matches
        if match.rule_id == action.reason
        or not any(m.rule_id == action.reason for m in assessment.matches)
        for start, end in match.spans
    ]
    return [s for s in spans if s.strip()]


def _outcome(choice: str, expired: bool) -> str:
    word = "sent" if choice == "send" else "cancelled"
    return f"expired_{word}" if expired else word


def _audience(
    audience: str, sender: str, recipients: tuple[str, ...], state: ConversationState
) -> Iterable[str]:
    if audience == Audience.SENDER:
        return (sender,)
    if audience == Audience.RECIPIENTS:
        return recipients
    if audience == Audience.ROOM:
        return (sender, *recipients)
    if audience == Audience.MINOR_PARTICIPANTS:
        return tuple(
            u for u in (sender, *recipients) if any(b in MINOR_BANDS for b in state.bands(u))
        )
    return ()


def _locale(session: SessionContext) -> str | None:
    return session.identity.attrs.get("locale") if session.identity else None


def _mask(text: str, assessment: Assessment, actions: list[PlannedAction]) -> str:
    """``text`` with the spans of the rules that asked for redaction masked.

    A redaction decided by a threshold (not by one rule) masks every match.
    """
    wanted = {a.reason for a in actions}
    everything = bool(wanted - {m.rule_id for m in assessment.matches})
    chars = list(text)
    mask = str(actions[0].params.get("mask", "█"))[:1] or "█"
    for match in assessment.matches:
        if everything or match.rule_id in wanted:
            for start, end in match.spans:
                for i in range(start, min(end, len(chars))):
                    if not chars[i].isspace():
                        chars[i] = mask
    return "".join(chars)
