"""Hostile candidates against tasks/bin-packing, scored the way a run scores them (the harness's
run_stage, the sealed evaluator, the jail backend under test).

The policy runs in a jailed process of its own and only answers "which bin?" for one item of
each instance at a time; the evaluator keeps the bins. Each candidate here tries something
the old in-process design allowed (replacing the evaluator's `pack`, patching numpy), forges
a result, looks for the instance generator and its held-out seeds, or lies about its answers.
"""

from __future__ import annotations

import ast
import textwrap

import pytest

from sandbox.evaluate import StageResult
from tests.fixtures.hostile import (FORGE_AT_EXIT, FORGE_VIA_PARENT, TASKS, evaluate, not_above,
                                    worktree)

TASK = "bin-packing"
POLICY = "binpack/policy.py"
# The baseline (best fit) on every stage; identical to the in-process evaluator's scores.
BASELINE = {"quick": 0.9434726256902899, "full": 0.9499271990952343,
            "test": 0.9525361835309163}
BASE_SOURCE = (TASKS / TASK / "repo" / POLICY).read_text().replace(
    "from __future__ import annotations\n", "")  # so attack code can go first


def candidate(tmp_path, source: str):
    return worktree(TASK, tmp_path, {POLICY: source})


def with_baseline(attack: str) -> str:
    """Attack code at import, then the baseline policy."""
    return textwrap.dedent(attack) + "\n" + BASE_SOURCE


def no_better(result, stage: str) -> bool:
    return not_above(result, StageResult(stage, BASELINE[stage], True))


def scores_as_baseline(result, stage: str) -> bool:
    return result.valid and result.score == BASELINE[stage]


# -- a. a forged result line ----------------------------------------------------------------------

@pytest.mark.parametrize("stage", sorted(BASELINE))
@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_a_forged_result_line_is_never_the_score_on_any_stage(tmp_path, backend, stage):
    wt = candidate(tmp_path, with_baseline(FORGE_VIA_PARENT + FORGE_AT_EXIT))
    result = evaluate(TASK, wt, stage, backend)
    assert no_better(result, stage), result.feedback
    assert result.score != 1e9


def test_a_forged_result_line_is_never_the_score_in_either_jail(tmp_path, backend):
    wt = candidate(tmp_path, with_baseline(FORGE_VIA_PARENT + FORGE_AT_EXIT))
    assert no_better(evaluate(TASK, wt, "quick", backend), "quick")


# -- b. patching what the in-process evaluator exposed -----------------------------------------------

PATCHES_EVALUATOR = """\
    import builtins, sys
    import numpy as np

    main = sys.modules["__main__"]
    for name in ("pack", "evaluate", "load_policy", "pack_all", "emit", "invalid", "_emit",
                 "_invalid", "Packing"):
        setattr(main, name, lambda *a, **k: 1)  # the old pack() returned the bin count
    instances = sys.modules.get("instances")
    if instances is not None:
        instances.Instance.l1 = property(lambda self: 10 ** 9)
    np.bincount = lambda *a, **k: np.zeros(1)  # the re-verification's loads
    np.mean = lambda *a, **k: 1.0  # the stage score
    np.any = lambda *a, **k: False
    np.ceil = lambda x, *a, **k: x * 0 + 10 ** 9  # L1
    builtins.round = lambda x, n=0: 1.0
"""


def test_patching_the_evaluator_and_numpy_in_the_policy_process_changes_nothing(tmp_path, backend):
    wt = candidate(tmp_path, with_baseline(PATCHES_EVALUATOR))
    result = evaluate(TASK, wt, "quick", backend)
    assert scores_as_baseline(result, "quick"), result.feedback


