"""The orchestrator: start or restore a run, schedule episodes on workers, account for budget,
cost and time, and finish with the held-out test.

Every candidate is a commit in the session repo; scoring it (`agent.scoring`) writes a git
note (one writer) and events; `restore()` rebuilds the state from those (`agent.resume`).
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from agent import prompts
from agent.config import RunConfig
from agent.episode import Hooks, run_episode
from agent.events import (
    Budget,
    EpisodeFinished,
    EpisodeStarted,
    Error,
    Evaluators,
    Event,
    Listener,
    ModelRetry,
    Repaired,
    Retried,
    SessionFinished,
    SessionResumed,
    SessionStarted,
    Steered,
    ToolCalled,
)
from agent.models import make_model, parse_specs, pricing
from agent.models.base import ModelAuthError, Usage
from agent.models.ensemble import Ensemble
from agent.programs import Candidate, ProgramDB
from agent.resume import replay
from agent.scoring import Scorer, note
from agent.session import Session, Transcript
from agent.steering import Steering, receive, steered
from agent.task import Task
from agent.workspace import Allowance, EpisodeWorkspace
from sandbox import git
from sandbox.evaluate import StageResult
from sandbox.jail import JailConfig
from sandbox.notes import noted_commits, read_note
from sandbox.pool import make_pool

POLL_S = 0.2
"""How often the scheduler looks at control.jsonl while episodes run or the run is paused."""
TOTALS_EVERY_S = 1.0
"""session.toml's running totals are rewritten at most this often (and at the end)."""
EVALUATORS_EVERY_S = 10.0
"""The per-node evaluation counts are reported at most this often, when they changed (and at
the end): the watcher shows them live."""


class BaselineInvalid(RuntimeError):
    """The task's baseline does not pass its own evaluator; the message is its feedback."""


