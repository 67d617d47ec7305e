"""tasks/cbl (single region): evaluator as a real subprocess against temp copies of repo/;
the published 1,080-run figure needs ../shared (skipped without it)."""
from __future__ import annotations

import json
import math
import os
import statistics
import sys
from pathlib import Path

import pytest

from tests.fixtures.tasks import SHARED, TaskFolder

FOLDER = TaskFolder("cbl", "policy/strategy.py")
TASK, REPO, EVAL_DIR = FOLDER.root, FOLDER.repo, FOLDER.evaluator
WINDOWS = SHARED / "data" / "cbl-windows"
run_eval, candidate = FOLDER.run_eval, FOLDER.candidate

sys.path.insert(0, str(REPO))
from sky_spot import sim  # noqa: E402
from sky_spot.strategies.strategy import Strategy  # noqa: E402
from sky_spot.utils import ClusterType  # noqa: E402

S, OD, N = ClusterType.SPOT, ClusterType.ON_DEMAND, ClusterType.NONE
T, F = True, False
G = 600.0  # the single-region task's tick


class SpotOrWait(Strategy):
    """Single-region API: SPOT when there is spot, else wait; checks the progress it is shown."""
    NAME = "spot_or_wait_test"

    def reset(self, env, task):
        super().reset(env, task)
        self.seen = []

    def _step(self, last, has_spot):
        assert sum(self.task_done_time) == pytest.approx(self.progress_seconds)
        # task_done_time has one entry per tick so far, this tick's included
        assert self.env.elapsed_seconds == (len(self.task_done_time) - 1) * G
        self.seen.append((last, has_spot, self.remaining_restart_overhead))
        return S if has_spot else N


def run1(avail, *, duration, deadline, overhead, mode="correct", price=1.0):
    st = sim.make_strategy(SpotOrWait, {"deadline_hours": deadline / 3600,
                                        "task_duration_hours": duration / 3600,
                                        "restart_overhead_hours": [overhead / 3600]})
    r = sim.simulate_run(st, [avail], G, duration, deadline, overhead, mode=mode,
                         spot_prices=[price], od_price=3.0)
    return r, st


@pytest.mark.parametrize("mode", sim.MODES)
def test_single_region_preemption_and_restart_overhead(mode):
    r, st = run1([T, T, T, F] + [T] * 10, duration=1800.0, deadline=20 * G, overhead=360.0, mode=mode)
    # t0 start spot, 360 s overhead: 240 s of work; t1 +600 (840); t2 +600 (1440); t3 preempted,
    # wait; t4 restart, overhead again: +240 (1680); t5 the last 120 s: done at 5*600 + 120
    assert r["finish_s"] == pytest.approx(3120.0) and not r["missed"]
    assert (r["ticks"], r["spot_ticks"], r["idle_ticks"], r["od_ticks"]) == (6, 5, 1, 0)
    assert r["preemptions"] == 1 and r["switches"] == 0
    assert st.task_done_time == pytest.approx([0, 240, 600, 600, 0, 240, 120])
    assert r["cost"] == pytest.approx(5 * 1.0 * G / 3600)
    # the policy sees the preemption (last SPOT, no spot) and the overhead counting down
    assert st.seen[3][:2] == (S, False)
    assert st.seen[1][2] == 0 and st.seen[5][2] == 0


def test_single_region_guarantee_forces_on_demand_just_in_time():
    r, _ = run1([F] * 12, duration=1800.0, deadline=3600.0, overhead=0.0)
    # T = floor((3600 - t*600)/600)*600; R = 1800 needs 3 ticks: waits t0-t2, on-demand at t3
    assert (r["idle_ticks"], r["od_ticks"]) == (3, 3)
    assert r["finish_s"] == pytest.approx(3600.0) and r["slack_s"] == pytest.approx(0.0)
    assert not r["missed"] and r["cost"] == pytest.approx(3 * 3.0 * G / 3600)
    r, _ = run1([F] * 12, duration=1800.0, deadline=3600.0, overhead=60.0)
    # with a 60 s overhead ceil((1800+60)/600)*600 = 2400 >= T already at t2: on-demand
    # t2-t5, the overhead eats 60 s of t2, the job ends 60 s into t5
    assert (r["idle_ticks"], r["od_ticks"]) == (2, 4)
    assert r["finish_s"] == pytest.approx(3060.0) and r["slack_s"] == pytest.approx(540.0)


