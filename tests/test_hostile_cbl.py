"""Hostile candidates against tasks/cbl (single region), scored the way a run scores them (the
harness's run_stage, the sealed evaluator, the jail backend under test).

The policy runs in a jailed process of its own; the evaluator keeps the traces, its own copy
of the simulator and the score, and steps every run of a stage together, sending each tick as
the published env shows it. Each candidate here tries what the old in-process design allowed
(patching sky_spot.sim, the evaluator's functions), forges a result, looks for the traces,
held-out seeds and precomputed optima, returns objects that lie about being a ClusterType,
leaves its one region, or writes its restart overhead away; each scores no better than the
baseline. The tests tasks/cbl-multi runs the same way are in tests/fixtures/hostile_cbl.py.
"""

from __future__ import annotations

import pytest

from tests.fixtures.hostile import forged_result_line_tests
from tests.fixtures.hostile_cbl import *  # noqa: F403  (the tests both CBL tasks share)
from tests.fixtures.hostile_cbl import STAGES, Cbl

CBL = Cbl(
    task="cbl",
    strategy="GreedyStrategy",
    baseline={"quick": 69.881077484236, "full": 36.37951425924248, "test": 32.55955676566902,
              "stress": 42.48571445684999, "published": 27.797871278938636, "leaderboard": 28.0},
    past_the_end="""\
        try:
            env.switch_region(1)  # the one region is 0
        except IndexError:
            env._region = 1
    """,
    forged_answers=6,
)


(test_a_forged_result_line_is_never_the_score_on_any_stage,
 test_a_forged_result_line_is_never_the_score_in_either_jail) = forged_result_line_tests(
    CBL, stages=STAGES)


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_jobs_sharing_a_trace_never_see_a_later_tick_of_it(tmp_path, backend):
    # Six jobs (two deadlines x three overheads) share each trace. Stepped one run after the
    # other, the policy process would have seen the whole of a trace before a later run on it
    # starts; stepped together, no job sees a tick before every job has reached it.
    result = CBL.score(tmp_path, CBL.never_ahead(), "full", backend)
    assert CBL.scores_as_baseline(result, "full"), result.feedback
