"""`adrs-agent review`: which candidates really won, on the held-out stage no agent saw, with an
error bar; and why the run went as it did (the failure taxonomy), computed from the events.

`review(session)` ranks the scored candidates by the ranking stage (the cascade's last), runs the
held-out stage once per top candidate and the baseline (cached in each commit's git note under
"test", logs under sessions/<id>/heldout/, where no agent reads), pairs per-instance scores with
the baseline's for a bootstrap interval, flags what deserves a human look, and counts the
taxonomy. Rendering (rich table, JSON, markdown with a plot) is in `agent/report.py`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agent.events import (
    Budget,
    CandidateScored,
    CandidateTested,
    EpisodeStarted,
    Evaluated,
    SessionFinished,
    SessionStarted,
    ToolCalled,
)
from agent.scoring import heldout
from agent.session import Session
from agent.task import Task, TaskError
from sandbox import git
from sandbox.evaluate import EvaluatorSpec, StageResult
from sandbox.jail import JailConfig
from sandbox.notes import NotesQueue, read_note
from sandbox.pool import BackendError, check_backend_reachable, make_pool

OVERFIT_RATIO = 0.5
"""A held-out gain below this share of the ranking-stage gain (or below zero) is overfitting."""
FRAGILE_SHARE = 0.5
"""Winning on fewer than this share of the held-out instances is fragile."""
JUMP_SHARE = 0.5
"""One step that makes this share of the run's whole gain is a jump worth a look..."""
TINY_DIFF_LINES = 3
"""... when its diff changes at most this many lines, or touches how results are produced:"""
RESULT_TOUCHING = re.compile(r"\b(print|sys\.stdout|sys\.exit|os\._exit|exit\(|json\.dump|ADRS_|__import__|"
                             r"importlib|ctypes|subprocess|socket|signal|inspect|gc\.get_objects|"
                             r"sys\.modules|builtins|globals\(\)|setattr)")
BOOTSTRAP = 2000
CAUSES = {  # invalid candidates by cause: the first pattern found in the error and feedback
    "timeout": re.compile(r"timed out|timeout|time limit", re.I),
    "memory": re.compile(r"memory|MemoryError|\boom\b", re.I),
    "syntax/import": re.compile(r"SyntaxError|IndentationError|ImportError|ModuleNotFoundError|importing .* failed",
                                re.I),
    "interface": re.compile(r"AttributeError|TypeError|has no attribute|not callable|interface|expected|"
                            r"missing .*argument|returned", re.I),
    "crash": re.compile(r"Traceback|error|crash|exit code|Exception", re.I),
}


class ReviewError(RuntimeError):
    """A user-facing problem (unknown candidate, no task folder, ...): one line."""


@dataclass
class Interval:
    """The mean paired gain over the baseline on the held-out instances (positive is better,
    whatever the direction), with a 95% bootstrap interval."""

    mean: float
    low: float
    high: float
    won: int
    lost: int
    tied: int
    n: int


@dataclass
class Row:
    """One candidate (or the baseline) as review shows it."""

    rank: int
    """1 for the best by the ranking stage; 0 for the baseline."""
    commit: str
    parent: str | None
    episode: int
    model: str
    message: str
    stages: dict[str, float | None]
    """Score per cascade stage reached (None: invalid there)."""
    score: float | None
    """The ranking stage's score."""
    test: float | None = None
    """The held-out stage's score (None: invalid, or the task has none)."""
    gain: float | None = None
    """Ranking-stage gain over the baseline (positive is better)."""
    test_gain: float | None = None
    interval: Interval | None = None
    flags: list[str] = field(default_factory=list)
    """overfitting, fragile, suspicious: each with its reason, e.g. "overfitting: ..."."""
    metrics: dict = field(default_factory=dict)
    test_metrics: dict = field(default_factory=dict)


@dataclass
class Taxonomy:
    candidates: int
    invalid: dict[str, float]
    """Share of all candidates invalid by cause: syntax/import, interface, crash, timeout, memory, other."""
    duplicates: float
    """Share of candidates whose tree equals an earlier candidate's."""
    stagnation: int
    """The longest stretch of consecutive candidates without a new best."""
    convergence: float
    """The largest share of the population descended from one early candidate (a child of the
    baseline)."""
    convergence_root: str | None
    cost_usd: float
    improvements: int
    """How many times the best improved."""
    cost_per_improvement: float | None


