"""Hostile candidates against tasks/cbl-multi, scored the way a run scores them (the harness's
run_stage, the sealed evaluator, the jail backend under test).

The policy runs in a jailed process of its own; the evaluator keeps the traces, its own copy
of the simulator and the score, and steps every run of a stage together, sending each tick as
the published env shows it. Each candidate here tries what the old in-process design allowed
(patching sky_spot.sim, the evaluator's functions), forges a result, looks for the traces and
held-out seeds, returns objects that lie about being a ClusterType, leaves the regions, or
writes its restart overhead away; each scores no better than the baseline. The tests tasks/cbl
runs the same way are in tests/fixtures/hostile_cbl.py.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.fixtures.hostile import forged_result_line_tests
from tests.fixtures.hostile_cbl import *  # noqa: F403  (the tests both CBL tasks share)
from tests.fixtures.hostile_cbl import STAGES, Cbl

CBL = Cbl(
    task="cbl-multi",
    strategy="GreedyMultiRegionStrategy",
    baseline={"quick": 72.94302009127034, "full": 56.70677774187618, "test": 64.07677341691944,
              "stress": 44.5170204789955, "published": 65.00616248223771, "leaderboard": 64.58},
    past_the_end="""\
        try:
            env.switch_region(env.get_num_regions())
        except IndexError:
            env._region = env.get_num_regions()
    """,
    forged_answers=60,
)


(test_a_forged_result_line_is_never_the_score_on_any_stage,
 test_a_forged_result_line_is_never_the_score_in_either_jail) = forged_result_line_tests(
    CBL, stages=STAGES)


@pytest.mark.parametrize("stage", ["full", "leaderboard"])
@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_jobs_sharing_a_trace_never_see_a_later_tick_of_it(tmp_path, backend, stage):
    # Jobs share zone windows (us-east-1a #3 is in four scenarios). Stepped one run after the
    # other, the policy process would have seen the whole of a window before a later run on
    # it starts; stepped together, no job sees a tick before every job has reached it. On the
    # leaderboard, the stage-1 gate's window is also the first scored run's.
    result = CBL.score(tmp_path, CBL.never_ahead(), stage, backend)
    assert CBL.scores_as_baseline(result, stage), result.feedback


MATCHES_THE_PUBLIC_GENERATOR = """\
    def find_my_trace(env, seen):
        # The generator and its fitted parameters are in the worktree (the API's sky_spot):
        # regenerate windows for plausible seeds and match every zone's ticks seen so far.
        from sky_spot.traces import Generator
        gen = Generator.load("multi_zones")
        names = env.get_region_names()
        for seed in range(0, 10):
            if all(gen.window([z], seed, 1107)[0][0][:len(seen)] == [s[i] for s in seen]
                   for i, z in enumerate(names)):
                raise RuntimeError(f"IDENTIFIED seed {seed}: the whole future is known")
"""


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_held_out_traces_cannot_be_found_with_the_public_generator(tmp_path, backend):
    """The attack works where seeds are public (stress, generated traces: the agent sees that
    stage anyway) and finds no held-out trace (real windows, which no seed makes)."""
    source = CBL.in_step(
        "self.seen = getattr(self, 'seen', []) + [env.get_all_regions_spot_available()]\n"
        "if env.tick == 150:\n    find_my_trace(env, self.seen)\n",
        textwrap.dedent(MATCHES_THE_PUBLIC_GENERATOR) + "\n" + CBL.source)
    stress = CBL.score(tmp_path / "s", source, "stress", backend)
    assert "IDENTIFIED seed 0" in stress.feedback, stress.feedback[-800:]
    held_out = CBL.score(tmp_path / "t", source, "test", backend)
    assert "IDENTIFIED" not in held_out.feedback
    assert CBL.scores_as_baseline(held_out, "test"), held_out.feedback[-800:]
