"""The case page and the report read the same transcript from evidence records."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from chatguard.cases.report import checklist, law_enforcement_report
from chatguard.console.records import EvidenceRecords
from chatguard.console.seams import ConsoleSeams
from chatguard.directory import Directory
from chatguard.events import Identity
from chatguard.stores import MemoryStore
from tests.support.console import SiteFactory
from tests.test_console_pages import signed_in, text

BOB = {
    "platform_id": "bob",
    "age_band": "adult",
    "ip_capture_events": [
        {"event_name": "connect", "date_time": "2026-01-01T00:00:00Z", "ip_address": "203.0.113.9"}
    ],
}
RECORDS = {
    "rec-1": {
        "kind": "capture",
        "id": "rec-1",
        "incident_date_time": "2026-01-01T00:01:00Z",
        "chat_client": "ExampleChat/2.1",
        "reported_person": BOB,
        "participants": [BOB],
        "context_before": [
            {"date_time": "2026-01-01T00:00:30Z", "sender": "amy", "text": "hi <3"},
        ],
        "message": {
            "sender": "bob",
            "text": "are your parents home?",
            "matched_spans": [
                {"rule_id": "en.risk.home", "signal": "risk_assessment", "start": 4, "end": 21}
            ],
        },
    },
    "rec-2": {
        "kind": "context",
        "id": "rec-2",
        "context_after": [{"date_time": "2026-01-01T00:01:30Z", "sender": "amy", "text": "why"}],
    },
}


class Reader:
    """An in-memory implementation of the record-reading interface."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    async def records(self, record_ids: Sequence[str]) -> list[Mapping[str, Any]]:
        self.asked.append(list(record_ids))
        return [RECORDS[i] for i in record_ids if i in RECORDS]


async def test_excerpt_marks_the_captured_message_and_its_spans() -> None:
    reader = Reader()
    messages = await EvidenceRecords(reader).excerpt("dm:amy:bob", ["rec-1", "rec-2"])
    assert [(m.sender, m.text, m.flagged) for m in messages] == [
        ("amy", "hi <3", False),
        ("bob", "are your parents home?", True),
        ("amy", "why", False),
    ]
    assert messages[1].spans == ((4, 21, "en.risk.home"),)
    assert await EvidenceRecords(reader).excerpt("dm:amy:bob", []) == []
    assert reader.asked == [["rec-1", "rec-2"]]  # nothing read for a case without evidence


async def test_the_report_takes_the_records_and_the_directorys_age_bands(
    make_site: SiteFactory,
) -> None:
    site = await make_site()
    case = await site.case("bob", "amy", evidence=("rec-1", "rec-2"))
    directory = Directory(MemoryStore(time.time))
    await directory.record(Identity("amy", "Amy", {"age_band": "13-15"}))
    given = await EvidenceRecords(Reader(), directory).report_input(case)
    assert given.age_bands == {"bob": "adult", "amy": "13-15"}
    report = law_enforcement_report(case, given, service="Example", now=time.time())
    assert all(ok for _, ok, _ in checklist(report)), checklist(report)


async def test_the_console_shows_records_and_the_report_passes_its_checklist(
    make_site: SiteFactory,
) -> None:
    records = EvidenceRecords(Reader())
    site = await make_site(seams=ConsoleSeams(conversations=records, reports=records))
    records.directory = site.directory  # the site's own directory knows amy's band
    case = await site.case("bob", "amy", evidence=("rec-1", "rec-2"))
    http = await signed_in(site)
    page = await text(http, f"/console/cases/{case.id}")
    assert '<mark title="en.risk.home">your parents home</mark>' in page
    assert "hi &lt;3" in page
    assert "(complete)" in await text(http, f"/console/cases/{case.id}/report")
    await site.book.claim(case.id, "mia")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    async with http.post(
        f"/console/cases/{case.id}/actions",
        data={"csrf": csrf.group(1), "type": "report", "external_ref": "CT-2026-1"},
        allow_redirects=False,
    ) as r:
        assert r.status == 303
    reported = await site.book.get(case.id)
    assert reported is not None
    assert (reported.status.value, reported.external_ref) == ("reported", "CT-2026-1")
