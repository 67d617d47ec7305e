"""Seeded instance generator for the online bin-packing task (sealed).

Two OR-Library / FunSearch style families:
  * "or":      uniform integer sizes in [20, 100], capacity 150
  * "weibull": Weibull(shape=3, scale=45) sizes, rounded and clipped to [1, 100], capacity 100
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Instance:
    name: str
    family: str
    capacity: float
    items: np.ndarray  # float64, arrival order

    @property
    def l1(self) -> int:
        return int(np.ceil(self.items.sum() / self.capacity - 1e-9))


def make_or(n: int, seed: int) -> Instance:
    rng = np.random.default_rng(seed)
    items = rng.integers(20, 100, size=n, endpoint=True).astype(np.float64)
    return Instance(f"or_{n}_s{seed}", "or", 150.0, items)


def make_weibull(n: int, seed: int) -> Instance:
    rng = np.random.default_rng(seed)
    raw = rng.weibull(3.0, size=n) * 45.0
    items = np.clip(np.rint(raw), 1, 100).astype(np.float64)
    return Instance(f"weibull_{n}_s{seed}", "weibull", 100.0, items)


# (family, n_items, seed) per stage. test seeds are offset by 10_000 and never shown.
_QUICK = [("or", 120, 1), ("or", 250, 2), ("weibull", 300, 1), ("weibull", 500, 2)]
_FULL = (
    [("or", 120, s) for s in (1, 2)]
    + [("or", n, s) for n in (250, 500, 1000) for s in (1, 2, 3)]
    + [("weibull", 1000, s) for s in (1, 2)]
    + [("weibull", 2000, s) for s in (3, 4)]
    + [("weibull", 5000, s) for s in (5, 6)]
)
TEST_SEED_OFFSET = 10_000
_TEST = [(fam, n, s + TEST_SEED_OFFSET) for fam, n, s in _FULL]

_MAKERS = {"or": make_or, "weibull": make_weibull}


def stage_specs(stage: str):
    try:
        return {"quick": _QUICK, "full": _FULL, "test": _TEST}[stage]
    except KeyError:
        raise ValueError(f"unknown stage {stage!r} (expected quick, full or test)") from None


def stage_instances(stage: str) -> list[Instance]:
    return [_MAKERS[fam](n, seed) for fam, n, seed in stage_specs(stage)]
