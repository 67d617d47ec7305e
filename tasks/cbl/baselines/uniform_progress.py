"""Baseline: single-region Uniform Progress (NSDI'24).

Behind the expected progress line (t * task_duration / deadline, plus one restart overhead of
margin): run, on spot if available else on-demand. Ahead: spot if available, else wait.
"""
from sky_spot.strategies.strategy import Strategy
from sky_spot.utils import ClusterType


class UniformProgress(Strategy):
    NAME = "uniform_progress"

    def _step(self, last_cluster_type, has_spot):
        done = sum(self.task_done_time)
        if self.task_duration - done <= 1e-3:
            return ClusterType.NONE
        if has_spot:
            return ClusterType.SPOT
        expected = self.env.elapsed_seconds * self.task_duration / self.deadline
        if done < expected + self.restart_overhead:
            return ClusterType.ON_DEMAND
        return ClusterType.NONE
