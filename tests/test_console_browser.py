"""The moderator's path in a real headless Chromium, end to end.

A scripted grooming conversation goes through the real relay and the example
chat service with the default policy pack; the policy escalates it into a
case. A moderator signs in to the console, opens the queue, claims the case
and mutes the adult. The adult is told at once, and their next message is
blocked in the live chat (the child never receives it).

Chromium is Debian's ``chromium`` (tools/debian-packages.txt), driven by
Playwright through ``executable_path``; without it the test skips, except
under CI=true, where it fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import websockets

from chatguard.app import ChatGuard
from chatguard_examples.chat_service import ChatService
from tests.support.console import PASSWORD
from tests.support.relay import GuardFactory, ws_url
from tests.support.timing import unit

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"

#: The adult's side of the conversation; the default pack escalates by the second line.
GROOMING = (
    "you seem really mature for your age",
    "are your parents home right now?",
    "this is our little secret, don't tell your mom",
)

Client = websockets.ClientConnection


def chromium_or_skip() -> str:
    path = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (tools/debian-packages.txt)")
        pytest.skip("chromium is not installed (run tools/ensure-packages)")
    return path


async def recv_type(ws: Client, kind: str, within: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(unit(within)):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("type") == kind:
                assert isinstance(frame, dict)
                return frame


async def dm(ws: Client, to: str, text: str) -> None:
    await ws.send(json.dumps({"type": "dm", "to": to, "text": text}))


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    executable = chromium_or_skip()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=executable, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


async def test_sign_in_claim_and_mute_the_adult_from_the_browser(
    browser: Any, chat_service: ChatService, make_guard: GuardFactory, password_hash: str
) -> None:
    guard: ChatGuard = await make_guard(
        chat_service.url,
        policy={"directory": str(ROOT / "policies"), "watch": False},
        banners={"directory": str(ROOT / "banners")},
        console={
            "secure_cookies": False,
            "moderators": [
                {"id": "mia", "name": "Mia", "role": "moderator", "password_hash": password_hash}
            ],
        },
    )
    await asyncio.wait_for(guard.deliveries.ready.wait(), unit(5))
    amy = await websockets.connect(ws_url(guard, "/ws?user=amy&age=13"))
    bob = await websockets.connect(ws_url(guard, "/ws?user=bob&age=41"))
    try:
        await recv_type(amy, "welcome")
        await recv_type(bob, "welcome")
        for line in GROOMING:
            await dm(bob, "amy", line)
            assert (await recv_type(amy, "dm"))["text"] == line
        cases: list[Any] = []

        async def opened() -> bool:
            cases[:] = await guard.cases.list()
            return bool(cases)

        async with asyncio.timeout(unit(5)):
            # Polling is the point: the case is state in the store, not an event.
            while not await opened():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        case = cases[0]
        assert case.subject == "bob"
        assert "grooming" in case.categories

        page = await browser.new_page()
        # Script errors and CSP refusals show up as page errors or console errors.
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
        await page.goto(guard.admin_url + "/console/")  # sends us to sign in
        assert "/console/login" in page.url
        await page.fill("input[name=id]", "mia")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_selector(f"tr[data-case='{case.id}']")
        await page.click(f"a[href='/console/cases/{case.id}']")
        # The flagged messages, with what the default pack matched highlighted.
        marked = await page.locator("#conversation mark").all_inner_texts()
        assert marked, "no highlighted span on the case page"
        assert any("parents" in m or "mature" in m for m in marked), marked
        await page.click("button[name=claim]")
        await page.wait_for_selector("text=Claimed.")
        assert await page.inner_text("#assignee") == "mia"
        await page.select_option("select[name=target]", "bob")
        await page.fill("input[name=duration]", "600")
        await page.fill("input[name=reason]", "grooming a child")
        await page.click("button[name=type][value=mute]")
        await page.wait_for_selector("text=Done: mute.")
        assert await page.inner_text("#status") == "actioned"
        assert problems == []

        # The adult is told at once, wherever their session is...
        notice = await recv_type(bob, "chatguard.sanction")
        assert notice["sanction"] == "mute"
        assert "grooming a child" in notice["text"]
        # ...and their next message is blocked, with the notice again.
        await dm(bob, "amy", "hello? why did you go quiet")
        again = await recv_type(bob, "chatguard.sanction")
        assert "muted" in again["text"]
        with pytest.raises(TimeoutError):
            await recv_type(amy, "dm", within=0.5)
        # The child can still talk; the moderator's steps are in the audit log.
        await dm(amy, "bob", "bye")
        assert (await recv_type(bob, "dm"))["text"] == "bye"
        actions = [e.action for _, e in guard.audit.entries]  # type: ignore[attr-defined]
        assert "case.view" in actions
        assert "case.claimed" in actions
        assert "case.mute" in actions
    finally:
        await amy.close()
        await bob.close()
