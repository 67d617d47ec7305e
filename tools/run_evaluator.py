"""run_evaluator: evaluate the worktree as it is now."""

from __future__ import annotations

from tools.base import ToolContext, ToolResult


def run_evaluator(ctx: ToolContext, stage: str = "") -> ToolResult:
    """Run the task's evaluator on the current state of the files and report the result.
    Nothing is committed; use this to check a change before you commit it. Full logs can
    then be read with read_log.

    Args:
        stage: Evaluation stage to run; leave empty for the task's default stage.
    """
    if stage and stage not in ctx.stages:
        known = ", ".join(ctx.stages) or "(none)"
        return ToolResult(
            f"unknown stage {stage!r}; the stages are: {known}. Leave stage empty for the default.", is_error=True
        )
    return ctx.workspace.evaluate(stage)
