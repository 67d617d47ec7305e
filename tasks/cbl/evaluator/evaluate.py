#!/usr/bin/env python3
"""Sealed evaluator for the single-region Can't-Be-Late task.

Usage: python evaluate.py --stage {quick,full,test,stress,published,leaderboard} --candidate WORKTREE
                          [--data DIR]
                          [--time-limit-s S]

The candidate's ``policy/strategy.py`` (a ``Strategy`` subclass or a leaderboard ``Solution``
file) runs in a jailed process of its own (``jail/side.py``); this process owns the traces,
the simulator (its own sealed copy of ``sky_spot``, in this folder) and the score, and steps
every run of a stage together, one tick at a time (``lockstep.py``): the policy process sees
each tick as the published ``env`` shows it and only sends decisions back.
quick/full/test use ``correct`` accounting on windows of the real traces shipped in
``traces/`` (``real_windows.py``: full and the held-out test are disjoint in time, and test
adds the two environments full never runs); ``stress`` on the trace generator's windows.
``leaderboard`` reproduces the published 1,080-run evaluation and ``published`` runs the same
1,080 runs under ``correct`` accounting; both need the published windows, ``--data`` (or
$ADRS_DATA, ``../shared/data/cbl-windows``).
The result goes to the harness through adrs_eval.emit (and stdout's last line).
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # this folder's sealed sky_spot, never a worktree's

import lockstep  # noqa: E402
import real_windows  # noqa: E402
from sky_spot import sim  # noqa: E402
from sky_spot.traces import Generator, load_window  # noqa: E402
from sky_spot.utils import COST_K  # noqa: E402

from adrs_eval import invalid  # noqa: E402
from adrs_eval.candidate import CandidateError, start  # noqa: E402
from adrs_eval.cli import Args, parser, run  # noqa: E402

if Path(sim.__file__).resolve().parent.parent != HERE:  # e.g. a worktree on PYTHONPATH
    raise SystemExit(f"sky_spot must be the evaluator's sealed copy, not {sim.__file__}")

CANDIDATE_S = 100.0  # the policy process's whole time for one stage (the task allows 120 s)
HOURS = 3600.0
GAP = 600.0
LENGTH = 554  # ticks per window (92.3 h)
OD_PRICE = 3.06
ENVS = ["us-west-2a_k80_8", "us-west-2b_k80_1", "us-west-2b_k80_8", "us-west-2a_v100_1",
        "us-west-2a_v100_8", "us-west-2b_v100_1"]
DEADLINES_H = [52.0, 70.0]
OVERHEADS_H = [0.02, 0.05, 0.10]
DURATION_H = 48.0
# the raw traces' two environments the published evaluation leaves out: `test` adds them
HELDOUT_ENVS = ["us-west-2a_k80_1", "us-west-2b_v100_8"]
FULL_STARTS = real_windows.starts(0, LENGTH)  # 6 windows in the even blocks of the 27 days
TEST_STARTS = real_windows.starts(1, LENGTH)  # 6 in the odd blocks
# our stages: (environments, trace source, indices: the real windows' first ticks or the
# generator's seeds). The leaderboard's and `published`'s runs are the published ones.
STAGES = {
    "quick": (ENVS[3:4], "real", FULL_STARTS[2:3]),
    "full": (ENVS, "real", FULL_STARTS),
    "test": (ENVS + HELDOUT_ENVS, "real", TEST_STARTS),
    "stress": (ENVS, "generated", range(0, 4)),
}
PUBLISHED = ("published", "leaderboard")  # stages on the published windows (--data)


OPT_FILE = HERE / "offline_opt.json"  # written by ../offline_opt.py


def opt_key(source: str, env_name: str, index: int, deadline_h: float, overhead_h: float) -> str:
    return f"{source}:{env_name}:{index}:{deadline_h:g}:{overhead_h:g}"


def trace_hash(avail: list[bool]) -> str:
    return hashlib.sha1(bytes(avail)).hexdigest()[:16]


def load_optima() -> dict:
    """Precomputed exact offline optima of our stages' runs ({} when the file is absent)."""
    if not OPT_FILE.is_file():
        return {}
    return json.loads(OPT_FILE.read_text())["runs"]


def leaderboard_indices(n: int = 300, k: int = 30) -> list[int]:
    """Published selection: files sorted by NAME, positions round(j*(n-1)/(k-1)), strictly rising."""
    names = sorted(f"{i}.json" for i in range(n))
    pos, last = [], -1
    for j in range(k):
        p = max(round(j * (n - 1) / (k - 1)), last + 1)
        pos.append(p)
        last = p
    return [int(names[p].split(".")[0]) for p in pos]


