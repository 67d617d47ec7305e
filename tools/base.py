"""What every tool receives (ToolContext) and returns (ToolResult).

Tools are typed functions `def NAME(ctx: ToolContext, arg: T, ...) -> ToolResult` with a
docstring whose first paragraph describes the tool and whose `Args:` section describes each
argument; the registry builds their JSON schemas from that. Mistakes the agent made come
back as `ToolResult(text, is_error=True)` saying what to do next; only harness bugs raise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sandbox.git import matches


@dataclass
class ToolResult:
    text: str
    is_error: bool = False
    malformed: bool = False  # the call itself was wrong (unknown tool, bad arguments)


@dataclass
class ToolContext:
    """The episode's view of the world, handed to each tool call.

    The callables are supplied by the orchestrator so that tools stay below `agent`:
    evaluate(stage) -> str     runs the evaluator on the worktree as it is, returns a report
    commit(message) -> str     commits the worktree, scores it, returns a report
    run(command, timeout_s) -> str  runs a shell command in the sandbox, returns a report
    """

    worktree: Path
    editable: list[str]
    stages: list[str]
    log_dir: Path
    evaluate: Callable[[str], ToolResult]
    commit: Callable[[str], ToolResult]
    run: Callable[[str, float], ToolResult] | None = None
    finished: bool = False
    summary: str = ""
    max_output_chars: int = 12000
    notes: dict = field(default_factory=dict)

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
