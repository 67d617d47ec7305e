"""Hostile candidates against tasks/prism, scored the way a run scores them (the harness's
run_stage, the sealed evaluator, the jail backend under test).

The placement policy runs in a jailed process of its own, one case per message; only which
model index sits on which GPU reaches the evaluator, which checks it and computes every KVPR
from its own case data. Each candidate here forges a result, patches the evaluator's scoring
where the old design let it (the child imported the evaluator's `cases` module), looks for
the case generator, the held-out seeds and the exact optima, mutates the Model objects, or
returns placements that lie about themselves.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from tests.fixtures.hostile import (
    RAISE_FOUND,
    TASKS,
    Known,
    assert_sides_apart,
    forged_result_line_tests,
    nested_reply_test,
    probing,
)

PRISM = Known(
    task="prism", path="placement.py",
    # the baseline (the PRISM greedy) on every stage; identical to the previous evaluator's
    baseline={"quick": 67.4744960559701, "full": 61.562384419824966, "test": 63.98539591604561,
              "leaderboard": 60.817400988386495})
TASK, BASELINE, BASE_SOURCE = PRISM.task, PRISM.baseline, PRISM.source
score, with_baseline, no_better = PRISM.score, PRISM.with_baseline, PRISM.no_better
EVALUATOR = TASKS / TASK / "evaluator"


def then(attack: str) -> str:
    """The baseline policy, then attack code that wraps it."""
    return BASE_SOURCE + "\n_greedy = compute_model_placement\n" + textwrap.dedent(attack)


# -- a. a forged result line ----------------------------------------------------------------------

(test_a_forged_result_line_is_never_the_score_on_any_stage,
 test_a_forged_result_line_is_never_the_score_in_either_jail) = forged_result_line_tests(
    PRISM, stages=sorted(BASELINE))


# -- b. patching the evaluator's scoring -------------------------------------------------------------

PATCHES_SCORING = """\
    import builtins, math, sys

    # where the old design put the evaluator's scoring within reach: the `cases` module the
    # child imported, and the evaluator's own functions
    targets = [sys.modules["__main__"], sys.modules.get("cases")]
    try:
        import cases
        targets.append(cases)
    except ImportError:
        pass
    for module in filter(None, targets):
        for name in ("max_kvpr", "lower_bound", "round_robin", "sqrt_score", "check_groups",
                     "exact_optimum", "optima", "evaluate", "emit", "invalid", "_emit", "_invalid"):
            if hasattr(module, name):
                setattr(module, name, lambda *a, **k: 0.0)
    math.sqrt = lambda x: 1.0
    builtins.max = lambda *a, **k: 0.0
"""


def test_patching_the_evaluators_scoring_changes_nothing(tmp_path, backend):
    result = score(tmp_path, with_baseline(PATCHES_SCORING), "quick", backend)
    assert result.valid and result.score == BASELINE["quick"], result.feedback


MUTATES_MODELS = """\
    import sys

    def compute_model_placement(gpu_num, models):
        placement = _greedy(gpu_num, models)
        for m in models:  # the published loophole: KVPR computed from these very objects
            m.req_rate, m.slo, m.model_size = 0, 1, 1
        side = sys.modules["__main__"]
        side.Model.__eq__ = lambda self, other: True  # and every model equal to any other
        return placement
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_mutating_the_model_objects_changes_nothing(tmp_path, backend):
    result = score(tmp_path, then(MUTATES_MODELS), "quick", backend)
    assert result.valid and result.score == BASELINE["quick"], result.feedback


# -- c. the generator, the held-out seeds, the optima, the evaluator's files and process ----------------

PROBE = probing(
    secrets={"evaluate.py", "cases.py", "optima.json", "child.py"},
    known=[str(EVALUATOR), f"/work/main/tasks/{TASK}/evaluator"],
    seeds=(b"550011", b"550_011"),  # the held-out cases' seed
    modules=("cases", "evaluate"),  # the generator and exact optimum, the seeds
) + RAISE_FOUND


def test_the_policy_finds_no_generator_seed_optimum_or_evaluator_file(tmp_path, backend):
    result = score(tmp_path, with_baseline(PROBE), "quick", backend)
    assert "PROBE-FOUND: []" in result.feedback, result.feedback[-3000:]
    assert no_better(result, "quick")


