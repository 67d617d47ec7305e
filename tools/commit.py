"""commit: commit the worktree and have it scored."""

from __future__ import annotations

from tools.base import ToolContext, ToolResult


def commit(ctx: ToolContext, message: str) -> ToolResult:
    """Commit the current state of the files and have it scored by the evaluator.
    Commit each working improvement; the report says the score and how it compares.

    Args:
        message: Commit message saying what changed and why.
    """
    if not message.strip():
        return ToolResult("the commit message is empty; say what changed and why.", is_error=True)
    return ctx.workspace.commit(message)
