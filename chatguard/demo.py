"""``chatguard demo``: the example chat service, the sidecar in front of it and
the admin endpoints, all on loopback with embedded defaults.

Nothing here is needed in production; it exists so a newcomer sees ChatGuard
working with one command. Defaults: memory store, data under a temporary
folder (or ``--data-dir``), no Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import tempfile
from pathlib import Path

from chatguard_examples.bots import run_bots
from chatguard_examples.chat_service import ChatService

from . import config as config_mod
from .app import ChatGuard
from .console.accounts import hash_password, mint_token

DEMO_MODERATOR = "demo"


def demo_moderator(data_dir: Path) -> tuple[dict[str, str], str, Path]:
    """A lead account for the demo: its configuration, a fresh password, and
    the file holding its API token (``<data-dir>/demo-token``, owner-only)."""
    password = secrets.token_urlsafe(12)
    token, token_hash = mint_token()
    token_file = data_dir / "demo-token"
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    account = {
        "id": DEMO_MODERATOR,
        "name": "Demo moderator",
        "role": "lead",
        "password_hash": hash_password(password),
        "token_hash": token_hash,
    }
    return account, password, token_file


def find_pack(name: str) -> Path | None:
    """The default pack's folder: in the working directory, else beside the package."""
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent):
        candidate = base / name
        if candidate.is_dir() and any(candidate.rglob("*.yaml")):
            return candidate
    return None


async def run_demo(
    *,
    listen: tuple[str, int],
    upstream_listen: tuple[str, int],
    admin: tuple[str, int],
    data_dir: str | None,
    scripted: bool,
    stop: asyncio.Event | None = None,
    announce: bool = True,
) -> int:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="chatguard-demo-"))
        await asyncio.to_thread(Path(data_dir).mkdir, parents=True, exist_ok=True)

        service = ChatService(upstream_listen[0], upstream_listen[1])
        await service.start()
        policies, banners = find_pack("policies"), find_pack("banners")
        moderator, password, token_file = await asyncio.to_thread(demo_moderator, Path(data_dir))
        cfg = config_mod.from_mapping(
            {
                "listen": {"host": listen[0], "port": listen[1]},
                "admin": {"host": admin[0], "port": admin[1]},
                "upstream": {"url": service.url},
                "data_dir": data_dir,
                "instance_id": "demo",
                "limits": {"drain_timeout": 3.0},
                "policy": {"directory": str(policies or "")},
                "banners": {"directory": str(banners or "")},
                # Captures go to the tamper-evident log, as in a real deployment.
                "evidence": {"enabled": True},
                # Plain HTTP on loopback: a Secure cookie would never come back.
                "console": {"secure_cookies": False, "moderators": [moderator]},
            },
            source="demo defaults",
        )
        guard = ChatGuard(cfg)
        await guard.start()
        bots: asyncio.Task[None] | None = None
        try:
            relay_ws = guard.relay_url.replace("http://", "ws://", 1)
            if announce:
                print(
                    "ChatGuard demo is running.\n"
                    f"  chat (through ChatGuard): {guard.relay_url}/\n"
                    f"  chat (direct, no ChatGuard): http://{service.host}:{service.port}/\n"
                    f"  health and metrics: {guard.admin_url}/healthz  {guard.admin_url}/metrics\n"
                    f"  moderator console: {guard.admin_url}/console/ "
                    f"(sign in as {DEMO_MODERATOR!r}, password {password!r})\n"
                    f"  moderation API token: {token_file} "
                    f'(curl -H "Authorization: Bearer $(cat {token_file})" '
                    f"{guard.admin_url}/api/cases)\n"
                    f"  data directory: {data_dir}\n"
                    f"  evidence log: {data_dir}/evidence "
                    "(a case's bundle: Export on its page; check it with "
                    "`chatguard evidence verify BUNDLE.zip`)\n"
                    f"  policy pack: {policies or 'none (pass-through)'}\n"
                    "Open the chat page in two browser windows (one with an age under 18)."
                    + ("\nTwo scripted users are chatting in 'lobby'." if scripted else "")
                    + "\nPress Ctrl-C to stop.",
                    flush=True,
                )
            if scripted:
                bots = asyncio.create_task(run_bots(relay_ws, stop=stop))
            await stop.wait()
        finally:
            stop.set()
            if bots is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await bots
            await guard.stop()
            await service.stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
    return 0
