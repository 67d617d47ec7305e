"""Hostile candidates against tasks/bin-packing, scored the way a run scores them (the harness's
run_stage, the sealed evaluator, the jail backend under test).

The policy runs in a jailed process of its own and only answers "which bin?" for one item of
each instance at a time; the evaluator keeps the bins. Each candidate here tries something
the old in-process design allowed (replacing the evaluator's `pack`, patching numpy), forges
a result, looks for the instance generator and its held-out seeds, or lies about its answers.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.fixtures.hostile import (
    RAISE_FOUND,
    TASKS,
    Known,
    assert_sides_apart,
    forged_result_line_tests,
    nested_reply_test,
    onto_reply_pipes,
    probing,
)

BIN_PACKING = Known(
    task="bin-packing", path="binpack/policy.py",
    # the baseline (best fit) on every stage; identical to the in-process evaluator's scores
    baseline={"quick": 0.9434726256902899, "full": 0.9499271990952343,
              "test": 0.9525361835309163})
TASK, BASELINE, BASE_SOURCE = BIN_PACKING.task, BIN_PACKING.baseline, BIN_PACKING.source
score, with_baseline = BIN_PACKING.score, BIN_PACKING.with_baseline
no_better, scores_as_baseline = BIN_PACKING.no_better, BIN_PACKING.scores_as_baseline


# -- a. a forged result line ----------------------------------------------------------------------

(test_a_forged_result_line_is_never_the_score_on_any_stage,
 test_a_forged_result_line_is_never_the_score_in_either_jail) = forged_result_line_tests(
    BIN_PACKING, stages=sorted(BASELINE))


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
    result = score(tmp_path, with_baseline(PATCHES_EVALUATOR), "quick", backend)
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
    result = score(tmp_path, with_baseline(FORGES_ITS_OWN_BINS), "quick", backend)
    assert not result.valid and "overfull bin" in result.feedback


# -- c. the generator, the held-out seeds, the evaluator's files and process ----------------------------

PROBE = probing(
    secrets={"evaluate.py", "instances.py"},
    markers=(b"instances.py",),
    known=[str(TASKS / TASK / "evaluator"), f"/work/main/tasks/{TASK}/evaluator"],
    modules=("instances", "evaluate"),  # the generator (held-out seeds), the evaluator
) + RAISE_FOUND


def test_the_policy_finds_no_generator_seed_or_evaluator_file(tmp_path, backend):
    result = score(tmp_path, with_baseline(PROBE), "quick", backend)
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
    result = score(tmp_path, source, "test", backend)
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
    result = score(tmp_path, BASE_SOURCE + textwrap.dedent(LYING_INTS), "quick", backend)
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
    result = score(tmp_path, with_baseline(SENDS_NON_INTS), "quick", backend)
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
    result = score(tmp_path, BASE_SOURCE + textwrap.dedent(MUTATES_AND_KEEPS), "quick", backend)
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
    result = score(tmp_path, BASE_SOURCE + textwrap.dedent(PEEKS_AHEAD), "full", backend)
    assert scores_as_baseline(result, "full"), result.feedback


# replies of its own on the reply pipe, ahead of the real ones: new bins everywhere
FORGES_REPLIES = onto_reply_pipes(repr(b'{"ready": true}\n' + b"[-1, -1, -1, -1]\n" * 50))


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_replies_forged_on_the_pipe_are_only_answers_and_get_checked(tmp_path, backend):
    result = score(tmp_path, with_baseline(FORGES_REPLIES), "quick", backend)
    assert no_better(result, "quick"), result.feedback


test_a_reply_nested_too_deeply_is_refused_not_a_crash = nested_reply_test(BIN_PACKING)


def test_neither_side_imports_the_other_sides_code():
    assert_sides_apart(TASK, worktree_modules={"binpack"},
                       side_imports={"adrs_eval", "numpy", "operator"})
