#!/usr/bin/env python3
"""Do the CBL tasks' search stages rank policies as the published windows do?

Usage: python bench/stage_fidelity.py [--task cbl|cbl-multi|both] [--stages full,test,...]
                                     [--leaderboard-repo DIR]

A panel of policies per task (the initial greedy policy and its constant variants, Uniform
Progress, on-demand only, threshold, region-rotation and sticky-region policies, and the
constants a short tuner run found: `adrs-agent solve TASK --model tuner --budget 10`) is
plus, given a checkout of UCB-ADRS/ADRS-Leaderboard (`--leaderboard-repo`, default
$ADRS_LEADERBOARD_REPO), its published solution files (`solutions/<problem>/*/resources/
solution.py`: the initial program, OpenEvolve, ShinkaEvolve, GEPA, LEVI), is
scored on each stage by the task's sealed evaluator, one subprocess per evaluation:
- full, test: the search stage and the held-out stage (real trace windows, disjoint in time);
- stress: the trace generator's windows;
- published: the leaderboard's runs on the published windows (../shared/data) under the same
  correct accounting as full and test (the stage a search stage should predict);
- leaderboard: the published evaluator itself (its accounting quirks included).
published and leaderboard need ../shared/data and are left out without it.
A candidate that misses a deadline under correct accounting is invalid and ranks last (score 0).

It prints each policy's scores, then Kendall's tau-b between every pair of stages, and, as its
LAST line, one JSON object: {"<task>_tau_<stage>_<stage>": tau, ...}.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
STAGES = ["full", "test", "stress", "published", "leaderboard"]
WINDOWS = {"cbl": SHARED / "cbl-windows", "cbl-multi": SHARED / "cbl-multi-windows"}


def kendall_tau(xs: list[float], ys: list[float]) -> float:
    """Kendall's tau-b (ties in either ranking handled as scipy does)."""
    try:
        from scipy.stats import kendalltau
    except ImportError:
        pass
    else:
        return float(kendalltau(xs, ys).statistic)
    concordant = discordant = ties_x = ties_y = 0
    for (x1, y1), (x2, y2) in itertools.combinations(zip(xs, ys), 2):
        dx, dy = (x1 > x2) - (x1 < x2), (y1 > y2) - (y1 < y2)
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            ties_x += 1
        elif dy == 0:
            ties_y += 1
        elif dx == dy:
            concordant += 1
        else:
            discordant += 1
    n0 = concordant + discordant
    denom = ((n0 + ties_x) * (n0 + ties_y)) ** 0.5
    return (concordant - discordant) / denom if denom else float("nan")


def with_constants(source: str, **values: object) -> str:
    """The initial policy's source with its module constants (`NAME = value` lines) replaced."""
    for name, value in values.items():
        source, n = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", source, count=1, flags=re.M)
        assert n == 1, name
    return source


# -- the panels ---------------------------------------------------------------------------------

MULTI_HEAD = """\
from sky_spot.strategies.multi_strategy import MultiRegionStrategy
from sky_spot.utils import ClusterType

SPOT, ON_DEMAND, NONE = ClusterType.SPOT, ClusterType.ON_DEMAND, ClusterType.NONE
"""

# On-demand once the slack (time left - work left - one overhead) drops below SLACK_H hours;
# before that spot, jumping to any region that has it (JUMP) or waiting in place.
MULTI_THRESHOLD = MULTI_HEAD + """
SLACK_H = {slack_h}
JUMP = {jump}


class Threshold(MultiRegionStrategy):
    NAME = "threshold"

    def _step(self, last, has_spot):
        env = self.env
        remaining = self.task_duration - self.progress_seconds
        if remaining <= 1e-3:
            return NONE
        slack = self.deadline - env.elapsed_seconds - remaining - self.restart_overhead
        if slack < SLACK_H * 3600 or last is ON_DEMAND and slack < 2 * SLACK_H * 3600:
            return SPOT if last is SPOT and has_spot else ON_DEMAND
        if has_spot:
            return SPOT
        if JUMP:
            for i, ok in enumerate(env.get_all_regions_spot_available()):
                if ok:
                    env.switch_region(i)
                    return SPOT
        return NONE

    @classmethod
    def _from_args(cls, parser):
        args, _ = parser.parse_known_args()
        return cls(args)
"""

# Remembers how often each region had spot; without spot here, moves to the region with spot
# now that has had it most often (or, with none, to the most reliable one, and waits).
MULTI_STICKY = MULTI_HEAD + """
from math import ceil, floor


class Sticky(MultiRegionStrategy):
    NAME = "sticky_best_region"

    def _step(self, last, has_spot):
        env = self.env
        avail = env.get_all_regions_spot_available()
        seen = self.__dict__.setdefault("seen", [0] * len(avail))
        for i, ok in enumerate(avail):
            seen[i] += ok
        remaining = self.task_duration - self.progress_seconds
        if remaining <= 1e-3:
            return NONE
        gap, o = env.gap_seconds, self.restart_overhead
        left = floor((self.deadline - env.elapsed_seconds) / gap) * gap
        if ceil((remaining + {margin} * o) / gap) * gap >= left:
            return SPOT if last is SPOT and has_spot else ON_DEMAND
        if has_spot:
            return SPOT
        ranked = sorted(range(len(avail)), key=lambda i: -seen[i])
        for i in ranked:
            if avail[i]:
                env.switch_region(i)
                return SPOT
        env.switch_region(ranked[0])
        return NONE

    @classmethod
    def _from_args(cls, parser):
        args, _ = parser.parse_known_args()
        return cls(args)
"""

