"""Real WebSocket chat clients of the example protocol, as tests drive them.

Every helper waits with a bound (``unit`` scales it on slow machines) so a
missing frame fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from tests.support.timing import unit

Client = websockets.ClientConnection


async def recv(ws: Client, within: float = 3.0) -> dict[str, Any]:
    """The next frame, whatever its type."""
    async with asyncio.timeout(unit(within)):
        frame = json.loads(await ws.recv())
    assert isinstance(frame, dict)
    return frame


async def recv_type(ws: Client, kind: str, within: float = 3.0) -> dict[str, Any]:
    """The next frame of type ``kind``, skipping others."""
    async with asyncio.timeout(unit(within)):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("type") == kind:
                assert isinstance(frame, dict)
                return frame


async def nothing_of(ws: Client, kind: str, within: float = 0.4) -> None:
    """No frame of type ``kind`` arrives within ``within`` seconds."""
    with pytest.raises(TimeoutError):
        await recv_type(ws, kind, within)


async def dm(ws: Client, to: str, text: str) -> None:
    await ws.send(json.dumps({"type": "dm", "to": to, "text": text}))
