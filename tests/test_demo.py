"""``chatguard demo`` as a newcomer runs it: one command, URLs printed, traffic, Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import aiohttp
import websockets

from tests.support.net import free_port
from tests.support.timing import unit


async def test_scripted_demo_runs_and_stops_cleanly(tmp_path) -> None:
    listen, upstream, admin = free_port(), free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chatguard",
        "demo",
        "--scripted",
        "--listen",
        f"127.0.0.1:{listen}",
        "--upstream-listen",
        f"127.0.0.1:{upstream}",
        "--admin",
        f"127.0.0.1:{admin}",
        "--data-dir",
        str(tmp_path / "demo"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        banner = ""
        # A first start with a new data directory judges every rule regex of
        # the pack (safety_cache.py) and builds its Hyperscan database: seconds
        # on a fast machine, over a minute on a slow, busy one. The bound is for
        # a hang, not a speed test.
        async with asyncio.timeout(unit(300)):
            while "Ctrl-C" not in banner:
                line = await proc.stdout.readline()
                assert line, "demo exited early"
                banner += line.decode()
        assert f"http://127.0.0.1:{listen}/" in banner
        assert f"http://127.0.0.1:{admin}/metrics" in banner

        # A newcomer joins the lobby through the sidecar and sees the bots talk.
        url = f"ws://127.0.0.1:{listen}/ws?user=newcomer&age=16"
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "join", "room": "lobby"}))
            senders: set[str] = set()
            async with asyncio.timeout(unit(20)):
                while len(senders) < 1:
                    frame = json.loads(await ws.recv())
                    if frame.get("type") == "message":
                        senders.add(frame["from"])
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{admin}/metrics") as response,
        ):
            metrics = await response.text()
        assert 'chatguard_chat_events_total{kind="message",origin="client"}' in metrics

        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(unit(10)):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_the_demo_moderator_can_sign_in_and_its_token_is_owner_only(tmp_path) -> None:
    import stat

    from chatguard.config import ModeratorAccount
    from chatguard.console.accounts import Accounts
    from chatguard.demo import demo_moderator

    account, password, token_file = demo_moderator(tmp_path)
    assert token_file == tmp_path / "demo-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    accounts = Accounts.from_config([ModeratorAccount(**account)])
    found = accounts.by_token(token_file.read_text().strip())
    assert found is not None
    assert found.id == "demo"
    assert accounts.check_password("demo", password) is not None
    assert accounts.check_password("demo", password + "x") is None
