"""The JSON API against the real console app, case book and store (memory and
Redis): shapes, filters, role checks, claims, actions, reports, evidence,
clear errors, and agreement with docs/openapi.yaml."""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from chatguard.audit import MemoryAudit
from chatguard.cases.book import CaseBook
from chatguard.cases.webhooks import CaseWebhooks
from chatguard.config import ConsoleConfig
from chatguard.console.api import api_app
from chatguard.console.seams import ConsoleSeams
from chatguard.console.service import ConsoleService
from chatguard.console.web import ConsoleDeps, mount_console
from chatguard.metrics import Metrics
from chatguard.stores import RedisStore, SanctionKind
from tests.support.clock import FakeClock
from tests.support.console import PASSWORD, ConsoleSite, SiteFactory, accounts, bearer
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parent.parent
CASE_KEYS = {
    "id",
    "status",
    "severity",
    "categories",
    "conversation",
    "participants",
    "created_at",
    "updated_at",
    "assignee",
}


async def call(
    site: ConsoleSite, method: str, path: str, who: str | None = "mia", **kw: Any
) -> tuple[int, Any]:
    headers = {**(bearer(who) if who else {}), **kw.pop("headers", {})}
    async with site.client().request(method, path, headers=headers, **kw) as r:
        if r.content_type == "application/json":
            return r.status, await r.json()
        return r.status, await r.read()


async def test_list_cases_has_the_documented_shape_and_filters(make_site: SiteFactory) -> None:
    site = await make_site()
    low = await site.case("bob", "amy", severity="medium")
    high = await site.case("eve", "kim", severity="high", category="sextortion")
    status, body = await call(site, "GET", "/api/cases")
    assert status == 200
    assert [c["id"] for c in body["cases"]] == [high.id, low.id]  # severity first
    for case in body["cases"]:
        assert set(case) >= CASE_KEYS
        assert case["status"] == "new"
        assert case["assignee"] is None
    assert body["cases"][0]["categories"] == ["sextortion"]
    assert set(body["cases"][1]["participants"]) == {"bob", "amy"}
    for query, expected in [
        ("severity=high", [high.id]),
        ("category=grooming", [low.id]),
        ("status=in_review", []),
        ("assignee=mia", []),
        ("older_than=3600", []),
        ("limit=1", [high.id]),
        ("lead=true", []),
        ("lead=false", [high.id, low.id]),
    ]:
        status, body = await call(site, "GET", f"/api/cases?{query}")
        assert status == 200, query
        assert [c["id"] for c in body["cases"]] == expected, query


async def test_bad_filters_are_400_naming_the_parameter(make_site: SiteFactory) -> None:
    site = await make_site()
    for query, name in [("status=open", "status"), ("limit=x", "limit"), ("sort=age", "sort")]:
        status, body = await call(site, "GET", f"/api/cases?{query}")
        assert status == 400
        assert body["error"] == "bad_request"
        assert body["detail"].startswith(name)