def test_single_region_deadline_miss_is_reported():
    r, _ = run1([F] * 12, duration=1800.0, deadline=1800.0, overhead=60.0)
    # infeasible from the start: on-demand at once, 60 s of overhead, done at 1860 s > 1800 s
    assert r["od_ticks"] == 4 and r["finish_s"] == pytest.approx(1860.0)
    assert r["missed"] and r["slack_s"] == pytest.approx(-60.0)


def test_jail_folder_holds_only_the_policy_process():
    # the candidate-side folder holds only candidate-side code (tests/test_task_copies.py
    # checks it is the same as cbl-multi's)
    # (and leaderboard/: the published problem's resources a leaderboard Solution file reads)
    assert sorted(p.name for p in (EVAL_DIR / "jail").iterdir() if p.name != "__pycache__") == [
        "leaderboard", "side.py"]


def test_full_stage_valid_deterministic_and_ranks_baselines(tmp_path):
    base = run_eval(candidate(tmp_path, "greedy"), "full")
    again = run_eval(candidate(tmp_path, "greedy2"), "full")
    assert base["valid"] and base["score"] == again["score"]
    assert base["metrics"]["runs"] == 216 and base["metrics"]["deadline_misses"] == 0
    assert base["score"] == pytest.approx(36.3795, abs=1e-3)  # the initial policy on real windows
    m = base["metrics"]
    # the committed optima match the stage's traces (else re-run tasks/cbl/offline_opt.py)
    assert m["all_spot_bound_cost"] < m["offline_bound_cost"] <= m["offline_opt_cost"] < m["avg_cost"]
    assert "offline optimum" in base["feedback"]
    od = run_eval(candidate(tmp_path, "od", file=TASK / "baselines" / "on_demand.py"), "full")
    assert od["valid"] and od["score"] == 0.0
    assert od["metrics"]["offline_opt_cost"] == m["offline_opt_cost"]  # a property of the traces
    assert base["score"] > od["score"]


def test_quick_stage_and_future_read(tmp_path):
    q = run_eval(candidate(tmp_path, "q"), "quick")
    assert q["valid"] and q["metrics"]["runs"] == 6
    src = (REPO / "policy" / "strategy.py").read_text().replace(
        "        env = self.env\n", "        env = self.env\n        env.get_trace_before_end(1e6)\n", 1)
    r = run_eval(candidate(tmp_path, "peek", src), "quick")
    assert not r["valid"] and "not available to policies" in r["feedback"]
    assert "instances" not in r


@pytest.mark.skipif(not WINDOWS.is_dir(), reason=f"published windows absent at {WINDOWS} (../shared absent)")
def test_leaderboard_reproduces_published_greedy(tmp_path):
    r = run_eval(candidate(tmp_path, "lb"), "leaderboard", data=WINDOWS)
    assert r["valid"] and r["metrics"]["runs"] == 1080
    assert r["score"] == 28.0
    assert round(r["metrics"]["avg_cost"], 2) == 119.03
    # published 119.03453876543237: spot at exactly 0.9731 $/h (COST_K = 3.06 / 0.9731)
    assert abs(r["metrics"]["avg_cost"] - 119.0345387654321) < 1e-9
    assert len(r["instances"]) == 1080 and round(aggregate(r["instances"])) == 28.0


def aggregate(instances: dict[str, float]) -> float:
    """The documented aggregate of the runs' scores: their mean, clamped to [0, 100]."""
    return min(100.0, max(0.0, statistics.fmean(instances.values())))


