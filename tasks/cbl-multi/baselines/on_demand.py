"""Baseline: on-demand only (score 0 by construction, every run ~146.9 $)."""
from sky_spot.strategies.multi_strategy import MultiRegionStrategy
from sky_spot.utils import ClusterType


class OnDemandOnly(MultiRegionStrategy):
    NAME = "on_demand_only"

    def _step(self, last_cluster_type, has_spot):
        if self.task_duration - sum(self.task_done_time) <= 1e-3:
            return ClusterType.NONE
        return ClusterType.ON_DEMAND
