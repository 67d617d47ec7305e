"""The tick loop, in one process, with the published semantics and two accounting modes.

``simulate_run`` runs one job on one set of aligned region traces. Per tick it does what the
published ``Strategy.step`` + ``Env.step`` do (see ``strategies/strategy.py``), keeping the
progress as a running sum (no re-summing) and calling the policy's ``_step`` once.

Accounting modes:

``leaderboard``
    The published evaluator, quirks included: every spot tick is billed at ``prices[0]`` of
    the region that is current when the task is seen done; the strong guarantee looks at the
    type that ran in the previous tick even if it was just preempted (so it can lose a tick);
    the deadline is never checked.
``correct``
    Each tick is billed at the price of the region it ran in, at that tick; the guarantee
    looks at the type still running after preemption; a run that finishes after the deadline
    is a miss (``result["missed"]``).
"""
from __future__ import annotations

import math

from sky_spot.strategies.strategy import ArgsParser, Task
from sky_spot.utils import ClusterType

SPOT = ClusterType.SPOT
ON_DEMAND = ClusterType.ON_DEMAND
NONE = ClusterType.NONE
MODES = ("correct", "leaderboard")


class FutureNotAvailable(RuntimeError):
    """Raised when a policy asks for trace information beyond the current tick."""


class TraceEnded(RuntimeError):
    """The job ran past the end of the trace (the published simulator raises ValueError)."""


def _future(what: str):
    raise FutureNotAvailable(
        f"{what} reads the future of the spot trace; it is not available to policies "
        "(only the current tick: spot_available(), get_all_regions_spot_available())")


class Env:
    """What a policy sees as ``self.env``: the current tick only."""

    def __init__(self, avail: list[list[bool]], gap_seconds: float, names: list[str]):
        self._avail = avail  # avail[region][tick] is True when spot is available
        self._names = names
        self.gap_seconds = float(gap_seconds)
        self.tick = 0
        self.cluster_type = NONE
        self._region = 0
        self.num_regions = len(avail)

    @property
    def elapsed_seconds(self) -> float:
        return self.tick * self.gap_seconds

    def get_current_region(self) -> int:
        return self._region

    def get_num_regions(self) -> int:
        return self.num_regions

    def get_region_names(self) -> list[str]:
        return list(self._names)

    def switch_region(self, region_idx: int) -> bool:
        if not 0 <= region_idx < self.num_regions:
            raise IndexError(f"region index {region_idx} out of range 0..{self.num_regions - 1}")
        self._region = region_idx
        return True

    def spot_available(self) -> bool:
        return self._avail[self._region][self.tick]

    def spot_available_in_region(self, region_idx: int) -> bool:
        return self._avail[region_idx][self.tick]

    def get_all_regions_spot_available(self) -> list[bool]:
        t = self.tick
        return [a[t] for a in self._avail]

    # The published Env has these; they look ahead, so they are refused.
    def get_trace_before_end(self, end):
        _future("env.get_trace_before_end()")

    def next_wait_spot_length(self):
        _future("env.next_wait_spot_length()")

    @property
    def trace(self):
        return _future("env.trace")

    @property
    def envs(self):
        return _future("env.envs (the per-region traces)")


def make_strategy(cls, job: dict):
    """Instantiate a strategy class the way the published runner does (``_from_args``)."""
    parser = ArgsParser(**job)
    from_args = getattr(cls, "_from_args", None)
    return from_args(parser) if from_args is not None else cls(parser.parse_known_args()[0])