def evaluate(stage: str, worktree: Path, data: Path | None,
             time_limit_s: float = CANDIDATE_S) -> dict:
    if stage not in STAGES and stage not in PUBLISHED:
        return invalid(f"unknown stage {stage!r}; use {', '.join([*STAGES, *PUBLISHED])}")
    if data is not None and not data.is_dir():
        return invalid(f"--data {data}: no such folder")
    if stage in PUBLISHED and data is None:
        return invalid(f"the {stage} stage needs the published windows: "
                       "--data ../shared/data/cbl-windows")
    mode = "leaderboard" if stage == "leaderboard" else "correct"
    deadline = time.monotonic() + time_limit_s
    try:
        # started first: the policy process loads while the traces are made here
        with start(worktree, HERE / "jail" / "side.py", args=["single"]) as cand:
            plan = stage_plan(stage, data)
            if isinstance(plan, str):
                return invalid(plan)
            lockstep.hello(cand, deadline)
            rows = lockstep.run_batch(cand, [p["job"] for p in plan], gap=GAP, mode=mode,
                                      deadline=deadline)
    except lockstep.PolicyLoadError as exc:
        return invalid(f"loading policy/strategy.py failed: {exc}")
    except CandidateError as exc:
        return invalid(f"the policy process failed: {exc}")
    for p, r in zip(plan, rows):
        if "error" in r:  # any failed run makes the candidate invalid; the first is named
            return invalid(f"run {p['name']} failed: {r['error']}")
    return summarize(stage, mode, plan, rows)


def stage_plan(stage: str, data: Path | None) -> list[dict] | str:
    """The stage's runs in order (name, environment, deadline, and the lockstep job with its
    trace), or the reason a window cannot be used."""
    spot_price = OD_PRICE / COST_K
    if stage in PUBLISHED:
        envs, source, indices = ENVS, "published", leaderboard_indices()
    else:
        envs, source, indices = STAGES[stage]
    gen = Generator.load("single_envs") if source == "generated" else None
    optima = load_optima() if source != "published" else {}
    plan = []
    for env_name in envs:
        for idx in indices:
            if source == "published":
                avail, _, gap = load_window(data / env_name / f"{idx}.json")
                if gap != GAP:
                    return f"{env_name}/{idx}.json has gap {gap}, expected {GAP}"
            elif source == "real":
                avail = real_windows.window(env_name, idx, LENGTH)
            else:
                (avail,), _ = gen.window([env_name], idx, LENGTH)
            thash = trace_hash(avail) if optima else None
            for deadline_h in DEADLINES_H:
                for oh in OVERHEADS_H:
                    params = {"task_duration_hours": DURATION_H, "deadline_hours": deadline_h,
                              "restart_overhead_hours": [oh]}
                    job = lockstep.Job([avail], DURATION_H * HOURS, deadline_h * HOURS, oh * HOURS,
                                       [spot_price], OD_PRICE, [env_name], params)
                    got = optima.get(opt_key(source, env_name, idx, deadline_h, oh)) if optima else None
                    if got is not None and got["trace"] != thash:
                        got = None  # computed on another trace (e.g. the generator was re-fitted)
                    plan.append({"name": f"{env_name} #{idx} deadline {deadline_h:g} h "
                                         f"overhead {oh:g} h",
                                 "env": env_name, "deadline_h": deadline_h, "job": job,
                                 "offline_opt": None if got is None else got["cost"]})
    return plan


# sim.score_of's anchors: 48 h of work on on-demand scores 0, on the published spot price 100
ZERO_COST, FULL_COST = 3.06 * 48, 0.9731 * 48


def run_score(cost: float) -> float:
    """One run's cost on the score's scale, unclamped: the stage's score is the mean of its
    runs' scores clamped to [0, 100] (as `sim.score_of(avg_cost)`, the scale being linear)."""
    return (ZERO_COST - cost) / (ZERO_COST - FULL_COST) * 100


