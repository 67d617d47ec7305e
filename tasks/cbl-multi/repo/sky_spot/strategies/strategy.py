"""The single-region policy API of the published simulator (``Strategy``).

A policy subclasses :class:`Strategy`, sets ``NAME``, and implements
``_step(last_cluster_type, has_spot) -> ClusterType``. The simulator (``sky_spot.sim``)
does the rest each tick, exactly as the published ``Strategy.step``:

1. credit the previous tick's progress (``task_done_time``), counting down
   ``remaining_restart_overhead``;
2. call ``_step`` once;
3. apply the strong guarantee (force ON_DEMAND when the slack is gone);
4. downgrade SPOT to NONE when the current region has no spot;
5. start a restart overhead when the request differs from the running type.
"""
from __future__ import annotations

import argparse
import math

from sky_spot.utils import ClusterType


class ArgsParser:
    """A tiny stand-in for ``configargparse.ArgumentParser`` (``_from_args`` receives one).

    ``add_argument``/``add_argument_group`` record defaults; ``parse_known_args`` returns a
    namespace with the job parameters and those defaults, and no unparsed arguments.
    """

    def __init__(self, **job):
        self._values = dict(job)

    def add_argument_group(self, *args, **kwargs) -> "ArgsParser":
        return self

    def add_argument(self, *names, default=None, dest=None, **kwargs) -> None:
        if dest is None:
            longs = [n for n in names if n.startswith("--")]
            dest = (longs[0] if longs else names[0]).lstrip("-").replace("-", "_")
        self._values.setdefault(dest, default)

    def parse_known_args(self, args=None, namespace=None):
        return argparse.Namespace(**self._values), []

    def parse_args(self, args=None, namespace=None):
        return argparse.Namespace(**self._values)


class Task:
    """The job a policy sees as ``self.task``: the published ``sky_spot.task.SingleTask``.

    Its progress is read from a list (``Strategy.reset`` points it at the strategy's
    ``task_done_time``, as published), summed on every call as published; ``is_done`` is the
    published ``max(0, total - sum(task_done_time)) <= 1e-8``. The simulator keeps its own
    count: what a policy does to this object changes only its own view.
    """

    def __init__(self, duration_seconds: float):
        self._duration_seconds = float(duration_seconds)
        self._config = {"duration": self._duration_seconds / 3600.0}
        self._progress_source_list: list[float] = []

    def set_progress_source(self, task_done_time_list: list[float]) -> None:
        self._progress_source_list = task_done_time_list

    def get_current_progress_seconds(self) -> float:
        return sum(self._progress_source_list or [])

    def get_remaining_duration_seconds(self) -> float:
        return max(0.0, self.get_total_duration_seconds() - self.get_current_progress_seconds())

    def reset(self) -> None:
        """Nothing to reset (as published: the progress lives in the source list)."""

    @property
    def is_done(self) -> bool:
        return self.get_remaining_duration_seconds() <= 1e-8

    @property
    def duration_seconds(self) -> float:
        return self._duration_seconds

    def get_total_duration_hours(self) -> float:
        return self._duration_seconds / 3600.0

    def get_total_duration_seconds(self) -> float:
        return self._duration_seconds

    def get_config(self) -> dict:
        return dict(self._config)  # a copy: the job's parameters are not the policy's to change

    def get_info(self) -> dict:
        return {"task_type": "SingleTask", "Done(seconds)": self.get_current_progress_seconds(),
                "Remaining(seconds)": self.get_remaining_duration_seconds(),
                "task_is_done": self.is_done, "Target(seconds)": self.get_total_duration_seconds()}

    def __repr__(self) -> str:
        return f"SingleTask(config={self._config})"

    def __str__(self) -> str:
        return f"SingleTask({self.get_total_duration_hours():.1f}h)"


class Strategy:
    NAME = "abstract"

    def __init__(self, args):
        self.args = args
        self.env = None
        self.task_done_time: list[float] = []
        self.remaining_restart_overhead = 0.0
        self.deadline = getattr(args, "deadline_hours", 0.0) * 3600
        self.task_duration = getattr(args, "task_duration_hours", 0.0) * 3600
        oh = getattr(args, "restart_overhead_hours", [0.0])
        oh = oh if isinstance(oh, (list, tuple)) else [oh]
        self.restart_overheads = [h * 3600 for h in oh]
        self.restart_overhead = self.restart_overheads[0]

    def reset(self, env, task: Task) -> None:
        """Called by the simulator before the first tick of every run."""
        args = self.args
        self.task = task
        self.env = env
        self.deadline = args.deadline_hours * 3600
        self.task_duration = task.get_total_duration_seconds()
        oh = args.restart_overhead_hours
        oh = oh if isinstance(oh, (list, tuple)) else [oh]
        self.restart_overheads = [h * 3600 for h in oh]
        self.restart_overhead = self.restart_overheads[0]
        self.inter_task_overheads = [h * 3600 for h in getattr(args, "inter_task_overhead", [0.0])]
        self.inter_task_overhead = self.inter_task_overheads[0]
        self.task_done_time = []
        task.set_progress_source(self.task_done_time)
        self.remaining_restart_overhead = 0.0
        self.remaining_inter_task_overhead = 0
        self._last_known_subtask_index = -1
        self.progress_seconds = 0.0  # == sum(task_done_time), kept up to date by the simulator

    def _step(self, last_cluster_type: ClusterType, has_spot: bool) -> ClusterType:
        raise NotImplementedError

    def step(self) -> ClusterType:
        raise NotImplementedError(
            "the simulator drives the tick loop itself (sky_spot.sim); implement _step instead")

    @property
    def task_done(self) -> bool:
        return self.task.is_done  # as published

    @property
    def config(self) -> dict:
        return {"name": self.NAME, "deadline": self.deadline, "task_duration": self.task_duration,
                "restart_overhead": self.restart_overhead,
                "restart_overheads": self.restart_overheads,
                "inter_task_overhead": self.inter_task_overhead,
                "inter_task_overheads": self.inter_task_overheads,
                "task": self.task.get_config()}

    @property
    def name(self) -> str:
        return self.NAME

    @classmethod
    def _from_args(cls, parser) -> "Strategy":
        args, _ = parser.parse_known_args()
        return cls(args)

    def info(self) -> dict:
        return {**{f"Task/{k}": v for k, v in self.task.get_info().items()},
                "Strategy/RemainingRestartOverhead(seconds)": self.remaining_restart_overhead,
                "Strategy/CurrentRestartOverheadIndex": 0,
                "Strategy/CurrentInterTaskOverheadIndex": 0,
                "Strategy/RemainingInterTaskOverhead(seconds)": self.remaining_inter_task_overhead}


def ticks_needed(seconds: float, gap: float) -> float:
    """``ceil(seconds / gap) * gap``, as the published guarantee rounds."""
    return math.ceil(seconds / gap) * gap