def simulate_run(strategy, avail, gap, duration, deadline, overhead, *, mode="correct",
                 spot_prices=None, od_price=3.06, names=None):
    """Run one job. ``spot_prices[r]`` is a per-tick list (or a float) for region r.

    Returns a dict: cost, finish_s, slack_s (deadline - finish), missed, ticks (charged),
    spot_ticks, od_ticks, idle_ticks, preemptions, switches, final_region.
    """
    if mode not in MODES:
        raise ValueError(f"unknown accounting mode {mode!r}; use one of {MODES}")
    correct = mode == "correct"
    n_regions = len(avail)
    length = min(len(a) for a in avail)
    env = Env(avail, gap, names or [str(i) for i in range(n_regions)])
    strategy.reset(env, Task(duration))
    gap = float(gap)
    done_need = duration - 1e-8
    done_list = strategy.task_done_time
    step = strategy._step
    progress = 0.0
    own_rem = 0.0
    ct = NONE  # type running in the previous tick (env.cluster_type before preemption)
    ran_region = 0
    spot_ticks = od_ticks = preemptions = switches = 0
    spot_cost = 0.0  # correct mode: spot billed per tick where it ran
    spot_by_region = [0] * n_regions
    finish_s = 0.0
    tick = 0
    while True:
        if tick >= length:
            raise TraceEnded(
                f"the job ran past the end of the trace ({length} ticks = "
                f"{length * gap / 3600:.2f} h) with {(duration - progress) / 3600:.2f} h of work left")
        env.tick = tick
        region = env._region
        has_spot = avail[region][tick]
        last = ct
        # Credit the previous tick.
        if last is NONE:
            done_list.append(0)
        else:
            if last is SPOT:
                spot_ticks += 1
                spot_by_region[ran_region] += 1
                if correct:
                    p = spot_prices[ran_region]
                    spot_cost += p if p.__class__ is float else p[tick - 1]
            else:
                od_ticks += 1
            # leaderboard: the strategy's attribute is the state (as published, writable);
            # correct: the simulator's own copy, so a policy cannot skip an overhead.
            rem = own_rem if correct else strategy.remaining_restart_overhead
            full = gap - rem if gap > rem else 0.0
            rem -= gap - full
            own_rem = 0 if rem < 1e-3 else rem
            strategy.remaining_restart_overhead = own_rem
            left = duration - progress
            d = left if full > left else full
            progress += d
            if progress >= done_need:
                # finished inside tick-1: after its overhead part and d seconds of work
                finish_s = (tick - 1) * gap + (gap - full) + d
            done_list.append(d)
        strategy.progress_seconds = progress
        current = last
        if last is SPOT and not has_spot:
            current = NONE
            preemptions += 1
        env.cluster_type = current
        request = step(last, has_spot)
        if progress >= done_need:
            break
        if request.__class__ is not ClusterType:
            raise TypeError(f"_step returned {request!r}; expected a sky_spot.utils.ClusterType")
        # Strong guarantee.
        remaining_time = math.floor((deadline - tick * gap) / gap) * gap
        need = math.ceil((duration - progress + overhead) / gap) * gap
        if need >= remaining_time:
            keep = current if correct else last
            if keep is SPOT and (own_rem if correct else strategy.remaining_restart_overhead) < 1e-3:
                request = SPOT
            else:
                request = ON_DEMAND
        if env._region != region:
            switches += 1
        if request is SPOT and not avail[env._region][tick]:
            request = NONE
        if current is not request and request is not NONE:
            strategy.remaining_restart_overhead = own_rem = overhead
        elif correct:
            strategy.remaining_restart_overhead = own_rem
        ct = request
        env.cluster_type = request
        ran_region = env._region
        tick += 1
    ticks = tick  # ticks 0 .. tick-1 are charged
    final_region = env._region
    if correct:
        cost = (spot_cost + od_ticks * od_price) * gap / 3600
    else:
        p = spot_prices[final_region]
        p0 = p if p.__class__ is float else p[0]
        cost = (spot_ticks * p0 + od_ticks * od_price) * gap / 3600
    return {
        "cost": cost, "finish_s": finish_s, "slack_s": deadline - finish_s,
        "missed": finish_s > deadline + 1e-6, "ticks": ticks, "spot_ticks": spot_ticks,
        "od_ticks": od_ticks, "idle_ticks": ticks - spot_ticks - od_ticks,
        "preemptions": preemptions, "switches": switches, "final_region": final_region,
        "spot_ticks_by_region": spot_by_region,
    }


def score_of(avg_cost: float) -> float:
    """The published score: 0 at on-demand-only cost, 100 at all-spot cost (unrounded)."""
    od_anchor = 3.06 * 48
    spot_anchor = 0.9731 * 48
    return min(1.0, max(0.0, (od_anchor - avg_cost) / (od_anchor - spot_anchor))) * 100
