"""tasks/prism: the sealed evaluator run as a real subprocess on temp candidates.

Each known loophole of the published evaluator has a test with the exploiting candidate:
mutating the model objects, raising on cases where one is weak (published: dropped from
the mean), placing on GPU ids that do not exist, returning copies or duplicates, overfull
GPUs, and a runaway case (published: a thread timeout that cannot stop it).
"""
from __future__ import annotations

import itertools
import json
import math
import statistics
import subprocess
import sys

import pytest

from tests.fixtures.tasks import ROOT, TaskFolder

FOLDER = TaskFolder("prism", "placement.py")
TASK, EVAL_DIR, REPO = FOLDER.root, FOLDER.evaluator, FOLDER.repo
run_eval, candidate, baseline_with = FOLDER.run_eval, FOLDER.candidate, FOLDER.with_constants


@pytest.fixture(scope="module")
def baseline_quick(tmp_path_factory) -> dict:
    return run_eval(candidate(tmp_path_factory.mktemp("prism"), "base"), "quick")


@pytest.fixture(scope="module")
def cases_mod():
    sys.path.insert(0, str(EVAL_DIR))
    try:
        import cases
        import evaluate
    finally:
        sys.path.remove(str(EVAL_DIR))
    return cases, evaluate


def test_task_checks():
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "tasks", "check", str(TASK)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_leaderboard_reproduces_published_figures(tmp_path):
    r = run_eval(candidate(tmp_path, "base"), "leaderboard")
    assert r["valid"], r["feedback"]
    m = r["metrics"]
    assert round(r["score"], 2) == 60.82  # PRISM greedy, as published
    assert round(m["avg_max_kvpr"], 5) == 0.04787
    assert round(m["avg_round_robin_kvpr"], 4) == 0.0618
    assert round(m["avg_lower_bound_kvpr"], 5) == 0.03521
    assert round(m["avg_optimum_kvpr"], 5) == 0.03959  # where the top published solutions sit
    assert round(m["optimum_score"], 2) == 87.41
    assert m["optima_proven"] == 50 and m["n_failed"] == 0
    assert m["score_vs_optimum"] < r["score"] + 10 and m["score_vs_optimum"] > r["score"]


def test_round_robin_scores_zero_on_leaderboard(tmp_path):
    src = ("def compute_model_placement(gpu_num, models):\n"
           "    out = {g: [] for g in range(gpu_num)}\n"
           "    for i, m in enumerate(models):\n"
           "        out[i % gpu_num].append(m)\n"
           "    return out\n")
    r = run_eval(candidate(tmp_path, "rr", src), "leaderboard")
    assert r["valid"] and r["score"] == 0.0


def test_exact_optimum_matches_brute_force(cases_mod):
    cases, _ = cases_mod
    rng = __import__("random").Random(5)
    for _ in range(6):
        g, n = 3, 7
        c = cases.Case(g, tuple(rng.randint(10, 35) for _ in range(n)),
                       tuple(rng.randint(1, 9) for _ in range(n)), tuple(rng.randint(5, 9) for _ in range(n)))
        best = float("inf")
        for assign in itertools.product(range(g), repeat=n):
            groups = [[i for i in range(n) if assign[i] == b] for b in range(g)]
            if all(sum(c.sizes[i] for i in grp) <= 80 for grp in groups):
                best = min(best, cases.max_kvpr(c, groups))
        start = [[i for i in range(n) if i % g == b] for b in range(g)]
        if cases.max_kvpr(c, start) >= 1e5:
            continue
        value, proven = cases.exact_optimum(c, start)
        assert proven and value == pytest.approx(best, rel=1e-8)


def test_optima_cache_matches_recomputation(cases_mod):
    cases, evaluate = cases_mod
    cache = json.loads((EVAL_DIR / "optima.json").read_text())
    quick = evaluate.stage_cases("quick")
    assert cache["quick"]["fingerprint"] == evaluate.fingerprint(quick)
    assert cache["leaderboard"]["fingerprint"] == evaluate.fingerprint(evaluate.stage_cases("leaderboard"))
    for c, want in zip(quick, cache["quick"]["optimum"]):
        got, proven = cases.exact_optimum(c, cases.round_robin(c) if cases.max_kvpr(
            c, cases.round_robin(c)) < 1e5 else evaluate._first_fit(c))
        assert proven and got == pytest.approx(want, rel=1e-9)


MUTATES = '''
def compute_model_placement(gpu_num, models):
    for m in models:              # published loophole: KVPR was computed from these objects
        m.req_rate = 0
        m.model_size = 1
    out = {g: [] for g in range(gpu_num)}
    for i, m in enumerate(models):
        out[i % gpu_num].append(m)
    return out
'''


def test_mutating_models_has_no_effect(tmp_path):
    r = run_eval(candidate(tmp_path, "mut", MUTATES), "quick")
    assert r["valid"], r["feedback"]
    assert r["score"] == 0.0  # scored as the round-robin placement it is
    assert r["metrics"]["avg_max_kvpr"] == r["metrics"]["avg_round_robin_kvpr"]