@dataclass
class Review:
    session: str
    task: str
    direction: str
    ranking_stage: str
    test_stage: str | None
    baseline: Row
    rows: list[Row]
    taxonomy: Taxonomy
    instances: bool
    """Whether the held-out stage reported per-instance scores (then rows have intervals)."""
    series: list[tuple[int, float | None, float | None]] = field(default_factory=list)
    """(candidate index, its score, best so far) in scoring order, for the plot."""


# -- reading the session ---------------------------------------------------------------------------
@dataclass
class Scored:
    """A scored commit as the events say (the baseline included)."""

    commit: str
    parent: str | None
    episode: int
    model: str
    message: str
    key: str
    score: float | None
    valid: bool
    stages: list[dict]
    metrics: dict


@dataclass
class Facts:
    task: str
    task_dir: str
    direction: str
    stages: list[str]
    baseline: str
    scored: list[Scored]
    """In scoring order."""
    tested: dict[str, float | None]
    cost_usd: float
    parents: dict[int, str]
    """Each episode's parent commit."""

    @property
    def sign(self) -> float:
        return 1.0 if self.direction == "maximize" else -1.0


def facts(session: Session) -> Facts:
    f = Facts("", "", "maximize", [], "", [], {}, 0.0, {})
    seen: set[str] = set()
    cost = 0.0
    for e in session.events(skip=(ToolCalled, Evaluated)):
        match e:
            case SessionStarted():
                f.task, f.task_dir, f.direction, f.stages = e.task, e.task_dir, e.direction, e.stages
                f.baseline = f.baseline or e.baseline
            case CandidateScored() if e.commit not in seen:
                seen.add(e.commit)
                c = e.candidate
                f.scored.append(Scored(e.commit, e.parent, e.episode, str(c.get("model", "")),
                                       str(c.get("message", "")), str(c.get("key", "")),
                                       e.score if e.valid else None, e.valid, e.stages,
                                       dict(c.get("metrics") or {})))
            case CandidateTested():
                f.tested[e.commit] = e.score
            case EpisodeStarted():
                f.parents[e.episode] = e.parent
            case Budget():
                cost = e.cost_usd
            case SessionFinished():
                cost = max(cost, e.cost_usd)
    f.cost_usd = cost
    if not f.baseline:
        raise ReviewError(f"session {session.id} has no session_started event: nothing to review")
    return f


def ranked(f: Facts) -> list[Scored]:
    """Valid candidates (not the baseline), best first by the ranking stage."""
    valid = [c for c in f.scored if c.valid and c.score is not None and c.commit != f.baseline]
    return sorted(valid, key=lambda c: -f.sign * c.score)


def resolve(session: Session, which: str) -> str:
    """The full commit of a candidate: a sha prefix, `best`, or a rank (1 = best)."""
    f = facts(session)
    order = ranked(f)
    if which == "best" or (which.isdigit() and len(which) <= 4):
        n = 1 if which == "best" else int(which)
        if not 1 <= n <= len(order):
            raise ReviewError(f"{which}: the session has {len(order)} valid candidate(s) to rank")
        return order[n - 1].commit
    found = [c for c in f.scored if c.commit.startswith(which.lower())] if which else []
    if not found:
        raise ReviewError(f"{which}: no scored candidate of session {session.id} starts so "
                          "(`adrs-agent review` lists them)")
    if len(found) > 1:
        raise ReviewError(f"{which}: matches {len(found)} candidates; give more of the sha")
    if not found[0].valid:
        raise ReviewError(f"{which}: candidate {found[0].commit[:10]} is invalid")
    return found[0].commit


# -- the held-out stage -------------------------------------------------------------------------------
def evaluator_of(session: Session, task_dir: str) -> tuple[Task, EvaluatorSpec]:
    try:
        task = Task.load(Path(task_dir))
    except TaskError as e:
        raise ReviewError(f"the session's task folder {task_dir} does not load: {e}") from None
    return task, dataclasses.replace(task.evaluator, cwd=session.evaluator)  # the sealed copy


