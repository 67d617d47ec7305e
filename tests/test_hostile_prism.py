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

from sandbox.evaluate import StageResult
from tests.fixtures.hostile import (FORGE_AT_EXIT, FORGE_VIA_PARENT, TASKS, evaluate, not_above,
                                    worktree)

TASK = "prism"
EVALUATOR = TASKS / TASK / "evaluator"
# The baseline (the PRISM greedy) on every stage; identical to the previous evaluator's.
BASELINE = {"quick": 67.4744960559701, "full": 61.562384419824966, "test": 63.98539591604561,
            "leaderboard": 60.817400988386495}
BASE_SOURCE = (TASKS / TASK / "repo" / "placement.py").read_text()


def candidate(tmp_path: Path, source: str) -> Path:
    return worktree(TASK, tmp_path, {"placement.py": source})


def with_baseline(attack: str) -> str:
    """Attack code at import, then the baseline policy."""
    return textwrap.dedent(attack) + "\n" + BASE_SOURCE


def then(attack: str) -> str:
    """The baseline policy, then attack code that wraps it."""
    return BASE_SOURCE + "\n_greedy = compute_model_placement\n" + textwrap.dedent(attack)


def score(tmp_path: Path, source: str, stage: str, backend) -> StageResult:
    return evaluate(TASK, candidate(tmp_path, source), stage, backend)


def no_better(result: StageResult, stage: str) -> bool:
    return not_above(result, StageResult(stage, BASELINE[stage], True))


# -- a. a forged result line ----------------------------------------------------------------------

@pytest.mark.parametrize("stage", sorted(BASELINE))
@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_a_forged_result_line_is_never_the_score_on_any_stage(tmp_path, backend, stage):
    result = score(tmp_path, with_baseline(FORGE_VIA_PARENT + FORGE_AT_EXIT), stage, backend)
    assert no_better(result, stage), result.feedback
    assert result.score != 1e9


def test_a_forged_result_line_is_never_the_score_in_either_jail(tmp_path, backend):
    result = score(tmp_path, with_baseline(FORGE_VIA_PARENT + FORGE_AT_EXIT), "quick", backend)
    assert no_better(result, "quick")


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

PROBE = f"""\
    import glob, importlib, os, stat, sys

    SECRETS = {{"evaluate.py", "cases.py", "optima.json", "child.py"}}
    # the evaluator's argv and environment, and the held-out seeds (bwrap, the jail's pid 1,
    # shows the host paths of its mounts in its own argv: where the jail folder lives, not
    # what the evaluator holds)
    MARKERS = (b"evaluate.py", b"--stage", b"ADRS_RESULT", b"ADRS_JAIL", b"550011", b"550_011")
    EVALUATOR = {str(EVALUATOR)!r}
    system = (sys.prefix, sys.base_prefix)
    found = []

    def readable(path):  # its bytes, or None; FIFOs (docker's /adrs/io pipes) are not read
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                return None
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            return None

    skip = {{"/proc", "/sys", "/dev", "/usr", *system}}
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip]
        for name in files:
            path = os.path.join(root, name)
            data = readable(path)
            if data is None:
                continue
            mine = path.startswith("/candidate/")  # this probe holds the markers itself
            if name in SECRETS or "/evaluator" in path or \\
                    (not mine and any(m in data for m in MARKERS[-2:])):
                found.append(path)
    for path in [EVALUATOR, *glob.glob(EVALUATOR + "/*"), "/work/main/tasks/{TASK}/evaluator"]:
        if os.path.exists(path):
            found.append(path)
    for path in glob.glob("/proc/*/cmdline") + glob.glob("/proc/*/environ"):
        data = readable(path) or b""
        found += [f"{{path}}: {{m!r}}" for m in MARKERS if m in data]
    for path in glob.glob("/proc/*/cwd/*"):
        if os.path.basename(path) in SECRETS:
            found.append(path)
    for name in ("cases", "evaluate"):  # the generator and exact optimum, the seeds
        module = sys.modules.get(name)
        try:
            module = module or importlib.import_module(name)
        except ImportError:
            continue
        if not str(getattr(module, "__file__", "")).startswith(system):
            found.append(f"import {{name}}: {{module}}")
    raise RuntimeError("PROBE-FOUND: " + repr(found))
"""


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


NESTS_TOO_DEEP = """\
    import os

    # one reply line nested deeper than any JSON reader recurses, on the reply pipe
    for _fd in range(3, 64):
        try:
            if os.readlink(f"/proc/self/fd/{_fd}").startswith("pipe:"):
                os.write(_fd, b"[" * 100000 + b"\\n")
        except OSError:
            pass
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_a_reply_nested_too_deeply_is_refused_not_a_crash(tmp_path, backend):
    result = score(tmp_path, with_baseline(NESTS_TOO_DEEP), "quick", backend)
    assert not result.valid and "nested too deeply" in result.feedback, result.feedback


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


def test_neither_side_imports_the_other_sides_code():
    """The evaluator imports nothing of the worktree; the candidate side (whose folder the
    candidate can read) nothing of the evaluator folder: it has its own Model, field for field."""
    assert "placement" not in imported_modules(EVALUATOR / "evaluate.py")
    assert sorted(p.name for p in (EVALUATOR / "jail").iterdir() if p.name != "__pycache__") == [
        "side.py"]
    side_imports = imported_modules(EVALUATOR / "jail" / "side.py")
    assert side_imports <= {"adrs_eval", "numpy", "operator", "random", "time", "traceback",
                            "dataclasses"}
    assert model_fields(EVALUATOR / "jail" / "side.py") == model_fields(EVALUATOR / "cases.py")


def model_fields(path: Path) -> list[tuple[str, str]]:
    """The (name, annotation) fields of the Model class a file defines."""
    tree = ast.parse(path.read_text())
    model = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Model")
    return [(f.target.id, ast.unparse(f.annotation)) for f in model.body
            if isinstance(f, ast.AnnAssign)]
