"""Waiting for the case book: escalations become cases asynchronously."""

from __future__ import annotations

import asyncio
from typing import Any

from chatguard.cases.model import Case
from tests.support.timing import unit


async def cases_of(guard: Any, count: int = 1, within: float = 3.0) -> list[Case]:
    """The guard's cases once there are at least ``count`` (failing after ``within``)."""
    async with asyncio.timeout(unit(within)):
        # Polling is the point: cases live in the store, which has no events.
        while len(cases := await guard.cases.list()) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    return cases
