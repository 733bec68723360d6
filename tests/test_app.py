"""A whole instance as an operator runs it: ``chatguard run`` in its own process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.support.net import free_port
from tests.support.timing import eventually, unit
from tests.test_steps_speedbumps import connect, dm, guarded, recv_type


async def wait_for_port(port: int, within: float) -> None:
    async with asyncio.timeout(within):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return


async def start_sidecar(
    config: Path, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chatguard",
        "run",
        "--config",
        str(config),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


async def test_sigterm_drains_sessions_and_exits(chat_service, tmp_path: Path) -> None:
    port, admin = free_port(), free_port()
    cfg = tmp_path / "chatguard.yaml"
    cfg.write_text(
        f"listen: {{port: {port}}}\n"
        f"admin: {{port: {admin}}}\n"
        f"upstream: {{url: '{chat_service.url}'}}\n"
        "limits: {drain_timeout: 3}\n"
    )
    proc = await start_sidecar(cfg)
    try:
        await wait_for_port(port, unit(15))
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws?user=sam") as sam:
            await sam.recv()
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(unit(5)):
                    await sam.recv()
            assert sam.close_code == 1001
        async with asyncio.timeout(unit(10)):
            code = await proc.wait()
        assert code == 0
        assert time.monotonic() - started < unit(5)
        # The listener is gone.
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_environment_overrides_the_file(chat_service, tmp_path: Path) -> None:
    port, admin = free_port(), free_port()
    cfg = tmp_path / "chatguard.yaml"
    cfg.write_text(f"listen: {{port: 1}}\nupstream: {{url: '{chat_service.url}'}}\n")
    env = {"CHATGUARD__LISTEN__PORT": str(port), "CHATGUARD__ADMIN__PORT": str(admin)}
    proc = await start_sidecar(cfg, env)
    try:
        await wait_for_port(port, unit(15))
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws?user=env") as ws:
            assert "welcome" in str(await ws.recv())
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(unit(10)):
            assert await proc.wait() == 0


async def metric(admin: int, name: str) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", admin)
    writer.write(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
    body = (await reader.read()).decode()
    writer.close()
    await writer.wait_closed()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


async def test_sighup_reloads_the_policy_and_a_bad_pack_is_refused(
    chat_service, tmp_path: Path, test_pack: tuple[Path, Path]
) -> None:
    policies, banners = test_pack
    port, admin = free_port(), free_port()
    cfg = tmp_path / "chatguard.yaml"
    cfg.write_text(
        f"listen: {{port: {port}}}\n"
        f"admin: {{port: {admin}}}\n"
        f"upstream: {{url: '{chat_service.url}'}}\n"
        f"policy: {{directory: '{policies}', watch: false}}\n"
        f"banners: {{directory: '{banners}'}}\n"
        f"data_dir: '{tmp_path / 'data'}'\n"
    )
    proc = await start_sidecar(cfg)
    loaded = 'chatguard_policy_reloads_total{outcome="loaded"}'
    refused = 'chatguard_policy_reloads_total{outcome="refused"}'
    try:
        await wait_for_port(admin, unit(20))
        assert await metric(admin, loaded) == 1.0
        rules = policies / "en" / "rules.yaml"
        good = rules.read_text(encoding="utf-8")
        rules.write_text(good.replace("weight: 10", "weight: 9"), encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        async with asyncio.timeout(unit(20)):
            while await metric(admin, loaded) < 2.0:  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.1)
        rules.write_text(good + "\n  - id: [broken\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        async with asyncio.timeout(unit(20)):
            while await metric(admin, refused) < 1.0:  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.1)
        # The sidecar still relays with the pack it had.
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws?user=hup") as ws:
            assert "welcome" in str(await ws.recv())
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(unit(10)):
            assert await proc.wait() == 0


async def test_a_warned_child_who_leaves_the_chat_counts_as_left(
    chat_service, make_guard, test_pack
) -> None:

    guard = await guarded(make_guard, chat_service.url, test_pack)
    amy, bob = await connect(guard, "amy", 13), await connect(guard, "bob", 41)
    try:
        await eventually(lambda: len(guard.relay.sessions) == 2)
        await dm(bob, "amy", "add me on snap")
        await recv_type(amy, "chatguard.banner")
        await amy.close()

        def left() -> float:
            value = guard.metrics.registry.get_sample_value(
                "chatguard_banner_outcomes_total",
                {"banner": "off_platform_warning", "variant": "default", "outcome": "left"},
            )
            return value or 0.0

        await eventually(lambda: left() == 1.0, within=4)
    finally:
        await bob.close()