def test_instances_are_runs_whose_clamped_mean_is_the_score(tmp_path):
    """`review` pairs per-run scores across candidates: the same run names for every policy,
    each run's cost on the score's scale (unclamped: on-demand only scores below 0 per run)."""
    policies = {"greedy": None, "up": TASK / "baselines" / "uniform_progress.py",
                "od": TASK / "baselines" / "on_demand.py"}
    wts = {name: candidate(tmp_path, name, file=file) for name, file in policies.items()}
    for stage, runs in (("test", 288), ("quick", 6)):
        rs = {name: run_eval(wt, stage) for name, wt in wts.items()}
        names = set(rs["greedy"]["instances"])
        assert len(names) == runs
        for r in rs.values():
            assert r["valid"] and set(r["instances"]) == names
            assert all(math.isfinite(v) for v in r["instances"].values())
            assert r["score"] == pytest.approx(aggregate(r["instances"]), abs=1e-9)
        assert rs["od"]["score"] == 0.0 and max(rs["od"]["instances"].values()) < 0


BASELINES = ["uniform_progress", "greedy", "on_demand"]  # best first, on every stage
# the stages' figures of the baselines (README.md's table); `published` needs ../shared
FIGURES = {"greedy": {"quick": 69.8811, "full": 36.3795, "test": 32.5596, "stress": 42.4857,
                      "published": 27.7979},
           "uniform_progress": {"quick": 89.6038, "full": 50.1007, "test": 45.1496,
                                "stress": 55.9737, "published": 46.5693}}


def _scores(tmp_path, stage):
    out = {}
    for b in BASELINES:
        file = None if b == "greedy" else TASK / "baselines" / f"{b}.py"
        data = WINDOWS if stage == "published" else None
        r = run_eval(candidate(tmp_path, f"{b}-{stage}", file=file), stage, data=data)
        assert r["valid"], (b, r["feedback"])
        out[b] = r["score"]
    return out


@pytest.mark.parametrize("stage", ["quick", "test", "stress", "published"])
def test_every_stage_ranks_baselines_alike_with_the_documented_figures(tmp_path, stage):
    if stage == "published" and not WINDOWS.is_dir():
        pytest.skip(f"published windows absent at {WINDOWS} (../shared absent)")
    scores = _scores(tmp_path, stage)
    if stage != "quick":  # quick's one window: uniform progress ahead, the rest too close to call
        assert sorted(BASELINES, key=lambda b: -scores[b]) == BASELINES, scores
    for b, figures in FIGURES.items():  # 1e-3: the figures are documented to 4 decimals
        assert scores[b] == pytest.approx(figures[stage], abs=1e-3), (b, stage)


def test_offline_lower_bound_hand_computed_and_below_policy_costs():
    # no spot: K = ceil(1800/600) = 3 on-demand ticks at 3 $/h
    assert sim.offline_lower_bound([[F] * 12], G, 1800.0, 3600.0, 0.0, spot_prices=[1.0],
                                   od_price=3.0) == pytest.approx(3 * 3.0 * G / 3600)
    # two zones: K = ceil((1800+360)/600) = 4 ticks: 1 $ (zone 0, t0), 2 $ (zone 1, t1, t2), 3 $
    two = [[T] + [F] * 13, [F, T, T] + [F] * 11]
    assert sim.offline_lower_bound(two, G, 1800.0, 20 * G, 360.0, spot_prices=[1.0, [2.0] * 14],
                                   od_price=3.0) == pytest.approx((1 + 2 + 2 + 3) * G / 3600)
    # the deadline cannot be met even on-demand: no finite bound
    assert sim.offline_lower_bound([[T] * 12], G, 1800.0, 1800.0, 60.0, spot_prices=[1.0]) == float("inf")
    # every simulated run costs at least its bound
    for avail in ([T, T, T, F] + [T] * 16, [F, T] * 10):
        r, _ = run1(avail, duration=1800.0, deadline=14 * G, overhead=360.0)
        assert r["cost"] >= sim.offline_lower_bound([avail], G, 1800.0, 14 * G, 360.0,
                                                    spot_prices=[1.0], od_price=3.0) - 1e-12


