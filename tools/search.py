"""search: grep over the text files of the worktree."""

from __future__ import annotations

import re

from tools._common import BadPath, looks_binary, resolve, split_lines, walk_files
from tools.base import ToolContext, ToolResult

MAX_MATCHES = 100
MAX_LINE_CHARS = 200
MAX_FILE_BYTES = 2_000_000


def search(ctx: ToolContext, pattern: str, path: str = ".", regex: bool = False) -> ToolResult:
    """Search the text files of the repository for a string or regular expression.
    Prints `K matches in F files`, then one `path:line: text` line per match (at most 100).
    The search is case-sensitive.

    Args:
        pattern: The text to look for (literal unless regex is true).
        path: Folder or file to search, relative to the repository root.
        regex: Treat pattern as a Python regular expression.
    """
    if not pattern:
        return ToolResult("the pattern is empty; give the text to search for.", is_error=True)
    try:
        target, rel = resolve(ctx.worktree, path)
    except BadPath as e:
        return ToolResult(str(e), is_error=True)
    if not target.exists():
        return ToolResult(f"{rel} does not exist. Use list_files to see the repository.", is_error=True)
    try:
        rx = re.compile(pattern if regex else re.escape(pattern))
    except re.error as e:
        return ToolResult(
            f"invalid regular expression {pattern!r}: {e}. Fix it, or pass regex=false to search literally.",
            is_error=True,
        )
    root = ctx.worktree.resolve()
    matches: list[str] = []
    count = files_hit = 0
    for f in walk_files(ctx.worktree, target):
        p = root / f
        if p.stat().st_size > MAX_FILE_BYTES or looks_binary(p):
            continue
        hit = False
        text = p.read_text(encoding="utf-8", errors="replace")
        for i, line in enumerate(split_lines(text), start=1):
            if rx.search(line):
                count += 1
                hit = True
                if len(matches) < MAX_MATCHES:
                    line = line.strip()
                    if len(line) > MAX_LINE_CHARS:
                        line = line[:MAX_LINE_CHARS] + " ..."
                    matches.append(f"{f}:{i}: {line}")
        files_hit += hit
    if not count:
        return ToolResult(f"no matches for {pattern!r} under {rel}")
    out = [f"{count} matches in {files_hit} files"] + matches
    if count > MAX_MATCHES:
        out.append(
            f"(showing the first {MAX_MATCHES} of {count} matches; narrow the search with a "
            "more specific pattern or a path=)"
        )
    return ToolResult("\n".join(out))
