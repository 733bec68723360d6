"""Seeded message mixes the benchmarks time: every run times the same input.

``sample`` draws ``count`` messages from weighted pools of kinds; half get a
short filler word appended so messages stay distinct (a cache of whole
messages would otherwise flatter the figures).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

#: (kind, pool of texts, weight)
Mix = Sequence[tuple[str, Sequence[str], float]]


def sample(
    rng: random.Random, mix: Mix, count: int, fillers: Sequence[str]
) -> list[tuple[str, str]]:
    """(kind, text) pairs drawn from ``mix``."""
    kinds = [kind for kind, _, _ in mix]
    weights = [weight for _, _, weight in mix]
    pools = {kind: pool for kind, pool, _ in mix}
    out = []
    for _ in range(count):
        kind = rng.choices(kinds, weights)[0]
        text = rng.choice(pools[kind])
        if rng.random() < 0.5:
            text = f"{text} {rng.choice(fillers)}"
        out.append((kind, text))
    return out
