"""The orchestrator: budget, workers, parent choice, episodes, scoring, resume.

Every candidate is a commit in the session repo; its evaluation goes to a git note (one
writer) and to events.jsonl. `Solver.restore()` rebuilds all state from those on resume.
"""

from __future__ import annotations

import dataclasses
import random
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from agent import prompts
from agent.config import RunConfig
from agent.episode import Hooks, run_episode
from agent.models import make_model, parse_specs
from agent.models.base import ModelAuthError, Usage
from agent.models import pricing
from agent.models.ensemble import Ensemble
from agent.programs import Candidate, ProgramDB, code_shape
from agent.session import Session, Transcript
from sandbox import git
from sandbox import run as sandbox_run
from sandbox.evaluate import CascadeResult, EvalCache, StageResult, run_cascade, run_stage
from sandbox.jail import Jail, JailConfig, Mount
from tools.base import ToolContext, ToolResult
from agent.task import Task

Listener = Callable[[dict], None]


class BaselineInvalid(RuntimeError):
    """The task's baseline does not pass its own evaluator; the message is its feedback."""


@dataclass
class EpisodeState:
    """What one episode's tools share: its worktree, current head, and the scanner that knows
    the head's files (`scanner.tracked`) and the worktree's."""

    n: int
    island: int
    model: str
    wt: git.Worktree
    head: str
    scanner: git.Scanner
    commits: list[str] = field(default_factory=list)

    @property
    def worktree(self) -> Path:
        return self.wt.path


