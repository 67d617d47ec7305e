"""The program database's in-memory view: candidates, islands, elites, parent sampling.

Git holds the truth (commits, notes); this view is rebuilt from events on resume. Adding a
candidate and sampling a parent cost the same at 5,000 candidates as at 50: elites are kept
sorted incrementally and diversity is measured on a bounded random sample.
"""

from __future__ import annotations

import ast
import bisect
import math
import random
from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np

from agent.config import SearchConfig


@dataclass
class Candidate:
    commit: str
    parent: str | None
    episode: int
    island: int
    score: float | None
    valid: bool
    key: str = ""
    stage_reached: str = ""
    feedback: str = ""
    metrics: dict = field(default_factory=dict)
    model: str = ""
    message: str = ""
    code_size: int = 0
    code_shape: dict = field(default_factory=dict)  # counts of structural syntax, see code_shape
    t: float = 0.0
    test_score: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Candidate:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class ProgramDB:
    """Candidates by commit, islands of members, per-island elites, recent failures."""

    SAMPLE = 32  # candidates looked at when choosing a diverse parent or inspiration

    def __init__(self, direction: str = "maximize", search: SearchConfig | None = None):
        search = search or SearchConfig()
        self.sign = 1.0 if direction == "maximize" else -1.0
        self.n_islands = max(1, search.islands)
        self.elite_size = search.elite_size
        self.by_commit: dict[str, Candidate] = {}
        self.members: list[list[Candidate]] = [[] for _ in range(self.n_islands)]
        self._ranked: list[list[tuple[float, str]]] = [[] for _ in range(self.n_islands)]
        self._ranked_set: list[set[str]] = [set() for _ in range(self.n_islands)]
        self.failures: deque[Candidate] = deque(maxlen=50)
        self.baseline: Candidate | None = None
        self._best: Candidate | None = None

    def __len__(self) -> int:
        return len(self.by_commit)

    def _rank_key(self, c: Candidate) -> float:
        return -self.sign * c.score if c.score is not None else math.inf

    def add(self, c: Candidate, baseline: bool = False) -> None:
        if c.commit in self.by_commit:
            return
        self.by_commit[c.commit] = c
        if baseline:
            self.baseline = c
            for island in range(self.n_islands):
                self._join(c, island)
        else:
            self._join(c, c.island % self.n_islands)
        parent = self.by_commit.get(c.parent or "")
        if not c.valid or c.score is None or (parent and parent.score is not None
                                              and not self.better(c.score, parent.score)):
            self.failures.append(c)
        if c.valid and c.score is not None and (
                self._best is None or self.better(c.score, self._best.score)):
            self._best = c

    def _join(self, c: Candidate, island: int) -> None:
        self.members[island].append(c)
        if c.valid and c.score is not None:
            bisect.insort(self._ranked[island], (self._rank_key(c), c.commit))
            self._ranked_set[island].add(c.commit)

    def better(self, a: float | None, b: float | None) -> bool:
        if a is None:
            return False
        return b is None or self.sign * a > self.sign * b

    def best(self) -> Candidate | None:
        return self._best

    def improvement(self, parent: Candidate, commits: list[str]) -> float:
        """How much the best of `commits` beat `parent` (0 if none did)."""
        scores = [c.score for c in map(self.by_commit.get, commits)
                  if c is not None and c.valid and c.score is not None]
        if not scores or parent.score is None:
            return 0.0
        return max(0.0, max(self.sign * (s - parent.score) for s in scores))

    def elites(self, island: int, n: int | None = None) -> list[Candidate]:
        ranked = self._ranked[island % self.n_islands][: n or self.elite_size]
        return [self.by_commit[commit] for _, commit in ranked]

    def migrate(self) -> list[tuple[str, int]]:
        """Each island's best joins the next island (ring); returns (commit, island) moves."""
        tops = [self.elites(island, 1) for island in range(self.n_islands)]
        moves = []
        for island, top in enumerate(tops):
            target = (island + 1) % self.n_islands
            if top and top[0].commit not in self._ranked_set[target]:
                self._join(top[0], target)
                moves.append((top[0].commit, target))
        return moves

    # -- sampling -------------------------------------------------------------------------
    def sample_parent(self, island: int, rng: random.Random, exploit_ratio: float) -> Candidate:
        island %= self.n_islands
        elites = self.elites(island)
        if elites and rng.random() < exploit_ratio:
            weights = [1.0 / (rank + 1) for rank in range(len(elites))]
            return rng.choices(elites, weights)[0]
        diverse = self.most_novel(island, rng, 1)
        if diverse:
            return diverse[0]
        return elites[0] if elites else (self.baseline or next(iter(self.by_commit.values())))

    def most_novel(self, island: int, rng: random.Random, n: int,
                   exclude: set[str] = frozenset()) -> list[Candidate]:
        """Valid candidates whose behaviour and code differ most from the island's elites."""
        pool = [c for c in self.members[island % self.n_islands]
                if c.valid and c.score is not None and c.commit not in exclude]
        if not pool:
            return []
        sample = rng.sample(pool, min(len(pool), self.SAMPLE))
        elites = self.elites(island) or sample[:1]
        keys = sorted({k for c in sample + elites for k, v in c.metrics.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)})
        a, b = _descriptors(sample, keys), _descriptors(elites, keys)
        scale = np.maximum(np.abs(np.concatenate([a, b])).max(axis=0), 1e-9)
        dist = np.abs((a[:, None, :] - b[None, :, :]) / scale).sum(axis=2).min(axis=1)
        order = np.argsort(-dist, kind="stable")[:n]
        return [sample[i] for i in order]

    def inspirations(self, parent: Candidate, island: int, rng: random.Random, n: int
                     ) -> list[Candidate]:
        """Strong candidates (elites here and elsewhere) and one diverse, never the parent."""
        seen = {parent.commit}
        chosen: list[Candidate] = []
        strong = self.elites(island) + [self.best()] if self.best() else self.elites(island)
        for c in strong:
            if c and c.commit not in seen and len(chosen) < max(0, n - 1):
                chosen.append(c)
                seen.add(c.commit)
        for c in self.most_novel(island, rng, 1, exclude=seen):
            if len(chosen) < n:
                chosen.append(c)
        return chosen

    def recent_failures(self, n: int) -> list[Candidate]:
        return list(self.failures)[-n:][::-1] if n > 0 else []


SHAPES = {"branches": (ast.If, ast.IfExp, ast.Match), "loops": (ast.For, ast.While, ast.comprehension),
          "functions": (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef),
          "calls": (ast.Call,), "comparisons": (ast.Compare,), "arithmetic": (ast.BinOp,)}


def code_shape(sources: list[str]) -> dict[str, int]:
    """How much of each kind of structure the code has: two policies that differ only in
    constants look alike here, a rewrite does not. Unparsable files count as nothing."""
    counts = dict.fromkeys(SHAPES, 0)
    for source in sources:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            for name, kinds in SHAPES.items():
                if isinstance(node, kinds):
                    counts[name] += 1
    return counts


def _descriptors(cands: list[Candidate], keys: list[str]) -> np.ndarray:
    """Behaviour (the evaluator's numeric metrics) and code (size and shape), one row each."""
    rows = [[float(c.metrics.get(k, 0.0)) if isinstance(c.metrics.get(k, 0.0), (int, float))
             else 0.0 for k in keys] + [math.log1p(c.code_size)]
            + [math.log1p(c.code_shape.get(s, 0)) for s in SHAPES] for c in cands]
    return np.asarray(rows, dtype=float)
