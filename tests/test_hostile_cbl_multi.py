"""Hostile candidates against tasks/cbl-multi, scored the way a run scores them (the harness's
run_stage, the sealed evaluator, the jail backend under test).

The policy runs in a jailed process of its own; the evaluator keeps the traces, its own copy
of the simulator and the score, and steps every run of a stage together, sending each tick as
the published env shows it. Each candidate here tries what the old in-process design allowed
(patching sky_spot.sim, the evaluator's functions), forges a result, looks for the traces and
held-out seeds, returns objects that lie about being a ClusterType, leaves the regions, or
writes its restart overhead away; each scores no better than the baseline.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

from tests.fixtures.hostile import (FORGE_AT_EXIT, FORGE_VIA_PARENT, TASKS, evaluate, not_above,
                                    worktree)

TASK = "cbl-multi"
POLICY = "policy/strategy.py"
EVAL_DIR = TASKS / TASK / "evaluator"
WINDOWS = Path(__file__).resolve().parents[2] / "shared" / "data" / "cbl-multi-windows"
needs_windows = pytest.mark.skipif(
    not WINDOWS.is_dir(), reason=f"published windows not found at {WINDOWS} (../shared absent)")
# The initial (greedy) policy on every stage: the in-process evaluator's exact scores.
BASELINE = {"quick": 12.201268303664095, "full": 44.5170204789955, "test": 47.73282312209263,
            "leaderboard": 64.58}
BASELINE_WINDOWS = {"quick": 62.4784612493411, "full": 59.247282457987396,
                    "test": 56.60996372820832}
BASE_SOURCE = (TASKS / TASK / "repo" / POLICY).read_text()


def candidate(tmp_path, source: str):
    return worktree(TASK, tmp_path, {POLICY: source})


def with_baseline(attack: str) -> str:
    """Attack code at import, then the baseline policy."""
    return textwrap.dedent(attack) + "\n" + BASE_SOURCE


def in_step(code: str, source: str = BASE_SOURCE) -> str:
    """The baseline policy with `code` run at the start of every _step (self, env, last and
    has_spot in scope); the decision stays the baseline's unless `code` returns."""
    marker = "        env = self.env\n"
    assert marker in source
    return source.replace(marker, marker + textwrap.indent(textwrap.dedent(code), " " * 8), 1)


def run(tmp_path, source: str, stage: str, backend):
    data = WINDOWS if stage == "leaderboard" else None
    return evaluate(TASK, candidate(tmp_path, source), stage, backend, data=data)


def no_better(result, stage: str) -> bool:
    return not_above(result, type(result)(stage, BASELINE[stage], True))


def scores_as_baseline(result, stage: str) -> bool:
    return result.valid and result.score == BASELINE[stage]


def stages_here() -> list:
    return ["quick", "full", "test", pytest.param("leaderboard", marks=needs_windows)]


@pytest.mark.parametrize("stage", stages_here())
@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_the_baseline_scores_exactly_as_before_on_every_stage(tmp_path, backend, stage):
    assert scores_as_baseline(run(tmp_path, BASE_SOURCE, stage, backend), stage)


@needs_windows
@pytest.mark.parametrize("stage", sorted(BASELINE_WINDOWS))
@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_the_baseline_scores_exactly_as_before_on_the_published_windows(tmp_path, backend, stage):
    result = evaluate(TASK, candidate(tmp_path, BASE_SOURCE), stage, backend, data=WINDOWS)
    assert result.valid and result.score == BASELINE_WINDOWS[stage]


# -- a. a forged result line ----------------------------------------------------------------------

@pytest.mark.parametrize("stage", stages_here())
@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_a_forged_result_line_is_never_the_score_on_any_stage(tmp_path, backend, stage):
    result = run(tmp_path, with_baseline(FORGE_VIA_PARENT + FORGE_AT_EXIT), stage, backend)
    # the line reaches only the policy's own reply pipe (through the jail's init process): it
    # is then a malformed reply, and the candidate is invalid
    assert no_better(result, stage) and result.score != 1e9, result.feedback


def test_a_forged_result_line_is_never_the_score_in_either_jail(tmp_path, backend):
    result = run(tmp_path, with_baseline(FORGE_VIA_PARENT + FORGE_AT_EXIT), "quick", backend)
    assert no_better(result, "quick") and result.score != 1e9, result.feedback


# -- b. patching what the in-process evaluator exposed ------------------------------------------

