"""End-to-end tests for tasks/bin-packing: the sealed evaluator run as a real subprocess."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TASK = Path(__file__).resolve().parents[1] / "tasks" / "bin-packing"
EVAL_DIR = TASK / "evaluator"
REPO = TASK / "repo"


def run_eval(worktree: Path, stage: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "evaluate.py", "--stage", stage, "--candidate", str(worktree)],
        cwd=EVAL_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    result = json.loads(last)
    assert set(result) >= {"score", "valid", "metrics", "feedback", "artifacts"}
    return result


def make_candidate(tmp_path: Path, name: str, policy_src: str | None = None) -> Path:
    wt = tmp_path / name
    shutil.copytree(REPO, wt)
    if policy_src is not None:
        (wt / "binpack" / "policy.py").write_text(policy_src)
    return wt


def with_constants(**values) -> str:
    src = (REPO / "binpack" / "policy.py").read_text()
    for key, val in values.items():
        src, n = re.subn(rf"^{key} = .*$", f"{key} = {val!r}", src, flags=re.M)
        assert n == 1, key
    return src


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    return make_candidate(tmp_path_factory.mktemp("bp"), "baseline")


def test_task_files_exist():
    assert (TASK / "task.toml").is_file()
    assert (TASK / "README.md").is_file()
    assert (REPO / "binpack" / "__init__.py").is_file()


def test_baseline_quick_valid_and_deterministic(baseline):
    r1 = run_eval(baseline, "quick")
    assert r1["valid"] is True, r1["feedback"]
    assert 0.0 < r1["score"] <= 1.0
    assert r1["score"] >= 0.5  # passes the quick threshold
    assert r1["metrics"]["n_instances"] == 4
    assert r1["metrics"]["bins_total"] >= r1["metrics"]["l1_total"]
    r2 = run_eval(baseline, "quick")
    assert r2["score"] == r1["score"]
    assert r2["metrics"] == r1["metrics"]


def test_test_stage_uses_different_instances(baseline):
    full = run_eval(baseline, "full")
    test = run_eval(baseline, "test")
    assert full["valid"] and test["valid"]
    names = lambda r: {k for k in r["metrics"] if k not in ("bins_total", "l1_total", "n_instances")}
    assert names(full).isdisjoint(names(test))
    assert full["metrics"]["bins_total"] != test["metrics"]["bins_total"] or full["score"] != test["score"]


def test_overfull_bin_is_invalid(tmp_path):
    src = (
        "import numpy as np\n"
        "def choose_bin(item, remaining):\n"
        "    if len(remaining) == 0:\n"
        "        return 0\n"
        "    return 0  # always the first bin, even when it does not fit\n"
    )
    r = run_eval(make_candidate(tmp_path, "overfull", src), "quick")
    assert r["valid"] is False
    assert r["score"] == 0.0
    assert "overfull" in r["feedback"]
    assert "item #" in r["feedback"] and "or_120_s1" in r["feedback"]


def test_none_is_invalid(tmp_path):
    src = "def choose_bin(item, remaining):\n    return None\n"
    r = run_eval(make_candidate(tmp_path, "none", src), "quick")
    assert r["valid"] is False
    assert "None" in r["feedback"]


def test_out_of_range_and_non_integer_are_invalid(tmp_path):
    r = run_eval(make_candidate(tmp_path, "oor", "def choose_bin(item, remaining):\n    return len(remaining) + 3\n"), "quick")
    assert r["valid"] is False and "out of range" in r["feedback"]
    r = run_eval(make_candidate(tmp_path, "flt", "def choose_bin(item, remaining):\n    return 0.5\n"), "quick")
    assert r["valid"] is False and "non-integer" in r["feedback"]


def test_import_error_is_invalid(tmp_path):
    src = "raise RuntimeError('boom at import')\n"
    r = run_eval(make_candidate(tmp_path, "raises", src), "quick")
    assert r["valid"] is False
    assert "RuntimeError" in r["feedback"] and "boom at import" in r["feedback"]


def test_raise_during_packing_is_invalid(tmp_path):
    src = "def choose_bin(item, remaining):\n    raise ValueError('bad policy')\n"
    r = run_eval(make_candidate(tmp_path, "raises2", src), "quick")
    assert r["valid"] is False
    assert "ValueError" in r["feedback"] and "bad policy" in r["feedback"]


def test_always_new_bin_is_valid_but_poor(tmp_path):
    src = "def choose_bin(item, remaining):\n    return -1\n"
    r = run_eval(make_candidate(tmp_path, "nextfit", src), "quick")
    assert r["valid"] is True
    assert 0.0 < r["score"] < 0.8


def test_tuned_constants_beat_best_fit_on_full(tmp_path, baseline):
    base = run_eval(baseline, "full")
    tuned_src = with_constants(SMALL_GAP_PENALTY=1.0, SMALL_GAP=25.0)
    tuned = run_eval(make_candidate(tmp_path, "tuned", tuned_src), "full")
    assert base["valid"] and tuned["valid"], tuned["feedback"]
    assert tuned["score"] > base["score"]
