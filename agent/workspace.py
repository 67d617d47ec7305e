"""An episode's workspace: its worktree, and what its tools may do there beyond editing files
(evaluate, commit, run a command); `tools.base.Workspace` is the protocol it fills."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent import prompts, regions
from agent.events import CandidateCommitted, CandidateRejected
from agent.programs import Candidate
from agent.scoring import Scorer
from sandbox import git
from sandbox import run as sandbox_run
from sandbox.evaluate import StageResult
from sandbox.jail import Jail, Mount
from tools.base import ToolContext, ToolResult


class Allowance:
    """The run's candidate budget, shared by parallel episodes: a commit takes one first and
    gives it back if nothing was committed, so that workers cannot overshoot."""

    def __init__(self, budget: int, used: int = 0):
        self.budget, self.used = budget, used
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.used >= self.budget:
                return False
            self.used += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.used -= 1

    @property
    def spent(self) -> bool:
        return self.used >= self.budget


@dataclass
class EpisodeWorkspace:
    """One episode's worktree, its current head, and the scanner that knows the head's files
    (`scanner.tracked`) and the worktree's."""

    n: int
    island: int
    model: str
    wt: git.Worktree
    head: str
    scorer: Scorer
    allowance: Allowance
    can_run: bool  # whether the task allows shell commands
    memory_mb: int
    commits: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    """The task's `[repo] regions`: files where only the EVOLVE-BLOCK text may change."""

    def __post_init__(self) -> None:
        self.scanner = git.Scanner(self.wt, git.files_at(self.scorer.session.repo, self.head))

    @property
    def worktree(self) -> Path:
        return self.wt.path

    @property
    def editable(self) -> list[str]:
        return self.scorer.editable

    def context(self, max_output_chars: int) -> ToolContext:
        """What the episode's tools are handed."""
        return ToolContext(worktree=self.worktree, editable=self.editable,
                           stages=self.scorer.spec.stages, log_dir=self.scorer.session.logs,
                           workspace=self, max_output_chars=max_output_chars)

    # -- the Workspace protocol ---------------------------------------------------------------
    def evaluate(self, stage: str) -> ToolResult:
        return _git_guard(self._evaluate, stage)

    def commit(self, message: str) -> ToolResult:
        return _git_guard(self._commit, message)

    def run(self, command: str, timeout_s: float) -> ToolResult:
        """The agent's shell command, in a jail that sees its worktree (writable, at
        /candidate) and the system, and nothing of the session, evaluator or host."""
        jail = Jail(dataclasses.replace(self.scorer.jail, network=False, wall_s=timeout_s),
                    [Mount(str(self.worktree), "/candidate", writable=True)], workdir="/candidate")
        res = sandbox_run.run(["bash", "-c", command], self.worktree, timeout_s=timeout_s,
                              memory_mb=self.memory_mb, network=False, jail=jail)
        out = (res.stdout + ("\n[stderr]\n" + res.stderr if res.stderr else "")).strip()
        status = res.killed_reason or f"exit code {res.returncode}"
        return ToolResult(f"{status}\n{out or '(ran, printed nothing)'}", is_error=not res.ok)

    # -- behind them --------------------------------------------------------------------------
    def _evaluate(self, stage: str) -> ToolResult:
        stage = stage or self.scorer.spec.stages[-1]
        files = self.scanner.scan()
        key = git.content_hash(files, self.editable)
        result = self.scorer.stage(key, self.worktree, stage, f"e{self.n}-{key[:8]}")
        outside = [p for p in git.changed_paths(self.scanner.tracked, files)
                   if not git.matches(p, self.editable)]
        report = self._report(result, self.scorer.db.by_commit.get(self.head), f"stage {stage}")
        if outside:
            report.text += (f"\nwarning: you changed non-editable paths {outside}; a commit will "
                            "reject them")
        broken = self._outside_regions(git.changed_paths(self.scanner.tracked, files), files)
        if broken:
            report.text += ("\nwarning: a commit will reject your changes outside the "
                            "EVOLVE-BLOCK regions: " + "; ".join(broken))
        return report

    def _commit(self, message: str) -> ToolResult:
        if not self.allowance.take():
            return ToolResult("the run's candidate budget is spent; nothing was committed. "
                              "Call finish with a summary.", is_error=True)
        sha = ""
        try:
            files = self.scanner.scan()
            changed = git.changed_paths(self.scanner.tracked, files)
            outside = [p for p in changed if not git.matches(p, self.editable)]
            refused = [p for p in changed if p in files and self._refusal(p)]
            broken = [] if outside or refused else self._outside_regions(changed, files)
            # the trailer keeps two episodes' identical commits distinct commits
            if changed and not outside and not refused and not broken:
                sha = self.scanner.commit_all(files, f"{message}\n\nadrs-episode: {self.n}")
        finally:
            if not sha:
                self.allowance.give_back()
        if not changed:
            return ToolResult("nothing to commit: the code is the same as your last commit. "
                              "Edit something first.", is_error=True)
        if refused:
            reasons = [self._refusal(p) or p for p in refused]
            git.restore(self.wt, refused, self.head)
            self.scorer.emit(CandidateRejected(
                episode=self.n, paths=refused,
                reason="paths git refuses or symlinks leaving the worktree"))
            return ToolResult(
                "commit rejected: " + "; ".join(reasons)
                + ". Those paths were removed; commit again without them.", is_error=True)
        if outside:
            git.restore(self.wt, outside, self.head)
            self.scorer.emit(CandidateRejected(episode=self.n, paths=outside,
                                               reason="touches non-editable paths"))
            return ToolResult(
                f"commit rejected: {', '.join(outside)} may not be changed (editable: "
                f"{', '.join(self.editable)}). Those paths were restored; your other "
                "changes are still in the worktree: commit again.", is_error=True)
        if broken:
            paths = sorted({b.split(":", 1)[0] for b in broken})
            self.scorer.emit(CandidateRejected(
                episode=self.n, paths=paths,
                reason="changes outside the EVOLVE-BLOCK regions: " + "; ".join(broken)))
            return ToolResult(
                "commit rejected: only the text between the EVOLVE-BLOCK-START and "
                "EVOLVE-BLOCK-END lines may change in " + ", ".join(paths) + ", and "
                + "; ".join(broken) + ". Nothing was committed and your files are as you left "
                "them: put those lines back as they were (the markers too), then commit again.",
                is_error=True)
        parent = self.head
        self.scorer.emit(CandidateCommitted(commit=sha, parent=parent, episode=self.n,
                                            island=self.island, model=self.model,
                                            message=message, files=changed))
        cand = self.scorer.score_commit(sha, parent, self.n, self.island, self.model, message,
                                        worktree=self.worktree, files=files)
        self.head = sha
        self.commits.append(sha)
        report = self._report(cand, self.scorer.db.by_commit.get(parent), "candidate")
        report.text = f"committed {sha[:10]}\n{report.text}"
        report.data["commit"] = sha
        return report

    def _outside_regions(self, changed: list[str], files: dict[str, str]) -> list[str]:
        """'path: lines N-M changed' for each change outside the regions of a region file."""
        found = []
        for rel in changed:
            if not self.regions or not git.matches(rel, self.regions):
                continue
            old = self._blob(self.scanner.tracked.get(rel))
            new = (self.worktree / rel).read_text(errors="replace") if rel in files else ""
            found += [f"{rel}: {what}" for what in regions.changes_outside(old, new)]
        return found

    def _blob(self, sha: str | None) -> str:
        if sha is None:
            return ""
        return git.git(["cat-file", "blob", sha], cwd=self.scorer.session.repo)

    def _refusal(self, rel: str) -> str | None:
        return git.bad_path(rel) or git.escaping_link(self.worktree, rel)

    def _report(self, result: StageResult | Candidate, parent: Candidate | None,
                heading: str) -> ToolResult:
        """What the agent reads after an evaluation or a commit, as text and as data."""
        best = self.scorer.db.best()
        direction = self.scorer.spec.direction
        state = "valid" if result.valid else "INVALID"
        lines = [f"{heading}: score {prompts.fmt(result.score)} ({state})",
                 f"score: {result.score}", f"valid: {'true' if result.valid else 'false'}",
                 f"direction: {direction}"]
        data = {"score": result.score, "valid": result.valid, "direction": direction,
                "parent_score": parent.score if parent else None,
                "best_score": best.score if best else None}
        if parent is not None and parent.score is not None and result.score is not None:
            lines.append(f"parent: {parent.score:.6g} (change {result.score - parent.score:+.6g})"
                         f"; best so far: {prompts.fmt(best.score if best else None)}")
        feedback = result.feedback or getattr(result, "error", "")
        if feedback:
            lines += ["feedback:", feedback]
        return ToolResult("\n".join(lines), data=data)


def _git_guard(fn: Callable[[str], ToolResult], arg: str) -> ToolResult:
    """A git failure inside a tool call (say, the agent removed the worktree's .git) is the
    agent's to hear about, not a crash of the run."""
    try:
        return fn(arg)
    except git.GitError as e:
        return ToolResult(f"git failed in your worktree: {e}. Do not touch .git; restore "
                          "your files and try again, or finish.", is_error=True)
