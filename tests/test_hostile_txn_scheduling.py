"""Hostile candidates against tasks/txn-scheduling, scored the way a run scores them (the
harness's run_stage, the sealed evaluator, the jail backend under test).

The scheduler runs in a jailed process of its own; only the orders it returns reach the
evaluator, which recomputes every makespan with its own simulator (evaluator/runtime/) on its
own copy of the workloads. Each candidate here forges a result, patches the simulator or the
evaluator's functions, edits the worktree's simulator, looks for the generator and its
held-out seeds, or sends orders that lie about themselves.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.fixtures.hostile import (
    RAISE_FOUND,
    SHARED_DATA,
    TASKS,
    Known,
    assert_sides_apart,
    forged_result_line_tests,
    nested_reply_test,
    onto_reply_pipes,
    probing,
)

TXN_SCHEDULING = Known(
    task="txn-scheduling", path="scheduler.py",
    # the baseline (the published greedy) on every stage; identical to the previous evaluator's
    baseline={"quick": 7.739082365948039, "full": 13.422654965415695, "test": 14.48835433371516,
              "leaderboard": 41.86467526589726},
    data=SHARED_DATA / "txn-scheduling" if (SHARED_DATA / "txn-scheduling").is_dir() else None)
TASK, BASELINE, BASE_SOURCE = TXN_SCHEDULING.task, TXN_SCHEDULING.baseline, TXN_SCHEDULING.source
score, with_baseline = TXN_SCHEDULING.score, TXN_SCHEDULING.with_baseline
no_better = TXN_SCHEDULING.no_better


# -- a. a forged result line ----------------------------------------------------------------------

(test_a_forged_result_line_is_never_the_score_on_any_stage,
 test_a_forged_result_line_is_never_the_score_in_either_jail) = forged_result_line_tests(
    TXN_SCHEDULING, stages=sorted(BASELINE))


# -- b. patching the simulator and the evaluator in the scheduler's process ------------------------

PATCHES_EVERYTHING = """\
    import builtins, sys
    import txn_simulator, workloads

    # the simulator's cost, in every copy this process can reach
    txn_simulator.Workload.get_opt_seq_cost = lambda self, seq: 0
    workloads.WORKLOAD_1 = workloads.WORKLOAD_2 = workloads.WORKLOAD_3
    # the evaluator's checks and score, where the old design kept them
    main = sys.modules["__main__"]
    for name in ("check_order", "clamp_score", "anchors", "evaluate_stage", "evaluate_leaderboard",
                 "emit", "invalid", "_emit", "_invalid"):
        if hasattr(main, name):
            setattr(main, name, lambda *a, **k: 100.0)
    builtins.max = lambda *a, **k: 0
    main.as_order = lambda obj: list(range(len(list(obj))))  # its own conversion, at least

    def get_best_schedule(workload, num_seqs):
        return 0, list(range(workload.num_txns))

    def get_random_costs():
        return 0, [list(range(100))] * 3, 0.0
"""


def test_patching_the_simulator_and_the_evaluator_changes_nothing(tmp_path, backend):
    source = BASE_SOURCE + "\n" + textwrap.dedent(PATCHES_EVERYTHING)
    result = score(tmp_path, source, "quick", backend)
    assert result.valid, result.feedback
    assert result.score == 0.0  # the sequential orders it returned, recomputed honestly
    assert result.metrics["workload_3_makespan"] == 47


LYING_SIMULATOR = '''\
"""A worktree copy of the simulator that says every order is perfect."""
import json


class Workload:
    def __init__(self, workload_json, debug=False, verify=False):
        self.txns = list(json.loads(workload_json).values())
        self.num_txns = len(self.txns)

    def get_opt_seq_cost(self, txn_seq):
        return 1
'''


@pytest.mark.parametrize("stage", ["quick", "leaderboard"])
@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_a_lying_simulator_in_the_worktree_is_used_by_nobody(tmp_path, backend, stage):
    """The agent can edit txn_simulator.py in its live worktree: neither the evaluator nor the
    scheduler's process may use that copy."""
    source = BASE_SOURCE + textwrap.dedent("""
        import txn_simulator
        assert not txn_simulator.__file__.startswith("/candidate"), txn_simulator.__file__
    """)
    result = score(tmp_path, source, stage, backend, **{"txn_simulator.py": LYING_SIMULATOR})
    assert result.valid and result.score == BASELINE[stage], result.feedback


