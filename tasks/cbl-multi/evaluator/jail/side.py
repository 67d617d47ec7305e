"""The candidate's side of the CBL evaluators: runs the policy inside the jail.

Usage (started by the evaluator through adrs_eval.candidate): side.py single|multi

It loads ``policy/strategy.py`` with the worktree's own ``sky_spot.loader`` (a ``Strategy``
subclass for ``single``, a ``MultiRegionStrategy`` one for ``multi``, or a leaderboard
``Solution`` file), makes one strategy per job the way the published runner does
(``_from_args`` on an ``ArgsParser``), and gives each one a ``TickEnv``: the published
``env`` API for the current tick only. It never sees a trace: each tick the evaluator sends
every active job's view of that tick, and this side answers with every job's decision. The
evaluator owns the simulator and every number it scores; a reply is only a decision, which it
validates. Identical in tasks/cbl and tasks/cbl-multi (a test checks).

Protocol (one JSON value per line; the other end is ../lockstep.py):
  <- {"ok": name} | {"error": text}                              once, after loading the policy
  -> {"start": [[job, region names, duration s], ...], "gap": G, "mode": "correct"|"leaderboard"}
  <- [null | error text, ...]                                    one per job
  -> {"t": tick, "s": stream, "gone": [job, ...], "r": [seen, done, rem, seen, done, rem, ...]}
  <- [request, region, request, region, ...]    two per active job (three in leaderboard mode)
The started jobs (those without an error) form two streams, at even and odd positions among
them; each tick message is about one stream's active jobs: the stream's jobs less those the
evaluator has called ``gone`` (finished or failed), in start order, three numbers each in
``r``. ``seen`` packs what the env shows: ``18 * spot + 6 * last + 2 * current + has_spot``,
with ``spot`` bit r set when region r has spot this tick and the cluster types as codes
0 NONE, 1 SPOT, 2 ON_DEMAND (``last`` is ``_step``'s first argument, ``current`` is
``env.cluster_type``, the same after a preemption). ``done`` is the work credited for the
previous tick (appended to ``task_done_time``; ``progress_seconds`` is their running sum);
``rem`` the value ``remaining_restart_overhead`` holds before the step (null: leave the
policy's own value). The region is not sent: the evaluator takes the one this side reported.
A request that is not a ``ClusterType`` travels as its repr; a job whose policy raised answers
null and the error text. The leaderboard reply adds the policy's
``remaining_restart_overhead`` after the step (the published simulator reads it there; null
when it is None); correct accounting keeps its own copy.
"""

from __future__ import annotations

import ast
import importlib
import numbers
import operator
import shutil
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

from adrs_eval.side import candidate_dir, channel, describe

BASES = {"single": ("sky_spot.strategies.strategy", "Strategy"),
         "multi": ("sky_spot.strategies.multi_strategy", "MultiRegionStrategy")}
# The published problem folders: a leaderboard Solution file runs from
# problems/<name>/resources/execution_env/solution_env/solution.py of a copy of
# ./leaderboard (this task's problems/<name>/resources/ files: the initial program)
PROBLEMS = {"single": "cant_be_late", "multi": "cant_be_late_multi"}
MAX_REPR = 300


class Api(NamedTuple):
    """The policy class, and what the jobs need of the worktree's sky_spot package."""
    cls: type
    ArgsParser: type
    Task: type
    ClusterType: type
    FutureNotAvailable: type


def load_policy(kind: str) -> Api:
    sys.path.insert(0, candidate_dir())
    module, base_name = BASES[kind]
    base = getattr(importlib.import_module(module), base_name)
    from sky_spot.loader import load_strategy_class
    from sky_spot.sim import FutureNotAvailable
    from sky_spot.strategies.strategy import ArgsParser, Task
    from sky_spot.utils import ClusterType

    path = Path(candidate_dir()) / "policy" / "strategy.py"
    if is_solution_file(path):
        path = as_on_leaderboard(kind, path)
    cls = load_strategy_class(path, base)
    return Api(cls, ArgsParser, Task, ClusterType, FutureNotAvailable)


