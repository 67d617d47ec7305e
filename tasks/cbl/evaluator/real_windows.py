"""The real spot traces this evaluator ships, and the windows quick/full/test draw from them.

`traces/aws-10-26-2022.json.gz` (written by ../pack_traces.py) holds the public traces of the
8 single-region environments (skypilot-org/spot-traces, NSDI'24; us-west-2a/2b, K80/V100,
1/8 GPUs; 3,895 ticks of 600 s, 27 days). The timeline is cut into `BLOCKS` consecutive blocks;
`full` draws its windows from the even blocks and the held-out `test` from the odd ones, so no
tick of a test window is in a full window, and both stages see every part of the 27 days. A
window lies wholly inside its block; its name is its first tick in the raw trace.
"""
from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

FILE = Path(__file__).resolve().parent / "traces" / "aws-10-26-2022.json.gz"
BLOCKS = 6
PER_BLOCK = 2  # windows per block, evenly spaced from the block's first possible start to its last


@functools.cache
def _data() -> dict:
    return json.loads(gzip.decompress(FILE.read_bytes()))


def ticks() -> int:
    return _data()["ticks"]


def starts(parity: int, length: int, per_block: int = PER_BLOCK) -> list[int]:
    """First ticks of the windows in blocks 0, 2, 4, ... (parity 0) or 1, 3, 5, ... (parity 1)."""
    size = ticks() // BLOCKS
    span = size - length  # last possible start within a block, from its first tick
    assert span >= 0, (size, length)
    return [b * size + (round(j * span / (per_block - 1)) if per_block > 1 else 0)
            for b in range(parity, BLOCKS, 2) for j in range(per_block)]


@functools.cache
def _env(env: str) -> list[bool]:
    return [c == "1" for c in _data()["envs"][env]]


def window(env: str, start: int, length: int) -> list[bool]:
    """Spot available per tick in `env` from tick `start`."""
    avail = _env(env)
    if start < 0 or start + length > len(avail):
        raise ValueError(f"window {start}+{length} outside the {len(avail)}-tick trace")
    return avail[start:start + length]
