"""write_file: create or overwrite an editable file."""

from __future__ import annotations

from tools._common import BadPath, not_editable, python_syntax_error, resolve, split_lines, write_text
from tools.base import ToolContext, ToolResult


def write_file(ctx: ToolContext, path: str, content: str) -> ToolResult:
    """Create a file, or replace a file's whole content, at an editable path.
    Missing parent folders are created. Python files are syntax-checked first, and content
    that does not parse is not written. Prefer edit for small changes to existing files.

    Args:
        path: File path relative to the repository root.
        content: The complete new content of the file.
    """
    try:
        target, rel = resolve(ctx.worktree, path)
    except BadPath as e:
        return ToolResult(str(e), is_error=True)
    if not ctx.is_editable(rel):
        return not_editable(ctx, rel)
    if target.is_dir():
        return ToolResult(f"{rel} is a folder; give a file path.", is_error=True)
    error = python_syntax_error(rel, content)
    if error:
        return ToolResult(f"{rel} was not written: the content is not valid Python.\n{error}", is_error=True)
    existed = target.exists()
    size = write_text(target, content)
    verb = "Overwrote" if existed else "Created"
    return ToolResult(f"{verb} {rel}: wrote {len(split_lines(content))} lines ({size} bytes).")
