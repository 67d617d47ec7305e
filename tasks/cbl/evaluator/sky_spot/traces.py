"""Spot traces: loading published windows, and a generator fitted to the public traces.

Published window format (``cbl-windows``, ``cbl-multi-windows``):
``{"metadata": {"gap_seconds": G, ...}, "data": [0|1, ...], "prices": [float, ...]?}`` where
``data[t] == 1`` means spot is NOT available at tick t. Here a trace is a list of bools,
True when spot IS available.

Generator model (parameters in ``sky_spot/data/*.json``, fitted by the task's
``fit_traces.py``): each zone alternates available and unavailable spells whose lengths are
drawn from that zone's empirical spell lengths. Zones of one cloud region (us-east-1, ...)
are coupled by a shared region outage process (spells where every zone of the region was
out at once, with their empirical lengths); a zone is available when its own process says so
and the region is not in an outage. A window's spot price in a zone is one level drawn from
the zone's fitted price levels.
"""
from __future__ import annotations

import json
import random
from operator import not_
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


def load_window(path) -> tuple[list[bool], list[float] | None, float]:
    """(available per tick, per-tick spot prices or None, gap seconds) of one window file."""
    raw = json.loads(Path(path).read_text())
    avail = list(map(not_, raw["data"]))  # [not x for x in data], without a Python loop
    return avail, raw.get("prices"), float(raw["metadata"]["gap_seconds"])


def spells(avail: list[bool]) -> tuple[list[int], list[int]]:
    """Lengths of the available spells and of the unavailable spells, in ticks."""
    up, down = [], []
    if not avail:
        return up, down
    cur, n = avail[0], 0
    for a in avail:
        if a == cur:
            n += 1
        else:
            (up if cur else down).append(n)
            cur, n = a, 1
    (up if cur else down).append(n)
    return up, down


def _renewal(rng: random.Random, length: int, up: list[int], down: list[int],
             p_up: float) -> list[bool]:
    """Alternating renewal process of ``length`` ticks, started at a random point of a spell."""
    out: list[bool] = []
    if not up:
        return [False] * length
    if not down:
        return [True] * length
    state = rng.random() < p_up
    # start inside a spell: length-biased pick, then a uniform offset into it
    pool = up if state else down
    first = max(rng.choice(pool) for _ in range(2))
    n = rng.randint(1, first)
    while len(out) < length:
        out.extend([state] * n)
        state = not state
        n = rng.choice(up if state else down)
    return out[:length]


class Generator:
    """Draws aligned windows for a list of zones from fitted parameters."""

    def __init__(self, params: dict):
        self.params = params
        self.gap_seconds = float(params["gap_seconds"])

    @classmethod
    def load(cls, name: str) -> "Generator":
        return cls(json.loads((DATA / f"{name}.json").read_text()))

    def window(self, zones: list[str], seed: int, length: int):
        """(avail per zone, spot price level per zone) for one window; deterministic in seed."""
        zp = self.params["zones"]
        outages: dict[str, list[bool]] = {}
        avail, prices = [], []
        for z in zones:
            if z not in zp:
                raise KeyError(f"no fitted parameters for zone {z!r}; known: {sorted(zp)}")
            p = zp[z]
            region = p.get("region")
            rp = self.params.get("regions", {}).get(region)
            if rp is not None and region not in outages:
                outages[region] = _renewal(random.Random(f"{seed}:{region}"), length,
                                           rp["outage_spells"], rp["clear_spells"],
                                           rp["outage_fraction"])
            rng = random.Random(f"{seed}:{z}")
            own = _renewal(rng, length, p["up_spells"], p["down_spells"], p["up_fraction"])
            if rp is not None:
                out = outages[region]
                own = [a and not o for a, o in zip(own, out)]
            avail.append(own)
            levels = p.get("price_levels")
            prices.append(float(rng.choice(levels)) if levels else None)
        return avail, prices
