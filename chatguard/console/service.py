"""What a moderator may do to cases, shared by the pages and the JSON API.

What it owns: permission checks (role, and who holds a case's claim), input
checks on actions and notes, and the audit records of everything the console
shows or exports (case views, report views, evidence exports); a
moderator-requested capture asks the capturer seam, then the book to link it. Changes to
cases are the case book's; it audits those itself.

Invariants: every refusal is a ``Refused`` with an HTTP status and a reason
a moderator can act on; an auditor can read and export but never change a
case; nobody acts on a case another moderator holds a live claim on; every
view of case content and every export writes an audit entry before the
content is returned. Message text never goes into an audit entry or a log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..audit import AuditEntry, AuditSink
from ..cases import workflow
from ..cases.book import CaseBook
from ..cases.model import ACTION_TYPES, MAX_REASON_CHARS, Case, CaseError, ModeratorAction
from ..cases.report import ReportInput, checklist, law_enforcement_report, report_xml
from ..cases.webhooks import CaseWebhooks
from ..directory import Directory
from ..stores import Store, StoreError
from .accounts import DESCRIPTIONS, Account, Permission
from .seams import (
    BannerHistory,
    BannerReport,
    ConversationSource,
    EvidenceCapturer,
    EvidenceExporter,
    ExcerptMessage,
    ReportSource,
)
from .view import MAX_NOTE, FilterError, Filters, parse_duration

__all__ = ["ACTION_TYPES", "ConsoleService", "Refused"]

#: Most earlier cases shown per participant.
HISTORY_LIMIT = 20


class Refused(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


def _not_found(case_id: str) -> Refused:
    return Refused(404, "not_found", f"no case {case_id!r}")


@dataclass(slots=True)
class ConsoleService:
    book: CaseBook
    audit: AuditSink
    clock: Callable[[], float]
    store: Store | None = None
    directory: Directory | None = None
    evidence: EvidenceExporter | None = None
    banners: BannerReport | None = None
    banner_history: BannerHistory | None = None
    conversations: ConversationSource | None = None
    reports: ReportSource | None = None
    webhooks: CaseWebhooks | None = None
    capturer: EvidenceCapturer | None = None

    # -- checks ----------------------------------------------------------------

    @staticmethod
    def require(account: Account, permission: Permission) -> None:
        if not account.may(permission):
            raise Refused(
                403,
                "forbidden",
                f"the {account.role.value} role may not {DESCRIPTIONS[permission]}",
            )

    async def case(self, case_id: str) -> Case:
        case = await self.book.get(case_id)
        if case is None:
            raise _not_found(case_id)
        return case

    def held_by_other(self, case: Case, account: Account) -> str | None:
        """Who else holds a live claim on ``case`` (an expired claim is nobody's)."""
        holder = case.claimed_by(self.clock())
        return holder if holder not in (None, account.id) else None

    async def _changeable(self, account: Account, case_id: str) -> Case:
        self.require(account, Permission.ACT)
        case = await self.case(case_id)
        holder = self.held_by_other(case, account)
        if holder is not None:
            raise Refused(403, "claimed", f"case {case_id} is claimed by {holder}")
        return case

    async def _audit(self, account: Account, action: str, case: Case, **details: Any) -> None:
        await self.audit.audit(
            AuditEntry(
                at=self.clock(),
                actor=account.id,
                action=action,
                subject=f"case:{case.id}",
                details={"conversation": case.conversation, "evidence": list(case.evidence)}
                | details,
            )
        )

    # -- reading -----------------------------------------------------------------

    async def cases(self, account: Account, filters: Filters) -> list[Case]:
        self.require(account, Permission.VIEW)
        return await self.book.list(
            status=filters.status,
            severity=filters.severity,
            category=filters.category,
            assignee=filters.assignee,
            older_than=filters.older_than,
            limit=filters.limit,
            escalated_to_lead=filters.escalated_to_lead,
        )

    async def counts(self, account: Account) -> dict[str, Any]:
        self.require(account, Permission.VIEW)
        return dict(await self.book.counts())

    async def view(self, account: Account, case_id: str, *, via: str) -> Case:
        """A case, audited as viewed (its page shows conversation content)."""
        self.require(account, Permission.VIEW)
        case = await self.case(case_id)
        await self._audit(account, "case.view", case, via=via)
        return case

    async def excerpt(self, case: Case) -> list[ExcerptMessage]:
        if self.conversations is None:
            return []
        return await self.conversations.excerpt(case.conversation, case.evidence)

    async def participants(self, case: Case) -> list[dict[str, Any]]:
        """Each participant's attested age band, earlier cases, sanctions in force
        and the banners they were shown (None: no banner history is wired)."""
        now = self.clock()
        # One bounded read of the book serves every participant's history.
        recent = await self.book.list(limit=self.book.limits.max_list)
        out = []
        for user in case.participants:
            band = await self.directory.age_band(user) if self.directory else "unknown"
            sanctions: list[dict[str, Any]] = []
            if self.store is not None:
                with contextlib.suppress(StoreError):
                    sanctions = [
                        {"kind": s.kind.value, "until": s.until, "reason": s.reason, "by": s.by}
                        for s in await self.store.sanctions(user, now)
                    ]
            earlier = [c for c in recent if user in c.participants and c.id != case.id][
                :HISTORY_LIMIT
            ]
            banners = None
            if self.banner_history is not None:
                banners = list(await self.banner_history.shown(user, HISTORY_LIMIT))
            out.append(
                {
                    "user": user,
                    "age_band": band,
                    "cases": earlier,
                    "sanctions": sanctions,
                    "banners": banners,
                }
            )
        return out

    # -- changing ----------------------------------------------------------------

    async def claim(self, account: Account, case_id: str) -> Case:
        await self._changeable(account, case_id)
        try:
            return await self.book.claim(case_id, account.id)
        except CaseError as exc:
            raise Refused(409, "conflict", str(exc)) from None

    async def release(self, account: Account, case_id: str) -> Case:
        await self._changeable(account, case_id)
        try:
            await self.book.release(case_id, account.id)
        except CaseError as exc:
            raise Refused(409, "conflict", str(exc)) from None
        return await self.case(case_id)

    async def note(self, account: Account, case_id: str, text: object) -> Case:
        await self._changeable(account, case_id)
        if not isinstance(text, str) or not text.strip():
            raise Refused(400, "bad_request", "text: a note needs some text")
        if len(text) > MAX_NOTE:
            raise Refused(400, "bad_request", f"text: at most {MAX_NOTE} characters")
        try:
            return await self.book.note(case_id, account.id, text.strip())
        except CaseError as exc:
            raise Refused(409, "conflict", str(exc)) from None

    async def act(self, account: Account, case_id: str, body: Mapping[str, Any]) -> Case:
        action = self.parse_action(body)
        try:
            action.check(self.book.limits.max_duration)
        except CaseError as exc:
            raise Refused(400, "bad_request", str(exc)) from None
        case = await self._changeable(account, case_id)
        report_input = await self.report_input(case) if action.type == "report" else None
        try:
            return await self.book.act(case_id, account.id, action, report_input=report_input)
        except CaseError as exc:
            raise Refused(409, "conflict", str(exc)) from None

    async def report_input(self, case: Case) -> ReportInput:
        """What the report needs beyond the case: transcript, IPs, attested ages."""
        if self.reports is not None:
            return await self.reports.report_input(case)
        bands = {}
        if self.directory is not None:
            bands = {p: await self.directory.age_band(p) for p in case.participants}
        return ReportInput(age_bands=bands)

    @staticmethod
    def parse_action(body: Mapping[str, Any]) -> ModeratorAction:
        kind = body.get("type")
        if kind not in ACTION_TYPES:
            raise Refused(400, "bad_request", f"type: must be one of {', '.join(ACTION_TYPES)}")
        try:
            duration = parse_duration(body.get("duration"))
        except FilterError as exc:
            raise Refused(400, "bad_request", str(exc)) from None
        if kind == "mute" and duration is None:
            raise Refused(400, "bad_request", "duration: a mute needs a duration in seconds")
        reason = body.get("reason", "")
        if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
            raise Refused(
                400, "bad_request", f"reason: text of at most {MAX_REASON_CHARS} characters"
            )
        ref = body.get("external_ref") or None
        target = body.get("target") or None
        for name, value in (("external_ref", ref), ("target", target)):
            if value is not None and (not isinstance(value, str) or len(value) > 200):
                raise Refused(400, "bad_request", f"{name}: text of at most 200 characters")
        if kind == "report" and ref is None:
            raise Refused(400, "bad_request", "external_ref: marking reported needs a reference")
        return ModeratorAction(
            type=kind, duration=duration, reason=reason, external_ref=ref, target=target
        )

    # -- report and evidence -------------------------------------------------------

    async def report(
        self, account: Account, case_id: str
    ) -> tuple[Case, dict[str, Any], list[tuple[str, bool, str]]]:
        self.require(account, Permission.VIEW)
        case = await self.case(case_id)
        report = law_enforcement_report(
            case,
            await self.report_input(case),
            service=self.book.limits.reporting_service,
            now=self.clock(),
        )
        # The report carries the transcript: reading it is an evidence view.
        await self._audit(account, "report.view", case)
        return case, report, checklist(report)

    async def report_xml(self, account: Account, case_id: str) -> str:
        _, report, _ = await self.report(account, case_id)
        return report_xml(report)

    async def export(self, account: Account, case_id: str) -> bytes:
        self.require(account, Permission.EXPORT)
        case = await self.case(case_id)
        if self.evidence is None:
            raise Refused(501, "not_available", "no evidence log is configured")
        if not case.evidence:
            raise Refused(404, "not_found", f"case {case_id} has no linked evidence")
        await self._audit(account, "evidence.export", case)
        return await self.evidence.export(
            case.id,
            case.evidence,
            conversation=case.conversation,
            actor=account.id,
            reason="console export",
        )

    async def capture(self, account: Account, case_id: str, reason: object) -> Case:
        """Capture the case's conversation now and link the record to the case.

        As acting on a case: a moderator or lead holding the claim. The
        record is written before the case is changed, so a refused link
        leaves the capture (and its custody record) in the log, unlinked.
        """
        if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
            raise Refused(
                400, "bad_request", f"reason: text of at most {MAX_REASON_CHARS} characters"
            )
        reason = reason.strip()
        case = await self._changeable(account, case_id)
        if self.capturer is None:
            raise Refused(501, "not_available", "no evidence log is configured")
        try:
            # Checked before writing anything: the claim must be this moderator's.
            workflow.require_claim(case, account.id, now=self.clock())
        except CaseError as exc:
            raise Refused(409, "conflict", str(exc)) from None
        record_id = await self.capturer.capture(case.conversation, actor=account.id, reason=reason)
        if record_id is None:
            raise Refused(503, "unavailable", "the evidence log is busy; nothing was captured")
        try:
            return await self.book.link_evidence(case_id, account.id, [record_id], reason)
        except CaseError as exc:
            raise Refused(409, "conflict", f"captured {record_id}, but: {exc}") from None

    def webhook_log(self, account: Account) -> dict[str, Any]:
        """The case webhook's recent delivery attempts (leads), newest first."""
        self.require(account, Permission.ANALYTICS)
        if self.webhooks is None:
            return {"configured": False, "attempts": []}
        attempts = [
            {
                "at": a.at,
                "case_id": a.case_id,
                "attempt": a.attempt,
                "outcome": a.outcome,
                "status": a.status,
                "error": a.error,
            }
            for a in reversed(self.webhooks.log)
        ]
        return {"configured": True, "attempts": attempts}

    async def analytics(self, account: Account) -> dict[str, Any]:
        self.require(account, Permission.ANALYTICS)
        from .analytics import summarise

        cases = await self.book.list(limit=self.book.limits.max_list)
        banners: Mapping[str, Any] | None = None
        if self.banners is not None:
            banners = await self.banners.report()
        return summarise(cases, self.clock(), banners)
