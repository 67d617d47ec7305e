"""The candidate's side of cloudcast: runs ``search_algorithm`` inside the jail (adrs_eval.candidate).

Protocol (JSON lines over the kit's pipe): the evaluator sends one message
{"edges": [[u, v, cost, throughput], ...], "instances": [{"src", "dsts", "num_partitions"}, ...]}
(the region graph and the broadcasts, nothing else). This side answers {"import_s": t} or
{"import_error": text}, then per instance, in order, {"paths", "search_s"} or {"error",
"search_s"}. ``paths`` holds only node names ([u, v] per hop); the evaluator checks and prices
them against its own graph, so nothing computed here is trusted.
"""
from __future__ import annotations

import time

from adrs_eval.side import channel, describe, load_candidate


def to_networkx(edges: list):
    """A fresh nx.DiGraph with edge attributes ``cost`` and ``throughput``, edges in order."""
    import networkx as nx

    g = nx.DiGraph()
    for s, d, c, t in edges:
        g.add_edge(s, d, cost=c, throughput=t)
    return g


def _node(x):
    return x if type(x) is str else {"not_a_string": f"{type(x).__name__} {x!r:.60}"}


def export_paths(topo, dsts: list[str], num_partitions: int):
    """Plain JSON of a topology's paths: {dst: {"p": [[u, v], ...]}} (node names only)."""
    paths = topo if isinstance(topo, dict) else getattr(topo, "paths", None)
    if not isinstance(paths, dict):
        raise TypeError(f"search_algorithm returned {type(topo).__name__}; expected a BroadCastTopology "
                        "(an object with a .paths dict)")
    out = {}
    for dst in dsts:
        per = paths.get(dst)
        if not isinstance(per, dict):
            out[dst] = None
            continue
        out[dst] = {}
        for p in range(num_partitions):
            hops = per.get(str(p), per.get(p))
            if not isinstance(hops, (list, tuple)):
                out[dst][str(p)] = None
                continue
            row = []
            for hop in hops:
                if isinstance(hop, (list, tuple)) and len(hop) >= 2:
                    row.append([_node(hop[0]), _node(hop[1])])
                else:
                    row.append({"bad_hop": f"{hop!r:.80}"})
            out[dst][str(p)] = row
    return out


def search(fn, base, inst: dict) -> dict:
    g = base.copy()  # a fresh copy per instance: mutations do not carry over
    t1 = time.perf_counter()
    try:
        topo = fn(inst["src"], list(inst["dsts"]), g, inst["num_partitions"])
        rec = {"paths": export_paths(topo, inst["dsts"], inst["num_partitions"])}
    except BaseException as exc:  # noqa: BLE001 - candidate code, incl. SystemExit
        rec = {"error": describe(exc)}
    rec["search_s"] = time.perf_counter() - t1
    return rec


def main() -> None:
    chan = channel()
    job = chan.recv()
    if not isinstance(job, dict):
        return
    base = to_networkx(job["edges"])
    t0 = time.perf_counter()
    try:
        fn = load_candidate("cloudcast.search").search_algorithm
    except BaseException as exc:  # noqa: BLE001 - candidate code: report, never crash silently
        chan.send({"import_error": describe(exc)})
        return
    chan.send({"import_s": time.perf_counter() - t0})
    for inst in job["instances"]:
        chan.send(search(fn, base, inst))


if __name__ == "__main__":
    main()
