"""Helpers shared by the tools: path resolution, numbered windows, syntax checks."""

from __future__ import annotations

import ast
import difflib
import os
import re
import stat
import warnings
from pathlib import Path

from sandbox.git import bad_path, overwrite
from tools.base import ToolContext, ToolResult

SKIP_DIRS = {".git", "__pycache__"}
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class BadPath(Exception):
    """The agent gave a path we refuse; the message says why."""


def resolve(root: Path, path: str, what: str = "the worktree") -> tuple[Path, str]:
    """Resolve `path` (relative to root, or absolute inside it) to (absolute path, posix rel)."""
    if not isinstance(path, str) or not path.strip():
        raise BadPath("the path is empty; give a path relative to the worktree root, e.g. 'src/main.py'")
    base = root.resolve()
    target = (base / path.strip()).resolve()
    try:
        rel = target.relative_to(base).as_posix()
    except ValueError:
        raise BadPath(f"{path!r} is outside {what}; use a path relative to its root") from None
    if rel != "." and bad_path(rel):
        raise BadPath(f"{path!r}: {bad_path(rel)}; git data is off limits, use another path")
    try:
        kind = stat.S_IFMT(target.stat().st_mode)  # a stat never blocks; opening a pipe does
    except OSError:
        kind = None  # missing (to be made), or for the tool to say
    if kind not in (None, stat.S_IFREG, stat.S_IFDIR):
        raise BadPath(f"{path!r} is not a regular file or a folder (a pipe, socket or device); "
                      "the tools neither read nor write it")
    return target, rel or "."


def walk_files(root: Path, start: Path) -> list[str]:
    """All regular files under `start` (a file or folder), as sorted posix paths relative to
    root. Symlinks that lead out of root are left out: nothing reads through them; so are
    pipes, sockets and devices."""
    base = root.resolve()
    if start.is_file():
        return [start.relative_to(base).as_posix()]
    found = []
    for folder, dirs, files in os.walk(start):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in files:
            if name in SKIP_DIRS:  # a worktree's `.git` is a file
                continue
            path = Path(folder) / name
            if path.is_symlink() and not inside(path, base) or not path.is_file():
                continue  # a link out, or a pipe, socket or device: opening one may block
            found.append(path.relative_to(base).as_posix())
    return sorted(found)


def inside(path: Path, base: Path) -> bool:
    """Whether path, with every symlink followed, is under base (itself resolved)."""
    try:
        path.resolve().relative_to(base)
    except (ValueError, OSError, RuntimeError):  # outside, unreadable, or a symlink loop
        return False
    return True


def split_lines(text: str) -> list[str]:
    """Lines without their line breaks, numbered the way editors and `ast` number them."""
    if not text:
        return []
    lines = _LINE_BREAK.split(text)
    if lines[-1] == "":
        lines.pop()
    return lines


def number(lines: list[str], first: int) -> str:
    """`lines` numbered from `first`, one per line, as `{i:>6}\\t{line}`."""
    return "\n".join(f"{i:>6}\t{line}" for i, line in enumerate(lines, start=first))


def window(label: str, lines: list[str], start: int, limit: int, more_call: str) -> ToolResult:
    """A numbered window of `lines`: header, lines-above note, lines, lines-below note.

    `more_call` is a format string with `{start}` telling how to read on, e.g.
    `read_file("a.py", start={start})`. A negative start counts from the end.
    """
    total = len(lines)
    if total == 0:
        return ToolResult(f"{label}: the file is empty (0 lines)")
    limit = max(1, limit)
    if start < 0:
        start = max(1, total + start + 1)
    start = max(1, start)
    if start > total:
        return ToolResult(
            f"{label} has {total} lines; start={start} is past the end. "
            f"Use a start between 1 and {total}.",
            is_error=True,
        )
    end = min(total, start + limit - 1)
    out = [f"{label}: lines {start}-{end} of {total}"]
    if start > 1:
        out.append(f"({start - 1} more lines above)")
    out.append(number(lines[start - 1 : end], start))
    if end < total:
        out.append(f"({total - end} more lines below; {more_call.format(start=end + 1)} to see them)")
    return ToolResult("\n".join(out))


def read_text(path: Path) -> str:
    """File text with its line breaks untouched; raises UnicodeDecodeError for non-UTF-8."""
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def write_text(path: Path, text: str) -> int:
    """Write text with its line breaks untouched; returns the number of bytes written."""
    data = text.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    overwrite(path, data)
    return len(data)


def looks_binary(path: Path) -> bool:
    with open(path, "rb") as f:
        return b"\0" in f.read(8192)


def python_syntax_error(rel: str, text: str) -> str | None:
    """None if `text` parses as Python (or rel is not a .py file), else a message for the model."""
    if not rel.endswith(".py"):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text, filename=rel)
    except SyntaxError as e:
        where = f"line {e.lineno}" + (f", column {e.offset}" if e.offset else "")
        lines = split_lines(text)
        shown = ""
        if e.lineno and 1 <= e.lineno <= len(lines):
            lo = max(1, e.lineno - 2)
            shown = "\n" + number(lines[lo - 1 : e.lineno + 1], lo)
        return f"SyntaxError: {e.msg} ({where}){shown}"
    except ValueError as e:  # e.g. source code containing null bytes
        return f"cannot parse as Python: {e}"
    return None


def not_editable(ctx: ToolContext, rel: str) -> ToolResult:
    globs = ", ".join(ctx.editable) or "(none)"
    return ToolResult(
        f"{rel} is not editable in this task. Editable paths match: {globs}. "
        "Use list_files to see which files are marked [editable].",
        is_error=True,
    )


def suggest_paths(ctx: ToolContext, rel: str, n: int = 5) -> str:
    """A 'did you mean' line of the worktree files nearest to `rel`."""
    files = walk_files(ctx.worktree, ctx.worktree.resolve())
    near = difflib.get_close_matches(rel, files, n=n, cutoff=0.4)
    name = rel.rsplit("/", 1)[-1]
    for f in files:
        if f.rsplit("/", 1)[-1] == name and f not in near and len(near) < n + 3:
            near.append(f)
    if not near:
        return "Use list_files to see what exists."
    return "Did you mean: " + ", ".join(near) + "?"