PATCHES_SIMULATOR_AND_EVALUATOR = """\
    import builtins, sys
    import sky_spot.sim as _sim

    # the simulator the old evaluator imported from the worktree
    _sim.score_of = lambda avg_cost: 100.0
    _sim.simulate_run = lambda *a, **k: {"cost": 0.0}
    _sim.tick_loop = lambda *a, **k: iter(())
    _sim.offline_lower_bound = lambda *a, **k: 0.0
    _sim.Env.spot_available = lambda self: True
    _sim.Env.spot_available_in_region = lambda self, r: True
    _sim.Env.get_all_regions_spot_available = lambda self: [True] * self.num_regions
    # the evaluator's own functions, in every module that has one of that name
    for _mod in list(sys.modules.values()):
        for _name in ("summarize", "evaluate", "score", "run_many", "emit", "invalid",
                      "run_batch", "decision", "stage_plans"):
            if hasattr(_mod, _name):
                setattr(_mod, _name, lambda *a, **k: {"score": 100.0, "valid": True})
    builtins.round = lambda x, n=0: 100.0  # the leaderboard's rounding
    builtins.sum = lambda xs, start=0: 0.0  # every cost sum of the old summary
"""


def test_patching_the_simulator_and_evaluator_in_the_policy_process_changes_nothing(
        tmp_path, backend):
    result = run(tmp_path, with_baseline(PATCHES_SIMULATOR_AND_EVALUATOR), "quick", backend)
    assert scores_as_baseline(result, "quick"), result.feedback


@needs_windows
@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_patching_the_simulator_changes_nothing_on_the_leaderboard(tmp_path, backend):
    result = run(tmp_path, with_baseline(PATCHES_SIMULATOR_AND_EVALUATOR), "leaderboard", backend)
    assert scores_as_baseline(result, "leaderboard"), result.feedback


# -- c. the traces, the held-out seeds, the evaluator's files and process -----------------------

# Collected at import (files, processes, modules) and in the 10th tick (what the process holds
# in memory once ticks arrive, and what the env object holds); reported as the policy's error.
PROBE = f"""\
    import gc, glob, importlib, os, sys

    SECRETS = {{"evaluate.py", "lockstep.py", "offline_opt.json"}}
    # the evaluator's argv and environment (the host paths of the jail's own mounts show in
    # bwrap's argv, pid 1 here: where the worktree and this side's folder come from)
    MARKERS = (b"evaluate.py", b"--stage", b"ADRS_RESULT", b"ADRS_JAIL", b"ADRS_DATA",
               b"offline_opt", b"lockstep")
    KNOWN = [{str(EVAL_DIR)!r}, "/work/main/tasks/{TASK}/evaluator", {str(WINDOWS)!r},
             "/work/shared/data/cbl-multi-windows"]
    system = (sys.prefix, sys.base_prefix)
    FOUND = []

    def readable(path):
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            return None

    # every file named like the evaluator's, or in an evaluator folder, anywhere but the
    # read-only system folders (side.py is meant to be seen, where the jail shows it)
    skip = {{"/proc", "/sys", "/dev", "/usr", *system}}
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip]
        for name in files:
            path = os.path.join(root, name)
            if (name in SECRETS or "/evaluator" in path) and path != "/adrs/task/side.py" \\
                    and readable(path) is not None:
                FOUND.append(path)
    FOUND += [p for p in KNOWN + glob.glob(KNOWN[0] + "/**", recursive=True) if os.path.exists(p)]
    for path in glob.glob("/proc/*/cmdline") + glob.glob("/proc/*/environ"):
        data = readable(path) or b""
        FOUND += [f"{{path}}: {{m!r}}" for m in MARKERS if m in data]
    for path in glob.glob("/proc/*/cwd/*") + glob.glob(f"/proc/{{os.getppid()}}/cwd/*"):
        if os.path.basename(path) in SECRETS:
            FOUND.append(path)
    for name in ("evaluate", "lockstep"):
        try:
            module = sys.modules.get(name) or importlib.import_module(name)
        except ImportError:
            continue
        FOUND.append(f"import {{name}}: {{module}}")


    def trace_like(obj):
        # a spot trace: a long run of availability flags (the jobs last ~900 ticks)
        return isinstance(obj, (list, tuple)) and len(obj) >= 100 and all(
            x is True or x is False or (type(x) is int and x in (0, 1)) for x in obj[:100])


    def probe_memory(env):
        for what in ("trace", "envs", "_avail", "_traces"):
            try:
                FOUND.append(f"env.{{what}}: {{type(getattr(env, what)).__name__}}")
            except Exception:
                pass
        FOUND.extend(f"env.{{k}}" for k, v in vars(env).items() if trace_like(v))
        FOUND.extend(f"in memory: {{type(o).__name__}} of {{len(o)}}"
                     for o in gc.get_objects() if trace_like(o))
        raise RuntimeError("PROBE-FOUND: " + repr(FOUND))
"""


