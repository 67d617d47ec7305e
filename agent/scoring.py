"""Scoring: the cascade of stages over a commit, the evaluation cache, the git note, and the
program database's record of the result. One writer of all four, so that they agree."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from agent.config import SearchConfig
from agent.events import CandidateScored, CandidateTested, Evaluated, Event, Migrated
from agent.programs import Candidate, ProgramDB, code_shape
from agent.session import Session
from sandbox import git
from sandbox.evaluate import EvalCache, EvaluatorSpec, StageResult, run_cascade
from sandbox.jail import JailConfig
from sandbox.notes import NotesQueue, read_note
from sandbox.pool import Evaluations, LocalPool, Priority


def note(cand: Candidate, stages: list[dict]) -> dict:
    """A scored commit's git note (`git notes --ref adrs show COMMIT`)."""
    return {"candidate": cand.to_dict(), "stages": stages}


def heldout(session: Session, spec: EvaluatorSpec, commit: str, pool: Evaluations,
            jail: JailConfig, data: Path | None) -> StageResult:
    """The held-out stage on one commit, in a worktree of its own, on the run's evaluators
    (a Ray cluster's nodes too); its log goes to sessions/<id>/heldout/, which no agent's
    tools can read."""
    with git.worktree(session.repo, session.worktrees / f"test-{commit[:10]}", commit) as wt:
        log = session.heldout_logs / commit[:10] / f"{spec.test_stage}.log"
        return pool.run(spec, wt.path, spec.test_stage, data=data, log_path=log, jail=jail,
                        priority=Priority.COMMIT)


@dataclass
class Scorer:
    """Scores code versions and commits; records each commit once, in the database, the cache,
    its note and a `candidate_scored` event."""

    session: Session
    spec: EvaluatorSpec
    editable: list[str]
    db: ProgramDB
    search: SearchConfig
    jail: JailConfig
    data: Path | None
    lock: threading.Lock
    baseline: str = ""
    pool: Evaluations = field(default_factory=LocalPool)
    """Where evaluations run: this machine's evaluator slots, or a Ray cluster."""
    cache: EvalCache = field(default_factory=EvalCache)
    since_migration: int = 0

    def __post_init__(self) -> None:
        self.notes = NotesQueue(self.session.repo)

    def emit(self, event: Event) -> None:
        self.session.emit(event)

    def stage(self, key: str, worktree: Path, stage: str, label: str,
              priority: Priority = Priority.TOOL) -> StageResult:
        """One stage of one code version (by content key), from the cache when it was run."""
        def compute() -> StageResult:
            return self.pool.run(self.spec, worktree, stage, data=self.data, jail=self.jail,
                                 log_path=self.session.logs / label / f"{stage}.log", priority=priority)
        result, hit = self.cache.get_or_run(key, stage, compute)
        if not hit:
            self.emit(Evaluated(key=key, stage=stage, score=result.score, valid=result.valid,
                                result=result.to_dict()))
        return result

    def score_commit(self, sha: str, parent: str | None, episode: int, island: int, model: str,
                     message: str, worktree: Path | None = None,
                     files: dict[str, str] | None = None) -> Candidate:
        """Run the cascade on a commit (in `worktree` when it is checked out there, else in a
        worktree of its own) and record it."""
        if worktree is None:
            with git.worktree(self.session.repo, self.session.worktrees / f"score-{sha[:10]}",
                              sha) as wt:
                return self.score_commit(sha, parent, episode, island, model, message,
                                         worktree=wt.path, files=files)
        files = files or git.files_at(self.session.repo, sha)
        key = git.content_hash(files, self.editable)
        editable = [worktree / p for p in files
                    if git.matches(p, self.editable) and (worktree / p).is_file()]
        cascade = run_cascade(self.spec, lambda stage: self.stage(key, worktree, stage, sha[:10],
                                                                  Priority.COMMIT))
        last = cascade.stages[-1]
        cand = Candidate(
            commit=sha, parent=parent, episode=episode, island=island, score=cascade.score,
            valid=cascade.valid, key=key, stage_reached=last.stage,
            feedback=(last.feedback or last.error)[:4000], metrics=last.metrics, model=model,
            message=message, code_size=sum(p.stat().st_size for p in editable),
            code_shape=code_shape([p.read_text(errors="replace") for p in editable
                                   if p.suffix == ".py"]), t=time.time())
        self.record(cand, [s.to_dict() for s in cascade.stages], stopped_at=cascade.stopped_at)
        return cand

    def record(self, cand: Candidate, stages: list[dict], write_note: bool = True,
               stopped_at: str | None = None) -> None:
        if write_note:  # written in the background; resume rewrites any a kill lost
            self.notes.put(cand.commit, note(cand, stages))
        self.add(cand, stages)
        self.emit(CandidateScored(commit=cand.commit, parent=cand.parent, episode=cand.episode,
                                  stage=cand.stage_reached, score=cand.score, valid=cand.valid,
                                  stopped_at=stopped_at, candidate=cand.to_dict(), stages=stages))

    def add(self, cand: Candidate, stages: list[dict], live: bool = True) -> None:
        """Into the cache and the database; every `migration_every` candidates, migrate."""
        for s in stages:
            self.cache.put(cand.key, StageResult.from_dict(s))
        with self.lock:
            self.db.add(cand, baseline=cand.commit == self.baseline)
            if cand.commit != self.baseline:
                self.since_migration += 1
            if self.since_migration >= self.search.migration_every:
                self.since_migration = 0
                moves = self.db.migrate()
                if moves and live:
                    self.emit(Migrated(moves=moves))

    def test(self, best: Candidate | None) -> None:
        """The held-out stage, for the best candidate and the baseline only."""
        if not self.spec.test_stage:
            return
        for cand in {c.commit: c for c in (self.db.baseline, best) if c}.values():
            if cand.test_score is not None:
                continue
            self.notes.flush()  # its note is read and extended below
            result = heldout(self.session, self.spec, cand.commit, self.pool, self.jail,
                             self.data)
            cand.test_score = result.score
            extended = read_note(self.session.repo, cand.commit) or {}
            extended["test"] = result.to_dict()
            self.notes.put(cand.commit, extended)
            self.emit(CandidateTested(commit=cand.commit, parent=cand.parent,
                                      episode=cand.episode, stage=self.spec.test_stage,
                                      score=result.score, valid=result.valid))
