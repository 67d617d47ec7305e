#!/usr/bin/env python3
"""Precompute the exact offline optimum of every run of quick/full/test/stress.

Usage: python offline_opt.py [--out evaluator/offline_opt.json]

For each run (environment, real window or generator seed, deadline, overhead) of the
evaluator's own stages it solves the offline dynamic program ``sky_spot.sim.offline_optimum`` (the least cost
knowing the whole trace, correct accounting; about 30 ms a run, too slow to redo on every
evaluation) and stores the cost with a hash of the trace it was computed on. The evaluator
reports the gap to it when every run of a stage has an entry whose hash matches; re-run this
after re-fitting the generator or changing the stages.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "evaluator"))  # the evaluator and its sealed sky_spot copy
import evaluate as ev  # noqa: E402
from sky_spot import sim  # noqa: E402
from sky_spot.traces import Generator  # noqa: E402
from sky_spot.utils import COST_K  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=HERE / "evaluator" / "offline_opt.json")
    args = ap.parse_args()
    gen = Generator.load("single_envs")
    spot_price = ev.OD_PRICE / COST_K
    runs = {}
    for stage, (envs, source, indices) in ev.STAGES.items():
        for env_name in envs:
            for idx in indices:
                if source == "real":
                    avail = ev.real_windows.window(env_name, idx, ev.LENGTH)
                else:
                    (avail,), _ = gen.window([env_name], idx, ev.LENGTH)
                for deadline_h in ev.DEADLINES_H:
                    for oh in ev.OVERHEADS_H:
                        cost = sim.offline_optimum(avail, ev.GAP, ev.DURATION_H * ev.HOURS,
                                                   deadline_h * ev.HOURS, oh * ev.HOURS,
                                                   spot_price=spot_price, od_price=ev.OD_PRICE)
                        runs[ev.opt_key(source, env_name, idx, deadline_h, oh)] = {
                            "trace": ev.trace_hash(avail), "cost": cost}
        print(f"{stage}: {len(runs)} runs so far", file=sys.stderr)
    about = __doc__.splitlines()[0] + " (written by tasks/cbl/offline_opt.py)"
    args.out.write_text(json.dumps({"about": about, "runs": runs}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(runs)} optima to {args.out}")


if __name__ == "__main__":
    main()