# -- c. the generator, the held-out seeds, the evaluator's files and process ----------------------------

PROBE = probing(
    secrets={"evaluate.py", "generate.py", "child.py"},
    known=[str(TASKS / TASK / "evaluator"), f"/work/main/tasks/{TASK}/evaluator"],
    seeds=(b"880301", b"880_301"),  # the held-out workloads' seed
    modules=("generate", "evaluate"),
) + """
# the job folder holds the simulator and this stage's workloads, nothing more
job = sorted(_os.listdir(_os.environ["ADRS_JOB"]))
if job != ["data", "txn_simulator.py", "workloads.py"]:
    _FOUND.append(f"job folder: {job}")
""" + RAISE_FOUND


def test_the_scheduler_finds_no_generator_seed_or_evaluator_file(tmp_path, backend):
    result = score(tmp_path, with_baseline(PROBE), "quick", backend)
    assert "PROBE-FOUND: []" in result.feedback, result.feedback[-3000:]
    assert no_better(result, "quick")


# -- d. orders that lie about themselves, forged protocol messages --------------------------------------

LYING_INTS = """\
    class Liar(int):
        def __index__(self):  # a different transaction whenever it is asked
            Liar.n = getattr(Liar, "n", -1) + 1
            return Liar.n % 7

        def __eq__(self, other):  # equal to every transaction, and one hash for all
            return True

        def __hash__(self):
            return 0

    _best = get_best_schedule

    def get_best_schedule(workload, num_seqs):
        _, order = _best(workload, num_seqs)
        return 0, [Liar(t) for t in order]
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_entries_that_lie_about_their_value_are_judged_by_the_int_that_arrives(tmp_path, backend):
    ints = score(tmp_path / "ints", BASE_SOURCE + textwrap.dedent(LYING_INTS), "quick", backend)
    assert ints.valid and ints.score == BASELINE["quick"], ints.feedback  # their real values
    cycling = LYING_INTS.replace("class Liar(int):", "class Liar:").replace(
        "Liar(t)", "Liar()")
    cycled = score(tmp_path / "cycling", BASE_SOURCE + textwrap.dedent(cycling), "quick", backend)
    assert not cycled.valid and "appears twice" in cycled.feedback, cycled.feedback


SENDS_BOOLS = """\
    import sys

    side = sys.modules["__main__"]
    side.order_of = lambda result: [True] * len(result[1])  # past the side's own check
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_entries_that_are_not_plain_ints_in_json_are_refused(tmp_path, backend):
    result = score(tmp_path, with_baseline(SENDS_BOOLS), "quick", backend)
    assert not result.valid and "not an int" in result.feedback, result.feedback


# results of its own on the reply pipe, ahead of the real ones: reversed orders everywhere, a
# claimed makespan of 0, then garbage
REVERSED_ORDER = str(list(range(99, -1, -1))).encode()
FORGES_MESSAGES = onto_reply_pipes(repr(b"\n".join(
    [b'{"imported": 0}']
    + [b'{"i": %d, "order": %s, "t": "fast", "makespan": 0}' % (i, REVERSED_ORDER) for i in range(6)]
    + [b'{"i": 0, "order": [0]}', b"not json"]) + b"\n"))


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_results_forged_on_the_pipe_are_only_answers_and_get_checked(tmp_path, backend):
    result = score(tmp_path, with_baseline(FORGES_MESSAGES), "quick", backend)
    assert no_better(result, "quick"), result.feedback


test_a_reply_nested_too_deeply_is_refused_not_a_crash = nested_reply_test(TXN_SCHEDULING)


def test_neither_side_imports_the_other_sides_code():
    # the evaluator's simulator is runtime/'s; the side's comes in the job folder
    assert_sides_apart(TASK, worktree_modules={"scheduler"}, side_imports={
        "adrs_eval", "numpy", "operator", "os", "random", "sys", "time", "traceback",
        "txn_simulator", "workloads"})
