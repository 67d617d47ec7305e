"""edit: replace one unique occurrence of a string in an editable file."""

from __future__ import annotations

import difflib

from tools._common import (
    BadPath,
    not_editable,
    number,
    python_syntax_error,
    read_text,
    resolve,
    split_lines,
    suggest_paths,
    write_text,
)
from tools.base import ToolContext, ToolResult

CONTEXT = 3


def edit(ctx: ToolContext, path: str, old_str: str, new_str: str) -> ToolResult:
    """Replace an exact, unique piece of text in an editable file with new text.
    old_str must appear exactly once in the file, including whitespace and indentation;
    include a few surrounding lines to make it unique. Python files are syntax-checked
    before writing, and an edit that breaks the syntax is not applied.

    Args:
        path: File path relative to the repository root.
        old_str: The exact text to replace; it must occur exactly once in the file.
        new_str: The text to put in its place.
    """
    try:
        target, rel = resolve(ctx.worktree, path)
    except BadPath as e:
        return ToolResult(str(e), is_error=True)
    if not ctx.is_editable(rel):
        return not_editable(ctx, rel)
    if not target.is_file():
        return ToolResult(
            f"{rel} does not exist, so there is nothing to edit. {suggest_paths(ctx, rel)} "
            "To create a new file use write_file.",
            is_error=True,
        )
    if not old_str:
        return ToolResult(
            "old_str is empty; give the exact text to replace (use write_file to write a whole file).", is_error=True
        )
    if old_str == new_str:
        return ToolResult("old_str and new_str are identical; nothing to change.", is_error=True)
    try:
        text = read_text(target)
    except UnicodeDecodeError as e:
        return ToolResult(f"{rel} is not UTF-8 text ({e.reason}); it cannot be edited here.", is_error=True)

    positions = _find_all(text, old_str)
    if not positions:
        return ToolResult(
            f"old_str was not found in {rel}; nothing was changed.\n{_nearest(text, old_str)}", is_error=True
        )
    if len(positions) > 1:
        at = ", ".join(str(_line_of(text, p)) for p in positions)
        return ToolResult(
            f"old_str occurs {len(positions)} times in {rel} (at lines {at}); nothing was changed. "
            "Include more surrounding lines in old_str so that it matches exactly once.",
            is_error=True,
        )

    pos = positions[0]
    new_text = text[:pos] + new_str + text[pos + len(old_str):]
    error = python_syntax_error(rel, new_text)
    if error:
        return ToolResult(f"the edit was not applied: it would break the syntax of {rel}.\n{error}", is_error=True)
    write_text(target, new_text)

    first = _line_of(new_text, pos)
    old_n, new_n = len(split_lines(old_str)) or 1, len(split_lines(new_str)) or 1
    lines = split_lines(new_text)
    lo = max(1, first - CONTEXT)
    hi = min(len(lines), first + new_n - 1 + CONTEXT)
    snippet = number(lines[lo - 1 : hi], lo) if lines else "(the file is now empty)"
    return ToolResult(
        f"Edited {rel}: replaced {old_n} line(s) with {new_n} line(s) at line {first}. "
        f"Lines {lo}-{hi} now read:\n{snippet}"
    )


def _find_all(text: str, needle: str) -> list[int]:
    found, pos = [], text.find(needle)
    while pos != -1:
        found.append(pos)
        pos = text.find(needle, pos + 1)
    return found


def _line_of(text: str, pos: int) -> int:
    return len(split_lines(text[:pos] + "x"))


def _nearest(text: str, old_str: str) -> str:
    """The file's lines nearest to old_str, numbered, as a 'did you mean' hint."""
    lines = split_lines(text)
    wanted = [line for line in split_lines(old_str) if line.strip()]
    if not lines or not wanted:
        return "Use read_file to see the file's current text."
    stripped = [line.strip() for line in lines]
    probe = wanted[0].strip()
    close = difflib.get_close_matches(probe, stripped, n=3, cutoff=0.5)
    starts: list[int] = []
    for c in close:
        for i, s in enumerate(stripped):
            if s == c and i not in starts:
                starts.append(i)
    if not starts:
        return "No similar lines found; use read_file or search to find the current text."
    span = len(split_lines(old_str))
    shown = [number(lines[i : i + span], i + 1) for i in sorted(starts[:3])]
    return (
        "Did you mean one of these? (copy the text exactly, including indentation)\n"
        + "\n  ...\n".join(shown)
    )