FORGES_ITS_OWN_BINS = """\
    import sys
    import numpy as np

    # the candidate side keeps a copy of each instance's bins: make every bin look empty
    side = sys.modules["__main__"]
    side.Bins.view = lambda self: np.full(self.n, 1e9)
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_a_policy_that_rewrites_its_own_copy_of_the_bins_is_caught(tmp_path, backend):
    result = evaluate(TASK, candidate(tmp_path, with_baseline(FORGES_ITS_OWN_BINS)), "quick", backend)
    assert not result.valid and "overfull bin" in result.feedback


# -- c. the generator, the held-out seeds, the evaluator's files and process ----------------------------

PROBE = f"""\
    import glob, importlib, os, stat, sys

    SECRETS = {{"evaluate.py", "instances.py"}}
    # the evaluator's argv and environment (bwrap, the jail's pid 1, shows the host paths of
    # its mounts in its own argv: where the jail folder lives, not what the evaluator holds)
    MARKERS = (b"evaluate.py", b"--stage", b"ADRS_RESULT", b"ADRS_JAIL", b"instances.py")
    EVALUATOR = {str(TASKS / TASK / "evaluator")!r}
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

    # every file named like the evaluator's, anywhere but the read-only system folders
    skip = {{"/proc", "/sys", "/dev", "/usr", *system}}
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip]
        for name in files:
            path = os.path.join(root, name)
            if (name in SECRETS or "/evaluator" in path) and readable(path) is not None:
                found.append(path)
    for path in [EVALUATOR, *glob.glob(EVALUATOR + "/*"), "/work/main/tasks/{TASK}/evaluator"]:
        if os.path.exists(path):
            found.append(path)
    for path in glob.glob("/proc/*/cmdline") + glob.glob("/proc/*/environ"):
        data = readable(path) or b""
        found += [f"{{path}}: {{m!r}}" for m in MARKERS if m in data]
    for path in glob.glob("/proc/*/cwd/*") + glob.glob("/proc/*/root/adrs/*"):
        if os.path.basename(path) in SECRETS:
            found.append(path)
    for name in ("instances", "evaluate"):  # the generator (held-out seeds), the evaluator
        module = sys.modules.get(name)
        try:
            module = module or importlib.import_module(name)
        except ImportError:
            continue
        if not str(getattr(module, "__file__", "")).startswith(system):
            found.append(f"import {{name}}: {{module}}")
    raise RuntimeError("PROBE-FOUND: " + repr(found))
"""


def test_the_policy_finds_no_generator_seed_or_evaluator_file(tmp_path, backend):
    result = evaluate(TASK, candidate(tmp_path, with_baseline(PROBE)), "quick", backend)
    assert "PROBE-FOUND: []" in result.feedback, result.feedback[-3000:]
    assert no_better(result, "quick")


REBUILDS_THE_TEST_INSTANCES = f"""\
    import sys

    # With the generator, the held-out items of every instance are known in advance, and
    # an offline packing beats any online one. Try every way the old design offered.
    sys.path[:0] = [{str(TASKS / TASK / "evaluator")!r}, "/work/main/tasks/{TASK}/evaluator"]
    try:
        import instances
        OFFLINE = instances.stage_instances("test")
    except ImportError:
        OFFLINE = None
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_the_held_out_instances_cannot_be_rebuilt_by_the_policy(tmp_path, backend):
    source = with_baseline(REBUILDS_THE_TEST_INSTANCES) + textwrap.dedent("""
        if OFFLINE is not None:
            raise RuntimeError("REBUILT the held-out instances")
    """)
    result = evaluate(TASK, candidate(tmp_path, source), "test", backend)
    assert scores_as_baseline(result, "test"), result.feedback


# -- d. answers that lie about themselves, look-ahead -------------------------------------------------

