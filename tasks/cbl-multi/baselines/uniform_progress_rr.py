"""Baseline: Uniform Progress (NSDI'24) with round-robin region switching.

Expected progress at time t is t * task_duration / deadline. Behind it: run (spot if the
current region has it, else on-demand). Ahead of it: spot if available, else move to the
next region and wait. The base class's strong guarantee keeps the deadline.
"""
from sky_spot.strategies.multi_strategy import MultiRegionStrategy
from sky_spot.utils import ClusterType


class UniformProgressRoundRobin(MultiRegionStrategy):
    NAME = "uniform_progress_rr"

    def _step(self, last_cluster_type, has_spot):
        env = self.env
        done = sum(self.task_done_time)
        if self.task_duration - done <= 1e-3:
            return ClusterType.NONE
        expected = env.elapsed_seconds * self.task_duration / self.deadline
        if has_spot:
            return ClusterType.SPOT
        if done < expected + self.restart_overhead:
            return ClusterType.ON_DEMAND
        if env.get_num_regions() > 1:
            env.switch_region((env.get_current_region() + 1) % env.get_num_regions())
        return ClusterType.NONE
