"""tasks/cbl (single region): evaluator as a real subprocess against temp copies of repo/;
the published 1,080-run figure needs ../shared (skipped without it)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TASK = ROOT / "tasks" / "cbl"
REPO = TASK / "repo"
EVAL_DIR = TASK / "evaluator"
SHARED = Path(__file__).resolve().parents[2] / "shared"
WINDOWS = SHARED / "data" / "cbl-windows"


def run_eval(worktree: Path, stage: str, data: Path | None = None) -> dict:
    cmd = [sys.executable, "evaluate.py", "--stage", stage, "--candidate", str(worktree)]
    if data is not None:
        cmd += ["--data", str(data)]
    proc = subprocess.run(cmd, cwd=EVAL_DIR, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "ADRS_DATA": ""})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) >= {"score", "valid", "metrics", "feedback", "artifacts"}
    return result


def candidate(tmp_path: Path, name: str, file: Path | None = None, source: str | None = None) -> Path:
    wt = tmp_path / name
    shutil.copytree(REPO, wt)
    if file is not None:
        shutil.copy(file, wt / "policy" / "strategy.py")
    if source is not None:
        (wt / "policy" / "strategy.py").write_text(source)
    return wt


def test_simulator_code_is_the_same_in_both_tasks():
    multi = ROOT / "tasks" / "cbl-multi" / "repo" / "sky_spot"
    files = sorted(p.relative_to(REPO / "sky_spot") for p in (REPO / "sky_spot").rglob("*.py"))
    assert files, "no simulator files"
    for f in files:
        assert (REPO / "sky_spot" / f).read_text() == (multi / f).read_text(), f


def test_full_stage_valid_deterministic_and_ranks_baselines(tmp_path):
    base = run_eval(candidate(tmp_path, "greedy"), "full")
    again = run_eval(candidate(tmp_path, "greedy2"), "full")
    assert base["valid"] and base["score"] == again["score"]
    assert base["metrics"]["runs"] == 144 and base["metrics"]["deadline_misses"] == 0
    od = run_eval(candidate(tmp_path, "od", TASK / "baselines" / "on_demand.py"), "full")
    assert od["valid"] and od["score"] == 0.0
    assert base["score"] > od["score"]


def test_quick_stage_and_future_read(tmp_path):
    q = run_eval(candidate(tmp_path, "q"), "quick")
    assert q["valid"] and q["metrics"]["runs"] == 6
    src = (REPO / "policy" / "strategy.py").read_text().replace(
        "        env = self.env\n", "        env = self.env\n        env.get_trace_before_end(1e6)\n", 1)
    r = run_eval(candidate(tmp_path, "peek", source=src), "quick")
    assert not r["valid"] and "not available to policies" in r["feedback"]


@pytest.mark.skipif(not WINDOWS.is_dir(), reason=f"published windows absent at {WINDOWS} (../shared absent)")
def test_leaderboard_reproduces_published_greedy(tmp_path):
    r = run_eval(candidate(tmp_path, "lb"), "leaderboard", WINDOWS)
    assert r["valid"] and r["metrics"]["runs"] == 1080
    assert r["score"] == 28.0
    assert round(r["metrics"]["avg_cost"], 2) == 119.03