def test_the_policy_finds_no_trace_seed_or_evaluator_file(tmp_path, backend):
    source = with_baseline(PROBE).replace(
        "        env = self.env\n",
        "        env = self.env\n        if env.tick == 10:\n            probe_memory(env)\n", 1)
    result = run(tmp_path, source, "quick", backend)
    assert "PROBE-FOUND: []" in result.feedback, result.feedback[-3000:]
    assert no_better(result, "quick")


REBUILDS_THE_TEST_TRACES = f"""\
    import re, sys

    # With the evaluator's stage table, the held-out traces are the public generator's windows
    # for known seeds: the whole future of every run. Try every way the old design offered.
    TEST_SEEDS = None
    for path in ({str(EVAL_DIR / "evaluate.py")!r},
                 "/work/main/tasks/{TASK}/evaluator/evaluate.py"):
        try:
            TEST_SEEDS = re.search(r'"test": .*', open(path).read()).group(0)
        except OSError:
            pass
    sys.path[:0] = [{str(EVAL_DIR)!r}]
    try:
        import evaluate
        TEST_SEEDS = evaluate.STAGES["test"]
    except ImportError:
        pass
    if TEST_SEEDS is not None:
        raise RuntimeError(f"REBUILT: the held-out seeds are {{TEST_SEEDS}}")
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_the_held_out_seeds_cannot_be_read_by_the_policy(tmp_path, backend):
    result = run(tmp_path, with_baseline(REBUILDS_THE_TEST_TRACES), "test", backend)
    assert scores_as_baseline(result, "test"), result.feedback


KNOWS_OTHER_JOBS = """\
    # Jobs share zone windows (us-east-1a #3 is in four scenarios). Stepped one run after the
    # other, the policy process would have seen the whole of a window before a later run on
    # it starts; stepped together, no job sees a tick before every job has reached it.
    LATEST = [0]
"""
NEVER_AHEAD = """\
    if LATEST[0] > env.tick:
        raise RuntimeError(f"FUTURE-SEEN: tick {LATEST[0]} while at tick {env.tick}")
    LATEST[0] = env.tick
"""


@pytest.mark.parametrize("stage", ["full", pytest.param("leaderboard", marks=needs_windows)])
@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_jobs_sharing_a_trace_never_see_a_later_tick_of_it(tmp_path, backend, stage):
    # on the leaderboard, the stage-1 gate's window is also the first scored run's
    source = in_step(NEVER_AHEAD, with_baseline(KNOWS_OTHER_JOBS))
    result = run(tmp_path, source, stage, backend)
    assert scores_as_baseline(result, stage), result.feedback


# -- d. answers that lie about themselves, regions out of range, the overhead -------------------

FAKE_TYPES = {
    "equal to everything": """\
        class _Fake:
            def __eq__(self, other):
                return True
            __hash__ = lambda self: hash(ClusterType.SPOT)
        FAKE = _Fake()
    """,
    "the string SPOT": """\
        FAKE = "SPOT"
    """,
    "a str subclass equal to SPOT": """\
        class _Str(str):
            def __eq__(self, other):
                return True
            __hash__ = lambda self: hash(ClusterType.SPOT)
        FAKE = _Str("SPOT")
    """,
    "a liar about its class": """\
        class _Liar:
            __class__ = property(lambda self: ClusterType)
            name, value = "SPOT", "SPOT"
        FAKE = _Liar()
        assert isinstance(FAKE, ClusterType)
    """,
}


@pytest.mark.parametrize("fake", sorted(FAKE_TYPES))
@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_a_request_that_only_pretends_to_be_a_cluster_type_fails_its_run(tmp_path, backend, fake):
    source = BASE_SOURCE + "\n" + textwrap.dedent(FAKE_TYPES[fake]) + textwrap.dedent("""
        _step = GreedyMultiRegionStrategy._step

        def _lying_step(self, last, has_spot):
            got = _step(self, last, has_spot)
            return FAKE if got is SPOT else got

        GreedyMultiRegionStrategy._step = _lying_step
    """)
    result = run(tmp_path, source, "quick", backend)
    assert not result.valid and "expected a sky_spot.utils.ClusterType" in result.feedback
    assert no_better(result, "quick")


BAD_REGIONS = {
    "one past the end": """\
        try:
            env.switch_region(env.get_num_regions())
        except IndexError:
            env._region = env.get_num_regions()
    """,
    "negative": "env._region = -1\n",
    "a float": "env._region = 1.0\n",
}


@pytest.mark.parametrize("how", sorted(BAD_REGIONS))
@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_a_region_out_of_range_fails_its_run(tmp_path, backend, how):
    source = in_step("if env.tick == 3:\n" + textwrap.indent(BAD_REGIONS[how], "    "))
    result = run(tmp_path, source, "quick", backend)
    assert not result.valid and no_better(result, "quick"), result.feedback
    assert re.search(r"out of range|integer", result.feedback), result.feedback


# the write comes after the baseline decided (its own logic reads the attribute)
ZERO_OVERHEAD = """\
    _step = GreedyMultiRegionStrategy._step

    def _no_overhead_step(self, last, has_spot):
        got = _step(self, last, has_spot)
        self.remaining_restart_overhead = 0
        return got

    GreedyMultiRegionStrategy._step = _no_overhead_step
