"""Timeouts in one scalable unit, so a slow CI machine does not flake.

Every wait in the tests is ``unit(n)``: n seconds on a developer machine,
multiplied by ``CHATGUARD_TEST_TIMEOUT_SCALE`` (default 1; CI may raise it).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

SCALE = float(os.environ.get("CHATGUARD_TEST_TIMEOUT_SCALE", "1"))


def unit(seconds: float = 1.0) -> float:
    return seconds * SCALE


async def eventually(condition: Callable[[], bool], within: float = 3.0) -> None:
    """Wait until ``condition()`` holds (polling), failing after ``unit(within)``."""
    async with asyncio.timeout(unit(within)):
        # Polling is the point: the condition is any state, not an event.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
