"""Abilene telemetry snapshots: demand matrices routed over the published paths, then bugs.

A snapshot is built in three steps, all from one `random.Random(seed)`:

1. Demands: a gravity model. total ~ lognormal(median 2530 Mbps, sigma 0.35) (the published
   40 Abilene rows: median total 2530, log-sd 0.35); each router's share of origination and
   termination is the published mean share (OUT_SHARE / IN_SHARE below, measured on
   evaluation_data.csv) times lognormal(0, 0.3), and every pair gets lognormal(0, 0.5) noise.
2. Routing: every demand follows its path in abilene_paths.json. With probability
   P_LINK_DOWN one link is down (both ends report status 'down', rate 0); demands whose path
   crosses it take the fewest-hop detour (demands with no detour are dropped). True counters:
   interface A_to_B has tx = load(A->B), rx = load(B->A); the customer-facing interface
   A_ext has rx = what A originates, tx = what A terminates, so every router conserves flow
   exactly: sum of rx = sum of tx over its interfaces.
3. Reports: every rate is multiplied by U(0.98, 1.02) (measurement noise, not a bug; the truth
   is the noise-free rate). Then one bug type, as published: dropped (each interface's rx and
   tx zeroed w.p. 0.2), scaled (each interface w.p. 0.2: rx and tx scaled independently by
   U(0.5, 0.8) or U(1.2, 1.5)), correlated_dropped / correlated_scaled (each router w.p. 0.2:
   all its interfaces). Status faults: w.p. P_STATUS_FAULT, one or two interfaces report the
   wrong status (an up interface says 'down', or a down one says 'up').
"""
from __future__ import annotations

import json
import math
import random
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUG_TYPES = ("dropped", "scaled", "correlated_dropped", "correlated_scaled")
ROUTERS = ("ATLAM5", "ATLAng", "CHINng", "DNVRng", "HSTNng", "IPLSng", "KSCYng", "LOSAng",
           "NYCMng", "SNVAng", "STTLng", "WASHng")
OUT_SHARE = (0.001, 0.049, 0.148, 0.086, 0.028, 0.08, 0.032, 0.134, 0.133, 0.031, 0.05, 0.227)
IN_SHARE = (0.003, 0.085, 0.157, 0.059, 0.125, 0.086, 0.036, 0.13, 0.113, 0.018, 0.066, 0.125)
TOTAL_LOG_MEAN, TOTAL_LOG_SD = math.log(2530.0), 0.35
SHARE_SD, PAIR_SD = 0.3, 0.5
NOISE = 0.02
BUG_PROB = 0.2
P_LINK_DOWN = 0.25
P_STATUS_FAULT = 0.3


def load_topology() -> tuple[list[tuple[str, str]], dict[tuple[str, str], list[str]]]:
    """(links as (a, b) name pairs, single path per ordered pair) from the shipped files."""
    topo = json.loads((HERE / "abilene_topology.json").read_text())
    names = {n["id"]: n["name"] for n in topo["nodes"]}
    links = [(names[e["source"]], names[e["target"]]) for e in topo["links"]]
    raw = json.loads((HERE / "abilene_paths.json").read_text())["paths"]
    paths = {}
    for s, per in raw.items():
        for d, options in per.items():
            best = max(options, key=lambda o: o["weight"])
            paths[(s, d)] = list(best["path"])
    return links, paths


LINKS, PATHS = load_topology()


@dataclass
class Snapshot:
    telemetry: dict  # what the candidate sees: {if_id: {interface_status, rx_rate, ...}}
    topology: dict  # {router: [if_id, ...]}
    truth: dict  # {if_id: {"rx_rate", "tx_rate", "interface_status"}}: never leaves the evaluator
    corrupted: set = field(default_factory=set)  # {(if_id, "rx_rate"|"tx_rate")} changed by a bug
    status_faults: set = field(default_factory=set)  # if_ids whose reported status is wrong
    bug_type: str = ""


def _detour(src: str, dst: str, down: set) -> list[str] | None:
    adj: dict[str, list[str]] = {r: [] for r in ROUTERS}
    for a, b in LINKS:
        if (a, b) not in down:
            adj[a].append(b)
            adj[b].append(a)
    prev, queue = {src: None}, deque([src])
    while queue:
        u = queue.popleft()
        if u == dst:
            path = [u]
            while prev[path[-1]] is not None:
                path.append(prev[path[-1]])
            return path[::-1]
        for v in sorted(adj[u]):
            if v not in prev:
                prev[v] = u
                queue.append(v)
    return None


