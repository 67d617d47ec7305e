"""read_log: list evaluation logs, or read a numbered window of one."""

from __future__ import annotations

import time
from pathlib import Path

from tools._common import BadPath, read_text, resolve, split_lines, window
from tools.base import ToolContext, ToolResult

MAX_LISTED = 100


def read_log(ctx: ToolContext, name: str = "", start: int = 1, limit: int = 200) -> ToolResult:
    """List the evaluation logs (newest first), or read a numbered window of one log.
    Logs are stored as `<run>/<stage>.log`. Give a log's path as listed, or just a stage
    name to read the newest log of that stage.

    Args:
        name: Log path as listed, or a stage name for its newest log; leave empty to list the logs.
        start: First line to show (1-based); a negative number counts from the end, so -50 shows the last 50 lines.
        limit: Maximum number of lines to show.
    """
    logs = _logs(ctx.log_dir)
    if not name:
        if not logs:
            return ToolResult("no logs yet; run_evaluator or commit writes one per stage.")
        out = [f"{len(logs)} logs, newest first:"]
        for rel, p in logs[:MAX_LISTED]:
            st = p.stat()
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(st.st_mtime))
            out.append(f"{rel}  ({st.st_size} bytes, {stamp})")
        if len(logs) > MAX_LISTED:
            out.append(f"({len(logs) - MAX_LISTED} older logs not shown)")
        return ToolResult("\n".join(out))

    found = _find(ctx.log_dir, logs, name)
    if isinstance(found, ToolResult):
        return found
    rel, path = found
    lines = split_lines(_read_text_lenient(path))
    return window(rel, lines, start, limit, f'read_log("{rel}", start={{start}})')


def _read_text_lenient(path: Path) -> str:
    try:
        return read_text(path)
    except UnicodeDecodeError:
        return path.read_bytes().decode("utf-8", errors="replace")


def _logs(log_dir: Path) -> list[tuple[str, Path]]:
    """(posix path relative to log_dir, path) of every log file, newest first."""
    if not log_dir.is_dir():
        return []
    files = [p for p in log_dir.rglob("*") if p.is_file()]
    files.sort(key=lambda p: (p.stat().st_mtime_ns, p.as_posix()), reverse=True)
    return [(p.relative_to(log_dir).as_posix(), p) for p in files]


def _find(log_dir: Path, logs: list[tuple[str, Path]], name: str) -> tuple[str, Path] | ToolResult:
    try:
        target, rel = resolve(log_dir, name, "the log folder")
    except BadPath as e:
        return ToolResult(str(e), is_error=True)
    if target.is_file():
        return rel, target
    stage = name[:-4] if name.endswith(".log") else name
    for rel, p in logs:  # newest first
        if p.stem == stage:
            return rel, p
    if not logs:
        return ToolResult(f"no log named {name!r}: there are no logs yet; run_evaluator first.", is_error=True)
    listed = ", ".join(r for r, _ in logs[:20])
    more = f" and {len(logs) - 20} more" if len(logs) > 20 else ""
    return ToolResult(
        f"no log named {name!r}. Existing logs (newest first): {listed}{more}. "
        "Call read_log() with no name to list them.",
        is_error=True,
    )