def held_out(session: Session, spec: EvaluatorSpec, candidates: Iterable[Scored], jail: JailConfig,
             data: Path | None, workers: int, backend: str = "local",
             ray_address: str | None = None) -> dict[str, StageResult]:
    """The held-out result of each commit: from its git note when review or the run made it,
    else run now (`workers` at once, here or on the Ray cluster) and kept in the note, so that
    a second review runs nothing."""
    results: dict[str, StageResult] = {}
    todo = []
    by_commit = {c.commit: c for c in candidates}
    for commit in by_commit:
        note = read_note(session.repo, commit) or {}
        if isinstance(note.get("test"), dict):
            results[commit] = StageResult.from_dict(note["test"])
        else:
            todo.append(commit)
    if not todo:
        return results
    if session.runner():
        raise ReviewError(f"session {session.id} is still running: its held-out stage runs once the "
                          "run ends (review it then, or stop it with `adrs-agent watch`)")
    try:
        check_backend_reachable(backend, ray_address, "the ray address")
    except BackendError as e:
        raise ReviewError(f"{e} (or review with --backend local)") from None
    evaluators = make_pool(backend, workers, ray_address)
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as threads:
            done = dict(zip(todo, threads.map(
                lambda c: heldout(session, spec, c, evaluators, jail, data), todo)))
    finally:
        evaluators.close()
    notes = NotesQueue(session.repo)  # one writer: concurrent `git notes add` drops notes
    for commit, result in done.items():
        note = read_note(session.repo, commit) or {}
        note["test"] = result.to_dict()
        notes.put(commit, note)
        cand = by_commit[commit]
        session.emit(CandidateTested(commit=commit, parent=cand.parent, episode=cand.episode, stage=spec.test_stage,
                                     score=result.score if result.valid else None, valid=result.valid))
    notes.flush()
    session.close()
    return results | done


