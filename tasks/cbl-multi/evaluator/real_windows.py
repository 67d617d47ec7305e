"""The real spot traces this evaluator ships, and the windows quick/full/test draw from them.

`traces/aws-02-15-2023.json.gz` (written by ../pack_traces.py) holds the public 45-day traces
of the 9 zones (skypilot-org/spot-traces, NSDI'24; 20,158 ticks of 195 s) with per-tick spot
prices taken from the published ADRS windows. The timeline is cut into `BLOCKS` consecutive
blocks; `full` draws its windows from the even blocks and the held-out `test` from the odd
ones, so no tick of a test window is in a full window, and both stages see every part of the
45 days (availability drifts over weeks). A window lies wholly inside its block; its name is
its first tick in the raw trace.
"""
from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

FILE = Path(__file__).resolve().parent / "traces" / "aws-02-15-2023.json.gz"
BLOCKS = 8
PER_BLOCK = 3  # windows per block, evenly spaced from the block's first possible start to its last


@functools.cache
def _zones() -> dict:
    return json.loads(gzip.decompress(FILE.read_bytes()))


def ticks() -> int:
    return _zones()["ticks"]


def starts(parity: int, length: int, per_block: int = PER_BLOCK) -> list[int]:
    """First ticks of the windows in blocks 0, 2, 4, ... (parity 0) or 1, 3, 5, ... (parity 1)."""
    n = ticks()
    size = n // BLOCKS
    span = size - length  # last possible start within a block, from its first tick
    assert span >= 0, (size, length)
    out = []
    for b in range(parity, BLOCKS, 2):
        for j in range(per_block):
            out.append(b * size + (round(j * span / (per_block - 1)) if per_block > 1 else 0))
    return out


@functools.cache
def _zone(zone: str) -> tuple[list[bool], list[float]]:
    z = _zones()["zones"][zone]
    avail = [c == "1" for c in z["available"]]
    prices = [0.0] * len(avail)
    changes = z["prices"] + [[len(avail), None]]
    for (k, p), (nxt, _) in zip(changes, changes[1:]):
        prices[k:nxt] = [p] * (nxt - k)
    return avail, prices


def window(zone: str, start: int, length: int) -> tuple[list[bool], list[float]]:
    """(spot available per tick, spot $/h per tick) of `zone` from tick `start`."""
    avail, prices = _zone(zone)
    if start < 0 or start + length > len(avail):
        raise ValueError(f"window {start}+{length} outside the {len(avail)}-tick trace")
    return avail[start:start + length], prices[start:start + length]
