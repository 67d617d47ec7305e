#!/usr/bin/env python3
"""Wall time of the CBL evaluations.

- multi_full_eval_s: the published multi-region evaluation's 34 scored runs (+ the stage-1
  run) of the initial policy, through tasks/cbl-multi's evaluator (leaderboard stage) when
  ../shared/data/cbl-multi-windows exists, else the 60-run generated `full` stage.
- single_1080_eval_s: the published single-region 1,080-run evaluation (leaderboard stage on
  ../shared/data/cbl-windows) when tasks/cbl and the windows exist.
Each figure is the best of 3 evaluations, counted from inside the evaluator (window loading
and the start of the jailed policy process included, interpreter start excluded; the policy
runs in its own process, stepped a tick at a time with every run of the stage).
- multi_full_eval_jailed_s, single_full_eval_jailed_s: the `full` stage (generated traces) of
  the initial policy of tasks/cbl-multi and tasks/cbl as the harness runs it
  (`sandbox.evaluate.run_stage` with the task's spec: the evaluator's interpreter, the jail),
  best of 5 wall times.
Published reference on this machine: 55 s for 35 multi-region runs (a process per run; 3.7 s
replayed in one process), 9.5 s for the 1,080 single-region runs. The last line is JSON.

The machine is shared, so wall times swing by 2x or more. Each evaluation is interleaved with
a fixed pure-Python reference workload (``calib_s``: one million iterations of the attribute
stores, list appends and calls a tick loop does; 0.27 s on the development machine at a quiet
moment, 0.73-0.85 s under heavy load), and the JSON
also gives every figure divided by ``calib_s`` (``*_per_calib``): compare those across runs
or machines, not the raw seconds.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

from agent.task import Task  # noqa: E402
from sandbox.evaluate import run_stage  # noqa: E402

CALIB = """
import time
class O:
    pass
def f(o, i):
    return o.a + i
o = O(); o.a = 0.0; out = []
t0 = time.perf_counter()
for i in range(1_000_000):
    o.b = i * 0.5
    o.a = f(o, i) if i & 1 else o.a
    out.append(i)
print(time.perf_counter() - t0)
"""
CALIB_RUNS: list[float] = []


def calibrate() -> float:
    out = subprocess.run([sys.executable, "-c", CALIB], capture_output=True, text=True, check=True)
    CALIB_RUNS.append(float(out.stdout.strip()))
    return CALIB_RUNS[-1]


def eval_s(task: str, stage: str, data: Path | None, repeats: int = 3) -> tuple[float, dict]:
    best, last = float("inf"), {}
    for _ in range(repeats):
        calibrate()
        cmd = [sys.executable, "evaluate.py", "--stage", stage, "--candidate", str(ROOT / "tasks" / task / "repo")]
        if data is not None:
            cmd += ["--data", str(data)]
        out = subprocess.run(cmd, cwd=ROOT / "tasks" / task / "evaluator", capture_output=True,
                             text=True, check=True, env={"PATH": "/usr/bin:/bin"}).stdout
        last = json.loads(out.strip().splitlines()[-1])
        best = min(best, last["metrics"]["eval_s"])
    return best, last


def jailed_s(task: str, stage: str = "full", repeats: int = 5) -> tuple[float, float]:
    """Best wall time of `stage` on the task's initial policy, run as the harness runs it;
    and its score."""
    spec = Task.load(ROOT / "tasks" / task).evaluator
    best, score = float("inf"), 0.0
    with tempfile.TemporaryDirectory(prefix="adrs-cbl-bench-") as tmp:
        worktree = Path(tmp) / "repo"
        shutil.copytree(ROOT / "tasks" / task / "repo", worktree,
                        ignore=shutil.ignore_patterns("__pycache__"))
        for _ in range(repeats):
            calibrate()
            result = run_stage(spec, worktree, stage, python=sys.executable)
            if not result.valid:
                raise SystemExit(f"{task} {stage}: {result.feedback or result.error}")
            best, score = min(best, result.wall_s), result.score
    return best, score


def main() -> None:
    figures: dict = {}
    multi_data = SHARED / "cbl-multi-windows"
    if multi_data.is_dir():
        t, r = eval_s("cbl-multi", "leaderboard", multi_data)
        figures.update(multi_full_eval_s=t, multi_runs=r["metrics"]["runs"] + 1,
                       multi_avg_cost=r["metrics"]["avg_cost"], multi_source="published windows")
    else:
        t, r = eval_s("cbl-multi", "full", None)
        figures.update(multi_full_eval_s=t, multi_runs=r["metrics"]["runs"], multi_source="generated")
    print(f"multi-region: {figures['multi_runs']} runs in {t:.3f} s (published: 55 s, 3.7 s in-process)")
    single_data = SHARED / "cbl-windows"
    if (ROOT / "tasks" / "cbl").is_dir():
        if single_data.is_dir():
            t, r = eval_s("cbl", "leaderboard", single_data)
        else:
            t, r = eval_s("cbl", "full", None)
        figures.update(single_1080_eval_s=t if r["metrics"]["runs"] == 1080 else None,
                       single_runs=r["metrics"]["runs"], single_eval_s=t,
                       single_avg_cost=r["metrics"]["avg_cost"])
        print(f"single-region: {r['metrics']['runs']} runs in {t:.3f} s (published: 9.5 s)")
    t, score = jailed_s("cbl-multi")
    figures.update(multi_full_eval_jailed_s=t, multi_full_score=score)
    print(f"multi-region full stage as the harness runs it (jailed policy): {t:.3f} s")
    if (ROOT / "tasks" / "cbl").is_dir():
        t, score = jailed_s("cbl")
        figures.update(single_full_eval_jailed_s=t, single_full_score=score)
        print(f"single-region full stage as the harness runs it (jailed policy): {t:.3f} s")
    calibrate()
    calib = min(CALIB_RUNS)
    figures["calib_s"] = calib
    for key in ("multi_full_eval_s", "single_1080_eval_s", "multi_full_eval_jailed_s",
                "single_full_eval_jailed_s"):
        if figures.get(key) is not None:
            figures[key[:-2] + "_per_calib"] = figures[key] / calib
    print(f"reference workload (calib_s): {calib:.3f} s; multi/calib "
          f"{figures['multi_full_eval_s'] / calib:.2f}"
          + (f", single/calib {figures['single_1080_eval_s'] / calib:.2f}"
             if figures.get("single_1080_eval_s") is not None else ""))
    figures["published_multi_eval_s"] = 55.0
    figures["published_single_1080_eval_s"] = 9.5
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