def test_offline_optimum_hand_computed():
    opt = sim.offline_optimum
    # no spot, 60 s overhead: 3 on-demand ticks give 1740 s < 1800 s, so 4 ticks at 3 $/h
    assert opt([F] * 12, G, 1800.0, 3600.0, 60.0, spot_price=1.0, od_price=3.0) == pytest.approx(2.0)
    # spot spells [0,3) and [4,20): using the first spell (3 ticks, 1440 s) forces a second
    # start and 5 spot ticks; skipping it and running t4-t7 needs 4 (240+600+600+600 s)
    avail = [T, T, T, F] + [T] * 16
    assert opt(avail, G, 1800.0, 20 * G, 360.0, spot_price=1.0, od_price=3.0) == pytest.approx(4 / 6)
    r, _ = run1(avail, duration=1800.0, deadline=20 * G, overhead=360.0)
    assert r["cost"] == pytest.approx(5 / 6)  # the greedy SpotOrWait pays the second start
    # one-tick spells: each start yields 240 s; 8 of them (1.33 $) beat any on-demand block
    # (4 ticks, 2 $) or mix (7 spot + 1 on-demand: 1.67 $); the lower bound ignores restarts
    alt = [T, F] * 10
    assert opt(alt, G, 1800.0, 20 * G, 360.0, spot_price=1.0, od_price=3.0) == pytest.approx(8 / 6)
    assert sim.offline_lower_bound([alt], G, 1800.0, 20 * G, 360.0, spot_prices=[1.0],
                                   od_price=3.0) == pytest.approx(4 / 6)
    # infeasible: 3 ticks before the deadline give at most 1740 s
    assert opt([T] * 12, G, 1800.0, 1800.0, 60.0, spot_price=1.0) == float("inf")
    with pytest.raises(ValueError, match="overhead < gap"):
        opt([T] * 12, G, 1800.0, 3600.0, 600.0, spot_price=1.0)


def test_spot_price_is_the_published_one_to_the_bit():
    from sky_spot.utils import COST_K, COSTS
    assert COSTS[S] == 0.9731 and 3.06 / COST_K == 0.9731


# A leaderboard Solution file in the published baseline's manner (no fallback): it reads the
# problem's initial program five folders above itself.
DEEP_SOLUTION = '''
from pathlib import Path


class Solution:
    def __init__(self):
        self.path = (Path(__file__).resolve().parents[5] / "problems" / "cant_be_late"
                     / "resources" / "programs" / "initial_greedy.py")

    def solve(self, spec_path=None):
        return {"code": self.path.read_text(encoding="utf-8")}
'''


def test_solution_file_runs_where_the_leaderboard_runs_it(tmp_path):
    r = run_eval(candidate(tmp_path, "deep", DEEP_SOLUTION), "quick")
    assert r["valid"], r["feedback"]
    assert r["score"] == run_eval(candidate(tmp_path, "base"), "quick")["score"]


def test_leaderboard_initial_program_is_the_baseline():
    programs = EVAL_DIR / "jail" / "leaderboard" / "problems" / "cant_be_late" / "resources" / "programs"
    assert (programs / "initial_greedy.py").read_bytes() == (REPO / "policy" / "strategy.py").read_bytes()


LEADERBOARD_REPO = os.environ.get("ADRS_LEADERBOARD_REPO", "")


@pytest.mark.slow
@pytest.mark.skipif(not (LEADERBOARD_REPO and WINDOWS.is_dir()),
                    reason="set ADRS_LEADERBOARD_REPO to a checkout of github.com/UCB-ADRS/"
                           f"ADRS-Leaderboard (and have the published windows at {WINDOWS}) to "
                           "evaluate its solution files")
@pytest.mark.parametrize("method", ["baseline", "gepa", "openevolve", "shinkaevolve", "LEVI"])
def test_published_solution_files_reproduce_their_published_costs(tmp_path, method):
    """Each published solution file, unchanged, on the leaderboard stage (LEVI's results are
    not in the repository: it only has to run)."""
    repo = Path(LEADERBOARD_REPO)
    sol = repo / "solutions" / "cant_be_late" / method / "resources" / "solution.py"
    assert sol.is_file(), f"{sol} absent: is ADRS_LEADERBOARD_REPO a checkout of the leaderboard?"
    r = run_eval(candidate(tmp_path, method, file=sol), "leaderboard", data=WINDOWS)
    assert r["valid"], r["feedback"]
    assert r["metrics"]["runs"] == 1080
    results = repo / "results" / "cant_be_late" / method / "results.json"
    if results.is_file():
        published = json.loads(results.read_text())["avg_cost"]
        assert abs(r["metrics"]["avg_cost"] - published) < 1e-6, (r["metrics"]["avg_cost"], published)
