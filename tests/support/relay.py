"""Fixtures that run the real example chat service and real ChatGuard instances
on loopback ports, in the test's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest_asyncio

from chatguard import config as config_mod
from chatguard.app import ChatGuard
from chatguard_examples.chat_service import ChatService

GuardFactory = Callable[..., Awaitable[ChatGuard]]


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def ws_url(guard: ChatGuard, path: str = "/ws") -> str:
    return guard.relay_url.replace("http://", "ws://", 1) + path


@pytest_asyncio.fixture
async def chat_service() -> AsyncIterator[ChatService]:
    service = ChatService("127.0.0.1", 0)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest_asyncio.fixture
async def make_guard(tmp_path: Any) -> AsyncIterator[GuardFactory]:
    """Start ChatGuard instances in front of a given upstream; all stop at teardown."""
    started: list[ChatGuard] = []

    async def factory(upstream_url: str, **overrides: Any) -> ChatGuard:
        steps = overrides.pop("steps", None)
        store = overrides.pop("store", None)
        base = {
            "listen": {"host": "127.0.0.1", "port": 0},
            "admin": {"host": "127.0.0.1", "port": 0},
            "upstream": {"url": upstream_url, "connect_timeout": 2.0},
            "data_dir": str(tmp_path / f"data{len(started)}"),
            "instance_id": f"test-{len(started)}",
            "limits": {"drain_timeout": 2.0},
        }
        cfg = config_mod.from_mapping(merge(base, overrides), source="test")
        guard = ChatGuard(cfg, steps=steps, store=store)
        await guard.start()
        started.append(guard)
        return guard

    try:
        yield factory
    finally:
        for guard in reversed(started):
            await guard.stop()
