"""Generators of TXN workloads in the three published shapes (JSON strings like the data).

- ``ycsb``: like published workload 1: every transaction has 16 operations on distinct keys;
  keys 1-4 appear in every transaction, the other 12 are drawn with Zipf popularity
  (exponent ZIPF_S) from keys 5..MAX_KEY; each operation reads with probability READ_P,
  else writes. Every key has a preferred place in a transaction (a random anchor in [0, 1));
  operations are ordered by anchor plus Gaussian noise (POS_NOISE), as in the published data.
- ``hotspot``: like workload 2: n/2 long transactions ``r-a r-b w-b`` + 18 ``*`` and n/2 short
  ones ``r-a w-a r-b w-b *``, a in 1..4, b in 10a..10a+10.
- ``pipeline``: like workload 3: ``r-x`` + 7 ``*`` + ``w-y``; the first half reads x in 1..5 and
  writes y in 6..10, the second half the other way round.
"""

from __future__ import annotations

import json

import numpy as np

ZIPF_S = 1.8
MAX_KEY = 5270
READ_P = 0.445
OPS_PER_TXN = 16
HOT_KEYS = 4
POS_NOISE = 0.05


def _dump(txns: list[str]) -> str:
    return json.dumps({f"txn{i}": t for i, t in enumerate(txns)})


def ycsb(n: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    tail = np.arange(HOT_KEYS + 1, MAX_KEY + 1)
    p = (tail - HOT_KEYS).astype(float) ** -ZIPF_S
    p /= p.sum()
    anchor = {int(k): float(u) for k, u in zip(np.arange(1, MAX_KEY + 1), rng.random(MAX_KEY))}
    txns = []
    for _ in range(n):
        keys = list(range(1, HOT_KEYS + 1))
        keys += [int(k) for k in rng.choice(tail, size=OPS_PER_TXN - HOT_KEYS, replace=False, p=p)]
        keys.sort(key=lambda k: anchor[k] + rng.normal(0.0, POS_NOISE))
        ops = [("r" if rng.random() < READ_P else "w") + f"-{k}" for k in keys]
        txns.append(" ".join(ops))
    return _dump(txns)


def hotspot(n: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    txns = []
    for i in range(n):
        a = int(rng.integers(1, 5))
        b = int(rng.integers(10 * a, 10 * a + 11))
        if i < n // 2:
            txns.append(" ".join([f"r-{a}", f"r-{b}", f"w-{b}"] + ["*"] * 18))
        else:
            txns.append(f"r-{a} w-{a} r-{b} w-{b} *")
    return _dump(txns)


def pipeline(n: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    txns = []
    for i in range(n):
        lo, hi = (1, 6) if i < n // 2 else (6, 1)
        x = int(rng.integers(lo, lo + 5))
        y = int(rng.integers(hi, hi + 5))
        txns.append(" ".join([f"r-{x}"] + ["*"] * 7 + [f"w-{y}"]))
    return _dump(txns)


GENERATORS = {"ycsb": ycsb, "hotspot": hotspot, "pipeline": pipeline}
