"""What the console calls in other parts, as small interfaces.

What it owns: the shape of the optional collaborators the console shows
when they are wired — the evidence bundle export and the moderator-requested
capture (evidence log), the banner
effectiveness report (banner catalogue) — the conversation excerpt source
and the report's evidence input. Each is optional: without it the console answers 501 ("not
available") instead of guessing.

Invariants: the console never reads evidence storage directly; it asks the
exporter for a bundle (bytes of a zip) and audits that it did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..cases.model import Case
from ..cases.report import ReportInput


class EvidenceExporter(Protocol):
    async def export(
        self,
        case_id: str,
        record_ids: Sequence[str],
        *,
        conversation: str,
        actor: str,
        reason: str,
    ) -> bytes:
        """A verifiable bundle (zip) of a case's evidence records; ``actor``
        and ``reason`` go into the exporter's own custody record."""
        ...


class EvidenceCapturer(Protocol):
    async def capture(self, conversation: str, *, actor: str, reason: str) -> str | None:
        """Keep the conversation's current context window as evidence now; the
        record id, or None when nothing could be written (try again)."""
        ...


class BannerReport(Protocol):
    async def report(self, since: float | None = None) -> Mapping[str, Any]:
        """Banner effectiveness: per banner, how often shown and what followed."""
        ...


@dataclass(frozen=True, slots=True)
class ExcerptMessage:
    """One message of the conversation around a case, with what matched in it.

    ``spans`` are (start, end, rule id) character offsets into ``text``.
    """

    at: float
    sender: str
    text: str
    spans: tuple[tuple[int, int, str], ...] = ()
    flagged: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


class BannerHistory(Protocol):
    async def shown(self, user: str, limit: int) -> Sequence[Mapping[str, Any]]:
        """Banners ``user`` was shown, newest first: ``{"banner", "at", "outcome"}``
        (outcome: e.g. ``sent``, ``cancelled``, ``edited``, or None when unknown)."""
        ...


class ReportSource(Protocol):
    async def report_input(self, case: Case) -> ReportInput:
        """Transcript, IP captures and attested ages for the case's report."""
        ...


class ConversationSource(Protocol):
    async def excerpt(self, conversation: str, record_ids: Sequence[str]) -> list[ExcerptMessage]:
        """The messages around these evidence records, oldest first (bounded)."""
        ...


@dataclass(frozen=True, slots=True)
class ConsoleSeams:
    """The optional collaborators an instance passes to its console."""

    evidence: EvidenceExporter | None = None
    banners: BannerReport | None = None
    banner_history: BannerHistory | None = None
    conversations: ConversationSource | None = None
    reports: ReportSource | None = None
    capturer: EvidenceCapturer | None = None
