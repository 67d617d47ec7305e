"""Wall time of a `full` evaluation of each task's baseline, as the harness runs it.

Each task's evaluator is run on a checkout of its baseline repo, through the same sandbox as
a search run, several times; the median is printed next to the published evaluator's time
for the same problem on this kind of machine, where one is known (from the task issues).

    python bench/tasks.py [--repeat 3] [--stage full] [TASK ...]

Last line: one JSON object, `<task>_full_eval_s` per task (and the published figures).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.task import Task, TaskError  # noqa: E402
from sandbox.evaluate import run_stage  # noqa: E402

# seconds the published evaluator takes for the seed on this machine, on ITS workload (issue 5);
# our `full` stages run more instances, in a child process, so the ratio is indicative only.
# The spot simulators are compared on the published workload itself by bench/cbl_sim.py.
PUBLISHED_S = {"txn-scheduling": 1.0, "prism": 0.2, "cloudcast": 2.0}


def bench(task: Task, stage: str, repeat: int) -> tuple[float, bool]:
    with tempfile.TemporaryDirectory(prefix="adrs-bench-") as tmp:
        worktree = Path(tmp) / "baseline"
        shutil.copytree(task.source, worktree, ignore=shutil.ignore_patterns("__pycache__"))
        times, valid = [], True
        for _ in range(repeat):
            result = run_stage(task.evaluator, worktree, stage, python=sys.executable)
            times.append(result.wall_s)
            valid = valid and result.valid
    return statistics.median(times), valid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tasks", nargs="*", help="task folders (default: every tasks/*)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stage", default="full")
    args = parser.parse_args()
    folders = [Path(t) for t in args.tasks] or sorted(p.parent for p in ROOT.glob("tasks/*/task.toml"))
    figures: dict[str, float | None] = {}
    for folder in folders:
        try:
            task = Task.load(folder)
        except TaskError as e:
            print(f"{folder.name}: skipped, task does not load: {e}")
            continue
        if args.stage not in task.evaluator.stages:
            print(f"{task.name}: skipped, no stage {args.stage!r}")
            continue
        seconds, valid = bench(task, args.stage, args.repeat)
        published = PUBLISHED_S.get(task.name)
        ratio = f"  (published evaluator, its own workload: {published:g} s; ours/published " \
                f"{seconds / published:.2f})" if published else ""
        print(f"{task.name:16s} {args.stage} eval {seconds:8.3f} s median of {args.repeat}"
              f"{'' if valid else '  (baseline INVALID)'}{ratio}")
        key = task.name.replace("-", "_")
        figures[f"{key}_{args.stage}_eval_s"] = round(seconds, 4)
        if published:
            figures[f"{key}_published_eval_s"] = published
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
