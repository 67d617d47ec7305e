"""Progress in a plain terminal: a line per scored candidate and a bar, built from events only;
and the `sessions` listing, read from each session's events."""

from __future__ import annotations

import threading
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agent.config import RunConfig
from agent.events import (
    Budget,
    CandidateCommitted,
    CandidateScored,
    CandidateTested,
    Evaluated,
    Evaluators,
    Event,
    SessionFinished,
    SessionResumed,
    SessionStarted,
    Steered,
    ToolCalled,
)
from agent.session import Session
from agent.task import Task
from sandbox.jail import JailConfig


def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.6g}"


class Printer:
    """One line per scored candidate (its score, the change against its parent, the best so
    far, the run's cost) and the candidates bar; everything it shows comes from events."""

    def __init__(self, console: Console, progress: Progress, bar, direction: str):
        self.console, self.progress, self.bar = console, progress, bar
        self.sign = 1.0 if direction == "maximize" else -1.0
        self.scores: dict[str, float | None] = {}
        self.best: float | None = None
        self.committed = 0
        self.cost_usd = 0.0
        self.nodes: dict[str, dict] = {}
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            match event:
                case SessionResumed():
                    self.committed = event.budget_used
                    self.progress.update(self.bar, completed=self.committed,
                                         total=event.budget or self.progress.tasks[0].total)
                case CandidateCommitted():
                    self.committed += 1
                case Budget():
                    self.cost_usd = event.cost_usd
                case CandidateTested():
                    self.console.print(f"  held-out {event.stage}: {event.commit[:10]} "
                                       f"{fmt(event.score)}")
                case CandidateScored():
                    self._scored(event)
                case Steered():
                    self._steered(event)
                case Evaluators():
                    self.nodes = event.nodes  # said once, at the end
                case SessionFinished():
                    for node, st in self.nodes.items():
                        self.console.print(f"evaluations on {node}: {st['evaluations']} in "
                                           f"{st['busy_s']:.1f} s" + (f", {st['lost']} lost" if st.get("lost") else ""))

    def _steered(self, e: Steered) -> None:
        said = {"pause": "paused: no new episode until resumed (space in `adrs-agent watch`)",
                "resume": "resumed", "note": f"note added to later prompts: {e.text!r}",
                "pin": f"pinned {e.commit[:10]} as the parent of later episodes",
                "unpin": "unpinned: the search chooses parents again",
                "stop_episode": f"episode {e.episode} stops after its current turn",
                "budget": f"budget raised by {e.amount}",
                "stop": "stopping: no new episode; running ones end after their turn"}
        if e.command == "budget":
            total = self.progress.tasks[0].total or 0
            self.progress.update(self.bar, total=total + e.amount)
        self.console.print(f"[cyan]researcher[/cyan]: {said.get(e.command, e.command)}")

    def _scored(self, e: CandidateScored) -> None:
        self.scores[e.commit] = e.score if e.valid else None
        if e.valid and e.score is not None and (
                self.best is None or self.sign * (e.score - self.best) > 0):
            self.best = e.score
        parent = self.scores.get(e.parent or "")
        delta = f"{e.score - parent:+.4g}" if e.score is not None and parent is not None else ""
        state = "" if e.valid else " INVALID"
        if e.stopped_at:
            state += f" (stopped at {e.stopped_at})"
        self.progress.update(self.bar, completed=self.committed)
        self.console.print(
            f"{e.commit[:10]}  score {fmt(e.score):>10}{state}  vs parent {delta or 'n/a':>8}  "
            f"best {fmt(self.best)}  episode {e.episode}  {e.candidate.get('model', '')}"
            + (f"  ${self.cost_usd:.4f}" if self.cost_usd else ""))


def drive(session: Session, task: Task, cfg: RunConfig, resume: bool, jail: JailConfig,
          console: Console) -> None:
    """Run (or resume) the session with progress lines; then say how it ended. A missing API
    key (ModelAuthError) and an invalid baseline (BaselineInvalid) propagate to the caller."""
    from agent.solve import Solver

    progress = Progress(TextColumn("candidates"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True)
    bar = progress.add_task("candidates", total=cfg.budget)
    solver = Solver(session, task, cfg, listeners=[Printer(console, progress, bar,
                                                           task.evaluator.direction)], jail=jail)
    session.claim()
    try:
        with progress:
            if resume:
                solver.restore()
            else:
                solver.start()
            best = solver.run()
    finally:
        session.close()
    usage = solver.usage
    console.print(f"\nfinished ({solver.stop_reason or 'done'}): {solver.candidates_used} "
                  f"candidates in {solver.episodes_started} episodes, ${usage.cost_usd:.4f} "
                  f"({usage.input_tokens} input, {usage.output_tokens} output tokens)")
    last = task.evaluator.stages[-1]
    base = solver.db.baseline
    if base:
        console.print(f"baseline {base.commit[:10]}: {last} {fmt(base.score)}"
                      f"  test {fmt(base.test_score)}")
    if best:
        console.print(f"best     {best.commit[:10]}: {last} {fmt(best.score)}"
                      f"  test {fmt(best.test_score)}  (episode {best.episode}, {best.model})")
        console.print(f"see: git -C {session.repo} notes --ref adrs show {best.commit[:10]}")


def list_sessions(sessions_dir: Path, console: Console) -> None:
    """A line per session: how many candidates were scored, the best score, whether it ended."""
    found = Session.folders(sessions_dir)
    if not found:
        console.print(f"no sessions under {sessions_dir.resolve()}")
        return
    for path in found:
        s = Session(path)
        scores, finished, sign = [], False, 1.0
        for e in s.events(skip=(ToolCalled, Budget, Evaluated)):
            if isinstance(e, SessionStarted):
                sign = 1.0 if e.direction == "maximize" else -1.0
            elif isinstance(e, CandidateScored):
                scores.append(e.score if e.valid else None)
            finished = finished or isinstance(e, SessionFinished)
        valid = [x for x in scores if x is not None]
        best = max(valid, key=lambda x: sign * x) if valid else None
        cfg, _ = s.read_config()
        where = f"ray {cfg.ray_address or '(local)'}" if cfg.backend == "ray" else "local"
        console.print(f"{s.id}  {len(scores)} scored  best {fmt(best)}  {where}  "
                      f"{'finished' if finished else 'open (resume it)'}")