def test_raising_where_weak_scores_those_cases_zero(tmp_path, baseline_quick):
    src = baseline_with("\n_greedy = compute_model_placement\n\n"
                        "def compute_model_placement(gpu_num, models):\n"
                        "    if gpu_num != 5:\n"
                        "        raise RuntimeError('skip the hard ones')\n"
                        "    return _greedy(gpu_num, models)\n")
    r = run_eval(candidate(tmp_path, "raise", src), "quick")
    assert r["valid"], r["feedback"]
    assert 0 < r["metrics"]["n_failed"] < 10
    assert r["score"] < baseline_quick["score"]
    assert "RuntimeError: skip the hard ones" in r["feedback"]


def test_gpu_ids_outside_range_are_invalid(tmp_path):
    src = "def compute_model_placement(gpu_num, models):\n    return {i: [m] for i, m in enumerate(models)}\n"
    r = run_eval(candidate(tmp_path, "extra", src), "quick")
    assert r["valid"] is False and r["score"] == 0.0
    assert "outside range(" in r["feedback"] and "case 0" in r["feedback"]


def test_copies_and_duplicates_are_invalid(tmp_path):
    copies = baseline_with("\nimport copy\n_greedy = compute_model_placement\n\n"
                           "def compute_model_placement(gpu_num, models):\n"
                           "    return _greedy(gpu_num, [copy.copy(m) for m in models])\n")
    r = run_eval(candidate(tmp_path, "copies", copies), "quick")
    assert r["valid"] is False and "not one of the given model objects" in r["feedback"]
    dup = baseline_with("\n_greedy = compute_model_placement\n\n"
                        "def compute_model_placement(gpu_num, models):\n"
                        "    out = _greedy(gpu_num, models)\n"
                        "    out[0].append(out[1][0])\n"
                        "    return out\n")
    r = run_eval(candidate(tmp_path, "dup", dup), "quick")
    assert r["valid"] is False and "placed twice" in r["feedback"]


def test_overfull_and_missing_are_invalid(tmp_path):
    over = "def compute_model_placement(gpu_num, models):\n    return {0: list(models)}\n"
    r = run_eval(candidate(tmp_path, "over", over), "quick")
    assert r["valid"] is False and "GB of models > 80 GB" in r["feedback"]
    assert "instances" not in r
    missing = "def compute_model_placement(gpu_num, models):\n    return {g: [] for g in range(gpu_num)}\n"
    r = run_eval(candidate(tmp_path, "missing", missing), "quick")
    assert r["valid"] is False and "are not placed" in r["feedback"]


def test_runaway_case_is_killed_and_scored_zero(tmp_path, cases_mod):
    first = cases_mod[1].stage_cases("quick")[0]
    src = baseline_with("\nimport time\n_greedy = compute_model_placement\n\n"
                        "def compute_model_placement(gpu_num, models):\n"
                        f"    if [m.model_size for m in models] == {list(first.sizes)!r}:\n"
                        "        while True:\n"
                        "            time.sleep(0.05)\n"
                        "    return _greedy(gpu_num, models)\n")
    r = run_eval(candidate(tmp_path, "slow", src), "quick", "--case-timeout-s", "1")
    assert r["valid"], r["feedback"]
    assert r["metrics"]["n_failed"] == 1  # case 0 only; the restarted process does the rest
    assert "case 0: scored 0: timed out after 1s" in r["feedback"]
    assert r["instances"]["case_0"] == 0.0


def test_instances_are_cases_whose_mean_is_the_score(tmp_path, baseline_quick):
    """`review` pairs per-case scores across candidates: the same names for every candidate,
    each case's score, their mean the stage's score."""
    base = candidate(tmp_path, "base")
    tuned = candidate(tmp_path, "tuned", baseline_with(LOOKAHEAD=1.0, SIZE_WEIGHT=1.0))
    test, tuned_test = run_eval(base, "test"), run_eval(tuned, "test")
    assert list(test["instances"]) == [f"case_{i}" for i in range(50)]
    assert list(baseline_quick["instances"]) == [f"case_{i}" for i in range(10)]
    assert tuned_test["instances"].keys() == test["instances"].keys()
    assert tuned_test["instances"] != test["instances"]
    for r in (test, tuned_test, baseline_quick):
        assert r["valid"] and all(math.isfinite(v) and 0 <= v <= 100 for v in r["instances"].values())
        assert r["score"] == pytest.approx(statistics.fmean(r["instances"].values()), abs=1e-9)


def test_test_stage_is_held_out_and_tuning_helps(tmp_path, baseline_quick):
    tuned = run_eval(candidate(tmp_path, "tuned", baseline_with(LOOKAHEAD=1.0, SIZE_WEIGHT=1.0)), "quick")
    assert tuned["valid"] and tuned["score"] > baseline_quick["score"]
    again = run_eval(candidate(tmp_path, "base2"), "quick")
    assert again["score"] == baseline_quick["score"]
    assert baseline_quick["metrics"]["n_cases"] == 10