def is_solution_file(path: Path) -> bool:
    """Whether the file is a leaderboard submission: a top-level ``Solution`` class or
    ``solve`` function (the loader takes a Strategy subclass first, if it also has one)."""
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError):
        return False  # loading it where it is reports the error
    return any(isinstance(n, ast.ClassDef) and n.name == "Solution"
               or isinstance(n, ast.FunctionDef) and n.name == "solve" for n in tree.body)


def as_on_leaderboard(kind: str, path: Path) -> Path:
    """A copy of the Solution file where the leaderboard runs it, in a private temporary
    folder, next to the problem's resources (published Solution files read the initial
    program at ``Path(__file__).resolve().parents[5] / "problems/<name>/resources/..."``)."""
    root = Path(tempfile.mkdtemp(prefix="adrs-leaderboard-")) / "ADRS-Leaderboard"
    shutil.copytree(Path(__file__).resolve().parent / "leaderboard", root)
    dest = (root / "problems" / PROBLEMS[kind] / "resources" / "execution_env" / "solution_env"
            / "solution.py")
    dest.parent.mkdir(parents=True)
    dest.write_bytes(path.read_bytes())
    return dest


class TickEnv:
    """What a policy sees as ``self.env``: the published Env API (as ``sky_spot.sim.Env`` has
    it), for the current tick only. ``Jobs.tick`` writes the tick's state into it before each
    ``_step``; nothing here knows a later tick. More of the published env can be added the same
    way: a value in the tick row, an attribute or method here."""

    FutureNotAvailable = RuntimeError  # replaced by the worktree's class at start-up

    def __init__(self, gap_seconds: float, names: list[str], none):
        self._names = names
        self.gap_seconds = float(gap_seconds)
        self.tick = 0
        self.elapsed_seconds = 0.0
        self.cluster_type = none
        self._region = 0
        self._spot = 0  # bit r: region r has spot this tick
        self.num_regions = len(names)
        self._history: list = []  # _step's last_cluster_type of every tick so far

    def get_current_region(self) -> int:
        return self._region

    # read-only views of the published Env's own state, as sky_spot.sim.Env has them
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
        return self.spot_available_in_region(self._region)

    def spot_available_in_region(self, region_idx: int) -> bool:
        # indexed like the published per-region list: negative from the end, else IndexError
        r = operator.index(region_idx)
        if r < 0:
            r += self.num_regions
        if not 0 <= r < self.num_regions:
            raise IndexError("list index out of range")
        return self._spot >> r & 1 == 1

    def get_all_regions_spot_available(self) -> list[bool]:
        spot = self._spot
        return [spot >> r & 1 == 1 for r in range(self.num_regions)]

    # The published Env has these; they look ahead, so they are refused (as sky_spot.sim.Env).
    def _future(self, what: str):
        raise self.FutureNotAvailable(
            f"{what} reads the future of the spot trace; it is not available to policies "
            "(only the current tick: spot_available(), get_all_regions_spot_available())")

    def get_trace_before_end(self, end):
        self._future("env.get_trace_before_end()")

    def next_wait_spot_length(self):
        self._future("env.next_wait_spot_length()")

    @property
    def trace(self):
        return self._future("env.trace")

    @property
    def envs(self):
        return self._future("env.envs (the per-region traces)")


def safe_repr(obj) -> str:
    try:
        text = repr(obj)
    except BaseException as exc:  # noqa: BLE001 - a hostile __repr__; describe the object instead
        text = f"<{type(obj).__name__} object; repr() raised {type(exc).__name__}>"
    return text if len(text) <= MAX_REPR else text[:MAX_REPR] + "..."


def as_number(value):
    """The policy's remaining_restart_overhead as JSON carries it: a float, or None as is (the
    published simulator reads None as no overhead, and fails comparing it)."""
    cls = value.__class__
    if cls is float or value is None:
        return value
    if cls is int or isinstance(value, numbers.Real):  # the same arithmetic as a float
        return float(value)
    raise TypeError(f"remaining_restart_overhead is {safe_repr(value)}, not a number")


