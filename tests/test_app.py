"""A whole instance as an operator runs it: ``chatguard run`` in its own process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.support.timing import unit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
