"""finish: end the episode."""

from __future__ import annotations

from tools.base import ToolContext, ToolResult


def finish(ctx: ToolContext, summary: str) -> ToolResult:
    """End the episode. Call this when you are done or cannot make further progress.

    Args:
        summary: What you tried, what worked, and what you would try next.
    """
    ctx.finished = True
    ctx.summary = summary
    return ToolResult("episode finished")
