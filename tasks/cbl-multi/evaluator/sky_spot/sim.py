"""The tick loop, with the published semantics and two accounting modes.

``tick_loop`` is one job on one set of aligned region traces, as a generator stepped from
outside: per tick it does what the published ``Strategy.step`` + ``Env.step`` do (see
``strategies/strategy.py``), keeping the progress as a running sum (no re-summing), and hands
the policy's one ``_step`` call to its driver. ``simulate_run`` drives it with a policy in this
process; the task's evaluator drives many jobs at once with the policy in a jailed process
(its own sealed copy of this package).

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
        # tick * gap_seconds, set by the simulator each tick (a plain attribute: read per tick)
        self.elapsed_seconds = 0.0
        self.cluster_type = NONE
        self._region = 0
        self.num_regions = len(avail)
        self._history: list = []  # _step's last_cluster_type of every tick so far

    def get_current_region(self) -> int:
        return self._region

    # Read-only views of the published Env's own state (MultiTraceEnv.current_region; the
    # tick observed before each _step; one entry per observed tick, as published, name too).
    @property
    def current_region(self) -> int:
        return self._region

    @property
    def observed_tick(self) -> int:
        return self.tick

    @property
    def cluster_type_histroy(self) -> list:
        return list(self._history)

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


_TABLES: dict = {}


def _tables(deadline: float, gap: float, length: int, duration: float, overhead: float):
    """Per-tick tables of one job shape, cached: the whole-tick time left before the deadline
    (``floor((deadline - t*G)/G)*G``, the guarantee's T) and the progress above which the
    guarantee cannot fire at tick t (``ceil((R+O)/G)*G < T`` holds with a tick to spare)."""
    key = (deadline, gap, length, duration, overhead)
    got = _TABLES.get(key)
    if got is None:
        floor = math.floor
        time_left = [floor((deadline - t * gap) / gap) * gap for t in range(length)]
        safe = [duration + overhead - tl + 2 * gap for tl in time_left]
        if len(_TABLES) > 64:
            _TABLES.clear()
        got = _TABLES[key] = (time_left, safe)
    return got


def simulate_run(strategy, avail, gap, duration, deadline, overhead, *, mode="correct",
                 spot_prices=None, od_price=3.06, names=None):
    """Run one job with the policy in this process. ``spot_prices[r]`` is a per-tick list (or a
    float) for region r.

    Returns a dict: cost, finish_s, slack_s (deadline - finish), missed, ticks (charged),
    spot_ticks, od_ticks, idle_ticks, preemptions, switches, final_region.
    """
    if mode not in MODES:
        raise ValueError(f"unknown accounting mode {mode!r}; use one of {MODES}")
    env = Env(avail, gap, names or [str(i) for i in range(len(avail))])
    strategy.reset(env, Task(duration))
    loop = tick_loop(avail, gap, duration, deadline, overhead, mode=mode,
                     spot_prices=spot_prices, od_price=od_price)
    gap = float(gap)
    append = strategy.task_done_time.append
    history = env._history.append
    step = strategy._step
    send = loop.send
    tick, last, current, has_spot, done, progress, rem = next(loop)
    while True:
        env.tick = tick
        env.elapsed_seconds = tick * gap
        append(done)
        history(last)
        if rem is not None:  # None: leaderboard mode leaves the policy's own value
            strategy.remaining_restart_overhead = rem
        strategy.progress_seconds = progress
        env.cluster_type = current
        request = step(last, has_spot)
        try:
            tick, last, current, has_spot, done, progress, rem = send(
                (request, env._region, strategy.remaining_restart_overhead))
        except StopIteration as stop:
            env.cluster_type = last
            return stop.value


def tick_loop(avail, gap, duration, deadline, overhead, *, mode="correct", spot_prices=None,
              od_price=3.06):
    """The tick loop of one job as a generator, so that the policy can run anywhere: in this
    process (``simulate_run``) or in another one, many jobs stepped together (the evaluator).

    Each tick it yields what the policy is shown before its ``_step``:
    ``(tick, last, current, has_spot, done, progress, rem)``: ``last`` is the type that ran in
    the previous tick (``_step``'s first argument), ``current`` the same after a preemption
    (``env.cluster_type``), ``has_spot`` whether the current region has spot,
    ``done`` the seconds of work credited for the previous tick (appended to
    ``task_done_time``), ``progress`` their running sum (``progress_seconds``), ``rem`` the value
    ``remaining_restart_overhead`` holds before the step (None: leave the policy's own value;
    leaderboard mode, when nothing ran). The driver sends back
    ``(request, region, strategy_rem)``: what ``_step`` returned, the region after it, and the
    policy's ``remaining_restart_overhead`` after it (read in leaderboard mode only). ``_step``
    is also called in the tick in which the job is done; the region it leaves counts. The
    generator returns the result dict (see ``simulate_run``); it raises ``TraceEnded`` when
    the trace ends first and ``TypeError`` when a request is not a ``ClusterType``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown accounting mode {mode!r}; use one of {MODES}")
    correct = mode == "correct"
    n_regions = len(avail)
    length = min(len(a) for a in avail)
    gap = float(gap)
    time_left, safe = _tables(deadline, gap, length, duration, overhead)
    # correct mode bills each spot tick at the price of its region and tick
    tick_prices = ([p if p.__class__ is not float else [p] * length for p in spot_prices]
                   if correct and spot_prices is not None else None)
    done_need = duration - 1e-8
    ceil = math.ceil
    cluster_type = ClusterType
    progress = 0.0
    own_rem = 0.0
    # leaderboard: the policy's remaining_restart_overhead as the simulator last left it (the
    # published simulator reads the policy's attribute, so its writes count there)
    strat_rem = 0.0
    ct = NONE  # type running in the previous tick (env.cluster_type before preemption)
    region = ran_region = 0
    spot_ticks = od_ticks = preemptions = switches = 0
    spot_cost = 0.0  # correct mode: spot billed per tick where it ran
    spot_by_region = [0] * n_regions
    finish_s = 0.0
    for tick in range(length):
        has_spot = avail[region][tick]
        last = ct
        # Credit the previous tick.
        if last is NONE:
            done = 0
            rem_shown = own_rem if correct else None  # the simulator's copy is what it sees
        else:
            if last is SPOT:
                spot_ticks += 1
                spot_by_region[ran_region] += 1
                if correct:
                    spot_cost += tick_prices[ran_region][tick - 1]
            else:
                od_ticks += 1
            # leaderboard: the strategy's attribute is the state (as published, writable);
            # correct: the simulator's own copy, so a policy cannot skip an overhead.
            rem = own_rem if correct else strat_rem
            if rem:
                full = gap - rem if gap > rem else 0.0
                rem -= gap - full
                own_rem = 0 if rem < 1e-3 else rem
            else:  # no overhead left: a whole tick of work (same numbers as the branch above)
                full = gap
                own_rem = 0
            rem_shown = own_rem
            left = duration - progress
            done = left if full > left else full
            progress += done
            if progress >= done_need:
                # finished inside tick-1: after its overhead part and `done` seconds of work
                finish_s = (tick - 1) * gap + (gap - full) + done
        if last is SPOT and not has_spot:
            current = NONE
            preemptions += 1
        else:
            current = last
        request, new_region, strat_rem = yield (tick, last, current, has_spot, done, progress,
                                                rem_shown)
        if progress >= done_need:
            region = new_region
            break
        if request.__class__ is not cluster_type:
            raise TypeError(f"_step returned {request!r}; expected a sky_spot.utils.ClusterType")
        # Strong guarantee (only computed where it can fire).
        if progress <= safe[tick] and ceil((duration - progress + overhead) / gap) * gap >= time_left[tick]:
            keep = current if correct else last
            if keep is SPOT and (own_rem if correct else strat_rem) < 1e-3:
                request = SPOT
            else:
                request = ON_DEMAND
        if new_region != region:
            switches += 1
            if request is SPOT and not avail[new_region][tick]:
                request = NONE
        elif request is SPOT and not has_spot:
            request = NONE
        if current is not request and request is not NONE:
            strat_rem = own_rem = overhead
        ct = request
        region = ran_region = new_region
    else:
        raise TraceEnded(
            f"the job ran past the end of the trace ({length} ticks = "
            f"{length * gap / 3600:.2f} h) with {(duration - progress) / 3600:.2f} h of work left")
    ticks = tick  # ticks 0 .. tick-1 are charged
    final_region = region
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


def offline_lower_bound(avail, gap, duration, deadline, overhead, *, spot_prices, od_price=3.06):
    """A lower bound on the cost of any schedule that meets the deadline, knowing the trace.

    Relaxation: at least ``K = ceil((duration + overhead) / gap)`` ticks must be paid for (every
    schedule starts once, and pays its last tick whole), all of them before the deadline; each
    tick costs at least the cheapest option then (spot in a region that has it at that tick,
    else on-demand). The bound is the sum of the K cheapest ticks: it ignores the overheads of
    later restarts, so an exact offline optimum (a DP over the schedule) lies between it and
    the best policy's cost. ``spot_prices[r]``: a float or a per-tick list; correct accounting.
    Returns ``inf`` when even K on-demand ticks do not fit before the deadline.
    """
    ticks = min(math.ceil(deadline / gap - 1e-9), min(len(a) for a in avail))
    need = math.ceil((duration + overhead) / gap - 1e-9)
    if need > ticks:
        return math.inf
    if all(p.__class__ is float for p in spot_prices):
        # one price per region: count the ticks each region is the cheapest available option
        # (bitmasks, one byte per tick), cheapest region first; on-demand covers the rest
        covered, levels = 0, []
        for p, a in sorted(zip(spot_prices, avail), key=lambda pa: pa[0]):
            mask = int.from_bytes(bytes(a[:ticks]), "little")
            levels.append((p, (mask & ~covered).bit_count()))
            covered |= mask
        levels.append((od_price, ticks - covered.bit_count()))
        total, left = 0.0, need
        for p, n in sorted(levels):
            take = n if n < left else left
            total += p * take
            left -= take
        return total * gap / 3600
    cheapest = [od_price] * ticks
    for a, p in zip(avail, spot_prices):
        if p.__class__ is float:
            p = [p] * ticks
        offer = [q if x else od_price for x, q in zip(a[:ticks], p)]
        cheapest = list(map(min, cheapest, offer))
    cheapest.sort()
    return sum(cheapest[:need]) * gap / 3600


def offline_optimum(avail, gap, duration, deadline, overhead, *, spot_price, od_price=3.06):
    """The exact least cost of one single-region job knowing its whole trace (correct accounting).

    A dynamic program over ticks: for each type running in the tick (NONE, SPOT where the
    trace has spot, ON_DEMAND) and each amount of work done, the least cost so far. A running
    tick adds ``gap`` seconds of work when it continues the previous tick's type and
    ``gap - overhead`` when it (re)starts; the job ends in the tick where the work reaches
    ``duration``, which must be before the deadline; every running tick is billed whole. Work is
    counted in units of gcd(gap, overhead, duration) seconds (integers), so the result is exact
    for this model. Needs ``0 <= overhead < gap`` in whole seconds; numpy. Returns ``inf`` when
    no schedule meets the deadline. Any valid run of any policy costs at least this much.
    """
    import numpy as np

    gap_i, oh_i, dur_i = round(gap), round(overhead), round(duration)
    if (gap_i, oh_i, dur_i) != (gap, overhead, duration) or not 0 <= oh_i < gap_i:
        raise ValueError("offline_optimum needs whole seconds and 0 <= overhead < gap")
    unit = math.gcd(math.gcd(gap_i, oh_i), dur_i)
    need, full, first = dur_i // unit, gap_i // unit, (gap_i - oh_i) // unit
    ticks = min(math.ceil(deadline / gap - 1e-9), len(avail))
    inf = np.inf
    # cost[c][w]: least cost with w units done and type c running in the last tick (w < need)
    none = np.full(need, inf)
    none[0] = 0.0
    spot = np.full(need, inf)
    od = np.full(need, inf)
    best = inf

    def advance(cont, start, price):
        """Arrays after one more tick of a type: continued from ``cont`` or started from ``start``."""
        out = np.full(need, inf)
        out[full:] = cont[:need - full]
        np.minimum(out[first:], start[:need - first], out=out[first:])
        out += price
        # schedules that reach the work in this tick
        return out, min(cont[need - full:].min(), start[need - first:].min()) + price

    for t in range(ticks):
        idle = np.minimum(np.minimum(none, spot), od)
        new_od, done = advance(od, np.minimum(none, spot), od_price)
        best = min(best, done)
        if avail[t]:
            new_spot, done = advance(spot, np.minimum(none, od), spot_price)
            best = min(best, done)
        else:
            new_spot = np.full(need, inf)
        none, spot, od = idle, new_spot, new_od
        if best <= idle.min():  # every unfinished schedule already costs more
            break
    return float(best) * gap / 3600
