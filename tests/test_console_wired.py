"""The console's seams filled by the instance's own parts, end to end.

A scripted conversation through the real relay and example service, with the
evidence log on: the case it opens shows the captured message with its
matched span, the bundle the API exports verifies offline and its custody
record names the moderator, and leads see banner figures. Participants show
the banners they were shown and what followed, from the shared banner
history (memory store and Redis).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from chatguard.console.accounts import token_hash
from chatguard.evidence.bundle import verify_bundle
from chatguard.stores import RedisStore
from tests.support.cases import cases_of
from tests.support.relay import GuardFactory
from tests.support.timing import eventually, unit
from tests.test_app_evidence import SHORT, evidence_guard, play
from tests.test_steps_speedbumps import connect, dm, guarded, recv_type


async def case_page(guard: Any, case_id: str) -> str:
    """The case page as a moderator behind the (trusted, loopback) SSO gateway sees it."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{guard.admin_url}/console/cases/{case_id}", headers={"X-Moderator": "mia"}) as r,
    ):
        assert r.status == 200
        return await r.text()


async def eventually_async(condition: Callable[[], Awaitable[bool]], within: float = 3.0) -> None:
    async with asyncio.timeout(unit(within)):
        # Polling is the point: the condition is state behind an HTTP API.
        while not await condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def moderators() -> list[dict[str, Any]]:
    return [
        {"id": "mia", "name": "Mia", "role": "moderator", "token_hash": token_hash("t-mia")},
        {"id": "lea", "name": "Lea", "role": "lead", "token_hash": token_hash("t-lea")},
        {"id": "ada", "name": "Ada", "role": "auditor", "token_hash": token_hash("t-ada")},
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


async def test_a_moderator_captures_the_conversation_into_the_case_and_the_bundle(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await evidence_guard(
        make_guard,
        chat_service.url,
        test_pack,
        console={
            "secure_cookies": False,
            "moderators": moderators(),
            "sso": {"header": "X-Moderator", "trusted_proxies": ["127.0.0.1"]},
        },
    )
    await play(guard, SHORT)
    [case] = await cases_of(guard)
    path = f"/api/cases/{case.id}/capture"
    reason = {"json": {"reason": "preserve before it rolls over"}}

    # An auditor reads cases but never changes one; a moderator needs the claim.
    status, body = await api(guard, "POST", path, "ada", **reason)
    assert (status, body["error"]) == (403, "forbidden"), body
    status, body = await api(guard, "POST", path, "mia", **reason)
    assert (status, body["error"]) == (409, "conflict"), body
    assert "claim" in body["detail"]
    status, body = await api(guard, "POST", path, "mia", json={"reason": 7})
    assert (status, body["error"]) == (400, "bad_request"), body

    status, body = await api(guard, "POST", f"/api/cases/{case.id}/claim", "mia")
    assert status == 200, body
    status, body = await api(guard, "POST", path, "mia", **reason)
    assert status == 200, body
    [new] = [e for e in body["evidence"] if e not in case.evidence]
    assert body["history"][-1]["action"] == "captured"
    # Another moderator cannot capture into the case mia holds.
    status, refused = await api(guard, "POST", path, "lea", **reason)
    assert (status, refused["error"]) == (403, "claimed"), refused

    log = guard.evidence_log
    assert log is not None
    record = await log.read(new, actor="test", reason="check the capture")
    assert record is not None
    assert (record["kind"], record["trigger"]) == ("capture", "moderator")
    assert record["requested_by"] == "mia"
    assert record["reason"] == "preserve before it rolls over"
    assert record["message"] is None
    assert record["conversation"] == case.conversation
    assert [e["text"] for e in record["context_before"]] == [line["text"] for line in SHORT]

    # Custody: the capture and the link to the case, both naming the moderator.
    audits = await log.run_io(lambda ledger: [r for i in ledger.audits if (r := ledger.record(i))])
    [custody] = [r for r in audits if r["action"] == "capture"]
    assert (custody["actor"], custody["details"]["evidence"]) == ("mia", [new])
    [linked] = [r for r in audits if r["action"] == "case.captured"]
    assert linked["subject"] == f"case:{case.id}"
    assert linked["details"]["evidence"] == [new]
    assert linked["details"]["conversation"] == case.conversation

    status, bundle = await api(guard, "GET", f"/api/cases/{case.id}/evidence", "mia")
    assert status == 200, bundle
    report = verify_bundle(bundle)
    assert report.ok, report
    index = await log.run_io(lambda ledger: ledger.by_id[new])
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert index in [entry["index"] for entry in manifest["records"]]

    # The case page's button: a form with the session's CSRF token.
    page_url = f"{guard.admin_url}/console/cases/{case.id}"
    sso = {"X-Moderator": "mia"}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(page_url, headers=sso) as r:
            page = await r.text()
        assert 'action="/console/cases/' + case.id + '/capture"' in page
        match = re.search(r'name="csrf" value="([^"]+)"', page)
        assert match
        form = {"reason": "again from the page"}
        async with http.post(f"{page_url}/capture", data=form, headers=sso) as r:
            assert r.status == 403  # no CSRF token: refused, nothing captured
        async with http.post(
            f"{page_url}/capture",
            data={**form, "csrf": match.group(1)},
            headers=sso,
            allow_redirects=False,
        ) as r:
            assert r.status == 303
            assert r.headers["Location"].endswith("?msg=captured")
    status, body = await api(guard, "GET", f"/api/cases/{case.id}", "mia")
    assert len(body["evidence"]) == len(case.evidence) + 2


async def test_a_capture_without_an_evidence_log_is_not_available(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await guarded(
        make_guard,
        chat_service.url,
        test_pack,
        console={"secure_cookies": False, "moderators": moderators()},
    )
    amy, bob = await connect(guard, "amy", 13), await connect(guard, "bob", 41)
    try:
        await eventually(lambda: len(guard.relay.sessions) == 2)
        await dm(bob, "amy", "send me a pic")
        await recv_type(bob, "chatguard.banner")
        [case] = await cases_of(guard)
    finally:
        await amy.close()
        await bob.close()
    status, body = await api(guard, "POST", f"/api/cases/{case.id}/claim", "mia")
    assert status == 200, body
    status, body = await api(
        guard, "POST", f"/api/cases/{case.id}/capture", "mia", json={"reason": "keep"}
    )
    assert (status, body["error"]) == (501, "not_available"), body
    status, body = await api(guard, "GET", f"/api/cases/{case.id}", "mia")
    assert body["evidence"] == list(case.evidence)


@pytest.fixture(params=["memory", "redis"])
async def shared_store(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    """Keyword arguments for ``make_guard``: its own memory store, or a real Redis."""
    if request.param == "memory":
        yield {}
        return
    # Sync fixtures only: they may skip (no Redis) and they clean up keys.
    store = RedisStore(
        request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
    )
    yield {"store": store}
    await store.close()


async def test_a_case_shows_the_banners_its_participants_saw_and_what_followed(
    chat_service, make_guard: GuardFactory, test_pack, shared_store: dict[str, Any]
) -> None:
    extra = dict(shared_store)
    guard = await guarded(
        make_guard,
        chat_service.url,
        test_pack,
        console={
            "secure_cookies": False,
            "moderators": moderators(),
            "sso": {"header": "X-Moderator", "trusted_proxies": ["127.0.0.1"]},
        },
        **extra,
    )
    amy, bob = await connect(guard, "amy", 13), await connect(guard, "bob", 41)
    try:
        await eventually(lambda: len(guard.relay.sessions) == 2)
        await dm(bob, "amy", "add me on snap")
        assert (await recv_type(amy, "chatguard.banner"))["banner"] == "off_platform_warning"
        await dm(amy, "bob", "/report he wants me on snap")  # the warning's outcome
        await recv_type(amy, "chatguard.banner")  # thanks
        await dm(bob, "amy", "send me a pic")
        assert (await recv_type(bob, "chatguard.banner"))["banner"] == "deterrence_image_request"
        [case] = await cases_of(guard)

        async def participants() -> dict[str, Any]:
            status, body = await api(guard, "GET", f"/api/cases/{case.id}", "mia")
            assert status == 200, body
            return {p["user"]: p for p in body["participant_history"]}

        async def seen() -> bool:
            people = await participants()
            return bool(people["amy"]["banners"]) and bool(people["bob"]["banners"])

        await eventually_async(seen)
        people = await participants()
        [warning] = people["amy"]["banners"]
        assert (warning["banner"], warning["outcome"]) == ("off_platform_warning", "reported")
        assert warning["conversation"] == "dm:amy:bob"
        assert warning["kind"] == "warning"
        assert warning["decided_at"] >= warning["at"]
        [deterrence] = people["bob"]["banners"]
        # Still within its window: shown, no outcome yet.
        assert (deterrence["banner"], deterrence["outcome"]) == ("deterrence_image_request", None)
        assert "risky" not in deterrence
        assert "seen" not in deterrence

        # The case page says the same to a moderator (signed in through SSO).
        page = await case_page(guard, case.id)
        assert "off_platform_warning (reported)" in page
        assert "deterrence_image_request (no outcome)" in page
    finally:
        await amy.close()
        await bob.close()
