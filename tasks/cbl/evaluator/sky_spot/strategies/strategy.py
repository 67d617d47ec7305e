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
    """The job: one task of ``duration_seconds`` of work."""

    def __init__(self, duration_seconds: float):
        self.duration_seconds = float(duration_seconds)

    def get_total_duration_seconds(self) -> float:
        return self.duration_seconds


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
        self.task_done_time = []
        self.remaining_restart_overhead = 0.0
        self.progress_seconds = 0.0  # == sum(task_done_time), kept up to date by the simulator

    def _step(self, last_cluster_type: ClusterType, has_spot: bool) -> ClusterType:
        raise NotImplementedError

    def step(self) -> ClusterType:
        raise NotImplementedError(
            "the simulator drives the tick loop itself (sky_spot.sim); implement _step instead")

    @property
    def task_done(self) -> bool:
        return self.progress_seconds >= self.task_duration - 1e-8

    @property
    def name(self) -> str:
        return self.NAME

    @classmethod
    def _from_args(cls, parser) -> "Strategy":
        args, _ = parser.parse_known_args()
        return cls(args)

    def info(self) -> dict:
        return {"Task/Done(seconds)": self.progress_seconds,
                "Strategy/RemainingRestartOverhead(seconds)": self.remaining_restart_overhead}


def ticks_needed(seconds: float, gap: float) -> float:
    """``ceil(seconds / gap) * gap``, as the published guarantee rounds."""
    return math.ceil(seconds / gap) * gap