class Solver:
    def __init__(self, session: Session, task: Task, cfg: RunConfig,
                 listeners: list[Listener] | None = None, jail: JailConfig | None = None):
        self.session, self.task, self.cfg = session, task, cfg
        # the sealed copy made when the session started, not the task folder's
        self.spec = dataclasses.replace(task.evaluator, cwd=session.evaluator)
        self.db = ProgramDB(self.spec.direction, cfg.search.islands, cfg.search.elite_size)
        self.cache = EvalCache()
        self.notes = git.NotesQueue(session.repo)
        self.ensemble = Ensemble(parse_specs(cfg.models), bandit=cfg.bandit)
        pricing.load_pricing(cfg.pricing)
        self.usage = Usage()  # the whole run's tokens and dollars
        self.rng = random.Random(cfg.seed)
        self.listeners = listeners or []
        self.data = Path(cfg.data_dir).resolve() if cfg.data_dir else None
        self.lock = threading.Lock()
        self.baseline = ""
        self.candidates_used = 0  # committed candidates, the baseline not counted
        self.episodes_started = 0
        self.since_migration = 0
        self.started = time.monotonic()
        self.stop_reason = ""
        self.stopping = False  # set when running episodes must end after their current turn
        # how candidate code and the agents' commands are jailed (see sandbox.jail)
        self.jail = jail or self.spec.jail(cfg.sandbox if cfg.sandbox != "auto" else None)
        self._diffs: dict[tuple[str, str], str] = {}  # commits never change: diffs neither

    # -- events ---------------------------------------------------------------------------
    def emit(self, type: str, **fields) -> None:
        event = self.session.emit(type, **fields)
        for listener in self.listeners:
            listener(event)

    # -- setup and resume -----------------------------------------------------------------
    def start(self) -> None:
        self.baseline = git.init_repo(self.session.repo, self.task.source, self.task.ref)
        self.emit("session_started", task=self.task.name, task_dir=str(self.task.dir),
                  baseline=self.baseline, models=self.cfg.models, budget=self.cfg.budget,
                  direction=self.spec.direction, stages=self.spec.stages)

    def restore(self) -> None:
        """Rebuild the database, cache and counters from events.jsonl; finish cut work."""
        committed: dict[str, dict] = {}
        scored: dict[str, dict] = {}
        for e in self.session.events(skip=("tool_called",)):
            kind = e["type"]
            if kind == "session_started":
                self.baseline = e["baseline"]
            elif kind == "episode_started":
                self.episodes_started = max(self.episodes_started, e["episode"] + 1)
            elif kind == "candidate_committed":
                committed[e["commit"]] = e
            elif kind == "candidate_scored" and e["stage"] == self.spec.test_stage:
                if e["commit"] in self.db.by_commit:
                    self.db.by_commit[e["commit"]].test_score = e["score"]
            elif kind == "candidate_scored":
                self._add(Candidate.from_dict(e["candidate"]), e["stages"], live=False)
                scored[e["commit"]] = e
            elif kind == "evaluated":
                self.cache.put(e["key"], StageResult.from_dict(e["result"]))
            elif kind == "budget":
                self.usage.add(Usage(**e["turn_usage"]))
            elif kind == "episode_finished":
                self.ensemble.record(e["model"], e["improvement"], e["usage"]["cost_usd"])
        self.candidates_used = len(committed)
        stale = git.clear_stale_locks(self.session.repo)
        if stale:
            self.session.emit("repaired", removed_locks=stale)
        git.git(["worktree", "prune"], cwd=self.session.repo, check=False)
        for path in self.session.worktrees.glob("*"):
            git.remove_worktree(self.session.repo, path)
        noted = git.noted_commits(self.session.repo)
        for commit, e in scored.items():  # scored, but the kill came before its note
            if commit not in noted:
                self.notes.put(commit, {"candidate": e["candidate"], "stages": e["stages"]})
        for commit, e in committed.items():  # committed before the kill, never scored
            if commit not in self.db.by_commit:
                note = git.read_note(self.session.repo, commit) if commit in noted else None
                if note:
                    self._record(Candidate.from_dict(note["candidate"]), note["stages"],
                                 write_note=False)
                else:
                    self._score_commit(commit, e["parent"], e["episode"], e["island"],
                                       e.get("model", ""), e.get("message", ""))
        self.emit("session_resumed", candidates=len(self.db), budget_used=self.candidates_used,
                  episodes=self.episodes_started)

    # -- the run --------------------------------------------------------------------------
    def run(self) -> Candidate | None:
        if self.baseline not in self.db.by_commit:
            self._score_commit(self.baseline, None, -1, 0, "baseline", "baseline")
        base = self.db.by_commit[self.baseline]
        if not base.valid:  # every episode would start from code that does not evaluate
            self.stop_reason = "invalid_baseline"
            self.emit("session_finished", reason=self.stop_reason, best=None, candidates=0,
                      cost_usd=self.usage.cost_usd)
            self.notes.flush()
            raise BaselineInvalid(base.feedback or "(no feedback)")
        with ThreadPoolExecutor(max_workers=self.cfg.workers) as pool:
            running: set = set()
            while True:
                while len(running) < self.cfg.workers and self._may_start():
                    n = self.episodes_started
                    self.episodes_started += 1
                    running.add(pool.submit(self.episode, n))
                if not running:
                    break
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        future.result()  # a harness bug surfaces here
                    except ModelAuthError as e:
                        self.stopping, self.stop_reason = True, "auth_error"
                        self.emit("error", kind="auth", message=str(e))
                        wait(running)
                        self.notes.flush()
                        self.emit("session_finished", reason=self.stop_reason, best=None,
                                  candidates=self.candidates_used, cost_usd=self.usage.cost_usd)
                        raise
        best = self.db.best()
        if self.cfg.test_at_end:
            self.test(best)
        self.emit("session_finished", reason=self.stop_reason, best=best.commit if best else None,
                  best_score=best.score if best else None, candidates=self.candidates_used,
                  episodes=self.episodes_started, cost_usd=self.usage.cost_usd)
        self.notes.flush()
        self.save_totals()
        return best

    def _may_start(self) -> bool:
        reasons = [
            (self.candidates_used >= self.cfg.budget, "budget"),
            (self.episodes_started >= self.cfg.episode_cap, "max_episodes"),
            (time.monotonic() - self.started > self.cfg.wall_s, "wall_time"),
            (bool(self.cfg.max_cost_usd) and self.usage.cost_usd >= self.cfg.max_cost_usd,
             "max_cost"),
            (self.stopping, self.stop_reason or "stopped"),
        ]
        for hit, reason in reasons:
            if hit:
                self.stop_reason = self.stop_reason or reason
                return False
        return True

    def test(self, best: Candidate | None) -> None:
        """The held-out stage, for the best candidate and the baseline only."""
        if not self.spec.test_stage:
            return
        for cand in {c.commit: c for c in (self.db.baseline, best) if c}.values():
            if cand.test_score is not None:
                continue
            self.notes.flush()  # its note is read and extended below
            path = self.session.worktrees / f"test-{cand.commit[:10]}"
            with git.worktree(self.session.repo, path, cand.commit) as wt:
                log = self.session.heldout_logs / cand.commit[:10] / f"{self.spec.test_stage}.log"
                result = run_stage(self.spec, wt.path, self.spec.test_stage,
                                   python=sys.executable, data=self.data, log_path=log,
                                   jail=self.jail)
            cand.test_score = result.score
            note = git.read_note(self.session.repo, cand.commit) or {}
            note["test"] = result.to_dict()
            self.notes.put(cand.commit, note)
            self.emit("candidate_scored", commit=cand.commit, parent=cand.parent,
                      episode=cand.episode, stage=self.spec.test_stage, score=result.score,
                      valid=result.valid, heldout=True)

    # -- one episode ----------------------------------------------------------------------
    def episode(self, n: int) -> None:
        with self.lock:
            island = n % self.db.n_islands
            parent = self.db.sample_parent(island, self.rng, self.cfg.search.exploit_ratio)
            inspirations = self.db.inspirations(parent, island, self.rng,
                                                self.cfg.search.inspirations)
            failures = self.db.recent_failures(self.cfg.search.failures)
            spec = self.ensemble.choose(self.rng)
        branch = f"adrs/{island}/{n}"
        wt = git.add_worktree(self.session.repo, self.session.worktrees / f"e{n}", branch,
                              parent.commit)
        state = EpisodeState(n, island, spec, wt, parent.commit, git.Scanner(
            wt, git.files_at(self.session.repo, parent.commit)))
        self.emit("episode_started", episode=n, island=island, parent=parent.commit, model=spec,
                  branch=branch)
        transcript = Transcript(self.session.transcript_path(n),
                                {"episode": n, "model": spec, "parent": parent.commit})
        try:
            ctx = self._context(state)
            messages = self._prompt(parent, inspirations, failures)
            model = make_model(spec, self.cfg, n, on_retry=lambda info: self.emit(
                "model_retry", episode=n, **info))
            hooks = Hooks(
                on_tool=lambda call, res: self.emit(
                    "tool_called", episode=n, tool=call.name, is_error=res.is_error,
                    chars=len(res.text)),
                on_turn=lambda turn: self._on_turn(n, spec, turn),
                should_stop=lambda: self.stopping or self._over_cost())
            result = run_episode(
                model, ctx, messages, max_steps=self.cfg.episode.max_steps,
                wall_s=self.cfg.episode.wall_s, context_chars=self.cfg.episode.context_chars,
                transcript=transcript, hooks=hooks)
        finally:
            transcript.close()
            git.remove_worktree(self.session.repo, wt)
            if not state.commits:
                git.git(["branch", "-D", branch], cwd=self.session.repo, check=False)
        improvement = self._improvement(parent, state.commits)
        with self.lock:
            self.ensemble.record(spec, improvement, result.usage.cost_usd)
        if result.error:
            self.emit("error", kind=result.reason, episode=n, message=result.error)
        self.emit("episode_finished", episode=n, model=spec, reason=result.reason,
                  steps=result.steps, commits=state.commits, summary=result.summary[:2000],
                  usage=vars(result.usage), improvement=improvement,
                  cost_usd=self.usage.cost_usd)
        self.save_totals()

    def _on_turn(self, n: int, spec: str, turn) -> None:
        with self.lock:
            self.usage.add(turn.usage)
            total = self.usage.cost_usd
        if turn.usage.cost_usd or turn.usage.input_tokens:
            self.emit("budget", episode=n, model=spec, turn_usage=vars(turn.usage),
                      cost_usd=total)

    def _over_cost(self) -> bool:
        return bool(self.cfg.max_cost_usd) and self.usage.cost_usd >= self.cfg.max_cost_usd

    def _improvement(self, parent: Candidate, commits: list[str]) -> float:
        """How much the episode's best commit beat its parent (0 if it did not)."""
        scores = [self.db.by_commit[c].score for c in commits if c in self.db.by_commit
                  and self.db.by_commit[c].valid and self.db.by_commit[c].score is not None]
        if not scores or parent.score is None:
            return 0.0
        sign = 1.0 if self.spec.direction == "maximize" else -1.0
        return max(0.0, max(sign * (s - parent.score) for s in scores))

    def save_totals(self) -> None:
        with self.lock:
            totals = {**vars(self.usage), "candidates": self.candidates_used,
                      "episodes": self.episodes_started}
            self.session.write_config(self.cfg, self.task.name, totals=totals)

    def _prompt(self, parent: Candidate, inspirations: list[Candidate],
                failures: list[Candidate]) -> list[dict]:
        diffs = {c.commit: self._diff(parent.commit, c.commit) for c in inspirations}
        system = prompts.render("system.j2", editable=self.task.editable,
                                stages=self.spec.stages, direction=self.spec.direction)
        user = prompts.render(
            "episode.j2", task_name=self.task.name, brief=self.task.brief, parent=parent,
            baseline=self.db.baseline, best=self.db.best(), inspirations=inspirations,
            diffs=diffs, failures=failures, budget_left=self.cfg.budget - self.candidates_used)
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _diff(self, a: str, b: str, limit: int = 1500) -> str:
        if (a, b) not in self._diffs:
            self._diffs[(a, b)] = self._diff_text(a, b, limit)
        return self._diffs[(a, b)]

    def _diff_text(self, a: str, b: str, limit: int) -> str:
        out = git.git(["diff", "--no-color", "-U1", a, b, "--"], cwd=self.session.repo,
                      check=False)
        if not out.strip():
            return "(same code as your starting point)"
        cut = f"\n[... {len(out) - limit} more characters of diff]" if len(out) > limit else ""
        return f"```diff\n{out[:limit]}{cut}\n```"

    def _context(self, state: EpisodeState) -> ToolContext:
        run = (lambda command, timeout_s: self._run_command(state, command, timeout_s)) \
            if self.task.allow_run else None
        return ToolContext(
            worktree=state.worktree, editable=self.task.editable, stages=self.spec.stages,
            log_dir=self.session.logs,
            evaluate=_git_guard(lambda stage: self._evaluate_tool(state, stage)),
            commit=_git_guard(lambda message: self._commit_tool(state, message)), run=run,
            max_output_chars=self.cfg.episode.max_output_chars)

    # -- tool callbacks -------------------------------------------------------------------
    def _evaluate_tool(self, state: EpisodeState, stage: str) -> ToolResult:
        stage = stage or self.spec.stages[-1]
        files = state.scanner.scan()
        key = git.content_hash(files, self.task.editable)
        result = self._stage(key, state.worktree, stage, f"e{state.n}-{key[:8]}")
        outside = [p for p in git.changed_paths(state.scanner.tracked, files)
                   if not git.matches(p, self.task.editable)]
        warn = (f"\nwarning: you changed non-editable paths {outside}; a commit will "
                "reject them" if outside else "")
        parent = self.db.by_commit.get(state.head)
        return ToolResult(self._report(result, parent, heading=f"stage {stage}") + warn)

    def _commit_tool(self, state: EpisodeState, message: str) -> ToolResult:
        with self.lock:
            if self.candidates_used >= self.cfg.budget:
                return ToolResult("the run's candidate budget is spent; nothing was committed. "
                                  "Call finish with a summary.", is_error=True)
            self.candidates_used += 1  # reserved now so parallel workers cannot overshoot
        sha = ""
        try:
            files = state.scanner.scan()
            changed = git.changed_paths(state.scanner.tracked, files)
            outside = [p for p in changed if not git.matches(p, self.task.editable)]
            refused = [why for p in changed if p in files for why in
                       (git.bad_path(p), git.escaping_link(state.worktree, p)) if why]
            # the trailer keeps two episodes' identical commits distinct commits
            sha = state.scanner.commit_all(files, f"{message}\n\nadrs-episode: {state.n}") \
                if changed and not outside and not refused else ""
        finally:
            if not sha:
                with self.lock:
                    self.candidates_used -= 1
        if not changed:
            return ToolResult("nothing to commit: the code is the same as your last commit. "
                              "Edit something first.", is_error=True)
        if refused:
            bad = [p for p in changed if p in files and (
                git.bad_path(p) or git.escaping_link(state.worktree, p))]
            git.restore(state.wt, bad, state.head)
            self.emit("candidate_rejected", episode=state.n, paths=bad,
                      reason="paths git refuses or symlinks leaving the worktree")
            return ToolResult(
                "commit rejected: " + "; ".join(refused) + ". Those paths were removed; "
                "commit again without them.", is_error=True)
        if outside:
            git.restore(state.wt, outside, state.head)
            self.emit("candidate_rejected", episode=state.n, paths=outside,
                      reason="touches non-editable paths")
            return ToolResult(
                f"commit rejected: {', '.join(outside)} may not be changed (editable: "
                f"{', '.join(self.task.editable)}). Those paths were restored; your other "
                "changes are still in the worktree: commit again.", is_error=True)
        parent = state.head
        self.emit("candidate_committed", commit=sha, parent=parent, episode=state.n,
                  island=state.island, model=state.model, message=message, files=changed)
        cand = self._score_commit(sha, parent, state.n, state.island, state.model, message,
                                  worktree=state.worktree, files=files)
        state.head = sha
        state.commits.append(sha)
        return ToolResult(f"committed {sha[:10]}\n" + self._report(
            cand, self.db.by_commit.get(parent), heading="candidate"))

    def _run_command(self, state: EpisodeState, command: str, timeout_s: float) -> ToolResult:
        """The agent's shell command, in a jail that sees its worktree (writable, at
        /candidate) and the system, and nothing of the session, evaluator or host."""
        jail = Jail(dataclasses.replace(self.jail, network=False, wall_s=timeout_s),
                    [Mount(str(state.worktree), "/candidate", writable=True)], workdir="/candidate")
        res = sandbox_run.run(["bash", "-c", command], state.worktree, timeout_s=timeout_s,
                              memory_mb=self.spec.memory_mb, network=False, jail=jail)
        out = (res.stdout + ("\n[stderr]\n" + res.stderr if res.stderr else "")).strip()
        status = res.killed_reason or f"exit code {res.returncode}"
        return ToolResult(f"{status}\n{out or '(ran, printed nothing)'}",
                          is_error=not res.ok)

    # -- scoring --------------------------------------------------------------------------
    def _stage(self, key: str, worktree: Path, stage: str, label: str) -> StageResult:
        def compute() -> StageResult:
            return run_stage(self.spec, worktree, stage, python=sys.executable, data=self.data,
                             log_path=self.session.logs / label / f"{stage}.log",
                             jail=self.jail)
        result, hit = self.cache.get_or_run(key, stage, compute)
        if not hit:
            self.emit("evaluated", key=key, stage=stage, score=result.score, valid=result.valid,
                      result=result.to_dict())
        return result

    def _score_commit(self, sha: str, parent: str | None, episode: int, island: int,
                      model: str, message: str, worktree: Path | None = None,
                      files: dict[str, str] | None = None) -> Candidate:
        temp = None
        if worktree is None:
            temp = git.add_detached_worktree(self.session.repo,
                                             self.session.worktrees / f"score-{sha[:10]}", sha)
            worktree = temp.path
        try:
            files = files or git.files_at(self.session.repo, sha)
            key = git.content_hash(files, self.task.editable)
            editable = [worktree / p for p in files
                        if git.matches(p, self.task.editable) and (worktree / p).is_file()]
            code_size = sum(p.stat().st_size for p in editable)
            shape = code_shape([p.read_text(errors="replace") for p in editable
                                if p.suffix == ".py"])
            cascade = run_cascade(self.spec, lambda stage: self._stage(
                key, worktree, stage, sha[:10]))
        finally:
            if temp is not None:
                git.remove_worktree(self.session.repo, temp)
        last = cascade.stages[-1]
        cand = Candidate(
            commit=sha, parent=parent, episode=episode, island=island, score=cascade.score,
            valid=cascade.valid, key=key, stage_reached=last.stage,
            feedback=(last.feedback or last.error)[:4000], metrics=last.metrics, model=model,
            message=message, code_size=code_size, code_shape=shape, t=time.time())
        self._record(cand, [s.to_dict() for s in cascade.stages], cascade=cascade)
        return cand

    def _record(self, cand: Candidate, stages: list[dict], write_note: bool = True,
                cascade: CascadeResult | None = None) -> None:
        if write_note:  # written in the background; resume rewrites any a kill lost
            self.notes.put(cand.commit, {"candidate": cand.to_dict(), "stages": stages})
        self._add(cand, stages)
        self.emit("candidate_scored", commit=cand.commit, parent=cand.parent,
                  episode=cand.episode, stage=cand.stage_reached, score=cand.score,
                  valid=cand.valid, stopped_at=cascade.stopped_at if cascade else None,
                  candidate=cand.to_dict(), stages=stages)

    def _add(self, cand: Candidate, stages: list[dict], live: bool = True) -> None:
        for s in stages:
            self.cache.put(cand.key, StageResult.from_dict(s))
        with self.lock:
            self.db.add(cand, baseline=cand.commit == self.baseline)
            if cand.commit != self.baseline:
                self.since_migration += 1
            if self.since_migration >= self.cfg.search.migration_every:
                self.since_migration = 0
                moves = self.db.migrate()
                if moves and live:
                    self.session.emit("migrated", moves=moves)

    def _report(self, result: StageResult | Candidate, parent: Candidate | None,
                heading: str) -> str:
        best = self.db.best()
        valid = "true" if result.valid else "false"
        lines = [f"{heading}: score {prompts.fmt(result.score)} ({'valid' if result.valid else 'INVALID'})",
                 f"score: {result.score}", f"valid: {valid}", f"direction: {self.spec.direction}"]
        if parent is not None and parent.score is not None and result.score is not None:
            lines.append(f"parent: {parent.score:.6g} (change {result.score - parent.score:+.6g})"
                         f"; best so far: {prompts.fmt(best.score if best else None)}")
        feedback = result.feedback or getattr(result, "error", "")
        if feedback:
            lines += ["feedback:", feedback]
        return "\n".join(lines)


def _git_guard(fn: Callable[[str], ToolResult]) -> Callable[[str], ToolResult]:
    """A git failure inside a tool call (say, the agent removed the worktree's .git) is the
    agent's to hear about, not a crash of the run."""
    def guarded(arg: str) -> ToolResult:
        try:
            return fn(arg)
        except git.GitError as e:
            return ToolResult(f"git failed in your worktree: {e}. Do not touch .git; restore "
                              "your files and try again, or finish.", is_error=True)
    return guarded