async def test_get_a_case_is_audited_and_unknown_is_404(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    status, body = await call(site, "GET", f"/api/cases/{case.id}", who="aud")
    assert status == 200
    assert body["id"] == case.id
    assert body["evidence"] == ["rec-1"]
    views = site.audited("case.view")
    assert views == [
        {
            "actor": "aud",
            "subject": f"case:{case.id}",
            "conversation": case.conversation,
            "evidence": ["rec-1"],
            "via": "api",
        }
    ]
    status, body = await call(site, "GET", "/api/cases/nope")
    assert (status, body["error"]) == (404, "not_found")


async def test_claim_then_mute_applies_a_sanction(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    status, body = await call(site, "POST", f"/api/cases/{case.id}/claim")
    assert status == 200
    assert (body["status"], body["assignee"]) == ("in_review", "mia")
    status, body = await call(
        site,
        "POST",
        f"/api/cases/{case.id}/actions",
        json={"type": "mute", "duration": 600, "reason": "grooming"},
    )
    assert status == 200, body
    assert body["status"] == "actioned"
    sanctions = await site.store.sanctions("bob", site.clock())
    assert [(s.kind, s.by) for s in sanctions] == [(SanctionKind.MUTE, "mia")]
    assert sanctions[0].until is not None
    assert abs(sanctions[0].until - site.clock() - 600) < 5


async def test_an_auditor_can_read_and_export_but_never_act(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    assert (await call(site, "GET", "/api/cases", who="aud"))[0] == 200
    for path, body in [
        ("claim", None),
        ("release", None),
        ("notes", {"text": "hello"}),
        ("actions", {"type": "dismiss", "reason": "x"}),
    ]:
        status, answer = await call(site, "POST", f"/api/cases/{case.id}/{path}", "aud", json=body)
        assert status == 403, path
        assert answer["error"] == "forbidden"
    after = await site.book.get(case.id)
    assert after is not None
    assert (after.status.value, after.assignee, after.notes) == ("new", None, ())


async def test_a_moderator_cannot_act_on_a_case_another_holds(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    assert (await call(site, "POST", f"/api/cases/{case.id}/claim", "mia"))[0] == 200
    status, body = await call(site, "POST", f"/api/cases/{case.id}/claim", "max")
    assert status == 403
    assert "claimed by mia" in body["detail"]
    for path, payload in [
        ("actions", {"type": "ban", "duration": None, "reason": "x"}),
        ("notes", {"text": "mine now"}),
        ("release", None),
    ]:
        status, body = await call(site, "POST", f"/api/cases/{case.id}/{path}", "max", json=payload)
        assert (status, body["error"]) == (403, "claimed"), path
    assert await site.store.sanctions("bob", site.clock()) == []


async def test_acting_without_a_claim_is_a_conflict(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    status, body = await call(
        site, "POST", f"/api/cases/{case.id}/actions", json={"type": "warn", "reason": "x"}
    )
    assert (status, body["error"]) == (409, "conflict")
    assert "claim" in body["detail"]


async def test_an_expired_claim_returns_the_case_to_the_queue(make_site: SiteFactory) -> None:
    site = await make_site()
    if not isinstance(site.clock, FakeClock):
        return  # the lease is 15 minutes of real time; the memory run moves the clock
    case = await site.case()
    assert (await call(site, "POST", f"/api/cases/{case.id}/claim", "mia"))[0] == 200
    site.clock.advance(site.book.lease + 1)
    _, body = await call(site, "GET", "/api/cases?status=new")
    assert [c["id"] for c in body["cases"]] == [case.id]
    status, body = await call(site, "POST", f"/api/cases/{case.id}/claim", "max")
    assert (status, body["assignee"]) == (200, "max")


async def test_bad_action_bodies_are_400(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    await call(site, "POST", f"/api/cases/{case.id}/claim")
    path = f"/api/cases/{case.id}/actions"
    for payload, word in [
        ({"type": "explode"}, "type"),
        ({"type": "mute", "duration": None}, "duration"),
        ({"type": "mute", "duration": -5}, "duration"),
        ({"type": "ban", "duration": "forever"}, "duration"),
        ({"type": "warn", "reason": "x" * 5000}, "reason"),
        ({"type": "report", "reason": "x"}, "external_ref"),
    ]:
        status, body = await call(site, "POST", path, json=payload)
        assert status == 400, payload
        assert word in body["detail"], (payload, body)
    for raw in [b"{", b"[1]", b"x" * 70_000]:
        status, body = await call(
            site,
            "POST",
            path,
            data=raw,
            headers={**bearer("mia"), "Content-Type": "application/json"},
        )
        assert status == 400
        assert body["error"] == "bad_request"


async def test_notes_release_and_dismiss(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    base = f"/api/cases/{case.id}"
    await call(site, "POST", f"{base}/claim")
    status, body = await call(site, "POST", f"{base}/notes", json={"text": "talked to T&S"})
    assert status == 200
    assert [n["text"] for n in body["notes"]] == ["talked to T&S"]
    assert (await call(site, "POST", f"{base}/notes", json={"text": "  "}))[0] == 400
    status, body = await call(site, "POST", f"{base}/release")
    assert (status, body["assignee"], body["status"]) == (200, None, "new")
    await call(site, "POST", f"{base}/claim", "max")
    status, body = await call(site, "POST", f"{base}/actions", "max", json={"type": "dismiss"})
    assert (status, body["status"]) == (200, "closed")


async def test_escalate_to_lead_then_the_lead_acts(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    base = f"/api/cases/{case.id}"
    await call(site, "POST", f"{base}/claim")
    status, body = await call(site, "POST", f"{base}/actions", json={"type": "escalate"})
    assert (status, body["escalated_to_lead"], body["assignee"]) == (200, True, None)
    _, listed = await call(site, "GET", "/api/cases?lead=true", "lea")
    assert [c["id"] for c in listed["cases"]] == [case.id]
    assert (await call(site, "POST", f"{base}/claim", "lea"))[0] == 200
    status, body = await call(
        site, "POST", f"{base}/actions", "lea", json={"type": "ban", "duration": None}
    )
    assert (status, body["status"]) == (200, "actioned")
    bans = await site.store.sanctions("bob", site.clock())
    assert [(s.kind, s.until) for s in bans] == [(SanctionKind.BAN, None)]


async def test_report_json_xml_and_an_incomplete_checklist_refuses_reported(
    make_site: SiteFactory,
) -> None:
    site = await make_site()
    case = await site.case()
    status, body = await call(site, "GET", f"/api/cases/{case.id}/report", "aud")
    assert status == 200
    assert body["report"]["incidentSummary"]["incidentType"] == (
        "Online Enticement of Children for Sexual Acts"
    )
    items = {c["item"]: c["ok"] for c in body["checklist"]}
    assert items["incident type"] is True
    assert items["child party's attested age"] is True  # from the directory
    assert items["transcript"] is False  # no evidence log wired here
    assert body["complete"] is False
    status, xml = await call(site, "GET", f"/api/cases/{case.id}/report?format=xml", "aud")
    assert status == 200
    assert xml.startswith(b"<?xml") or xml.lstrip().startswith(b"<")
    assert b"Online Enticement of Children for Sexual Acts" in xml
    assert (await call(site, "GET", f"/api/cases/{case.id}/report?format=pdf"))[0] == 400
    assert len(site.audited("report.view")) == 2
    await call(site, "POST", f"/api/cases/{case.id}/claim")
    status, body = await call(
        site,
        "POST",
        f"/api/cases/{case.id}/actions",
        json={"type": "report", "external_ref": "CT-123"},
    )
    assert status == 409
    assert "checklist" in body["detail"]


class ZipExporter:
    """An in-memory implementation of the console's evidence-export interface."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...], str, str]] = []

    async def export(
        self,
        case_id: str,
        record_ids: Sequence[str],
        *,
        conversation: str,
        actor: str,
        reason: str,
    ) -> bytes:
        self.calls.append((case_id, tuple(record_ids), conversation, actor))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            z.writestr("records.jsonl", "\n".join(record_ids))
        return out.getvalue()


async def test_evidence_export_is_501_without_an_evidence_log(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    status, body = await call(site, "GET", f"/api/cases/{case.id}/evidence")
    assert (status, body["error"]) == (501, "not_available")
    assert site.audited("evidence.export") == []


async def test_evidence_export_returns_the_bundle_and_is_audited(make_site: SiteFactory) -> None:
    exporter = ZipExporter()
    site = await make_site(seams=ConsoleSeams(evidence=exporter))
    case = await site.case()
    status, body = await call(site, "GET", f"/api/cases/{case.id}/evidence", "aud")
    assert status == 200
    assert zipfile.ZipFile(io.BytesIO(body)).read("records.jsonl") == b"rec-1"
    assert exporter.calls == [(case.id, ("rec-1",), case.conversation, "aud")]
    assert [a["actor"] for a in site.audited("evidence.export")] == ["aud"]


async def test_analytics_is_for_leads(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    await call(site, "POST", f"/api/cases/{case.id}/claim", "lea")
    await call(site, "POST", f"/api/cases/{case.id}/actions", "lea", json={"type": "warn"})
    for who in ("mia", "aud"):
        assert (await call(site, "GET", "/api/analytics", who))[0] == 403
    status, body = await call(site, "GET", "/api/analytics", "lea")
    assert status == 200
    assert body["by_category"] == {"grooming": 1}
    assert body["median_time_to_claim"] is not None
    assert body["median_time_to_action"] is not None
    assert body["banners"] is None  # not wired: shown as "not available"


async def test_me_and_counts(make_site: SiteFactory) -> None:
    site = await make_site()
    await site.case(severity="high")
    assert await call(site, "GET", "/api/me", "lea") == (
        200,
        {"id": "lea", "name": "LEA", "role": "lead"},
    )
    status, body = await call(site, "GET", "/api/cases/counts")
    assert status == 200
    assert body["open"] == 1
    assert body["by_severity"]["high"] == 1


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def api_routes() -> set[tuple[str, str]]:
    app = api_app(ConsoleService.__new__(ConsoleService), lambda r, h: h(r))  # type: ignore[arg-type]
    out = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        out.add((route.method, "/api" + re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)))
    return out


def openapi() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text("utf-8"))
    return doc


def test_routes_and_the_openapi_document_agree() -> None:
    doc = openapi()
    assert doc["openapi"].startswith("3.1")
    documented = {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert documented == api_routes()
    # Every documented operation says it needs a token (the global security).
    assert doc["security"] == [{"bearer": []}]


async def test_every_api_route_refuses_without_a_valid_token(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    for method, path in sorted(api_routes()):
        url = path.replace("{id}", case.id)
        for headers in ({}, {"Authorization": "Bearer token-nobody"}, {"Authorization": "Basic x"}):
            async with site.client().request(method, url, headers=headers) as r:
                assert r.status == 401, (method, url, headers)
                assert (await r.json())["error"] == "unauthorized"
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert site.audited("case.view") == []
    assert (await site.book.get(case.id)).assignee is None  # type: ignore[union-attr]


def test_the_openapi_document_is_valid_openapi_3_1() -> None:
    validate(openapi())


def schema(name: str) -> dict[str, Any]:
    doc = openapi()
    # Embed the components so the schema's own "#/components/..." refs resolve.
    return {**doc["components"]["schemas"][name], "components": doc["components"]}


async def test_answers_match_the_documented_schemas(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    _, listed = await call(site, "GET", "/api/cases")
    _, one = await call(site, "GET", f"/api/cases/{case.id}")
    _, claimed = await call(site, "POST", f"/api/cases/{case.id}/claim")
    _, me = await call(site, "GET", "/api/me")
    _, refused = await call(site, "GET", "/api/cases/nope")
    for body in [*listed["cases"], one, claimed]:
        OAS31Validator(schema("Case")).validate(body)
    OAS31Validator(schema("Account")).validate(me)
    OAS31Validator(schema("Error")).validate(refused)


async def test_a_store_outage_is_a_clear_503_not_a_crash(password_hash: str) -> None:
    # A real Redis client pointed at a port nothing listens on.
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", "down:", timeout=0.5)
    app = web.Application()
    config = ConsoleConfig(moderators=accounts(password_hash), secure_cookies=False)
    mount_console(
        app, config, ConsoleDeps(CaseBook(store, MemoryAudit()), MemoryAudit(), time.time)
    )
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(str(server.make_url(""))) as http:
            for method, path in [("GET", "/api/cases"), ("POST", "/api/cases/case-1/claim")]:
                async with http.request(method, path, headers=bearer("mia")) as r:
                    assert r.status == 503, path
                    assert (await r.json())["error"] == "unavailable"
        # Sign-in fails closed: without the store, failures could not be counted.
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(str(server.make_url("")), cookie_jar=jar) as http:
            async with http.get("/console/login") as r:
                match = re.search(r'name="csrf" value="([^"]+)"', await r.text())
            assert match
            form = {"csrf": match.group(1), "id": "mia", "password": PASSWORD}
            async with http.post("/console/login", data=form) as r:
                assert r.status == 503
                assert "unavailable" in await r.text()
    finally:
        await server.close()
        await store.close()


async def test_the_webhook_delivery_log_is_for_leads(make_site: SiteFactory) -> None:
    plain = await make_site()
    assert await call(plain, "GET", "/api/webhooks", "lea") == (
        200,
        {"configured": False, "attempts": []},
    )
    # A real webhook queue of one: the second new case's summary is dropped and logged.
    hooks = CaseWebhooks(
        "http://127.0.0.1:9/hook", b"secret", Metrics(), min_severity="low", max_queue=1
    )
    site = await make_site(webhooks=hooks)
    first, second = await site.case("bob", "amy"), await site.case("eve", "kim")
    assert hooks.offer(first)
    assert not hooks.offer(second)
    assert (await call(site, "GET", "/api/webhooks", "mia"))[0] == 403
    status, body = await call(site, "GET", "/api/webhooks", "lea")
    assert status == 200
    assert body["configured"] is True
    assert [(a["case_id"], a["outcome"]) for a in body["attempts"]] == [(second.id, "dropped")]
