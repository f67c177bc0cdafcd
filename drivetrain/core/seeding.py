"""Seeding without global state: every random component owns a ``numpy.random.Generator``."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Seed", "as_generator", "generator_state", "set_generator_state", "spawn_seeds"]

Seed = int | np.random.Generator | np.random.SeedSequence | None


def as_generator(seed: Seed) -> np.random.Generator:
    """A generator from an int, a SeedSequence, an existing generator (returned as is) or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def spawn_seeds(seed: int | None, n: int) -> list[int]:
    """``n`` independent 32-bit seeds derived from ``seed`` (random if ``seed`` is None)."""
    ss = np.random.SeedSequence(seed)
    return [int(s.generate_state(1)[0]) for s in ss.spawn(n)]


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """A picklable snapshot of a generator's state."""
    return dict(rng.bit_generator.state)


def set_generator_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    """Restores a snapshot taken by :func:`generator_state`."""
    rng.bit_generator.state = state
