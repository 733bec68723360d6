"""The console's seams filled by the instance's own parts, end to end.

A scripted conversation through the real relay and example service, with the
evidence log on: the case it opens shows the captured message with its
matched span, the bundle the API exports verifies offline and its custody
record names the moderator, and leads see banner figures.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from chatguard.console.accounts import token_hash
from chatguard.evidence.bundle import verify_bundle
from tests.support.cases import cases_of
from tests.support.relay import GuardFactory
from tests.test_app_evidence import SHORT, evidence_guard, play


def moderators() -> list[dict[str, Any]]:
    return [
        {"id": "mia", "name": "Mia", "role": "moderator", "token_hash": token_hash("t-mia")},
        {"id": "lea", "name": "Lea", "role": "lead", "token_hash": token_hash("t-lea")},
    ]


async def api(guard: Any, method: str, path: str, who: str, **kw: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer t-{who}"}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, guard.admin_url + path, headers=headers, **kw) as r,
    ):
        body = await r.read()
        if r.content_type == "application/json":
            return r.status, await r.json()
        return r.status, body


async def test_a_case_exports_a_verifiable_bundle_and_shows_its_flagged_message(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await evidence_guard(
        make_guard,
        chat_service.url,
        test_pack,
        console={"secure_cookies": False, "moderators": moderators()},
    )
    await play(guard, SHORT)
    [case] = await cases_of(guard)
    assert case.evidence

    status, body = await api(guard, "GET", f"/api/cases/{case.id}/conversation", "mia")
    assert status == 200, body
    flagged = [m for m in body["messages"] if m["flagged"]]
    assert any("send me a pic" in m["text"] and m["spans"] for m in flagged)

    status, body = await api(guard, "GET", f"/api/cases/{case.id}/evidence", "mia")
    assert status == 200, body
    report = verify_bundle(body)
    assert report.ok, report
    assert guard.evidence_log is not None
    custody = await guard.evidence_log.run_io(
        lambda ledger: [
            record
            for index in ledger.audits
            if (record := ledger.record(index)) and record.get("action") == "export"
        ]
    )
    assert [r["actor"] for r in custody] == ["mia"]

    # The law-enforcement report is built from the same records.
    status, body = await api(guard, "GET", f"/api/cases/{case.id}/report", "mia")
    assert status == 200, body
    text = json.dumps(body["report"])
    assert "send me a pic" in text
    assert "127.0.0.1" in text

    status, body = await api(guard, "GET", "/api/analytics", "lea")
    assert status == 200, body
    assert body["banners"] is not None
