"""Cluster types and the price constants of the published simulator."""
from __future__ import annotations

import enum


class ClusterType(enum.Enum):
    NONE = "NONE"
    SPOT = "SPOT"
    ON_DEMAND = "ON_DEMAND"


# On-demand $/h per device, matched by substring of the trace path (published DEVICE_COSTS).
DEVICE_COSTS = {"v100_1": 3.06}  # every evaluated device is billed 3.06 $/h on demand
COST_K = 3.1446  # on-demand / spot price ratio of the published simulator
COSTS = {
    ClusterType.ON_DEMAND: 3.06,
    ClusterType.SPOT: 3.06 / COST_K,
    ClusterType.NONE: 0.0,
}
