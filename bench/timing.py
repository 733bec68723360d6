"""The timing loop every benchmark in ``bench/`` shares.

``per_item`` runs a function over a batch several times and returns, for
the whole batch, the median over runs of the mean time per item, both as
wall-clock time and as CPU time of the calling thread. On a shared machine
the CPU figure is the steadier one: time the thread spent waiting for a
core is not in it, so it reads as "one core's worth". Nothing here prints.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Timing:
    """Mean microseconds per item: medians over runs, and every run's CPU figure."""

    wall_us: float
    cpu_us: float
    cpu_runs: tuple[float, ...]

    @property
    def per_second(self) -> float:
        """Items per second of one core's CPU time."""
        return 1e6 / self.cpu_us if self.cpu_us > 0 else float("inf")


def per_item(batch: Sequence[Any], run: Callable[[Any], object], runs: int) -> Timing:
    """Time ``run(item)`` for every item of ``batch``, ``runs`` times."""
    if not batch or runs < 1:
        raise ValueError("need at least one item and one run")
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(runs):
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        for item in batch:
            run(item)
        cpus.append((time.thread_time_ns() - cpu) / len(batch) / 1000)
        walls.append((time.perf_counter_ns() - wall) / len(batch) / 1000)
    return Timing(statistics.median(walls), statistics.median(cpus), tuple(cpus))