def true_counters(demand: dict, down_link: tuple[str, str] | None) -> dict:
    """{if_id: (rx, tx)} for every link interface and every A_ext interface."""
    down = set() if down_link is None else {down_link, down_link[::-1]}
    load = {(a, b): 0.0 for a, b in LINKS} | {(b, a): 0.0 for a, b in LINKS}
    orig = {r: 0.0 for r in ROUTERS}
    term = {r: 0.0 for r in ROUTERS}
    for (s, d), v in demand.items():
        path = PATHS[(s, d)]
        if any((a, b) in down for a, b in zip(path, path[1:])):
            path = _detour(s, d, {down_link} if down_link else set())
            if path is None:
                continue
        for a, b in zip(path, path[1:]):
            load[(a, b)] += v
        orig[s] += v
        term[d] += v
    out = {}
    for a, b in LINKS:
        out[f"{a}_to_{b}"] = (load[(b, a)], load[(a, b)])
        out[f"{b}_to_{a}"] = (load[(a, b)], load[(b, a)])
    for r in ROUTERS:
        out[f"{r}_ext"] = (orig[r], term[r])
    return out


def demand_matrix(rng: random.Random) -> dict:
    total = rng.lognormvariate(TOTAL_LOG_MEAN, TOTAL_LOG_SD)
    out_w = [s * rng.lognormvariate(0.0, SHARE_SD) for s in OUT_SHARE]
    in_w = [s * rng.lognormvariate(0.0, SHARE_SD) for s in IN_SHARE]
    raw = {}
    for i, s in enumerate(ROUTERS):
        for j, d in enumerate(ROUTERS):
            if i != j:
                raw[(s, d)] = out_w[i] * in_w[j] * rng.lognormvariate(0.0, PAIR_SD)
    k = total / sum(raw.values())
    return {p: v * k for p, v in raw.items()}


def _scale(rng: random.Random) -> float:
    return rng.choice([rng.uniform(0.5, 0.8), rng.uniform(1.2, 1.5)])


def make_snapshot(seed: int, bug_type: str) -> Snapshot:
    rng = random.Random(seed)
    demand = demand_matrix(rng)
    down_link = rng.choice(LINKS) if rng.random() < P_LINK_DOWN else None
    true = true_counters(demand, down_link)
    down_ifs = set()
    if down_link:
        a, b = down_link
        down_ifs = {f"{a}_to_{b}", f"{b}_to_{a}"}
    telemetry, topology, truth = {}, {r: [] for r in ROUTERS}, {}
    for if_id in sorted(true):
        rx, tx = true[if_id]
        ext = if_id.endswith("_ext")
        local = if_id[:-4] if ext else if_id.split("_to_")[0]
        remote = None if ext else if_id.split("_to_")[1]
        status = "down" if if_id in down_ifs else "up"
        truth[if_id] = {"rx_rate": rx, "tx_rate": tx, "interface_status": status}
        telemetry[if_id] = {
            "interface_status": status,
            "rx_rate": rx * rng.uniform(1 - NOISE, 1 + NOISE),
            "tx_rate": tx * rng.uniform(1 - NOISE, 1 + NOISE),
            "connected_to": None if ext else f"{remote}_to_{local}",
            "local_router": local,
            "remote_router": remote,
        }
        topology[local].append(if_id)
    hit: list[str] = []
    if bug_type in ("dropped", "scaled"):
        hit = [i for i in telemetry if rng.random() < BUG_PROB]
    elif bug_type in ("correlated_dropped", "correlated_scaled"):
        hit = [i for r in ROUTERS if rng.random() < BUG_PROB for i in topology[r]]
    else:
        raise ValueError(f"unknown bug type {bug_type!r}")
    corrupted = set()
    for if_id in hit:
        for f in ("rx_rate", "tx_rate"):
            if bug_type.endswith("dropped"):
                telemetry[if_id][f] = 0.0
            else:
                telemetry[if_id][f] *= _scale(rng)
            if truth[if_id][f] > 0:
                corrupted.add((if_id, f))
    faults = set()
    if rng.random() < P_STATUS_FAULT:
        for if_id in rng.sample(sorted(telemetry), rng.choice([1, 2])):
            rep = telemetry[if_id]
            rep["interface_status"] = "up" if rep["interface_status"] == "down" else "down"
            faults.add(if_id)
    return Snapshot(telemetry, topology, truth, corrupted, faults, bug_type)


def make_stage(seed: int, n: int) -> list[Snapshot]:
    """n snapshots, bug types in turn, each from its own derived seed."""
    return [make_snapshot(seed * 1_000_003 + i, BUG_TYPES[i % 4]) for i in range(n)]