# Uniform Progress that jumps to a region with spot instead of running on-demand when one has it.
MULTI_UP_JUMP = MULTI_HEAD + """

class UniformProgressJump(MultiRegionStrategy):
    NAME = "uniform_progress_jump"

    def _step(self, last, has_spot):
        env = self.env
        done = self.progress_seconds
        if self.task_duration - done <= 1e-3:
            return NONE
        if has_spot:
            return SPOT
        for i, ok in enumerate(env.get_all_regions_spot_available()):
            if ok:
                env.switch_region(i)
                return SPOT
        if done < env.elapsed_seconds * self.task_duration / self.deadline + self.restart_overhead:
            return ON_DEMAND
        return NONE

    @classmethod
    def _from_args(cls, parser):
        args, _ = parser.parse_known_args()
        return cls(args)
"""

SINGLE_HEAD = """\
from sky_spot.strategies.strategy import Strategy
from sky_spot.utils import ClusterType

SPOT, ON_DEMAND, NONE = ClusterType.SPOT, ClusterType.ON_DEMAND, ClusterType.NONE
"""

# On-demand for good once the slack drops below SLACK_H hours; spot or wait before that.
SINGLE_THRESHOLD = SINGLE_HEAD + """
SLACK_H = {slack_h}


class Threshold(Strategy):
    NAME = "threshold"

    def _step(self, last, has_spot):
        remaining = self.task_duration - self.progress_seconds
        if remaining <= 1e-9:
            return NONE
        slack = self.deadline - self.env.elapsed_seconds - remaining - self.restart_overhead
        if slack < SLACK_H * 3600 or last is ON_DEMAND:
            return SPOT if last is SPOT and has_spot and slack > 0 else ON_DEMAND
        return SPOT if has_spot else NONE

    @classmethod
    def _from_args(cls, parser):
        args, _ = parser.parse_known_args()
        return cls(args)
"""

# Never waits: spot when there is spot, else on-demand (pays a restart at every change).
SINGLE_NEVER_WAIT = SINGLE_HEAD + """

class NeverWait(Strategy):
    NAME = "never_wait"

    def _step(self, last, has_spot):
        if self.task_duration - self.progress_seconds <= 1e-9:
            return NONE
        return SPOT if has_spot else ON_DEMAND

    @classmethod
    def _from_args(cls, parser):
        args, _ = parser.parse_known_args()
        return cls(args)
"""

# Uniform Progress with a margin of MARGIN_H hours ahead of the line before it waits.
SINGLE_UP_MARGIN = SINGLE_HEAD + """
MARGIN_H = {margin_h}


class UniformProgressMargin(Strategy):
    NAME = "uniform_progress_margin"

    def _step(self, last, has_spot):
        done = self.progress_seconds
        if self.task_duration - done <= 1e-9:
            return NONE
        if has_spot:
            return SPOT
        expected = self.env.elapsed_seconds * self.task_duration / self.deadline
        return ON_DEMAND if done < expected + MARGIN_H * 3600 else NONE

    @classmethod
    def _from_args(cls, parser):
        args, _ = parser.parse_known_args()
        return cls(args)
"""


PROBLEM = {"cbl": "cant_be_late", "cbl-multi": "cant_be_late_multi"}


