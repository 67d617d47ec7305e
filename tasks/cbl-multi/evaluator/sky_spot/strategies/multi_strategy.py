"""The multi-region policy API of the published problem (``MultiRegionStrategy``).

Same tick protocol as :class:`sky_spot.strategies.strategy.Strategy`; ``_step`` may also
call ``self.env.switch_region(i)``. Region switches are free (no migration overhead); a
SPOT -> SPOT switch keeps the instance running without a restart overhead.
"""
from __future__ import annotations

from sky_spot.strategies.strategy import Strategy


class MultiRegionStrategy(Strategy):
    NAME = "multi_region_base"
