"""The console's seams filled by this instance's own parts.

What it owns: small adapters — the evidence log as the console's
bundle exporter, capturer and record reader, and the banner event logs as its banner
effectiveness report — so the console speaks only its interfaces
(``seams.py``) and the evidence and banner code never import the console.

Invariants: an export goes through ``EvidenceLog.export``, which writes the
custody record naming the moderator; record reads for a case page are not
audited one by one here because the console audits the case view itself;
report files are read off the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import effectiveness
from ..evidence.log import EvidenceLog


class LogExporter:
    """Bundles from the evidence log, by case (its audit records name the records)."""

    def __init__(self, log: EvidenceLog) -> None:
        self.log = log

    async def export(
        self,
        case_id: str,
        record_ids: Sequence[str],
        *,
        conversation: str,
        actor: str,
        reason: str,
    ) -> bytes:
        # The log resolves the case's records and conversation from its own
        # audit records, so the bundle holds exactly what the log can prove.
        return await self.log.export(case=case_id, actor=actor, reason=reason)


class LogCapturer:
    """Moderator-requested captures written by the evidence log (its custody
    record names the moderator)."""

    def __init__(self, log: EvidenceLog) -> None:
        self.log = log

    async def capture(self, conversation: str, *, actor: str, reason: str) -> str | None:
        return await self.log.capture_window(conversation, actor=actor, reason=reason)


class LogRecords:
    """Evidence records by id, read from the log for the case page and report."""

    def __init__(self, log: EvidenceLog) -> None:
        self.log = log

    async def records(self, record_ids: Sequence[str]) -> Sequence[Mapping[str, Any]]:
        return await self.log.records(record_ids)


class BannerFigures:
    """Banner effectiveness from every instance's event logs in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def report(self, since: float | None = None) -> Mapping[str, Any]:
        def build() -> Mapping[str, Any]:
            paths = [self.directory] if self.directory.is_dir() else []
            return effectiveness.report(paths, since).to_json()

        return await asyncio.to_thread(build)
