"""What a jail costs per evaluation: each backend next to no jail (`process`), in one run.

An evaluation here is what a search does per candidate stage: the harness starts the task's
evaluator (trusted, its own cgroup), which starts the candidate in a jail and reads its answer.
Runs are interleaved backend by backend, so load on the machine hits all of them alike. The
docker figure uses DOCKER_HOST, or a private dockerd this bench starts (vfs driver); it is left
out, saying why, when neither is possible.

    python bench/sandbox.py [--repeat 15] [--task tests/fixtures/toy] [--stage quick]

Last line: one JSON object: `<backend>_eval_ms` medians and `<backend>_vs_process` ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.task import Task  # noqa: E402
from sandbox import jail  # noqa: E402
from sandbox.dockerd import reachable_or_private  # noqa: E402
from sandbox.evaluate import run_stage  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--task", default=str(ROOT / "tests" / "fixtures" / "toy"))
    ap.add_argument("--stage", default="quick")
    args = ap.parse_args()
    task = Task.load(Path(args.task))
    spec = task.evaluator
    with contextlib.ExitStack() as stack:
        configs = {"process": spec.jail("process")}
        if jail.bwrap_status()[0]:
            configs["bwrap"] = spec.jail("bwrap")
        else:
            print(f"bwrap left out: {jail.bwrap_status()[1]}")
        host, why = reachable_or_private(stack)
        if host:
            configs["docker"] = dataclasses.replace(spec.jail("docker"), docker_host=host)
        else:
            print(f"docker left out: {why}")
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="adrs-bench-")))
        worktree = tmp / "baseline"
        shutil.copytree(task.source, worktree, ignore=shutil.ignore_patterns("__pycache__"))
        times: dict[str, list[float]] = {name: [] for name in configs}
        for name, config in configs.items():  # warm-up: image import, page cache
            result = run_stage(spec, worktree, args.stage, python=sys.executable, jail=config)
            if not result.valid:
                raise SystemExit(f"{name}: the baseline is invalid: {result.feedback[:300]}")
        for _ in range(args.repeat):
            for name, config in configs.items():
                result = run_stage(spec, worktree, args.stage, python=sys.executable,
                                   jail=config)
                times[name].append(result.wall_s * 1000)
    figures: dict[str, float] = {}
    base = statistics.median(times["process"])
    for name, ts in times.items():
        med = statistics.median(ts)
        figures[f"{name}_eval_ms"] = round(med, 1)
        if name != "process":
            figures[f"{name}_vs_process"] = round(med / base, 2)
        print(f"{name:<8} {med:8.1f} ms per evaluation (median of {len(ts)}; "
              f"min {min(ts):.1f}, max {max(ts):.1f})")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
