"""A fast re-implementation of the Can't-Be-Late spot simulator (sky_spot).

Read-only for agents: the policy lives in ``policy/strategy.py``. The import paths
(``sky_spot.utils.ClusterType``, ``sky_spot.strategies.strategy.Strategy``,
``sky_spot.strategies.multi_strategy.MultiRegionStrategy``) are those of the published
simulator, so strategy files written for the ADRS leaderboard run unchanged.
"""
