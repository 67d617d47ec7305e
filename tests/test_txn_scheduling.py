"""tasks/txn-scheduling: the sealed evaluator run as a real subprocess on temp candidates.

Every known loophole of the published evaluator has a test here with the exploiting
candidate written out: a reported makespan is never used, an empty schedule list is
invalid, patching the simulator in the candidate's process changes nothing, a workload
that raises scores 0 (it is not dropped), and orders that are not permutations are invalid.
"""
from __future__ import annotations

import math
import statistics
import subprocess
import sys

import pytest

from tests.fixtures.tasks import ROOT, SHARED, TaskFolder

FOLDER = TaskFolder("txn-scheduling", "scheduler.py")
TASK, EVAL_DIR, REPO = FOLDER.root, FOLDER.evaluator, FOLDER.repo
run_eval, candidate, with_constants = FOLDER.run_eval, FOLDER.candidate, FOLDER.with_constants
SHARED_DATA = SHARED / "data" / "txn-scheduling"
PUBLISHED_SCORE = 100 * (537 - 352) / (537 - 95.1)  # 41.86: greedy seed with random.seed(42)


@pytest.fixture(scope="module")
def baseline_quick(tmp_path_factory) -> dict:
    return run_eval(candidate(tmp_path_factory.mktemp("txn"), "base"), "quick")


def test_task_checks():
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "tasks", "check", str(TASK)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "txn-scheduling" in proc.stdout


def test_leaderboard_reproduces_published_baseline(tmp_path):
    """With ../shared present the public data is passed as --data; else the shipped copy runs."""
    extra = ("--data", str(SHARED_DATA)) if SHARED_DATA.is_dir() else ()
    r = run_eval(candidate(tmp_path, "base"), "leaderboard", *extra)
    assert r["valid"], r["feedback"]
    assert r["metrics"]["baseline_makespan"] == 537
    assert r["metrics"]["optimal_makespan"] == 46
    assert r["metrics"]["makespan"] == 352
    assert r["score"] == pytest.approx(PUBLISHED_SCORE, abs=1e-9)
    assert round(r["score"], 1) == 41.9
    # each published workload's share of the score: they sum to it (before the clamp)
    assert list(r["instances"]) == ["workload_1", "workload_2", "workload_3"]
    assert sum(r["instances"].values()) == pytest.approx(r["score"], abs=1e-9)


def test_shipped_workloads_are_copies_of_the_public_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} absent (a fresh clone has no ../shared)")
    for k in (1, 2, 3):
        shared = (SHARED_DATA / f"workload_{k}.json").read_text()
        assert (REPO / "data" / f"workload_{k}.json").read_text() == shared
        assert (EVAL_DIR / "runtime" / "data" / f"workload_{k}.json").read_text() == shared


PUBLISHED_STYLE = '''
import time
import random
from txn_simulator import Workload
from workloads import WORKLOAD_1, WORKLOAD_2, WORKLOAD_3

def get_best_schedule(workload, num_seqs):
    def get_greedy_cost_sampled(num_samples, sample_rate):
        start_txn = random.randint(0, workload.num_txns - 1)
        txn_seq = [start_txn]
        remaining_txns = [x for x in range(0, workload.num_txns)]
        remaining_txns.remove(start_txn)
        for i in range(0, workload.num_txns - 1):
            min_cost = 100000
            min_txn = -1
            holdout_txns = []
            done = False
            sample = random.random()
            if sample > sample_rate:
                idx = random.randint(0, len(remaining_txns) - 1)
                txn_seq.append(remaining_txns.pop(idx))
                continue
            for j in range(0, num_samples):
                idx = 0
                if len(remaining_txns) > 1:
                    idx = random.randint(0, len(remaining_txns) - 1)
                else:
                    done = True
                t = remaining_txns[idx]
                holdout_txns.append(remaining_txns.pop(idx))
                test_seq = txn_seq.copy()
                test_seq.append(t)
                cost = workload.get_opt_seq_cost(test_seq)
                if cost < min_cost:
                    min_cost = cost
                    min_txn = t
                if done:
                    break
            txn_seq.append(min_txn)
            holdout_txns.remove(min_txn)
            remaining_txns.extend(holdout_txns)
        return workload.get_opt_seq_cost(txn_seq), txn_seq
    return get_greedy_cost_sampled(10, 1.0)

def get_random_costs():
    random.seed(42)  # Fixed seed for reproducibility
    start_time = time.time()
    workload = Workload(WORKLOAD_1)
    makespan1, schedule1 = get_best_schedule(workload, 10)
    cost1 = workload.get_opt_seq_cost(schedule1)
    workload2 = Workload(WORKLOAD_2)
    makespan2, schedule2 = get_best_schedule(workload2, 10)
    cost2 = workload2.get_opt_seq_cost(schedule2)
    workload3 = Workload(WORKLOAD_3)
    makespan3, schedule3 = get_best_schedule(workload3, 10)
    cost3 = workload3.get_opt_seq_cost(schedule3)
    print(cost1, cost2, cost3)
    return cost1 + cost2 + cost3, [schedule1, schedule2, schedule3], [cost1, cost2, cost3], time.time() - start_time
'''


