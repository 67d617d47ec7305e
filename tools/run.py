"""run: a shell command in the task's sandbox, where the task allows it."""

from __future__ import annotations

from tools.base import ToolContext, ToolResult


def run(ctx: ToolContext, command: str, timeout_s: float = 60) -> ToolResult:
    """Run a shell command in a sandbox and report its exit status and output. It runs in the
    repository root (writable) with the system's programs and Python, a private /tmp, no
    network and no git history. Only some tasks allow shell commands.

    Args:
        command: The shell command line to run, from the repository root.
        timeout_s: Seconds after which the command is stopped.
    """
    if not ctx.workspace.can_run:
        return ToolResult("the task does not allow shell commands; use the other tools instead.", is_error=True)
    if not command.strip():
        return ToolResult("the command is empty; give a shell command line to run.", is_error=True)
    if timeout_s <= 0:
        return ToolResult(f"timeout_s must be positive, got {timeout_s}.", is_error=True)
    return ctx.workspace.run(command, timeout_s)