def summarize(stage: str, mode: str, plan: list[dict], rows: list[dict]) -> dict:
    spot_price = OD_PRICE / COST_K
    for p, r in zip(plan, rows):
        r.update(name=p["name"], env=p["env"], deadline_h=p["deadline_h"])
        if mode == "correct":
            job = p["job"]
            r["offline_bound"] = sim.offline_lower_bound(
                job.avail, GAP, job.duration, job.deadline, job.overhead,
                spot_prices=job.spot_prices, od_price=OD_PRICE)
        if p["offline_opt"] is not None:
            r["offline_opt"] = p["offline_opt"]
    n = len(rows)
    avg_cost = sum(r["cost"] for r in rows) / n
    score = sim.score_of(avg_cost)
    if stage == "leaderboard":
        score = float(round(score))
    ticks = sum(r["ticks"] for r in rows)
    spot_share = sum(r["spot_ticks"] for r in rows) / ticks
    od_share = sum(r["od_ticks"] for r in rows) / ticks
    bound = spot_price * DURATION_H
    metrics = {"avg_cost": avg_cost, "runs": n, "spot_share": spot_share, "on_demand_share": od_share,
               "idle_share": 1 - spot_share - od_share,
               "preemptions": sum(r["preemptions"] for r in rows),
               "deadline_misses": sum(1 for r in rows if r["missed"]),
               "min_slack_h": min(r["slack_s"] for r in rows) / HOURS,
               "all_spot_bound_cost": bound, "gap_to_bound": avg_cost - bound}
    if mode == "correct":
        off = sum(r["offline_bound"] for r in rows) / n
        metrics.update(offline_bound_cost=off, gap_to_offline_bound=avg_cost - off,
                       offline_bound_score=sim.score_of(off))
    has_opt = all("offline_opt" in r for r in rows)
    if has_opt:
        opt = sum(r["offline_opt"] for r in rows) / n
        metrics.update(offline_opt_cost=opt, gap_to_offline_opt=avg_cost - opt,
                       offline_opt_score=sim.score_of(opt))
    groups: dict[str, list[float]] = {}
    for r in rows:
        groups.setdefault(f"cost_{r['env']}", []).append(r["cost"])
        groups.setdefault(f"cost_deadline_{r['deadline_h']:g}h", []).append(r["cost"])
    metrics.update({k: sum(v) / len(v) for k, v in groups.items()})
    worst = sorted(((k[5:], v) for k, v in metrics.items() if k.startswith("cost_us")),
                   key=lambda kv: -kv[1])[:3]
    fb = [f"{stage}: score {score:.4f} (avg_cost {avg_cost:.4f} $ over {n} runs). "
          "0 = on-demand only (146.88 $), 100 = all 48 h on 0.9731 $/h spot.",
          "costliest environments: " + ", ".join(f"{k} {v:.2f} $" for k, v in worst),
          f"52 h deadline {metrics['cost_deadline_52h']:.2f} $, 70 h deadline {metrics['cost_deadline_70h']:.2f} $",
          f"time shares: spot {spot_share:.1%}, on-demand {od_share:.1%}, idle {1 - spot_share - od_share:.1%}; "
          f"{metrics['preemptions']} preemptions",
          f"all-spot lower bound {bound:.2f} $: gap {avg_cost - bound:.2f} $",
          f"tightest finish: {metrics['min_slack_h']:.3f} h before the deadline"]
    if has_opt:
        worst = max(rows, key=lambda r: r["cost"] - r["offline_opt"])
        fb.insert(5, f"offline optimum (the least cost knowing each trace, by dynamic programming) "
                     f"{metrics['offline_opt_cost']:.2f} $ (score {metrics['offline_opt_score']:.2f}): "
                     f"gap {metrics['gap_to_offline_opt']:.2f} $; largest gap {worst['name']}: "
                     f"{worst['cost']:.2f} $ vs {worst['offline_opt']:.2f} $")
    elif mode == "correct":
        fb.insert(5, f"offline lower bound (knowing each trace; the K cheapest ticks before the deadline, "
                     f"one restart) {metrics['offline_bound_cost']:.2f} $ (score "
                     f"{metrics['offline_bound_score']:.2f}): gap {metrics['gap_to_offline_bound']:.2f} $"
                     " (the exact offline optimum is precomputed for the generated traces only)")
    result = {"score": score, "valid": True, "metrics": metrics, "feedback": "\n".join(fb),
              "artifacts": {"runs": "\n".join(
                  f"{r['name']}: cost {r['cost']:.4f} finish {r['finish_s'] / HOURS:.3f} h "
                  f"spot {r['spot_ticks']} od {r['od_ticks']} idle {r['idle_ticks']} "
                  f"preempt {r['preemptions']}" for r in rows)}}
    misses = [r for r in rows if r["missed"]]
    if misses and mode == "correct":
        r = misses[0]
        result.update(valid=False, score=0.0, feedback=(
            f"INVALID: {len(misses)} run(s) finished after the deadline; first: {r['name']} "
            f"finished at {r['finish_s'] / HOURS:.3f} h\n" + result["feedback"]))
    else:
        result["instances"] = {r["name"]: run_score(r["cost"]) for r in rows}
    return result


def timed(args: Args) -> dict:
    """The stage's result, with the evaluation's wall time in metrics["eval_s"]."""
    t0 = time.perf_counter()
    result = evaluate(args.stage, args.candidate, args.data, args.time_limit_s)
    result.setdefault("metrics", {})["eval_s"] = time.perf_counter() - t0
    return result


if __name__ == "__main__":
    sys.exit(run(timed, parser=parser(__doc__, time_limit_s=CANDIDATE_S)))