def test_published_style_program_runs_unchanged(tmp_path):
    """The published seed (LEVI's 4-tuple variant, printing to stdout) scores as published."""
    r = run_eval(candidate(tmp_path, "pub", PUBLISHED_STYLE), "leaderboard")
    assert r["valid"], r["feedback"]
    assert r["metrics"]["makespan"] == 352
    assert r["score"] == pytest.approx(PUBLISHED_SCORE, abs=1e-9)


REPORTS_ZERO = '''
def get_best_schedule(workload, num_seqs):
    return 0, list(range(workload.num_txns))

def get_random_costs():
    return 0, [list(range(100))] * 3, 0.0
'''


def test_reported_makespan_is_ignored(tmp_path):
    """Published loophole: returning makespan 0 with the sequential orders scored 100."""
    cand = candidate(tmp_path, "zero", REPORTS_ZERO)
    r = run_eval(cand, "leaderboard")
    assert r["valid"]
    assert r["metrics"]["makespan"] == 537 and r["score"] == 0.0
    q = run_eval(cand, "quick")
    assert q["valid"] and q["score"] == 0.0
    assert q["metrics"]["total_makespan"] == q["metrics"]["total_sequential"]


def test_empty_schedule_list_is_invalid(tmp_path):
    """Published loophole: zero schedules passed validation (loop over nothing)."""
    src = "def get_best_schedule(w, n):\n    return 0, []\n\ndef get_random_costs():\n    return 0, [], 0.0\n"
    cand = candidate(tmp_path, "empty", src)
    r = run_eval(cand, "leaderboard")
    assert r["valid"] is False and r["score"] == 0.0
    assert "0 schedules, expected 3" in r["feedback"]
    q = run_eval(cand, "quick")
    assert q["valid"] is False and "has 0 entries, expected 100" in q["feedback"]
    assert "instances" not in r and "instances" not in q


PATCHES_SIMULATOR = '''
import sys
import txn_simulator
import workloads
txn_simulator.Workload.get_opt_seq_cost = lambda self, seq: 0
workloads.WORKLOAD_1 = workloads.WORKLOAD_3
sys.__stdout__.write('{"i": 0, "order": [0]}\\n')  # a forged protocol line

def get_best_schedule(workload, num_seqs):
    return workload.get_opt_seq_cost([]), list(range(workload.num_txns))

def get_random_costs():
    from txn_simulator import Workload
    ws = [Workload(w) for w in (workloads.WORKLOAD_1, workloads.WORKLOAD_2, workloads.WORKLOAD_3)]
    return 0, [list(range(w.num_txns)) for w in ws], 0.0
'''


def test_patching_the_simulator_in_the_candidate_changes_nothing(tmp_path):
    cand = candidate(tmp_path, "patch", PATCHES_SIMULATOR)
    q = run_eval(cand, "quick")
    assert q["valid"], q["feedback"]
    assert q["score"] == 0.0
    assert q["metrics"]["workload_3_makespan"] == 47  # recomputed with the evaluator's copy
    r = run_eval(cand, "leaderboard")
    assert r["metrics"]["makespan"] == 537 and r["score"] == 0.0


