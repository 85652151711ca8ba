"""Random draws for the fleet, taken from its generator a block at a time.

A single draw from numpy costs mostly its call overhead (about a microsecond), and a
fleet-year of 10,000 hosts draws millions of durations. `Draws` keeps, for each
distribution in use, a block of draws made with one vectorised call and hands them out
one by one. The stream stays a pure function of the seed: the same calls in the same
order give the same values.
"""

from __future__ import annotations

import numpy as np

from twin.config.distributions import Distribution

BLOCK = 256


class Draws:
    """Durations and coin flips drawn ahead from one generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._pools: dict[int, list[float]] = {}  # by id: hashing a distribution costs more
        self._kept: list[Distribution] = []  # ...so keep each alive: its id stays its own
        self._uniform: list[float] = []

    def sample(self, dist: Distribution) -> float:
        """One draw of ``dist``, in hours."""
        try:
            return self._pools[id(dist)].pop()
        except (KeyError, IndexError):  # a distribution's first draw, or its block is used up
            pool = self._pools.get(id(dist))
            if pool is None:
                self._kept.append(dist)
                pool = self._pools[id(dist)] = []
            pool.extend(dist.sample_many(self.rng, BLOCK).tolist())
            return pool.pop()

    def uniform(self) -> float:
        """One draw, uniform in [0, 1)."""
        if not self._uniform:
            self._uniform = self.rng.random(BLOCK).tolist()
        return self._uniform.pop()

    def chance(self, probability: float) -> bool:
        """True with the given probability."""
        return self.uniform() < probability
