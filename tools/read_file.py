"""read_file: a numbered window of a text file."""

from __future__ import annotations

from tools._common import BadPath, looks_binary, read_text, resolve, split_lines, suggest_paths, window
from tools.base import ToolContext, ToolResult


def read_file(ctx: ToolContext, path: str, start: int = 1, limit: int = 400) -> ToolResult:
    """Read a window of a text file, with line numbers.
    The output starts with `PATH: lines A-B of N`; each line is shown as its number, a tab,
    and the text. When more lines follow, the last line says how to read on.

    Args:
        path: File path relative to the repository root.
        start: First line to show (1-based); a negative number counts from the end, so -50 shows the last 50 lines.
        limit: Maximum number of lines to show.
    """
    try:
        target, rel = resolve(ctx.worktree, path)
    except BadPath as e:
        return ToolResult(str(e), is_error=True)
    if target.is_dir():
        return ToolResult(f"{rel} is a folder, not a file; use list_files({rel!r}) to see its files.", is_error=True)
    if not target.is_file():
        return ToolResult(f"{rel} does not exist. {suggest_paths(ctx, rel)}", is_error=True)
    if looks_binary(target):
        return ToolResult(f"{rel} is a binary file; read_file shows text files only.", is_error=True)
    try:
        text = read_text(target)
    except UnicodeDecodeError as e:
        return ToolResult(f"{rel} is not UTF-8 text ({e.reason} at byte {e.start}).", is_error=True)
    result = window(rel, split_lines(text), start, limit, f'read_file("{rel}", start={{start}})')
    result.data = {"path": rel, "text": text}
    return result
