"""Timeouts in one scalable unit, so a slow CI machine does not flake.

Every wait in the tests is ``unit(n)``: n seconds on a developer machine,
multiplied by ``CHATGUARD_TEST_TIMEOUT_SCALE`` (default 1; CI may raise it).
"""

from __future__ import annotations

import os

SCALE = float(os.environ.get("CHATGUARD_TEST_TIMEOUT_SCALE", "1"))


def unit(seconds: float = 1.0) -> float:
    return seconds * SCALE