"""


@pytest.mark.parametrize("stage", ["full", "test"])
@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_writing_the_restart_overhead_away_skips_nothing_in_correct_accounting(
        tmp_path, backend, stage):
    result = run(tmp_path, BASE_SOURCE + "\n" + textwrap.dedent(ZERO_OVERHEAD), stage, backend)
    assert scores_as_baseline(result, stage), result.feedback


FORGES_THE_PIPE = """\
    import sys

    # answer the evaluator before the real side does: a greeting, then perfect-looking ticks
    _chan = sys.modules["adrs_eval.side"].channel()
    _chan.send({"ok": "forged"})
    for _ in range(50):
        _chan.send([[1, 0]] * 60)
    _chan.send({"score": 1e9, "valid": True})
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_replies_forged_on_the_pipe_are_only_decisions_and_get_checked(tmp_path, backend):
    result = run(tmp_path, with_baseline(FORGES_THE_PIPE), "quick", backend)
    assert no_better(result, "quick"), result.feedback
    assert result.score != 1e9


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


def test_the_evaluator_imports_nothing_of_the_worktree_and_the_side_nothing_of_the_evaluator():
    for f in ("evaluate.py", "lockstep.py"):
        assert "policy" not in imported_modules(EVAL_DIR / f)
    side = EVAL_DIR / "jail" / "side.py"
    assert not imported_modules(side) & {"lockstep", "evaluate"}
    # the only code in the folder the candidate can read is its side of the pipe
    assert sorted(p.name for p in (EVAL_DIR / "jail").iterdir() if p.name != "__pycache__") == [
        "side.py"]


MATCHES_THE_PUBLIC_GENERATOR = """\
    def find_my_trace(env, seen):
        # The generator and its fitted parameters are in the worktree (the API's sky_spot):
        # regenerate windows for plausible seeds and match every zone's ticks seen so far.
        from sky_spot.traces import Generator
        gen = Generator.load("multi_zones")
        names = env.get_region_names()
        for seed in [*range(0, 10), 1000, *range(5000, 5010)]:
            if all(gen.window([z], seed, 1107)[0][0][:len(seen)] == [s[i] for s in seen]
                   for i, z in enumerate(names)):
                raise RuntimeError(f"IDENTIFIED seed {seed}: the whole future is known")
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_held_out_traces_cannot_be_found_with_the_public_generator(tmp_path, backend):
    """The attack works where seeds are public (quick: the agent sees it anyway) and finds
    no held-out trace (salted seeds that only the sealed evaluator knows)."""
    source = in_step(
        "self.seen = getattr(self, 'seen', []) + [env.get_all_regions_spot_available()]\n"
        "if env.tick == 150:\n    find_my_trace(env, self.seen)\n",
        textwrap.dedent(MATCHES_THE_PUBLIC_GENERATOR) + "\n" + BASE_SOURCE)
    quick = run(tmp_path / "q", source, "quick", backend)
    assert "IDENTIFIED seed 1000" in quick.feedback, quick.feedback[-800:]
    held_out = run(tmp_path / "t", source, "test", backend)
    assert "IDENTIFIED" not in held_out.feedback
    assert scores_as_baseline(held_out, "test"), held_out.feedback[-800:]
