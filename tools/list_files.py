"""list_files: what is in the worktree, and which files the agent may edit."""

from __future__ import annotations

import fnmatch

from tools._common import BadPath, resolve, walk_files
from tools.base import ToolContext, ToolResult

MAX_LINES = 500


def list_files(ctx: ToolContext, path: str = ".", pattern: str = "*") -> ToolResult:
    """List the files under a folder of the repository, marking the ones you may edit.
    Files you are allowed to change carry the suffix `[editable]`. The `.git` folder and
    `__pycache__` folders are skipped.

    Args:
        path: Folder (or file) relative to the repository root; "." is the root.
        pattern: Glob matched against the file name or its relative path, e.g. "*.py".
    """
    try:
        target, rel = resolve(ctx.worktree, path)
    except BadPath as e:
        return ToolResult(str(e), is_error=True)
    if not target.exists():
        return ToolResult(f"{rel} does not exist. Use list_files('.') to see the repository.", is_error=True)
    pattern = pattern or "*"
    files = [
        f for f in walk_files(ctx.worktree, target)
        if fnmatch.fnmatchcase(f, pattern) or fnmatch.fnmatchcase(f.rsplit("/", 1)[-1], pattern)
    ]
    if not files:
        return ToolResult(f"no files matching {pattern!r} under {rel}")
    editable = [ctx.is_editable(f) for f in files]
    lines = [f"{len(files)} files ({sum(editable)} editable) under {rel}"]
    for f, e in list(zip(files, editable))[:MAX_LINES]:
        lines.append(f + ("  [editable]" if e else ""))
    if len(files) > MAX_LINES:
        lines.append(
            f"({len(files) - MAX_LINES} more files not shown; narrow the listing with path= or pattern=)"
        )
    return ToolResult("\n".join(lines), data={"files": files, "editable": [f for f, e in zip(files, editable) if e]})