USES_THE_OPTIMA = f"""\
    import json, sys

    # With the cases module (the generator and an exact solver, as the old child imported it)
    # every case could be solved to optimality; with optima.json, at least checked.
    sys.path[:0] = [{str(EVALUATOR)!r}, "/work/main/tasks/{TASK}/evaluator"]
    try:
        import cases
        SOLVER = cases.exact_optimum
    except ImportError:
        SOLVER = None
    if SOLVER is not None:
        raise RuntimeError("REACHED the exact solver")
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_the_exact_solver_and_held_out_cases_stay_out_of_reach(tmp_path, backend):
    result = score(tmp_path, with_baseline(USES_THE_OPTIMA), "test", backend)
    assert result.valid and result.score == BASELINE["test"], result.feedback


# -- d. placements that lie about themselves ---------------------------------------------------------

LOOKALIKES = """\
    class Lookalike:
        def __init__(self, model):
            self.__dict__.update(vars(model))

        def __eq__(self, other):  # the same as any model it is compared with
            return True

        def __hash__(self):
            return 0

    def compute_model_placement(gpu_num, models):
        placement = _greedy(gpu_num, models)
        return {gpu: [Lookalike(m) for m in ms] for gpu, ms in placement.items()}
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_lookalike_model_objects_are_not_the_given_ones(tmp_path, backend):
    result = score(tmp_path, then(LOOKALIKES), "quick", backend)
    assert not result.valid and "not one of the given model objects" in result.feedback


# The side maps objects to indices; a candidate can replace that mapping and send any groups.
# Each forged shape must be refused, not crash the evaluator or slip a model past the checks.
FORGED_GROUPS = {
    "negative index": "[[g, [-1] + idx] if g == 0 else [g, idx] for g, idx in groups]",
    "index past the end": "[[g, idx + [len(models)]] if g == 0 else [g, idx] for g, idx in groups]",
    "bool index": "[[g, [True if j == 1 else j for j in idx]] for g, idx in groups]",
    "float gpu": "[[float(g), idx] for g, idx in groups]",
    "string index": "[[g, [str(j) for j in idx]] for g, idx in groups]",
    "not pairs": "[[g, idx, 'extra'] for g, idx in groups]",
    "dict": "{'0': list(range(len(models)))}",
}


@pytest.mark.parametrize("shape", sorted(FORGED_GROUPS))
@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_forged_index_lists_are_refused(tmp_path, backend, shape):
    attack = f"""\
        import sys

        side = sys.modules["__main__"]
        _to_groups = side.to_groups

        def to_groups(result, models):
            groups = _to_groups(result, models)
            return {FORGED_GROUPS[shape]}

        side.to_groups = to_groups
    """
    result = score(tmp_path, with_baseline(attack), "quick", backend)
    assert not result.valid, result.feedback
    assert "evaluator error" not in result.feedback and "case 0" in result.feedback, result.feedback


CRASHES_WHERE_WEAK = """\
    import os

    def compute_model_placement(gpu_num, models):
        if gpu_num != 5:  # end the process instead of raising: is that "not a failure"?
            os._exit(0)
        return _greedy(gpu_num, models)
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_ending_the_process_where_weak_scores_those_cases_zero(tmp_path, backend):
    result = score(tmp_path, then(CRASHES_WHERE_WEAK), "quick", backend)
    assert result.valid and 0 < result.metrics["n_failed"] < 10, result.feedback
    assert result.score < BASELINE["quick"]
    assert "the process ended during this case" in result.feedback


test_a_reply_nested_too_deeply_is_refused_not_a_crash = nested_reply_test(PRISM)


def test_neither_side_imports_the_other_sides_code():
    """The side imports nothing of the evaluator folder: it has its own Model, field for field
    the evaluator's."""
    assert_sides_apart(TASK, worktree_modules={"placement"}, side_imports={
        "adrs_eval", "numpy", "operator", "random", "time", "traceback", "dataclasses"})
    assert model_fields(EVALUATOR / "jail" / "side.py") == model_fields(EVALUATOR / "cases.py")


def model_fields(path: Path) -> list[tuple[str, str]]:
    """The (name, annotation) fields of the Model class a file defines."""
    tree = ast.parse(path.read_text())
    model = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Model")
    return [(f.target.id, ast.unparse(f.annotation)) for f in model.body
            if isinstance(f, ast.AnnAssign)]