class Jobs:
    """One batch of jobs: a strategy and a TickEnv each, stepped one tick at a time."""

    def __init__(self, api: Api, start: dict):
        self.gap = float(start["gap"])
        self.leaderboard = start["mode"] == "leaderboard"
        ct = api.ClusterType
        self.types = types = (ct.NONE, ct.SPOT, ct.ON_DEMAND)
        # state code -> (last, current, has_spot)
        self.states = [(types[s // 6], types[s // 2 % 3], s % 2 == 1) for s in range(18)]
        self.jobs: list = []
        self.errors: list = []
        for job, names, duration in start["start"]:
            try:
                self.jobs.append(self._make(api, job, names, duration))
                self.errors.append(None)
            except BaseException as exc:  # noqa: BLE001 - the candidate's error, for that job
                self.jobs.append(None)
                self.errors.append(describe(exc))
        self.progress = [0.0] * len(self.jobs)
        started = [i for i, err in enumerate(self.errors) if err is None]
        self.streams = [started[0::2], started[1::2]]  # as the evaluator splits them

    def _make(self, api: Api, job: dict, names: list[str], duration: float):
        # as the published runner: _from_args on an argument parser holding the job
        parser = api.ArgsParser(**job)
        from_args = getattr(api.cls, "_from_args", None)
        strategy = (from_args(parser) if from_args is not None
                    else api.cls(parser.parse_known_args()[0]))
        env = TickEnv(self.gap, names, self.types[0])
        strategy.reset(env, api.Task(duration))
        # bound once after reset, as the simulator does
        return strategy, env, strategy.task_done_time.append, strategy._step

    def tick(self, msg: dict) -> list:
        t = msg["t"]
        elapsed = t * self.gap
        none, spot, on_demand = self.types
        states, jobs, progress = self.states, self.jobs, self.progress
        leaderboard = self.leaderboard
        stream = msg["s"]
        if msg["gone"]:
            gone = set(msg["gone"])
            self.streams[stream] = [i for i in self.streams[stream] if i not in gone]
        out: list = []
        add = out.extend
        row = iter(msg["r"])
        for i, seen, done, rem in zip(self.streams[stream], row, row, row):
            strategy, env, append, step = jobs[i]
            last, current, has_spot = states[seen % 18]
            try:  # the policy's own attributes and properties may raise too
                env.tick = t
                env.elapsed_seconds = elapsed
                env._spot = seen // 18
                env._history.append(last)
                append(done)
                if rem is not None:
                    strategy.remaining_restart_overhead = rem
                # the simulator's running sum (0 for an idle tick leaves it unchanged)
                progress[i] = strategy.progress_seconds = progress[i] + done
                env.cluster_type = current
                request = step(last, has_spot)
                code = (1 if request is spot else 0 if request is none else 2
                        if request is on_demand else safe_repr(request))
                region = env._region
                if region.__class__ is not int:
                    region = operator.index(region)
                if leaderboard:
                    add((code, region, as_number(strategy.remaining_restart_overhead)))
                else:
                    add((code, region))
            except BaseException as exc:  # noqa: BLE001 - the candidate's error, for that job
                add((None, describe(exc), None) if leaderboard else (None, describe(exc)))
        return out


def main() -> None:
    chan = channel()
    try:
        api = load_policy(sys.argv[1])
    except BaseException as exc:  # noqa: BLE001 - SyntaxError, SystemExit... from candidate code
        chan.send({"error": describe(exc)})
        return
    TickEnv.FutureNotAvailable = api.FutureNotAvailable
    chan.send({"ok": str(getattr(api.cls, "NAME", api.cls.__name__))[:MAX_REPR]})
    jobs = None
    for msg in chan:
        if "start" in msg:
            jobs = Jobs(api, msg)
            chan.send(jobs.errors)
        else:
            chan.send(jobs.tick(msg))


if __name__ == "__main__":
    main()
