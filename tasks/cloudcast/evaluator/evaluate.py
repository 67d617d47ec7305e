#!/usr/bin/env python3
"""Sealed evaluator for the Cloudcast broadcast task.

Usage: python evaluate.py --stage {quick,full,test,leaderboard} --candidate WORKTREE [--data DIR]
                          [--time-limit-s S]

The candidate's ``cloudcast.search.search_algorithm`` runs in its own jailed process
(jail/runner.py, started with adrs_eval.candidate) that is handed the region graph and the
broadcasts over a pipe and reports only node names; this process checks every (destination,
partition) path against its own copy of the region graph and prices it with the published
simulator's rules (simulate.py). Hands ONE JSON result to the harness (adrs_eval.emit).

Score (quick/full/test): 100 x mean over instances of (reference cost / candidate cost), where
the reference is the published baseline (cheapest path per destination); an instance that
fails, times out or returns an invalid topology counts 0. Score (leaderboard): the published
100 x (1199.00 - clamp(total $, 626.24, 1199.00)) / (1199.00 - 626.24) over the five published
configurations, with the raw total in the metrics.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import graph
import instances as inst_mod
from simulate import TopologyError, check_paths, reference_paths, simulate

from adrs_eval import invalid, result
from adrs_eval.candidate import CandidateError, CandidateTimeout, start
from adrs_eval.cli import Args, parser, run

HERE = Path(__file__).resolve().parent
DEFAULT_TIME_LIMIT_S = 120.0  # the candidate's whole stage (import + every search)
LB_WORST, LB_BEST = 1199.00, 626.24


def leaderboard_score(total: float) -> float:
    clamped = max(min(total, LB_WORST), LB_BEST)
    return 100.0 * (LB_WORST - clamped) / (LB_WORST - LB_BEST)


def _job(table: dict, insts: list) -> dict:
    """What the candidate may see: the region graph and each broadcast (no instance names:
    generated ones carry their seeds)."""
    return {"edges": [[u, v, c, t] for (u, v), (c, t) in table.items()],
            "instances": [{"src": i.src, "dsts": list(i.dsts), "num_partitions": i.num_partitions}
                          for i in insts]}


def _seconds(x) -> float | None:
    """A time the candidate reported (for display only), if it is a plain finite number."""
    return float(x) if type(x) in (int, float) and 0 <= x < 1e9 else None


def collect(cand, n: int, deadline: float, time_limit: float) -> tuple[dict, list[dict], str]:
    """(the import record, one record per instance reached, a note if it stopped early)."""
    records: list[dict] = []
    head: dict | None = None
    try:
        while len(records) < n:
            left = max(deadline - time.perf_counter(), 0.001)
            msg = cand.recv(timeout=left)
            if not isinstance(msg, dict):
                raise CandidateError(f"the candidate process sent {type(msg).__name__}, not a record")
            if head is None:
                head = msg
                if "import_s" not in msg:
                    break
            else:
                records.append(msg)
    except CandidateTimeout:
        return head or {}, records, f"time limit of {time_limit:g} s exceeded (import + all searches)"
    except CandidateError as exc:
        return head or {}, records, str(exc)[:1500]
    return head or {}, records, ""


def evaluate(args: Args) -> dict:
    stage, worktree, data, time_limit = args.stage, args.candidate, args.data, args.time_limit_s
    t0 = time.perf_counter()
    if stage == "leaderboard" and not data:
        return invalid("stage leaderboard needs the published data: pass --data DIR (a folder with "
                       "config/*.json and profiles/cost.csv, profiles/throughput.csv)")
    rows = graph.load_rows(data if stage == "leaderboard" else None)
    table = graph.edge_table(rows)
    regions = sorted({u for u, _ in table} | {v for _, v in table})
    try:
        insts = inst_mod.stage_instances(stage, regions, data or None)
    except ValueError as exc:
        return invalid(str(exc))
    deadline = time.perf_counter() + time_limit
    try:
        with start(worktree, HERE / "jail" / "runner.py") as cand:
            cand.send(_job(table, insts), timeout=time_limit)
            # The reference costs are computed while the candidate runs.
            base = graph.to_networkx(table)
            refs = [simulate(i, check_paths(i, reference_paths(i, base), table), table) for i in insts]
            head, records, note = collect(cand, len(insts), deadline, time_limit)
    except CandidateError as exc:  # it could not start, or stopped reading its input
        return invalid(f"the candidate process failed: {exc}")
    if "import_error" in head:
        return invalid("importing cloudcast.search failed with " + str(head["import_error"])[:4000])
    if "import_s" not in head:
        return invalid("the candidate process reported nothing. " + (note or "(no output)"))

    metrics: dict[str, float] = {"import_s": round(_seconds(head["import_s"]) or 0.0, 4)}
    rows_out, errors = [], []
    ratios, total_cost, ref_total = [], 0.0, 0.0
    for k, (inst, ref) in enumerate(zip(insts, refs)):
        ref_total += ref.cost
        rec = records[k] if k < len(records) else None
        why = None
        if rec is None:
            why = note or "no result (the candidate process stopped before this instance)"
        elif "error" in rec:
            why = f"search_algorithm raised {str(rec['error'])[:2000]}"
        else:
            try:
                res = simulate(inst, check_paths(inst, rec.get("paths"), table), table)
            except TopologyError as exc:
                why = f"invalid topology: {exc}"
        if why is not None:
            errors.append(f"{inst.name}: {why}")
            ratios.append(0.0)
            rows_out.append((inst.name, None, ref.cost, None, None))
            continue
        ratio = ref.cost / res.cost
        ratios.append(ratio)
        total_cost += res.cost
        metrics[f"cost_usd_{inst.name}"] = round(res.cost, 4)
        metrics[f"time_s_{inst.name}"] = round(res.time_s, 3)
        rows_out.append((inst.name, res, ref.cost, ratio, _seconds(rec.get("search_s"))))
    metrics["n_instances"] = len(insts)
    metrics["n_failed"] = len(errors)
    metrics["total_cost_usd"] = round(total_cost, 4)
    metrics["reference_total_cost_usd"] = round(ref_total, 4)
    elapsed = time.perf_counter() - t0
    metrics["eval_s"] = round(elapsed, 3)

    table_txt = ["instance              cost_$   egress_$  vm_$   time_s  edges nodes  ref_$    ref/cost  search_s"]
    for name, res, ref_cost, ratio, search_s in rows_out:
        if res is None:
            table_txt.append(f"{name:<20} FAILED{'':<40}{ref_cost:8.2f}   0")
        else:
            table_txt.append(f"{name:<20} {res.cost:8.2f} {res.egress_cost:8.2f} {res.vm_cost:6.2f} "
                             f"{res.time_s:8.1f} {res.n_edges:5d} {res.n_nodes:5d} {ref_cost:8.2f} "
                             f"{ratio:8.4f} {float(search_s or 0):8.3f}")
    artifacts = {"instances": "\n".join(table_txt)}
    if errors:
        artifacts["errors"] = "\n\n".join(errors)

    if stage == "leaderboard":
        if errors:
            return invalid(f"{len(errors)} configuration(s) failed (the published evaluator aborts the whole "
                           f"run): " + errors[0][:1500], metrics, artifacts)
        score = leaderboard_score(total_cost)
        metrics["published_score"] = round(score, 4)
        # each configuration's share of the published score (an equal share of the worst
        # total, less its cost): they sum to the score before it is clamped to [0, 100]
        shares = {name: 100.0 * (LB_WORST / len(insts) - res.cost) / (LB_WORST - LB_BEST)
                  for name, res, *_ in rows_out}
        feedback = (f"leaderboard: total cost ${total_cost:.2f} over {len(insts)} published configurations "
                    f"-> published score {score:.2f} (100 at <= ${LB_BEST}, 0 at >= ${LB_WORST}; the score "
                    f"saturates, compare the raw dollars). Baseline: $1045.86 / 26.74.")
        return result(score, metrics=metrics, feedback=feedback, artifacts=artifacts,
                      instances=shares)

    score = 100.0 * sum(ratios) / len(ratios)
    ok = [r for r in rows_out if r[1] is not None]
    worst = sorted(ok, key=lambda r: r[3])[:3]
    worst_txt = "; ".join(f"{n}: ${r.cost:.2f} vs reference ${c:.2f}" for n, r, c, _, _ in worst)
    feedback = (f"stage {stage}: score {score:.3f} = 100 x mean(reference cost / your cost) over {len(insts)} "
                f"broadcasts (the published baseline, cheapest path per destination, scores 100; higher is "
                f"better). Your total ${total_cost:.2f} vs reference ${ref_total:.2f}. Least improved: "
                f"{worst_txt or '-'}. ")
    if errors:
        feedback += f"{len(errors)} instance(s) FAILED and count 0: {errors[0][:1500]} "
    feedback += ("Hint: egress $/GB dominates the cost; an edge carrying the same partition to several "
                 f"destinations is paid once. Time {elapsed:.2f}s.")
    # A failed instance counts 0 in the mean; the candidate stays valid while any instance works.
    if len(errors) == len(insts):
        return {"score": score, "valid": False, "metrics": metrics, "feedback": feedback,
                "artifacts": artifacts}
    return result(score, metrics=metrics, feedback=feedback, artifacts=artifacts,
                  instances={inst.name: 100.0 * ratio for inst, ratio in zip(insts, ratios)})


if __name__ == "__main__":
    sys.exit(run(evaluate, parser=parser(__doc__, time_limit_s=DEFAULT_TIME_LIMIT_S)))
