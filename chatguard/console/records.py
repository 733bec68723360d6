"""The case page's conversation and the report's facts, read from evidence records.

What it owns: one adapter over whatever reads evidence records by id (the
evidence log), serving as the console's ``ConversationSource`` and
``ReportSource``. The records are read the way the case engine reads them
for a report (``cases.report.report_input_from_records``), so the page and
the report always show the same transcript.

Invariants: only the case's own evidence records are read, at most
``MAX_RECORDS`` of them; a record that lacks a field only leaves that fact
out; attested age bands missing from the records come from the directory;
a capture's own message is marked as flagged, with its matched spans when
the record carries them (``message.matches: [{"rule", "spans": [[s, e]]}]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from ..cases.model import Case
from ..cases.report import ReportInput, report_input_from_records
from ..directory import Directory
from .seams import ExcerptMessage

MAX_RECORDS = 200


class RecordReader(Protocol):
    async def records(self, record_ids: Sequence[str]) -> Sequence[Mapping[str, Any]]:
        """The evidence records with these ids that exist, as JSON-like mappings."""
        ...


def _flagged(records: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], tuple[Any, ...]]:
    """(sender, text) of each capture's own message -> its (start, end, rule) spans."""
    out: dict[tuple[str, str], tuple[Any, ...]] = {}
    for record in records:
        message = record.get("message")
        if record.get("kind") != "capture" or not isinstance(message, Mapping):
            continue
        text = message.get("text")
        if not isinstance(text, str):
            continue
        spans = []
        # The evidence record's own shape (chatguard/evidence/records.py):
        # one entry per matched span, offsets into the text the user typed.
        for span in message.get("matched_spans") or ():
            if not isinstance(span, Mapping):
                continue
            start, end = span.get("start"), span.get("end")
            if isinstance(start, int) and isinstance(end, int):
                spans.append((start, end, str(span.get("rule_id", ""))))
        out[(str(message.get("sender") or ""), text)] = tuple(spans)
    return out


class EvidenceRecords:
    def __init__(self, reader: RecordReader, directory: Directory | None = None) -> None:
        self.reader = reader
        self.directory = directory

    async def _records(self, record_ids: Sequence[str]) -> Sequence[Mapping[str, Any]]:
        if not record_ids:
            return ()
        return await self.reader.records(list(record_ids)[-MAX_RECORDS:])

    async def report_input(self, case: Case) -> ReportInput:
        given = report_input_from_records(await self._records(case.evidence))
        if self.directory is None:
            return given
        bands = dict(given.age_bands)
        for user in case.participants:
            if user not in bands:
                band = await self.directory.age_band(user)
                if band != "unknown":
                    bands[user] = band
        return replace(given, age_bands=bands)

    async def excerpt(self, conversation: str, record_ids: Sequence[str]) -> list[ExcerptMessage]:
        records = await self._records(record_ids)
        flagged = _flagged(records)
        out = []
        for line in report_input_from_records(records).transcript:
            spans = flagged.get((line.sender, line.text))
            out.append(
                ExcerptMessage(
                    line.at,
                    line.sender,
                    line.text,
                    spans or (),
                    flagged=spans is not None,
                    extra={"record": line.record},
                )
            )
        return out
