"""What every tool receives (ToolContext) and returns (ToolResult).

Tools are typed functions `def NAME(ctx: ToolContext, arg: T, ...) -> ToolResult` with a
docstring whose first paragraph describes the tool and whose `Args:` section describes each
argument; the registry builds their JSON schemas from that. Mistakes the agent made come
back as `ToolResult(text, is_error=True)` saying what to do next; only harness bugs raise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sandbox.git import matches


@dataclass
class ToolResult:
    text: str
    is_error: bool = False
    malformed: bool = False  # the call itself was wrong (unknown tool, bad arguments)
    data: dict[str, Any] = field(default_factory=dict)
    """Structured facts behind the text (a score, a listing) for the built-in models to read;
    providers send only the text."""


class Workspace(Protocol):
    """What an episode's tools may do beyond its files: supplied by the orchestrator (agent/),
    so that tools stay below it."""

    can_run: bool
    """Whether the task allows shell commands."""

    def evaluate(self, stage: str) -> ToolResult:
        """Run the evaluator on the worktree as it is (stage "" is the default one)."""

    def commit(self, message: str) -> ToolResult:
        """Commit the worktree, score the commit, report it."""

    def run(self, command: str, timeout_s: float) -> ToolResult:
        """Run a shell command in the jail that sees only the worktree."""


@dataclass
class ToolContext:
    """The episode's view of the world, handed to each tool call."""

    worktree: Path
    editable: list[str]
    stages: list[str]
    log_dir: Path
    workspace: Workspace
    finished: bool = False
    summary: str = ""
    max_output_chars: int = 12000

    def is_editable(self, rel: str) -> bool:
        """Whether a worktree-relative path matches an editable glob (`**/` also matches no
        folder, `*` stays within one)."""
        return matches(rel, self.editable)


def clip(text: str, limit: int, how_to_see_more: str = "") -> str:
    """Keep the head and tail of long text and say how much was cut in between."""
    if len(text) <= limit:
        return text
    head = text[: limit * 2 // 3]
    tail = text[-(limit // 3):]
    cut = len(text) - len(head) - len(tail)
    hint = f" {how_to_see_more}" if how_to_see_more else ""
    return f"{head}\n[... {cut} characters cut ...{hint}]\n{tail}"
