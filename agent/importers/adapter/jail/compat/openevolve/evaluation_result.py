"""Stand-in for openevolve.evaluation_result: an evaluator's metrics and text artifacts."""
from dataclasses import dataclass, field


@dataclass
class EvaluationResult:
    metrics: dict
    artifacts: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, metrics: dict) -> "EvaluationResult":
        return cls(metrics=metrics)

    def to_dict(self) -> dict:
        return self.metrics
