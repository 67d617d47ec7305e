#!/usr/bin/env python3
"""Sealed evaluator for the multi-region Can't-Be-Late task.

Usage: python evaluate.py --stage {quick,full,test,stress,published,leaderboard} --candidate WORKTREE
                          [--data DIR]
                          [--time-limit-s S]

The candidate's ``policy/strategy.py`` (a ``MultiRegionStrategy`` subclass or a leaderboard
``Solution`` file) runs in a jailed process of its own (``jail/side.py``); this process owns the
traces, the simulator (its own sealed copy of ``sky_spot``, in this folder) and the score, and
steps every run of a stage together, one tick at a time (``lockstep.py``): the policy process
sees each tick as the published ``env`` shows it and only sends decisions back.
quick/full/test use ``correct`` accounting on windows of the real traces shipped in
``traces/`` (``real_windows.py``: full and the held-out test are disjoint in time, and test
runs other zone sets); ``stress`` on the trace generator's windows (harsher than the real
traces). ``leaderboard`` reproduces the published evaluator (its 1 + 34 runs, prices and
quirks) and ``published`` runs the same 34 runs under ``correct`` accounting; both need the
published windows, ``--data`` (or $ADRS_DATA).
The result goes to the harness through adrs_eval.emit (and stdout's last line).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # this folder's sealed sky_spot, never a worktree's

import lockstep  # noqa: E402
import real_windows  # noqa: E402
from sky_spot import sim  # noqa: E402
from sky_spot.traces import Generator, load_window  # noqa: E402

from adrs_eval import invalid  # noqa: E402
from adrs_eval.candidate import CandidateError, start  # noqa: E402
from adrs_eval.cli import Args, parser, run  # noqa: E402

if Path(sim.__file__).resolve().parent.parent != HERE:  # e.g. a worktree on PYTHONPATH
    raise SystemExit(f"sky_spot must be the evaluator's sealed copy, not {sim.__file__}")

CANDIDATE_S = 100.0  # the policy process's whole time for one stage (the task allows 120 s)
HOURS = 3600.0
JOB = {"task_duration_hours": 48.0, "deadline_hours": 52.0, "restart_overhead_hours": [0.2]}
GAP = 195.0
LENGTH = 1107  # ticks per window
OD_PRICE = 3.06

GATE = ("stage_1_quick_check", ["us-east-1a_v100_1", "us-east-1c_v100_1"], 1)
SCENARIOS = [  # (name, regions in index order, published number of traces)
    ("2_zones_same_region", ["us-east-1a_v100_1", "us-east-1c_v100_1"], 8),
    ("2_regions_east_west", ["us-east-2a_v100_1", "us-west-2a_v100_1"], 8),
    ("3_regions_diverse", ["us-east-1a_v100_1", "us-east-2b_v100_1", "us-west-2c_v100_1"], 6),
    ("3_zones_same_region", ["us-east-1a_v100_1", "us-east-1c_v100_1", "us-east-1d_v100_1"], 6),
    ("5_regions_high_diversity", ["us-east-1a_v100_1", "us-east-1f_v100_1", "us-west-2a_v100_1",
                                  "us-west-2b_v100_1", "us-east-2b_v100_1"], 4),
    ("all_9_regions", ["us-east-2a_v100_1", "us-west-2c_v100_1", "us-east-1d_v100_1",
                       "us-east-2b_v100_1", "us-west-2a_v100_1", "us-east-1f_v100_1",
                       "us-east-1a_v100_1", "us-west-2b_v100_1", "us-east-1c_v100_1"], 2),
]
# Held-out zone sets: the published families (same sizes, same kind of spread), other zones
# (all 9 in another order: the start region is index 0), so `test` checks that a policy did not
# learn which zone of `full` is good.
TEST_SCENARIOS = [
    ("2_zones_same_region", ["us-east-1d_v100_1", "us-east-1f_v100_1"]),
    ("2_regions_east_west", ["us-east-2b_v100_1", "us-west-2b_v100_1"]),
    ("3_regions_diverse", ["us-east-1c_v100_1", "us-east-2a_v100_1", "us-west-2b_v100_1"]),
    ("3_zones_same_region", ["us-east-1c_v100_1", "us-east-1d_v100_1", "us-east-1f_v100_1"]),
    ("5_regions_high_diversity", ["us-east-1c_v100_1", "us-east-1d_v100_1", "us-west-2c_v100_1",
                                  "us-west-2b_v100_1", "us-east-2a_v100_1"]),
    ("all_9_regions", ["us-east-1a_v100_1", "us-west-2b_v100_1", "us-east-1f_v100_1",
                       "us-east-2a_v100_1", "us-west-2c_v100_1", "us-east-1c_v100_1",
                       "us-east-2b_v100_1", "us-east-1d_v100_1", "us-west-2a_v100_1"]),
]
FULL_STARTS = real_windows.starts(0, LENGTH)  # 12 windows in the even blocks of the 45 days
TEST_STARTS = real_windows.starts(1, LENGTH)  # 12 in the odd blocks
# Our stages: (scenarios as (name, zones), trace source, indices: the real windows' first ticks
# or the generator's seeds). The leaderboard's and `published`'s runs are the published ones.
STAGES = {
    "quick": ([SCENARIOS[0][:2], SCENARIOS[2][:2]], "real", FULL_STARTS[7:8]),
    "full": ([sc[:2] for sc in SCENARIOS], "real", FULL_STARTS),
    "test": (TEST_SCENARIOS, "real", TEST_STARTS),
    "stress": ([sc[:2] for sc in SCENARIOS], "generated", range(0, 10)),
}
PUBLISHED = ("published", "leaderboard")  # stages on the published windows (--data)


class Traces:
    """Aligned windows for a scenario: the shipped real traces ("real", index = first tick),
    the published files ("published", index = file number) or the generator ("generated",
    index = seed)."""

    def __init__(self, data: Path | None, source: str = "real"):
        self.data, self.source = data, source
        self.gen = Generator.load("multi_zones") if source == "generated" else None
        self._cache: dict = {}

    def get(self, zones: list[str], index: int):
        avail, prices = [], []
        for z in zones:
            key = (z, index)
            if key not in self._cache:
                if self.source == "published":
                    a, p, gap = load_window(self.data / z / f"{index}.json")
                    if gap != GAP:
                        raise ValueError(f"{z}/{index}.json has gap {gap}, expected {GAP}")
                    self._cache[key] = (a, p)
                elif self.source == "real":
                    self._cache[key] = real_windows.window(z, index, LENGTH)
                else:
                    (a,), (level,) = self.gen.window([z], index, LENGTH)
                    self._cache[key] = (a, level)
            a, p = self._cache[key]
            avail.append(a)
            prices.append(p)
        return avail, prices


def run_many(cand, traces, plan, mode, deadline: float):
    """plan: list of (scenario name, zones, index), simulated together with the policy process
    `cand`. Returns per-run rows (a failed run's row has its "error")."""
    jobs = []
    for _name, zones, idx in plan:
        avail, prices = traces.get(zones, idx)
        jobs.append(lockstep.Job(avail, JOB["task_duration_hours"] * HOURS,
                                 JOB["deadline_hours"] * HOURS,
                                 JOB["restart_overhead_hours"][0] * HOURS, prices, OD_PRICE,
                                 zones, JOB))
    rows = lockstep.run_batch(cand, jobs, gap=GAP, mode=mode, deadline=deadline)
    for (name, _zones, idx), job, r in zip(plan, jobs, rows):
        prices = job.spot_prices
        # the all-spot bound: every hour of work on the cheapest spot of the scenario
        levels = [p if isinstance(p, float) else min(p) for p in prices]
        r.update(scenario=name, index=idx, bound=min(levels) * JOB["task_duration_hours"])
        if mode == "correct" and "error" not in r:  # the offline bound prices ticks as correct mode does
            r["offline_bound"] = sim.offline_lower_bound(
                job.avail, GAP, job.duration, job.deadline, job.overhead, spot_prices=prices,
                od_price=OD_PRICE)
    return rows


# sim.score_of's anchors: 48 h of work on on-demand scores 0, on the published spot price 100
ZERO_COST, FULL_COST = 3.06 * 48, 0.9731 * 48


def run_score(cost: float) -> float:
    """One run's cost on the score's scale, unclamped (the scale is linear, so the mean of
    runs' scores is the score of their mean cost, before `sim.score_of` clamps it to [0, 100])."""
    return (ZERO_COST - cost) / (ZERO_COST - FULL_COST) * 100


def summarize(rows, stage: str, rounding: int | None) -> dict:
    per: dict[str, list] = {}
    for r in rows:
        per.setdefault(r["scenario"], []).append(r)
    scen_cost, metrics, instances = {}, {}, {}
    for name, rs in per.items():
        ok = []
        for r in rs:
            if "error" in r:
                break  # published rule: a failed run ends its scenario
            ok.append(r)
            instances[f"{name} #{r['index']}"] = run_score(r["cost"])
        if ok:
            scen_cost[name] = sum(r["cost"] for r in ok) / len(ok)
    ok_rows = [r for r in rows if "error" not in r]
    avg_cost = sum(scen_cost.values()) / len(scen_cost) if scen_cost else float("nan")
    score = sim.score_of(avg_cost) if scen_cost else 0.0
    if rounding is not None:
        score = round(score, rounding)
    ticks = sum(r["ticks"] for r in ok_rows) or 1
    spot_share = sum(r["spot_ticks"] for r in ok_rows) / ticks
    od_share = sum(r["od_ticks"] for r in ok_rows) / ticks
    bound = (sum(sum(r["bound"] for r in rs) / len(rs) for rs in per.values()) / len(per))
    metrics.update(avg_cost=avg_cost, score_rounded=round(score, 2), runs=len(rows),
                   failed_runs=len(rows) - len(ok_rows), spot_share=spot_share,
                   on_demand_share=od_share, idle_share=1 - spot_share - od_share,
                   preemptions=sum(r["preemptions"] for r in ok_rows),
                   region_switches=sum(r["switches"] for r in ok_rows),
                   deadline_misses=sum(1 for r in ok_rows if r["missed"]),
                   min_slack_h=min((r["slack_s"] for r in ok_rows), default=0.0) / HOURS,
                   all_spot_bound_cost=bound, gap_to_bound=avg_cost - bound)
    for name, c in scen_cost.items():
        metrics[f"cost_{name}"] = c
    offline = [r for r in ok_rows if "offline_bound" in r]
    if offline and len(offline) == len(rows):
        ob = {}
        for r in offline:
            ob.setdefault(r["scenario"], []).append(r["offline_bound"])
        off = sum(sum(v) / len(v) for v in ob.values()) / len(ob)
        metrics.update(offline_bound_cost=off, gap_to_offline_bound=avg_cost - off,
                       offline_bound_score=sim.score_of(off))
    worst = sorted(scen_cost.items(), key=lambda kv: -kv[1])[:3]
    fb = [f"{stage}: score {score:.4f} (avg_cost {avg_cost:.4f} $ over {len(scen_cost)} scenarios, "
          f"{len(rows)} runs). 0 = on-demand only (146.88 $), 100 = all hours on 0.9731 $/h spot.",
          "costliest scenarios: " + ", ".join(f"{n} {c:.2f} $" for n, c in worst),
          f"time shares: spot {spot_share:.1%}, on-demand {od_share:.1%}, idle {1 - spot_share - od_share:.1%}; "
          f"{metrics['preemptions']} preemptions, {metrics['region_switches']} region switches",
          f"all-spot lower bound (cheapest zone's spot for all 48 h) {bound:.2f} $: gap {avg_cost - bound:.2f} $",
          f"tightest finish: {metrics['min_slack_h']:.3f} h before the deadline"]
    if "offline_bound_cost" in metrics:
        fb.insert(4, f"offline lower bound (knowing each trace; the K cheapest ticks before the deadline, "
                     f"one restart) {metrics['offline_bound_cost']:.2f} $ (score "
                     f"{metrics['offline_bound_score']:.2f}): gap {metrics['gap_to_offline_bound']:.2f} $")
    failed = [r for r in rows if "error" in r]
    if failed:
        r = failed[0]
        fb.append(f"{len(failed)} run(s) failed; first: {r['scenario']} #{r['index']}: {r['error']}")
    result = {"score": score, "valid": not failed, "metrics": metrics, "feedback": "\n".join(fb),
              "artifacts": {"runs": "\n".join(
                  f"{r['scenario']} #{r['index']}: " + (f"ERROR {r['error'].splitlines()[0]}" if "error" in r else
                  f"cost {r['cost']:.4f} finish {r['finish_s'] / HOURS:.3f} h spot {r['spot_ticks']} "
                  f"od {r['od_ticks']} idle {r['idle_ticks']} preempt {r['preemptions']} "
                  f"switch {r['switches']}") for r in rows)},
              "instances": instances}
    return result


def evaluate(stage: str, worktree: Path, data: Path | None,
             time_limit_s: float = CANDIDATE_S) -> dict:
    if stage not in STAGES and stage not in PUBLISHED:
        return invalid(f"unknown stage {stage!r}; use {', '.join([*STAGES, *PUBLISHED])}")
    if data is not None and not data.is_dir():
        return invalid(f"--data {data}: no such folder")
    if stage in PUBLISHED and data is None:
        return invalid(f"the {stage} stage needs the published windows: "
                       "--data ../shared/data/cbl-multi-windows")
    deadline = time.monotonic() + time_limit_s
    try:
        # started first: the policy process loads while the traces are made here
        with start(worktree, HERE / "jail" / "side.py", args=["multi"]) as cand:
            traces = Traces(data, "published" if stage in PUBLISHED else STAGES[stage][1])
            plan = stage_plan(stage, traces)
            lockstep.hello(cand, deadline)
            return score(stage, cand, traces, plan, deadline)
    except lockstep.PolicyLoadError as exc:
        return invalid(f"loading policy/strategy.py failed: {exc}")
    except CandidateError as exc:
        return invalid(f"the policy process failed: {exc}")


def stage_plan(stage: str, traces) -> list:
    """The stage's runs as (scenario name, zones, index), traces made in advance. The
    leaderboard's stage-1 gate comes first, in the same batch as the scored runs: it is the
    first scored run's trace, which the policy process must not have seen whole before."""
    if stage in PUBLISHED:
        plan = [(n, z, i) for n, z, k in SCENARIOS for i in range(k)]
        if stage == "leaderboard":
            plan.insert(0, (GATE[0], GATE[1], 0))
    else:
        scenarios, _source, indices = STAGES[stage]
        plan = [(name, zones, i) for name, zones in scenarios for i in indices]
    for _, zones, idx in plan:
        traces.get(zones, idx)
    return plan


def score(stage: str, cand, traces, plan: list, deadline: float) -> dict:
    if stage == "leaderboard":
        gate, *rows = run_many(cand, traces, plan, "leaderboard", deadline)
        if "error" in gate:
            return invalid(f"stage 1 ({GATE[0]}) failed: {gate['error']}")
        result = summarize(rows, stage, 2)
        result["valid"] = True  # published: failed stage-2 runs only shorten their scenario
        return result
    rows = run_many(cand, traces, plan, "correct", deadline)
    result = summarize(rows, stage, None)
    misses = [r for r in rows if "error" not in r and r["missed"]]
    if misses and result["valid"]:
        r = misses[0]
        result.update(valid=False, score=0.0, feedback=(
            f"INVALID: {len(misses)} run(s) finished after the deadline; first: {r['scenario']} "
            f"#{r['index']} finished at {r['finish_s'] / HOURS:.3f} h > {JOB['deadline_hours']} h\n"
            + result["feedback"]))
    elif not result["valid"]:
        result["score"] = 0.0
        result["feedback"] = "INVALID: a run raised an error\n" + result["feedback"]
    if not result["valid"]:
        del result["instances"]
    return result


def timed(args: Args) -> dict:
    """The stage's result, with the evaluation's wall time in metrics["eval_s"]."""
    t0 = time.perf_counter()
    result = evaluate(args.stage, args.candidate, args.data, args.time_limit_s)
    result.setdefault("metrics", {})["eval_s"] = time.perf_counter() - t0
    return result


if __name__ == "__main__":
    sys.exit(run(timed, parser=parser(__doc__, time_limit_s=CANDIDATE_S)))