def interval(candidate: dict[str, float], baseline: dict[str, float], sign: float,
             seed: int = 0) -> Interval | None:
    """The mean paired gain over the instances both report, with a 95% bootstrap interval."""
    names = sorted(set(candidate) & set(baseline))
    if not names:
        return None
    gains = np.array([sign * (candidate[n] - baseline[n]) for n in names])
    rng = np.random.default_rng(seed)
    means = gains[rng.integers(0, len(gains), size=(BOOTSTRAP, len(gains)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    eps = 1e-12 * max(1.0, float(np.abs(gains).max()))
    return Interval(float(gains.mean()), float(low), float(high), int((gains > eps).sum()),
                    int((gains < -eps).sum()), int((np.abs(gains) <= eps).sum()), len(names))


# -- flags and taxonomy ------------------------------------------------------------------------------
def flags(row: Row, f: Facts, by_commit: dict[str, Scored], session: Session, run_gain: float) -> list[str]:
    """What deserves a human look; `run_gain` is the best candidate's gain over the baseline."""
    found = []
    if row.gain is not None and row.gain > 0 and row.test_gain is not None and (
            row.test_gain < 0 or row.test_gain < OVERFIT_RATIO * row.gain):
        found.append(f"overfitting: held-out gain {row.test_gain:+.4g} against {row.gain:+.4g} on "
                     f"{f.stages[-1]}")
    if row.interval and row.interval.n and row.interval.won < FRAGILE_SHARE * row.interval.n:
        found.append(f"fragile: wins on {row.interval.won} of {row.interval.n} held-out instances")
    parent = by_commit.get(row.parent or "")
    if parent and parent.score is not None and row.score is not None and run_gain > 0:
        step = f.sign * (row.score - parent.score)
        if step >= JUMP_SHARE * run_gain:
            diff = git.git(["diff", "--no-color", "-U0", parent.commit, row.commit, "--"], cwd=session.repo,
                           check=False)
            changed = [line for line in diff.splitlines()
                       if line[:1] in "+-" and not line.startswith(("+++", "---"))]
            touching = sorted({m.group(1) for line in changed for m in [RESULT_TOUCHING.search(line)] if m})
            if len(changed) <= TINY_DIFF_LINES:
                found.append(f"suspicious: a jump of {step:+.4g} from {len(changed)} changed line(s); look at it")
            elif touching:
                found.append(f"suspicious: a jump of {step:+.4g} from a diff that uses {', '.join(touching)}; "
                             "look at how it produces its result")
    return found


def cause(c: Scored) -> str:
    text = " ".join(f"{s.get('error', '')} {s.get('feedback', '')}" for s in c.stages)
    return next((name for name, pattern in CAUSES.items() if pattern.search(text)), "other")


def taxonomy(f: Facts) -> Taxonomy:
    cands = [c for c in f.scored if c.commit != f.baseline]
    n = len(cands)
    invalid: dict[str, float] = {}
    for c in cands:
        if not c.valid:
            invalid[cause(c)] = invalid.get(cause(c), 0) + 1 / n
    keys = {c.key for c in f.scored if c.commit == f.baseline and c.key}
    dups = 0
    for c in cands:
        dups += bool(c.key) and c.key in keys
        keys.add(c.key)
    best, run, longest, improvements = None, 0, 0, 0
    for c in f.scored:
        if c.valid and c.score is not None and (best is None or f.sign * (c.score - best) > 0):
            improvements += best is not None
            best, run = c.score, 0
        elif c.commit != f.baseline:
            run += 1
            longest = max(longest, run)
    parent_of = {c.commit: c.parent for c in f.scored}
    roots: dict[str, int] = {}
    for c in cands:
        node = c.commit
        while parent_of.get(node) not in (None, f.baseline):
            node = parent_of[node]
        roots[node] = roots.get(node, 0) + 1
    root = max(roots, key=roots.get) if roots else None
    return Taxonomy(n, {k: round(v, 4) for k, v in sorted(invalid.items())}, round(dups / n, 4) if n else 0.0,
                    longest, round(roots[root] / n, 4) if root else 0.0, root, f.cost_usd, improvements,
                    f.cost_usd / improvements if improvements else None)


# -- the review ----------------------------------------------------------------------------------------
def row(rank: int, c: Scored, base: Scored, f: Facts, test: StageResult | None,
        base_test: StageResult | None) -> Row:
    r = Row(rank, c.commit, c.parent, c.episode, c.model, c.message,
            {s["stage"]: (s.get("score") if s.get("valid") else None) for s in c.stages}, c.score,
            metrics=c.metrics)
    if test is not None:
        r.test = test.score if test.valid else None
        r.test_metrics = dict(test.metrics)
    if c.score is not None and base.score is not None:
        r.gain = f.sign * (c.score - base.score)
    if r.test is not None and base_test is not None and base_test.valid and base_test.score is not None:
        r.test_gain = f.sign * (r.test - base_test.score)
        if rank:
            r.interval = interval(test.instances, base_test.instances, f.sign)
    return r


def review(session: Session, *, top: int = 10, workers: int = 2, include: tuple[str, ...] = (),
           jail: JailConfig | None = None, data: Path | None = None, backend: str | None = None,
           ray_address: str | None = None) -> Review:
    """Rank, test on the held-out stage (once; cached in the notes), pair, flag and count.
    The held-out evaluations run on `backend` (default: the run's, at its ray_address)."""
    f = facts(session)
    by_commit = {c.commit: c for c in f.scored}
    if f.baseline not in by_commit:
        raise ReviewError(f"session {session.id} never scored its baseline: nothing to compare with")
    base = by_commit[f.baseline]
    order = ranked(f)
    chosen = order[:top] + [by_commit[c] for c in include if c in by_commit and by_commit[c] not in order[:top]]
    tests: dict[str, StageResult] = {}
    _, spec = evaluator_of(session, f.task_dir)
    if spec.test_stage:
        cfg, _ = session.read_config()
        jail = jail or spec.jail(cfg.sandbox if cfg.sandbox != "auto" else None)
        data = data or (Path(cfg.data_dir) if cfg.data_dir else None)
        if backend is None:
            backend, ray_address = cfg.backend, ray_address or cfg.ray_address
        tests = held_out(session, spec, [base, *chosen], jail, data, workers,
                         backend, ray_address)
    base_test = tests.get(base.commit)
    base_row = row(0, base, base, f, base_test, base_test)
    rows = []
    run_gain = f.sign * (order[0].score - base.score) if order and base.score is not None else 0.0
    for c in chosen:
        rank = order.index(c) + 1 if c in order else 0
        r = row(rank, c, base, f, tests.get(c.commit), base_test)
        r.flags = flags(r, f, by_commit, session, run_gain)
        rows.append(r)
    best, series = None, []
    for i, c in enumerate(f.scored):
        if c.valid and c.score is not None and (best is None or f.sign * (c.score - best) > 0):
            best = c.score
        series.append((i, c.score, best))
    return Review(session.id, f.task, f.direction, f.stages[-1] if f.stages else "", spec.test_stage,
                  base_row, rows, taxonomy(f), bool(base_test and base_test.instances), series)
