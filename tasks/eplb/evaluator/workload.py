"""Synthetic MoE expert-load traces (the published load file is not reachable offline).

A trace is an int64 array ``[K, layers, experts]``: the summed token->expert
routing counts of K consecutive windows of REBALANCE_INTERVAL steps. The model,
per layer, is:

* skew: log-popularity ``mu[e] = group_sigma*N(0,1)[group(e)] + sigma_l*N(0,1)``
  with ``sigma_l`` drawn per layer (some layers flat, some very skewed);
* drift: each window the log-popularity moves as an AR(1) around ``mu``
  (``rho`` per trace, innovation ``drift``), so window i predicts i+1 only partly;
* hot swaps: with probability ``swap_p`` per layer and window a currently hot
  expert trades places with a random one (a sudden traffic mix change);
* zero-load experts: a few experts per layer are dead for the whole trace and a
  few go dormant (load exactly 0) for a run of windows and later come back;
* volume: window token totals vary (x0.6..x1.4); the last window may be partial;
* counts: Poisson(tokens * top_k * p) per expert (sum of per-step counts).

``windows_from_history`` turns the published ``expert-load.json`` layout into the
same array, when a real file is supplied with --data.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REBALANCE_INTERVAL = 100  # steps summed into one window (as published)


@dataclass(frozen=True)
class TraceSpec:
    name: str
    seed: int
    num_layers: int
    num_windows: int
    num_experts: int = 256
    tokens_per_step: int = 4096
    top_k: int = 8
    drift: float = 0.35
    rho: float = 0.9
    swap_p: float = 0.08
    partial_last: bool = True


def generate_windows(spec: TraceSpec) -> np.ndarray:
    rng = np.random.default_rng(spec.seed)
    L, E, K = spec.num_layers, spec.num_experts, spec.num_windows
    groups = 8
    gsize = E // groups
    sigma = rng.uniform(0.3, 1.0, size=(L, 1))
    group_eff = np.repeat(rng.normal(0.0, 0.15, size=(L, groups)), gsize, axis=1)
    mu = group_eff + sigma * rng.normal(0.0, 1.0, size=(L, E))
    x = mu + rng.normal(0.0, spec.drift, size=(L, E))
    alive = np.ones((L, E), dtype=bool)
    dead = rng.random((L, E)) < 0.01
    out = np.zeros((K, L, E), dtype=np.int64)
    dormant_left = np.zeros((L, E), dtype=np.int64)
    inno = spec.drift * np.sqrt(1.0 - spec.rho**2)
    for w in range(K):
        if w > 0:
            x = mu + spec.rho * (x - mu) + rng.normal(0.0, inno, size=(L, E))
            # hot swaps: a top-8 expert trades popularity with a random expert
            for layer in np.flatnonzero(rng.random(L) < spec.swap_p):
                hot = int(rng.choice(np.argsort(x[layer])[-8:]))
                other = int(rng.integers(E))
                x[layer, [hot, other]] = x[layer, [other, hot]]
                mu[layer, [hot, other]] = mu[layer, [other, hot]]
            # dormancy: a few cold experts go silent for 1..4 windows
            start = (rng.random((L, E)) < 0.004) & (dormant_left == 0)
            dormant_left[start] = rng.integers(1, 5, size=int(start.sum()))
        alive = ~dead & (dormant_left == 0)
        p = np.exp(x - x.max(axis=1, keepdims=True)) * alive
        p /= p.sum(axis=1, keepdims=True)
        steps = REBALANCE_INTERVAL
        if spec.partial_last and w == K - 1:
            steps = int(rng.integers(REBALANCE_INTERVAL // 4, REBALANCE_INTERVAL))
        tokens = spec.tokens_per_step * steps * rng.uniform(0.6, 1.4)
        out[w] = rng.poisson(tokens * spec.top_k * p)
        dormant_left = np.maximum(dormant_left - 1, 0)
    return out


def windows_from_history(history: list[list[list[float]]], interval: int = REBALANCE_INTERVAL) -> np.ndarray:
    """Sum consecutive chunks of ``interval`` steps of a [steps][layers][experts] history."""
    arr = np.asarray(history, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise ValueError(f"load history must be [steps][layers][experts], got shape {arr.shape}")
    chunks = [arr[i:i + interval].sum(axis=0) for i in range(0, arr.shape[0], interval)]
    wins = np.stack(chunks)
    if np.all(wins == np.round(wins)):
        return wins.astype(np.int64)
    return wins


def load_expert_load_json(path: Path) -> np.ndarray:
    doc = json.loads(Path(path).read_text())
    history = [entry["logical_expert_load"] for entry in doc["load_history"]]
    return windows_from_history(history)


def trace_stats(w: np.ndarray) -> dict[str, float]:
    """Statistics to compare a synthetic trace with a real one."""
    w = w.astype(np.float64)
    full = w[:-1] if w.shape[0] > 2 else w
    mean = full.mean(axis=2, keepdims=True)
    cv = (full.std(axis=2, keepdims=True) / np.maximum(mean, 1e-12)).mean()
    srt = np.sort(full, axis=2)[..., ::-1]
    top8 = (srt[..., :8].sum(axis=2) / np.maximum(srt.sum(axis=2), 1e-12)).mean()
    share = w / np.maximum(w.sum(axis=2, keepdims=True), 1e-12)
    a, b = share[:-1].reshape(-1, w.shape[2]), share[1:].reshape(-1, w.shape[2])
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    lag1 = float(np.mean((a * b).sum(1) / np.maximum(np.sqrt((a * a).sum(1) * (b * b).sum(1)), 1e-12)))
    return {
        "windows": float(w.shape[0]),
        "layers": float(w.shape[1]),
        "experts": float(w.shape[2]),
        "cv_mean": float(cv),
        "top8_share": float(top8),
        "lag1_corr": lag1,
        "zero_frac": float((w == 0).mean()),
    }
