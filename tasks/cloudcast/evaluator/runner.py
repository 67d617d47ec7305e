#!/usr/bin/env python3
"""Runs the candidate's ``search_algorithm`` in its own process (started by evaluate.py).

Usage: python runner.py JOB.json OUT.jsonl

JOB.json: {"worktree": ..., "data": dir or "", "instances": [{"name", "src", "dsts",
"num_partitions"}, ...]}. Writes one JSON line per finished step to OUT.jsonl, flushed:
first {"import_s": t} or {"import_error": text}, then per instance {"name", "paths"
| "error", "search_s"}. ``paths`` holds only node names ([u, v] per hop); evaluate.py
checks and prices them against its own graph, so nothing this process computes is trusted.
"""
from __future__ import annotations

import json
import sys
import time
import traceback


def _tail(exc: BaseException, lines: int = 8) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    return "\n".join(text.splitlines()[-lines:])


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


def main(argv: list[str]) -> int:
    job = json.loads(open(argv[0]).read())
    out = open(argv[1], "a", buffering=1)
    here = sys.path[0]
    import graph  # the evaluator's graph loader, before the candidate is on sys.path

    base = graph.to_networkx(graph.edge_table(graph.load_rows(job["data"] or None)))
    sys.path.insert(0, job["worktree"])
    sys.path.remove(here)  # the candidate must not import the evaluator's modules by accident
    t0 = time.perf_counter()
    try:
        import importlib

        search = importlib.import_module("cloudcast.search")
        fn = getattr(search, "search_algorithm")
    except BaseException as exc:  # noqa: BLE001 - candidate code: report, never crash silently
        out.write(json.dumps({"import_error": f"{type(exc).__name__}: {exc}\n{_tail(exc)}"}) + "\n")
        return 0
    out.write(json.dumps({"import_s": time.perf_counter() - t0}) + "\n")
    for inst in job["instances"]:
        g = base.copy()  # a fresh copy per instance: mutations do not carry over
        t1 = time.perf_counter()
        try:
            topo = fn(inst["src"], list(inst["dsts"]), g, inst["num_partitions"])
            rec = {"paths": export_paths(topo, inst["dsts"], inst["num_partitions"])}
        except BaseException as exc:  # noqa: BLE001 - candidate code, incl. SystemExit
            if isinstance(exc, KeyboardInterrupt):
                raise
            rec = {"error": f"{type(exc).__name__}: {exc}\n{_tail(exc)}"}
        rec["name"] = inst["name"]
        rec["search_s"] = time.perf_counter() - t1
        out.write(json.dumps(rec) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
