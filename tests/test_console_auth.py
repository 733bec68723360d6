"""Sign-in, sessions, CSRF, rate limiting and the SSO header, through the real
console app over loopback (memory store and Redis)."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from chatguard.config import ConsoleSsoConfig
from chatguard.console.auth import COOKIE
from tests.support.console import PASSWORD, ConsoleSite, SiteFactory

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def login_form(http: aiohttp.ClientSession) -> str:
    async with http.get("/console/login") as r:
        assert r.status == 200
        match = CSRF.search(await r.text())
        assert match
        return match.group(1)


async def sign_in(
    site: ConsoleSite, who: str = "mia", password: str = PASSWORD
) -> tuple[aiohttp.ClientSession, int]:
    http = site.client()
    csrf = await login_form(http)
    async with http.post(
        "/console/login",
        data={"csrf": csrf, "id": who, "password": password, "next": "/console/"},
        allow_redirects=False,
    ) as r:
        return http, r.status


async def page_csrf(http: aiohttp.ClientSession, path: str) -> str:
    async with http.get(path) as r:
        assert r.status == 200, path
        match = CSRF.search(await r.text())
        assert match
        return match.group(1)


async def test_sign_in_sets_a_strict_http_only_cookie(make_site: SiteFactory) -> None:
    site = await make_site()
    http = site.client()
    csrf = await login_form(http)
    async with http.post(
        "/console/login",
        data={"csrf": csrf, "id": "mia", "password": PASSWORD},
        allow_redirects=False,
    ) as r:
        assert r.status == 303
        assert r.headers["Location"] == "/console/"
        cookie = r.cookies[COOKIE]
        assert cookie["httponly"]
        assert cookie["samesite"] == "Strict"
        assert not cookie["secure"]  # this site runs plain HTTP on loopback
    async with http.get("/console/") as r:
        assert r.status == 200
        assert "Case queue" in await r.text()


async def test_the_cookie_is_secure_by_configuration(make_site: SiteFactory) -> None:
    site = await make_site(secure_cookies=True)
    http = site.client()
    csrf = await login_form(http)
    # A browser keeps Secure cookies for HTTPS; this plain-HTTP test hands it back itself.
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as bare,
        bare.post(
            site.url + "/console/login",
            data={"csrf": csrf, "id": "mia", "password": PASSWORD},
            headers={"Cookie": f"chatguard_login={csrf}"},
            allow_redirects=False,
        ) as r,
    ):
        assert r.status == 303
        cookie = r.headers["Set-Cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        assert "Secure" in cookie
        assert "HttpOnly" in cookie


async def test_sign_in_needs_the_form_token(make_site: SiteFactory) -> None:
    site = await make_site()
    http = site.client()
    await login_form(http)
    async with http.post(
        "/console/login", data={"csrf": "forged", "id": "mia", "password": PASSWORD}
    ) as r:
        assert r.status == 403
        assert COOKIE not in r.cookies
    fresh = site.client()  # no login cookie at all (a cross-site form post)
    async with fresh.post(
        "/console/login", data={"csrf": "x", "id": "mia", "password": PASSWORD}
    ) as r:
        assert r.status == 403


@pytest.mark.parametrize(("who", "password"), [("mia", "wrong"), ("nobody", PASSWORD)])
async def test_a_wrong_password_or_account_is_refused_alike(
    make_site: SiteFactory, who: str, password: str
) -> None:
    site = await make_site()
    http, status = await sign_in(site, who, password)
    assert status == 401
    async with http.get("/console/", allow_redirects=False) as r:
        assert r.status == 303
        assert r.headers["Location"].startswith("/console/login")


async def test_failed_sign_ins_are_rate_limited_per_account(make_site: SiteFactory) -> None:
    site = await make_site(login_max_failures=3)
    for _ in range(3):
        assert (await sign_in(site, "mia", "wrong"))[1] == 401
    # Now even the right password is refused for a while, with a Retry-After.
    http = site.client()
    csrf = await login_form(http)
    async with http.post(
        "/console/login", data={"csrf": csrf, "id": "mia", "password": PASSWORD}
    ) as r:
        assert r.status == 429
        assert int(r.headers["Retry-After"]) > 0
        assert "too many" in await r.text()
    signs = site.metrics.console_sign_ins
    assert signs.labels(outcome="refused")._value.get() == 3
    assert signs.labels(outcome="limited")._value.get() == 1
    assert signs.labels(outcome="ok")._value.get() == 0


async def test_failed_sign_ins_are_rate_limited_per_address(make_site: SiteFactory) -> None:
    site = await make_site(login_max_failures=3)
    for who in ("mia", "max", "lea"):
        assert (await sign_in(site, who, "guess"))[1] == 401
    assert (await sign_in(site, "aud", PASSWORD))[1] == 429  # same address, other account


async def test_state_changing_requests_need_the_csrf_token(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    http, status = await sign_in(site)
    assert status == 303
    path = f"/console/cases/{case.id}/claim"
    for data, headers in [({}, {}), ({"csrf": "wrong"}, {}), ({}, {"X-CSRF-Token": "wrong"})]:
        async with http.post(path, data=data, headers=headers, allow_redirects=False) as r:
            assert r.status == 403
            assert "CSRF" in await r.text()
    stored = await site.book.get(case.id)
    assert stored is not None
    assert stored.assignee is None
    csrf = await page_csrf(http, f"/console/cases/{case.id}")
    async with http.post(path, data={"csrf": csrf}, allow_redirects=False) as r:
        assert r.status == 303
    stored = await site.book.get(case.id)
    assert stored is not None
    assert stored.assignee == "mia"


async def test_sign_out_ends_the_session(make_site: SiteFactory) -> None:
    site = await make_site()
    http, _ = await sign_in(site)
    csrf = await page_csrf(http, "/console/")
    async with http.post("/console/logout", data={"csrf": csrf}, allow_redirects=False) as r:
        assert r.status == 303
    assert await site.gate.sessions.count("mia", site.clock()) == 0
    async with http.get("/console/", allow_redirects=False) as r:
        assert r.status == 303


async def test_sso_header_is_believed_from_a_trusted_proxy(make_site: SiteFactory) -> None:
    site = await make_site(sso=ConsoleSsoConfig("X-Auth-User", ("127.0.0.0/8",)))
    case = await site.case()
    http = site.client()
    async with http.get("/console/", headers={"X-Auth-User": "lea"}) as r:
        assert r.status == 200
        assert "LEA (lead)" in await r.text()
    assert site.metrics.console_sign_ins.labels(outcome="sso")._value.get() == 1
    # The session it opened carries on; its CSRF token is required as usual.
    csrf = await page_csrf(http, f"/console/cases/{case.id}")
    claim = f"/console/cases/{case.id}/claim"
    async with http.post(claim, headers={"X-Auth-User": "lea"}, allow_redirects=False) as r:
        assert r.status == 403
    async with http.post(
        claim, data={"csrf": csrf}, headers={"X-Auth-User": "lea"}, allow_redirects=False
    ) as r:
        assert r.status == 303
    # An id that is not a configured moderator is nobody.
    async with site.client().get(
        "/console/", headers={"X-Auth-User": "mallory"}, allow_redirects=False
    ) as r:
        assert r.status == 303


async def test_sso_header_is_ignored_from_anywhere_else(make_site: SiteFactory) -> None:
    site = await make_site(sso=ConsoleSsoConfig("X-Auth-User", ("10.0.0.5",)))
    async with site.client().get(
        "/console/", headers={"X-Auth-User": "lea"}, allow_redirects=False
    ) as r:
        assert r.status == 303
        assert r.headers["Location"].startswith("/console/login")
    # Nor does it ever reach the API, which takes bearer tokens only.
    async with site.client().get("/api/cases", headers={"X-Auth-User": "lea"}) as r:
        assert r.status == 401


async def test_a_session_of_a_removed_account_ends(make_site: SiteFactory) -> None:
    site = await make_site()
    http, _ = await sign_in(site, "max")
    site.gate.accounts = type(site.gate.accounts)(
        a for a in (site.gate.accounts.get(m) for m in ("mia", "lea")) if a is not None
    )
    async with http.get("/console/", allow_redirects=False) as r:
        assert r.status == 303


async def test_a_flood_of_sign_ins_is_answered_busy_not_queued(make_site: SiteFactory) -> None:
    site = await make_site(login_max_failures=1000)
    site.gate.max_signing_in = 2  # the default is larger; the mechanism is the same
    http = site.client()
    csrf = await login_form(http)

    async def attempt(i: int) -> tuple[int, str]:
        # Unknown ids: each costs a full-strength argon2 check, like a real guess.
        form = {"csrf": csrf, "id": f"guess-{i}", "password": "x"}
        async with http.post("/console/login", data=form) as r:
            return r.status, await r.text()

    answers = await asyncio.gather(*(attempt(i) for i in range(10)))
    statuses = [status for status, _ in answers]
    assert statuses.count(401) >= 2
    busy = [body for status, body in answers if status == 429]
    assert busy
    assert all("busy" in body for body in busy)
    assert site.gate._signing_in == 0