def panel(task: str, leaderboard_repo: Path | None = None) -> dict[str, str]:
    """Policy name -> the source of its policy/strategy.py."""
    base = (ROOT / "tasks" / task / "repo" / "policy" / "strategy.py").read_text()
    files = ROOT / "tasks" / task / "baselines"
    out = {"greedy (initial)": base}
    if task == "cbl-multi":
        out |= {
            "greedy JUMP_TO_SPOT=1": with_constants(base, JUMP_TO_SPOT=1),
            "greedy REGION_STEP=0 (stays in region 0)": with_constants(base, REGION_STEP=0),
            "greedy SLACK_TICKS=-40": with_constants(base, SLACK_TICKS=-40),
            "greedy COMMIT 4 HOLD 8": with_constants(base, COMMIT_OVERHEADS=4.0, HOLD_OVERHEADS=8.0),
            # from `adrs-agent solve tasks/cbl-multi --model tuner --budget 60` on generated traces
            "tuner (generated traces)": with_constants(base, HOLD_OVERHEADS=2.20719, JUMP_TO_SPOT=2,
                                                       REGION_STEP=3),
            # from `adrs-agent solve tasks/cbl-multi --model tuner --budget 10` on real windows
            "tuner (real windows)": with_constants(base, **TUNER["cbl-multi"]),
            "uniform progress, round robin": (files / "uniform_progress_rr.py").read_text(),
            "uniform progress, region 0": (files / "uniform_progress.py").read_text(),
            "uniform progress, jump to spot": MULTI_UP_JUMP,
            "threshold 1 h, jump": MULTI_THRESHOLD.format(slack_h=1.0, jump=True),
            "threshold 2.5 h, jump": MULTI_THRESHOLD.format(slack_h=2.5, jump=True),
            "threshold 1 h, wait in place": MULTI_THRESHOLD.format(slack_h=1.0, jump=False),
            "sticky best region": MULTI_STICKY.format(margin=2.0),
            "on-demand only": (files / "on_demand.py").read_text(),
        }
    else:
        out |= {
            "greedy WAIT_MARGIN_TICKS=20": with_constants(base, WAIT_MARGIN_TICKS=20),
            "greedy WAIT_MARGIN_TICKS=60": with_constants(base, WAIT_MARGIN_TICKS=60),
            "greedy SLACK_TICKS=-12": with_constants(base, SLACK_TICKS=-12),
            "greedy COMMIT 4 HOLD 8": with_constants(base, COMMIT_OVERHEADS=4.0, HOLD_OVERHEADS=8.0),
            # from `adrs-agent solve tasks/cbl --model tuner --budget 10` on real windows
            "tuner (real windows)": with_constants(base, **TUNER["cbl"]),
            "tuner, an earlier candidate": with_constants(base, WAIT_MARGIN_TICKS=1),
            "uniform progress": (files / "uniform_progress.py").read_text(),
            "uniform progress, margin 4 h": SINGLE_UP_MARGIN.format(margin_h=4.0),
            "threshold 2 h": SINGLE_THRESHOLD.format(slack_h=2.0),
            "threshold 10 h": SINGLE_THRESHOLD.format(slack_h=10.0),
            "never wait": SINGLE_NEVER_WAIT,
            "on-demand only": (files / "on_demand.py").read_text(),
        }
    if leaderboard_repo is not None:
        for path in sorted((leaderboard_repo / "solutions" / PROBLEM[task]).glob("*/resources/solution.py")):
            out[f"published: {path.parts[-3]}"] = path.read_text()
    return out


# Constants of the best candidate of one short tuner run per task (`--budget 10`, seed default)
TUNER = {
    "cbl-multi": {"COMMIT_OVERHEADS": 0.765201, "SLACK_TICKS": 1, "JUMP_TO_SPOT": 1, "REGION_STEP": 2},
    "cbl": {"COMMIT_OVERHEADS": 0.965075, "WAIT_MARGIN_TICKS": 4},
}


# -- evaluation ---------------------------------------------------------------------------------

def evaluate(task: str, source: str, stage: str, tmp: Path) -> float:
    """The stage's score of a policy (0 when invalid), by the task's sealed evaluator."""
    wt = tmp / "wt"
    if wt.exists():
        shutil.rmtree(wt)
    shutil.copytree(ROOT / "tasks" / task / "repo", wt)
    (wt / "policy" / "strategy.py").write_text(source)
    cmd = [sys.executable, "evaluate.py", "--stage", stage, "--candidate", str(wt)]
    if stage in ("published", "leaderboard"):
        cmd += ["--data", str(WINDOWS[task])]
    out = subprocess.run(cmd, cwd=ROOT / "tasks" / task / "evaluator", capture_output=True,
                         text=True, check=True, env={**os.environ, "ADRS_DATA": ""}).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return float(result["score"]) if result["valid"] else 0.0


def bench(task: str, stages: list[str], leaderboard_repo: Path | None) -> dict[str, float]:
    if not WINDOWS[task].is_dir():
        stages = [s for s in stages if s not in ("published", "leaderboard")]
    policies = panel(task, leaderboard_repo)
    scores: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, source in policies.items():
            scores[name] = {s: evaluate(task, source, s, Path(tmp)) for s in stages}
            print(f"{task:9s} {name:42s} " + " ".join(f"{s} {scores[name][s]:6.2f}" for s in stages),
                  flush=True)
    figures = {}
    published = [p for p in policies if p.startswith("published: ")]
    for label, names in (("", list(policies)), ("_published_solutions", published)):
        if len(names) < 3:
            continue
        for a, b in itertools.combinations(stages, 2):
            tau = kendall_tau([scores[p][a] for p in names], [scores[p][b] for p in names])
            figures[f"{task}{label}_tau_{a}_{b}"] = round(tau, 3)
            print(f"{task}: Kendall tau {a} vs {b}: {tau:+.3f} ({len(names)} "
                  f"{'published solutions' if label else 'policies'})")
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=["cbl", "cbl-multi", "both"], default="both")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--leaderboard-repo", type=Path, default=os.environ.get("ADRS_LEADERBOARD_REPO") or None,
                    help="a checkout of UCB-ADRS/ADRS-Leaderboard: add its published solutions")
    args = ap.parse_args()
    tasks = ["cbl-multi", "cbl"] if args.task == "both" else [args.task]
    figures = {}
    for task in tasks:
        figures |= bench(task, args.stages.split(","), args.leaderboard_repo)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