class Solver:
    def __init__(self, session: Session, task: Task, cfg: RunConfig,
                 listeners: list[Listener] | None = None, jail: JailConfig | None = None):
        self.session, self.task, self.cfg = session, task, cfg
        session.log.listeners.extend(listeners or [])
        # the sealed copy made when the session started, not the task folder's
        self.spec = dataclasses.replace(task.evaluator, cwd=session.evaluator)
        self.db = ProgramDB(self.spec.direction, cfg.search)
        self.ensemble = Ensemble(parse_specs(cfg.models), bandit=cfg.bandit)
        pricing.load_pricing(cfg.pricing)
        self.usage = Usage()  # the whole run's tokens and dollars
        self.rng = random.Random(cfg.seed)
        self.lock = threading.Lock()
        # how candidate code and the agents' commands are jailed (see sandbox.jail)
        self.scorer = Scorer(session, self.spec, task.editable, self.db, cfg.search,
                             jail or self.spec.jail(cfg.sandbox if cfg.sandbox != "auto" else None),
                             Path(cfg.data_dir).resolve() if cfg.data_dir else None, self.lock,
                             pool=make_pool(cfg.backend, cfg.evaluators, cfg.ray_address))
        if hasattr(self.scorer.pool, "on_retry"):  # the ray backend: an evaluation lost with its node
            self.scorer.pool.on_retry = lambda r: self.emit(Retried(**r.fields()))
        self.allowance = Allowance(cfg.budget)  # committed candidates, the baseline not counted
        self.diffs = prompts.Diffs(session.repo)
        self.worktrees = git.WorktreePool(session.repo, session.worktrees)  # reused by episodes
        self.episodes_started = 0
        self.started = time.monotonic()
        self._totals_at = 0.0
        self._evaluators_said: tuple[float, dict] = (time.monotonic(), {})
        self.stop_reason = ""
        self.stopping = False  # set when running episodes must end after their current turn
        self.steering = Steering()  # the researcher's commands so far (agent/steering.py)

    @property
    def candidates_used(self) -> int:
        return self.allowance.used

    def emit(self, event: Event) -> None:
        self.session.emit(event)

    # -- setup and resume -----------------------------------------------------------------
    def start(self) -> None:
        self.scorer.baseline = git.init_repo(self.session.repo, self.task.source, self.task.ref)
        self.emit(SessionStarted(task=self.task.name, task_dir=str(self.task.dir),
                                 baseline=self.scorer.baseline, models=self.cfg.models,
                                 budget=self.cfg.budget, direction=self.spec.direction,
                                 stages=self.spec.stages))

    def restore(self) -> None:
        """Rebuild the database, cache and counters from the events; finish cut work."""
        state = replay(self.session.events(skip=(ToolCalled,)), noted_commits(self.session.repo))
        self.scorer.baseline, self.episodes_started = state.baseline, state.episodes_started
        self.steering = state.steering
        for e in state.scored:
            self.scorer.add(Candidate.from_dict(e.candidate), e.stages, live=False)
        for commit, score in state.tested.items():
            if commit in self.db.by_commit:
                self.db.by_commit[commit].test_score = score
        for e in state.evaluated:
            self.scorer.cache.put(e.key, StageResult.from_dict(e.result))
        self.usage.add(state.usage)
        for e in state.episodes:
            self.ensemble.record(e.model, e.improvement, e.usage["cost_usd"])
        self.allowance.used = state.committed
        self.allowance.budget = self.cfg.budget + self.steering.extra_budget
        stale = git.repair(self.session.repo, self.session.worktrees)
        if stale:
            self.emit(Repaired(removed_locks=stale))
        for e in state.unnoted:
            self.scorer.notes.put(e.commit, note(Candidate.from_dict(e.candidate), e.stages))
        for e in state.unscored:
            found = read_note(self.session.repo, e.commit)
            if found:
                self.scorer.record(Candidate.from_dict(found["candidate"]), found["stages"],
                                   write_note=False)
            else:
                self.scorer.score_commit(e.commit, e.parent, e.episode, e.island, e.model,
                                         e.message)
        self.emit(SessionResumed(candidates=len(self.db), budget_used=self.candidates_used,
                                 episodes=self.episodes_started, budget=self.allowance.budget))

    # -- the run --------------------------------------------------------------------------
    def run(self) -> Candidate | None:
        baseline = self.scorer.baseline
        if baseline not in self.db.by_commit:
            self.scorer.score_commit(baseline, None, -1, 0, "baseline", "baseline")
        base = self.db.by_commit[baseline]
        if not base.valid:  # every episode would start from code that does not evaluate
            self.stop_reason = "invalid_baseline"
            self._finish(None)
            raise BaselineInvalid(base.feedback or "(no feedback)")
        with ThreadPoolExecutor(max_workers=self.cfg.workers) as pool:
            running: set = set()
            while True:
                self.steer()
                self.report_evaluators()
                while len(running) < self.cfg.workers and self._may_start():
                    self.episodes_started += 1
                    running.add(pool.submit(self.episode, self.episodes_started - 1))
                if not running:
                    if self.stop_reason:
                        break
                    time.sleep(POLL_S)  # paused by the researcher, and nothing runs
                    continue
                done, running = wait(running, timeout=POLL_S, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        future.result()  # a harness bug surfaces here
                    except ModelAuthError as e:
                        self.stopping, self.stop_reason = True, "auth_error"
                        self.emit(Error(kind="auth", message=str(e)))
                        wait(running)
                        self._finish(None)
                        raise
        best = self.db.best()
        if self.cfg.test_at_end:
            self.scorer.test(best)
        self.report_evaluators(final=True)
        self.scorer.pool.close()
        self._finish(best)
        return best

    def _finish(self, best: Candidate | None) -> None:
        self.worktrees.close()
        self.scorer.notes.flush()
        self.save_totals(force=True)
        self.emit(SessionFinished(reason=self.stop_reason, best=best.commit if best else None,
                                  best_score=best.score if best else None,
                                  candidates=self.candidates_used, episodes=self.episodes_started,
                                  cost_usd=self.usage.cost_usd))

    def _may_start(self) -> bool:
        reasons = [
            (self.allowance.spent, "budget"),
            (self.episodes_started >= self.cfg.episode_cap, "max_episodes"),
            (time.monotonic() - self.started > self.cfg.wall_s, "wall_time"),
            (self._over_cost(), "max_cost"),
            (self.stopping, self.stop_reason or "stopped"),
        ]
        for hit, reason in reasons:
            if hit:
                self.stop_reason = self.stop_reason or reason
                return False
        return not self.steering.paused

    def steer(self) -> None:
        """Obey the researcher's new commands in control.jsonl, each recorded as an event."""
        for command, offset in receive(self.session.dir, self.steering.offset):
            if command.command == "pin" and command.commit not in self.db.by_commit:
                self.steering.offset = offset
                self.emit(Error(kind="steering", message=f"pin {command.commit[:12]}: not a "
                                "scored candidate of this session; ignored"))
                continue
            e: Steered = steered(command, offset)
            self.steering.apply(e)
            if e.command == "budget":
                self.allowance.budget += e.amount
            elif e.command == "stop":
                self.stopping, self.stop_reason = True, self.stop_reason or "stopped"
            self.emit(e)

    def report_evaluators(self, final: bool = False) -> None:
        """An `evaluators` event: at the end, and before it every EVALUATORS_EVERY_S at most,
        when the counts changed."""
        at, said = self._evaluators_said
        if not final and time.monotonic() - at < EVALUATORS_EVERY_S:
            return
        nodes = {node: dataclasses.asdict(st) for node, st in self.scorer.pool.stats().items()}
        if final or nodes != said:
            self._evaluators_said = (time.monotonic(), nodes)
            self.emit(Evaluators(nodes=nodes))

    def _over_cost(self) -> bool:
        return bool(self.cfg.max_cost_usd) and self.usage.cost_usd >= self.cfg.max_cost_usd

    # -- one episode ----------------------------------------------------------------------
    def episode(self, n: int) -> None:
        search = self.cfg.search
        with self.lock:
            island = n % self.db.n_islands
            parent = self.db.sample_parent(island, self.rng, search.exploit_ratio)
            if self.steering.pinned in self.db.by_commit:  # the researcher chose it
                parent = self.db.by_commit[self.steering.pinned]
            inspirations = self.db.inspirations(parent, island, self.rng, search.inspirations)
            failures = self.db.recent_failures(search.failures)
            spec = self.ensemble.choose(self.rng)
        branch = f"adrs/{island}/{n}"
        self.emit(EpisodeStarted(episode=n, island=island, parent=parent.commit, model=spec,
                                 branch=branch))
        messages = prompts.episode_messages(
            task_name=self.task.name, brief=self.task.brief, editable=self.task.editable,
            stages=self.spec.stages, direction=self.spec.direction, parent=parent,
            baseline=self.db.baseline, best=self.db.best(), inspirations=inspirations,
            failures=failures, budget_left=self.allowance.budget - self.candidates_used,
            notes=list(self.steering.notes), regions=self.task.regions, diffs=self.diffs)
        with self.worktrees.checkout(parent.commit, branch) as wt:
            space = EpisodeWorkspace(n, island, spec, wt, parent.commit, self.scorer,
                                     self.allowance, self.task.allow_run, self.spec.memory_mb,
                                     regions=self.task.regions)
            ctx = space.context(self.cfg.episode.max_output_chars)
            model = make_model(spec, self.cfg, n, on_retry=lambda info: self.emit(
                ModelRetry(episode=n, **info)))
            hooks = Hooks(
                on_tool=lambda call, res: self.emit(ToolCalled(
                    episode=n, tool=call.name, is_error=res.is_error, chars=len(res.text))),
                on_turn=lambda turn: self._on_turn(n, spec, turn),
                should_stop=lambda: (self.stopping or self._over_cost()
                                     or n in self.steering.stop_episodes))
            transcript = Transcript(self.session.transcript_path(n),
                                    {"episode": n, "model": spec, "parent": parent.commit})
            try:
                limits = self.cfg.episode
                result = run_episode(model, ctx, messages, max_steps=limits.max_steps,
                                     wall_s=limits.wall_s, context_chars=limits.context_chars,
                                     transcript=transcript, hooks=hooks)
            finally:
                transcript.close()
        if not space.commits:
            git.git(["branch", "-D", branch], cwd=self.session.repo, check=False)
        improvement = self.db.improvement(parent, space.commits)
        with self.lock:
            self.ensemble.record(spec, improvement, result.usage.cost_usd)
        if result.error:
            self.emit(Error(kind=result.reason, episode=n, message=result.error))
        self.emit(EpisodeFinished(episode=n, model=spec, reason=result.reason, steps=result.steps,
                                  commits=space.commits, summary=result.summary[:2000],
                                  usage=vars(result.usage), improvement=improvement,
                                  cost_usd=self.usage.cost_usd))
        self.save_totals()

    def _on_turn(self, n: int, spec: str, turn) -> None:
        with self.lock:
            self.usage.add(turn.usage)
            total = self.usage.cost_usd
        if turn.usage.cost_usd or turn.usage.input_tokens:
            self.emit(Budget(episode=n, model=spec, turn_usage=vars(turn.usage), cost_usd=total))

    def save_totals(self, force: bool = False) -> None:
        """Write the running totals to session.toml: at the end (force), else at most every
        TOTALS_EVERY_S (the events hold every figure; this is for a glance at the file)."""
        now = time.monotonic()
        if not force and now - self._totals_at < TOTALS_EVERY_S:
            return
        with self.lock:
            self._totals_at = now
            totals = {**vars(self.usage), "candidates": self.candidates_used,
                      "episodes": self.episodes_started}
            self.session.write_config(self.cfg, self.task.name, totals=totals)