LYING_INTS = """\
    import numpy as np

    class Liar(np.int64):
        calls = 0

        def __index__(self):  # a different bin each time it is asked
            Liar.calls += 1
            return Liar.calls % 3 - 1

        def __eq__(self, other):
            return True

        def __int__(self):
            return 0

    class Anything:
        def __eq__(self, other):
            return True

        __hash__ = object.__hash__

        def __index__(self):
            return 10 ** 12

    _base = choose_bin

    def choose_bin(item, remaining):
        if len(remaining) % 2:
            return Anything()
        return Liar(_base(item, remaining))
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_answers_that_lie_about_their_value_are_judged_by_the_int_that_arrives(tmp_path, backend):
    result = evaluate(TASK, candidate(tmp_path, BASE_SOURCE + textwrap.dedent(LYING_INTS)),
                      "quick", backend)
    assert not result.valid and "out of range" in result.feedback
    assert no_better(result, "quick")


SENDS_NON_INTS = """\
    import sys

    side = sys.modules["__main__"]
    _answer = side.answer
    shapes = iter([True, 1.0, "0", [0], None, float("nan")] * 10 ** 5)

    def answer(choose_bin, item, remaining):  # bypass the side's int conversion
        real = _answer(choose_bin, item, remaining)
        return next(shapes) if len(remaining) else real

    side.answer = answer
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_answers_that_are_not_plain_ints_in_json_are_refused(tmp_path, backend):
    result = evaluate(TASK, candidate(tmp_path, with_baseline(SENDS_NON_INTS)), "quick", backend)
    assert not result.valid and "not an int index" in result.feedback, result.feedback


MUTATES_AND_KEEPS = """\
    _base = choose_bin
    _seen = []

    def choose_bin(item, remaining):
        _seen.append(remaining)  # keep every array, and scribble on it
        choice = _base(item, remaining)
        remaining[:] = 10 ** 6
        return choice
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_scribbling_on_the_remaining_array_changes_nothing(tmp_path, backend):
    result = evaluate(TASK, candidate(tmp_path, BASE_SOURCE + textwrap.dedent(MUTATES_AND_KEEPS)),
                      "quick", backend)
    assert scores_as_baseline(result, "quick"), result.feedback


PEEKS_AHEAD = """\
    import select

    _base = choose_bin

    def choose_bin(item, remaining):
        # anything waiting on the pipe now would be a later item, seen before this answer
        if select.select([0], [], [], 0)[0]:
            raise RuntimeError("LOOKAHEAD: more input was waiting")
        return _base(item, remaining)
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_the_policy_never_sees_an_item_before_answering_the_one_before(tmp_path, backend):
    result = evaluate(TASK, candidate(tmp_path, BASE_SOURCE + textwrap.dedent(PEEKS_AHEAD)),
                      "full", backend)
    assert scores_as_baseline(result, "full"), result.feedback


FORGES_REPLIES = """\
    import os

    # write replies of its own on the reply pipe, ahead of the real ones: new bins everywhere
    for _fd in range(3, 64):
        try:
            if os.readlink(f"/proc/self/fd/{_fd}").startswith("pipe:"):
                os.write(_fd, b'{"ready": true}\\n' + b"[-1, -1, -1, -1]\\n" * 50)
        except OSError:
            pass
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_replies_forged_on_the_pipe_are_only_answers_and_get_checked(tmp_path, backend):
    result = evaluate(TASK, candidate(tmp_path, with_baseline(FORGES_REPLIES)), "quick", backend)
    assert no_better(result, "quick"), result.feedback


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
    result = evaluate(TASK, candidate(tmp_path, with_baseline(NESTS_TOO_DEEP)), "quick", backend)
    assert not result.valid and "nested too deeply" in result.feedback, result.feedback


def imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


def test_neither_side_imports_the_other_sides_code():
    """The evaluator imports nothing of the worktree; the candidate side (whose folder the
    candidate can read) nothing of the evaluator folder."""
    evaluator = TASKS / TASK / "evaluator"
    assert "binpack" not in imported_modules(evaluator / "evaluate.py")
    assert sorted(p.name for p in (evaluator / "jail").iterdir() if p.name != "__pycache__") == [
        "side.py"]
    assert imported_modules(evaluator / "jail" / "side.py") <= {"adrs_eval", "numpy", "operator"}
