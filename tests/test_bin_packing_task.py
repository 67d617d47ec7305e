"""End-to-end tests for tasks/bin-packing: the sealed evaluator run as a real subprocess."""
from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest

from tests.fixtures.tasks import TaskFolder

FOLDER = TaskFolder("bin-packing", "binpack/policy.py")
TASK, REPO = FOLDER.root, FOLDER.repo
run_eval, make_candidate, with_constants = FOLDER.run_eval, FOLDER.candidate, FOLDER.with_constants


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

    def names(r):
        return {k for k in r["metrics"] if k not in ("bins_total", "l1_total", "n_instances")}

    assert names(full).isdisjoint(names(test))
    assert full["metrics"]["bins_total"] != test["metrics"]["bins_total"] or full["score"] != test["score"]


def test_instances_are_each_instance_files_ratio_and_average_to_the_score(tmp_path, baseline):
    """`review` pairs per-instance scores across candidates: one L1/bins ratio per instance,
    named alike for every candidate, whose mean is the score."""
    next_fit = make_candidate(tmp_path, "nextfit", "def choose_bin(item, remaining):\n    return -1\n")
    for stage, count in (("test", 17), ("quick", 4)):
        base, other = run_eval(baseline, stage), run_eval(next_fit, stage)
        assert base["valid"] and other["valid"]
        assert len(base["instances"]) == count
        assert base["instances"].keys() == other["instances"].keys()
        for r in (base, other):
            assert all(math.isfinite(v) and 0 < v <= 1 for v in r["instances"].values())
            assert r["score"] == pytest.approx(statistics.fmean(r["instances"].values()), abs=1e-9)
        assert base["instances"] != other["instances"]


def test_invalid_result_has_no_instances(tmp_path):
    r = run_eval(make_candidate(tmp_path, "none", "def choose_bin(item, remaining):\n    return None\n"), "quick")
    assert r["valid"] is False and "instances" not in r


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
    src = "def choose_bin(item, remaining):\n    return len(remaining) + 3\n"
    r = run_eval(make_candidate(tmp_path, "oor", src), "quick")
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
