"""Online bin-packing policy.

Items arrive one at a time. For each item the evaluator calls
``choose_bin(item, remaining)`` where ``remaining`` is a float array with the
remaining capacity of every open bin (possibly empty; full bins stay in the
array with remaining 0). Return the index of the bin to place the item in, or
``len(remaining)`` (or -1) to open a new bin.

The baseline scores each bin that fits with ``priority`` and picks the argmax.
With the default constants below the policy is exactly *best fit*: the bin
left with the smallest gap wins (ties go to the oldest bin).
"""
from __future__ import annotations

import numpy as np

# Weight of the leftover gap (remaining - item). Positive => prefer tight fits.
WASTE_WEIGHT = 1.0
# Penalty for leaving a small, probably unusable gap (0 < gap < SMALL_GAP),
# expressed as a multiple of SMALL_GAP (so it is comparable to the waste term).
SMALL_GAP_PENALTY = 0.0
# Gaps strictly below this size (same units as item sizes) count as "small".
SMALL_GAP = 20.0
# Bonus for leaving enough room for another item of the same size (gap >= item).
ROOM_BONUS = 0.0
# Tolerance used to decide fit / exact fill.
EPS = 1e-9


def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Score every candidate bin (all of which fit the item); higher is better."""
    gap = bins - item
    score = -WASTE_WEIGHT * gap
    small = (gap > EPS) & (gap < SMALL_GAP)
    score = score - (SMALL_GAP_PENALTY * SMALL_GAP) * small
    score = score + ROOM_BONUS * (gap >= item)
    return score


def choose_bin(item: float, remaining: np.ndarray) -> int:
    """Return the index of the open bin for ``item``, or len(remaining) for a new bin."""
    fits = np.flatnonzero(remaining >= item - EPS)
    if fits.size == 0:
        return len(remaining)
    scores = priority(item, remaining[fits])
    return int(fits[np.argmax(scores)])
