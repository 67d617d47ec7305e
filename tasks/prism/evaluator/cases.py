"""PRISM cases, KV-cache pressure, anchors and the exact optimum (all evaluator-side).

KVPR(GPU) = sum(req_rate / slo of its models) / (GPU_MEM_SIZE - sum of their sizes); a GPU
with no memory left counts as OVERFULL_KVPR (as published). Objective: min over placements
of the max KVPR over GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GPU_MEM_SIZE = 80  # GB
OVERFULL_KVPR = 1_000_000.0


@dataclass
class Model:
    model_name: str
    model_size: int
    req_rate: int
    slo: int
    cur_gpu_id: int


@dataclass(frozen=True)
class Case:
    gpu_num: int
    sizes: tuple[int, ...]
    rates: tuple[int, ...]
    slos: tuple[int, ...]

    def models(self) -> list[Model]:
        return [Model(f"model_{j}", s, r, o, j)
                for j, (s, r, o) in enumerate(zip(self.sizes, self.rates, self.slos))]


def generate(seed: int, num: int, gpus=(5, 10), per_gpu=2, size=(10, 30), rate=(1, 10),
             slo=(5, 10)) -> list[Case]:
    """Cases drawn like the published evaluator (numpy randint, upper bounds exclusive).

    With the defaults and seed 42, num 50 this is exactly the published case list: the
    global np.random.seed(42) stream and RandomState(42) give the same draws.
    """
    rs = np.random.RandomState(seed)
    out = []
    for _ in range(num):
        g = int(rs.randint(*gpus))
        sizes, rates, slos = [], [], []
        for _ in range(g * per_gpu):
            sizes.append(int(rs.randint(*size)))
            rates.append(int(rs.randint(*rate)))
            slos.append(int(rs.randint(*slo)))
        out.append(Case(g, tuple(sizes), tuple(rates), tuple(slos)))
    return out


def max_kvpr(case: Case, groups: list[list[int]]) -> float:
    worst = float("-inf")
    for idx in groups:
        used = sum(case.sizes[i] for i in idx)
        load = sum(case.rates[i] / case.slos[i] for i in idx)
        kv = load / (GPU_MEM_SIZE - used) if GPU_MEM_SIZE - used > 0 else OVERFULL_KVPR
        worst = max(worst, kv)
    return worst


def round_robin(case: Case) -> list[list[int]]:
    groups: list[list[int]] = [[] for _ in range(case.gpu_num)]
    for i in range(len(case.sizes)):
        groups[i % case.gpu_num].append(i)
    return groups


def lower_bound(case: Case) -> float:
    free = case.gpu_num * GPU_MEM_SIZE - sum(case.sizes)
    load = sum(r / o for r, o in zip(case.rates, case.slos))
    return load / free if free > 0 else 0.0


def _pack(case: Case, t: float, node_cap: int) -> list[list[int]] | None | bool:
    """A placement with max KVPR <= t, None if there is none, False if the search gave up.

    KVPR <= t on a GPU  <=>  sum(a_i + t * s_i) <= t * GPU_MEM_SIZE: bin packing.
    """
    n, g = len(case.sizes), case.gpu_num
    a = [r / o for r, o in zip(case.rates, case.slos)]
    w = [a[i] + t * case.sizes[i] for i in range(n)]
    cap = t * GPU_MEM_SIZE * (1 + 1e-12)
    order = sorted(range(n), key=lambda i: -w[i])
    if w[order[0]] > cap or sum(w) > g * cap:
        return None
    loads = [0.0] * g
    bins: list[list[int]] = [[] for _ in range(g)]
    suffix = [0.0] * (n + 1)
    for k in range(n - 1, -1, -1):
        suffix[k] = suffix[k + 1] + w[order[k]]
    nodes = 0

    def dfs(k: int) -> bool:
        nonlocal nodes
        nodes += 1
        if nodes > node_cap:
            raise TimeoutError
        if k == n:
            return True
        if suffix[k] > sum(cap - x for x in loads) + 1e-12:
            return False
        i = order[k]
        tried = set()
        for b in sorted(range(g), key=lambda b: -loads[b]):
            key = round(loads[b], 9)
            if key in tried or loads[b] + w[i] > cap:
                continue
            tried.add(key)
            loads[b] += w[i]
            bins[b].append(i)
            if dfs(k + 1):
                return True
            bins[b].pop()
            loads[b] -= w[i]
        return False

    try:
        return [list(b) for b in bins] if dfs(0) else None
    except TimeoutError:
        return False


def exact_optimum(case: Case, upper: list[list[int]], node_cap: int = 2_000_000) -> tuple[float, bool]:
    """(min max-KVPR, proven): repeatedly ask for a placement strictly better than the best.

    ``upper`` is any valid placement. Each success improves the incumbent; the first
    "no placement" answer proves it optimal (to a relative 1e-9). ``proven`` is False when
    a search hit ``node_cap``; the value is then the best placement found.
    """
    best = max_kvpr(case, upper)
    while True:
        got = _pack(case, best * (1 - 1e-9), node_cap)
        if got is None:
            return best, True
        if got is False:
            return best, False
        best = max_kvpr(case, got)