def test_raising_on_hard_workloads_scores_them_zero(tmp_path, baseline_quick):
    """Published-style dropping of failed instances would reward raising where one is weak."""
    src = (REPO / "scheduler.py").read_text().replace(
        '    best = None\n',
        '    if workload.num_txns != 40:\n        raise RuntimeError("skip")\n    best = None\n', 1)
    r = run_eval(candidate(tmp_path, "raise", src), "quick")
    assert r["valid"], r["feedback"]
    assert r["metrics"]["n_failed"] == 2
    assert r["metrics"]["workload_3_score"] == 0.0 and r["metrics"]["hotspot_q1_score"] == 0.0
    assert r["score"] <= baseline_quick["score"]
    assert "RuntimeError: skip" in r["feedback"]


def test_non_permutations_are_invalid_and_say_why(tmp_path):
    dup = "def get_best_schedule(w, n):\n    s = list(range(w.num_txns))\n    s[5] = 3\n    return 0, s\n"
    r = run_eval(candidate(tmp_path, "dup", dup), "quick")
    assert r["valid"] is False and r["score"] == 0.0
    assert "transaction 3 appears twice (second time at position 5)" in r["feedback"]
    bad = "def get_best_schedule(w, n):\n    return 0, [float(i) for i in range(w.num_txns)]\n"
    r = run_eval(candidate(tmp_path, "flt", bad), "quick")
    assert r["valid"] is False and "not an int" in r["feedback"]


def test_import_error_is_invalid(tmp_path):
    r = run_eval(candidate(tmp_path, "imp", "raise RuntimeError('boom at import')\n"), "quick")
    assert r["valid"] is False and "boom at import" in r["feedback"]


def test_time_limit_scores_unfinished_workloads_zero(tmp_path):
    src = ("import time\n"
           "def get_best_schedule(w, n):\n"
           "    if w.num_txns == 40:\n"
           "        time.sleep(60)\n"
           "    return 0, list(range(w.num_txns))[::-1]\n")
    r = run_eval(candidate(tmp_path, "slow", src), "quick", "--time-limit-s", "3")
    assert r["valid"], r["feedback"]
    assert r["metrics"]["n_failed"] == 1 and r["metrics"]["ycsb_q1_score"] == 0.0
    assert "time limit 3s" in r["feedback"]
    assert r["metrics"]["time_s"] < 30  # killed, not waited for


def test_test_stage_is_held_out(tmp_path):
    cand = candidate(tmp_path, "seq", REPORTS_ZERO)
    full, test = run_eval(cand, "full"), run_eval(cand, "test")

    def names(r):
        return {k.rsplit("_", 1)[0] for k in r["metrics"] if k.endswith("_makespan")}

    assert "workload_1" in names(full)
    assert names(full).isdisjoint(names(test) - {"total"})


def test_instances_are_workloads_whose_mean_is_the_score(tmp_path, baseline_quick):
    """`review` pairs per-workload scores across candidates: the same names for every
    candidate, each workload's clamped score, their mean the stage's score."""
    base, seq = candidate(tmp_path, "base"), candidate(tmp_path, "seq", REPORTS_ZERO)
    test, seq_test = run_eval(base, "test"), run_eval(seq, "test")
    assert list(test["instances"]) == ["ycsb_t1", "ycsb_t2", "hotspot_t1", "pipeline_t1"]
    assert list(baseline_quick["instances"]) == ["workload_3", "hotspot_q1", "ycsb_q1"]
    assert seq_test["instances"] == dict.fromkeys(test["instances"], 0.0)
    for r in (test, seq_test, baseline_quick):
        assert r["valid"] and all(math.isfinite(v) and 0 <= v <= 100 for v in r["instances"].values())
        assert r["score"] == pytest.approx(statistics.fmean(r["instances"].values()), abs=1e-9)
    assert test["score"] > 0


def test_baseline_deterministic_and_tuning_helps(tmp_path, baseline_quick):
    assert baseline_quick["valid"] and baseline_quick["score"] > 0
    again = run_eval(candidate(tmp_path, "base2"), "quick")
    assert again["metrics"] == {**baseline_quick["metrics"], "time_s": again["metrics"]["time_s"]}
    tuned = run_eval(candidate(tmp_path, "tuned", with_constants(NUM_SAMPLES=30)), "quick")
    assert tuned["valid"] and tuned["score"] > baseline_quick["score"]
