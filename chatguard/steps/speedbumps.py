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
  else go through ``Deliveries`` to wherever their sessions are.
* A banner that is not in the catalogue is skipped and counted, never shown
  as a bare id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ..banners import Catalogue
from ..events import PASS, ChatEvent, EventKind, Inject, Notice, Severity, Side, Verdict
from ..holds import CHOICES, Held
from ..metrics import Metrics
from ..pipeline import Findings, SessionContext, error_notice
from ..policy.engine import scope_bands
from ..policy.model import ActionType, Assessment, Audience, PlannedAction, Rule
from ..policy.risk import Band, ConversationState, Participant
from ..relay.delivery import Deliveries, Directive

MINOR_BANDS = frozenset({Band.MINOR, Band.LIKELY_MINOR})
DEFAULT_BLOCK_NOTICE = "This message was not delivered."
NOT_SENT = "Your message was not sent."


@dataclass(frozen=True, slots=True)
class HoldPolicy:
    timeout: float
    on_timeout: str  # "send" or "cancel"


class SpeedBumpStep:
    interests = frozenset({(Side.CLIENT, EventKind.MESSAGE), (Side.CLIENT, EventKind.DIRECT)})

    def __init__(
        self,
        deliveries: Deliveries,
        metrics: Metrics,
        holds: HoldPolicy,
        *,
        default_locale: str = "en",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.deliveries = deliveries
        self.metrics = metrics
        self.holds = holds
        self.default_locale = default_locale
        self.clock = clock

    async def __call__(
        self, event: ChatEvent, session: SessionContext, findings: Findings
    ) -> Verdict:
        assessment = findings.assessment
        if not isinstance(assessment, Assessment):
            return PASS
        actions = [a for a in assessment.actions if not a.shadow]
        if not actions:
            return PASS
        catalogue: Catalogue = findings.notes["catalogue"]
        state: ConversationState = findings.notes["state"]
        recipients: tuple[str, ...] = findings.notes["recipients"]
        rules: Mapping[str, Rule] = findings.notes.get("rules", {})
        by_type = {t: [a for a in actions if a.type is t] for t in ActionType}
        inject: list[Inject] = []
        forward, replacement = True, None

        if by_type[ActionType.BLOCK]:
            forward = False
            text = str(by_type[ActionType.BLOCK][0].params.get("notice") or DEFAULT_BLOCK_NOTICE)
            inject.append(Inject(Side.CLIENT, Notice("banner", text, severity=Severity.WARNING)))
        elif by_type[ActionType.HOLD]:
            forward = False
            inject.extend(self._hold(event, session, by_type[ActionType.HOLD][0], catalogue))
        elif by_type[ActionType.REDACT] and session.codec is not None and event.text:
            masked = _mask(event.text, assessment, by_type[ActionType.REDACT])
            replacement = session.codec.rewrite_text(event, masked)

        for action in by_type[ActionType.BANNER]:
            inject.extend(
                await self._banner(action, event, session, state, recipients, catalogue, rules)
            )
        return Verdict(forward, replacement, tuple(inject), reason="policy")

    # -- holds ------------------------------------------------------------------

    def _hold(
        self, event: ChatEvent, session: SessionContext, action: PlannedAction, catalogue: Catalogue
    ) -> list[Inject]:
        banner_id = str(action.params.get("banner", ""))
        banner = catalogue.get(banner_id)
        text = (
            banner.text_for(_locale(session), self.default_locale)
            if banner
            else ("Are you sure you want to send this?")
        )
        held, evicted = session.holds.hold(
            event.raw, event, banner_id, self.clock(), self.holds.timeout
        )
        self.metrics.holds.labels(outcome="held").inc()
        out = []
        if evicted is not None:
            out.extend(self.settle(evicted, expired=True))
        out.append(
            Inject(
                Side.CLIENT,
                Notice(
                    "hold",
                    text,
                    banner_id=banner_id,
                    severity=banner.severity if banner else Severity.WARNING,
                    room=event.room,
                    with_user=event.recipients[0] if event.kind is EventKind.DIRECT else None,
                    extra={"hold": held.id, "choices": list(CHOICES)},
                ),
            )
        )
        return out

    def settle(self, held: Held, *, expired: bool, choice: str | None = None) -> list[Inject]:
        """What to send when a hold ends: the held frame upstream, or a notice."""
        choice = choice or self.holds.on_timeout
        self.metrics.holds.labels(outcome=_outcome(choice, expired)).inc()
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
        targets = _audience(audience, sender, recipients, state)
        out: list[Inject] = []
        for user in targets:
            other = (recipients[0] if user == sender else sender) if direct else None
            notice = Notice(
                "banner",
                banner.text_for(_locale(session) if user == sender else None, self.default_locale),
                banner_id=banner.id,
                severity=banner.severity,
                room=None if direct else event.room,
                with_user=other,
            )
            if user == sender:
                out.append(Inject(Side.CLIENT, notice))
            else:
                await self.deliveries.send(Directive(user, notice=notice))
        return out


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
