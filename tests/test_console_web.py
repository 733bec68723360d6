"""The console mounted on a real ChatGuard's admin listener: every console
and API route refuses without authentication (walking the router), health and
metrics stay open, and the console can be turned off."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import aiohttp
import websockets
from aiohttp import web

from chatguard.app import ChatGuard
from chatguard.console.accounts import token_hash
from chatguard.stores import RedisStore
from chatguard_examples.chat_service import ChatService
from tests.support.console import PASSWORD, escalation
from tests.support.relay import GuardFactory, ws_url
from tests.support.timing import eventually, unit


def routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path) of every route, sub-applications included, ids filled in."""
    out: list[tuple[str, str]] = []
    for resource in app.router.resources():
        info: dict[str, Any] = dict(resource.get_info())
        if "app" in info:
            out += [(m, info["prefix"] + p) for m, p in routes(info["app"]) if p.startswith("/")]
            continue
        path = info.get("path") or info.get("formatter") or ""
        path = re.sub(r"\{what:[^}]*\}", "claim", path)
        path = re.sub(r"\{fmt:[^}]*\}", "json", path)
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", "case-1", path)
        for route in resource:
            if route.method != "HEAD":
                out.append((route.method, path))
    return out


async def test_every_console_and_api_route_refuses_without_authentication(
    make_guard: GuardFactory, chat_service: ChatService
) -> None:
    guard: ChatGuard = await make_guard(chat_service.url, console={"secure_cookies": False})
    await guard.cases.add(escalation())
    found = routes(guard.admin)
    console = [(m, p) for m, p in found if p.startswith("/console")]
    api = [(m, p) for m, p in found if p.startswith("/api")]
    assert len(console) >= 10
    assert len(api) >= 10
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        for method, path in console + api:
            async with http.request(method, guard.admin_url + path, allow_redirects=False) as r:
                if path == "/console/login":
                    assert r.status in (200, 403), (method, path)  # the one public page
                elif path.startswith("/api/"):
                    assert r.status == 401, (method, path)
                elif method == "GET":
                    assert r.status == 303, (method, path)
                    assert r.headers["Location"].startswith(("/console/login", "/console/"))
                else:
                    assert r.status == 401, (method, path)
        for path in ("/healthz", "/metrics"):
            async with http.get(guard.admin_url + path) as r:
                assert r.status == 200
    case = await guard.cases.get("case-1")
    assert case is not None
    assert case.assignee is None
    assert not [e for _, e in guard.audit.entries if e.action == "case.view"]  # type: ignore[attr-defined]


async def test_the_console_can_be_turned_off(
    make_guard: GuardFactory, chat_service: ChatService
) -> None:
    guard = await make_guard(chat_service.url, console={"enabled": False})
    assert guard.console is None
    async with aiohttp.ClientSession() as http:
        for path in ("/console/", "/api/cases"):
            async with http.get(guard.admin_url + path) as r:
                assert r.status == 404


def test_templates_and_script_ship_with_the_package() -> None:
    package = resources.files("chatguard.console")
    for name in ("base", "login", "queue", "case", "report", "analytics", "error"):
        assert package.joinpath(f"templates/{name}.html").is_file(), name
    assert package.joinpath("static/console.js").is_file()


async def test_two_replicas_on_one_redis_share_the_queue_and_a_mute_reaches_the_other(
    make_guard: GuardFactory,
    chat_service: ChatService,
    redis_store_factory: Callable[..., RedisStore],
) -> None:
    console = {"moderators": [{"id": "mia", "token_hash": token_hash("token-mia")}]}
    a = await make_guard(chat_service.url, store=redis_store_factory(), console=console)
    b = await make_guard(chat_service.url, store=redis_store_factory(), console=console)
    await asyncio.wait_for(a.deliveries.ready.wait(), unit(3))
    bob = await websockets.connect(ws_url(a, "/ws?user=bob&age=41"))  # bob is on replica a
    try:
        await eventually(lambda: len(a.relay.sessions) == 1)
        case = await a.cases.add(escalation("bob", "amy"))  # a escalates...
        headers = {"Authorization": "Bearer token-mia"}
        async with aiohttp.ClientSession(headers=headers) as http:  # ...a moderator works it on b
            async with http.get(b.admin_url + "/api/cases") as r:
                assert [c["id"] for c in (await r.json())["cases"]] == [case.id]
            async with http.post(f"{b.admin_url}/api/cases/{case.id}/claim") as r:
                assert r.status == 200
            async with http.post(
                f"{b.admin_url}/api/cases/{case.id}/actions",
                json={"type": "mute", "duration": 300, "reason": "grooming"},
            ) as r:
                assert r.status == 200
            async with http.get(f"{a.admin_url}/api/cases/{case.id}") as r:
                assert (await r.json())["status"] == "actioned"
        async with asyncio.timeout(unit(3)):
            while (frame := json.loads(await bob.recv())).get("type") != "chatguard.sanction":
                pass
        assert frame["sanction"] == "mute"
        assert "grooming" in frame["text"]
    finally:
        await bob.close()


async def test_a_sign_in_on_one_replica_holds_on_the_other(
    make_guard: GuardFactory,
    chat_service: ChatService,
    redis_store_factory: Callable[..., RedisStore],
    password_hash: str,
) -> None:
    console = {
        "secure_cookies": False,
        "moderators": [{"id": "mia", "password_hash": password_hash}],
    }
    a = await make_guard(chat_service.url, store=redis_store_factory(), console=console)
    b = await make_guard(chat_service.url, store=redis_store_factory(), console=console)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(a.admin_url + "/console/login") as r:
            match = re.search(r'name="csrf" value="([^"]+)"', await r.text())
        assert match
        async with http.post(
            a.admin_url + "/console/login",
            data={"csrf": match.group(1), "id": "mia", "password": PASSWORD},
            allow_redirects=False,
        ) as r:
            assert r.status == 303
        # Cookies are per host, not per port: the browser sends it to b as well.
        async with http.get(b.admin_url + "/console/", allow_redirects=False) as r:
            assert r.status == 200
            assert "mia (moderator)" in await r.text()
