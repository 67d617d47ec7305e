"""The multi-region policy API of the published problem (``MultiRegionStrategy``).

Same tick protocol as :class:`sky_spot.strategies.strategy.Strategy`; ``_step`` may also
call ``self.env.switch_region(i)``. Region switches are free (no migration overhead); a
SPOT -> SPOT switch keeps the instance running without a restart overhead.
"""
from __future__ import annotations

from sky_spot.strategies.strategy import Strategy


class MultiRegionStrategy(Strategy):
    NAME = "multi_region_base"

    def __init__(self, args):
        super().__init__(args)
        # as published; the published runs switch regions for free (overhead 0 h)
        self.last_startup_region = None
        self.migration_overhead_seconds = getattr(args, "region_switch_overhead_hours", 0.0) * 3600

    @classmethod
    def _from_args(cls, parser) -> "MultiRegionStrategy":
        # the published factory: its arguments, with their defaults, then the class
        group = parser.add_argument_group(cls.NAME)
        group.add_argument("--region-switch-overhead-hours", type=float, default=0.0)
        group.add_argument("--inter-task-overhead", type=float, default=[0.0], nargs="+")
        args, _ = parser.parse_known_args()
        return cls(args)
