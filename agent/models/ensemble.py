"""Which model runs the next episode: fixed weights, or a UCB bandit on improvement per dollar.

The bandit's state is only what episodes reported (model, improvement, cost), so `resume`
rebuilds it by replaying the `episode_finished` events.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from agent.models import ModelChoice

COST_FLOOR_USD = 0.01  # a free model (tuner) still "costs" this much per episode
EXPLORATION = 1.0


@dataclass
class Arm:
    pulls: int = 0
    reward: float = 0.0  # summed improvement per dollar


class Ensemble:
    def __init__(self, choices: list[ModelChoice], bandit: bool = False):
        self.choices = choices
        self.bandit = bandit and len(choices) > 1
        self.arms = {c.spec: Arm() for c in choices}

    def choose(self, rng: random.Random) -> str:
        if not self.bandit:
            return rng.choices([c.spec for c in self.choices],
                               [c.weight for c in self.choices])[0]
        for c in self.choices:  # every arm once first
            if self.arms[c.spec].pulls == 0:
                return c.spec
        total = sum(a.pulls for a in self.arms.values())
        scale = max((a.reward / a.pulls for a in self.arms.values()), default=0.0) or 1.0

        def ucb(spec: str) -> float:
            arm = self.arms[spec]
            return arm.reward / arm.pulls / scale + EXPLORATION * math.sqrt(
                math.log(total) / arm.pulls)

        return max((c.spec for c in self.choices), key=ucb)

    def record(self, spec: str, improvement: float, cost_usd: float) -> None:
        arm = self.arms.setdefault(spec, Arm())
        arm.pulls += 1
        arm.reward += max(0.0, improvement) / max(cost_usd, COST_FLOOR_USD)
