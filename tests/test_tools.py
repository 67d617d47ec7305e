"""The agent's tools on real files in a temporary worktree."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import tools
from tests.fixtures.workspace import RecordingWorkspace
from tools.base import ToolContext, ToolResult
from tools.commit import commit
from tools.edit import edit
from tools.finish import finish
from tools.list_files import list_files
from tools.read_file import read_file
from tools.read_log import read_log
from tools.run import run
from tools.run_evaluator import run_evaluator
from tools.search import search
from tools.write_file import write_file


def make_ctx(tmp_path: Path, **kw) -> ToolContext:
    wt = tmp_path / "wt"
    (wt / "pkg" / "sub").mkdir(parents=True)
    (wt / ".git").write_text("gitdir: elsewhere\n")
    (wt / "pkg" / "solver.py").write_text(
        "def solve(items):\n    total = 0\n    for x in items:\n        total += x\n    return total\n"
    )
    (wt / "pkg" / "sub" / "util.py").write_text("def helper():\n    return 1\n")
    (wt / "README.md").write_text("# Demo\nsolve things\n")
    (wt / "data.bin").write_bytes(b"\x00\x01solve\x02")
    defaults = dict(
        worktree=wt,
        editable=["pkg/**/*.py"],
        stages=["quick", "full"],
        log_dir=tmp_path / "logs",
        workspace=RecordingWorkspace(),
    )
    defaults.update(kw)
    return ToolContext(**defaults)


@pytest.fixture
def ctx(tmp_path):
    return make_ctx(tmp_path)


# --- list_files -------------------------------------------------------------------------

def test_list_files_marks_editable_and_skips_git(ctx):
    r = list_files(ctx)
    assert not r.is_error
    lines = r.text.splitlines()
    assert lines[0] == "4 files (2 editable) under ."
    assert lines[1:] == [
        "README.md",
        "data.bin",
        "pkg/solver.py  [editable]",
        "pkg/sub/util.py  [editable]",
    ]


def test_list_files_path_and_pattern(ctx):
    r = list_files(ctx, "pkg", "*.py")
    assert r.text.splitlines()[0] == "2 files (2 editable) under pkg"
    r = list_files(ctx, ".", "*.md")
    assert r.text.splitlines() == ["1 files (0 editable) under .", "README.md"]


def test_list_files_empty_missing_and_escape(ctx):
    assert list_files(ctx, ".", "*.rs").text == "no files matching '*.rs' under ."
    r = list_files(ctx, "nope")
    assert r.is_error and "does not exist" in r.text
    r = list_files(ctx, "../")
    assert r.is_error and "outside" in r.text


def test_list_files_caps_long_listings(ctx):
    many = ctx.worktree / "many"
    many.mkdir()
    for i in range(520):
        (many / f"f{i:04}.txt").write_text("x")
    lines = list_files(ctx, "many").text.splitlines()
    assert lines[0] == "520 files (0 editable) under many"
    assert len(lines) == 1 + 500 + 1
    assert lines[-1].startswith("(20 more files not shown")


# --- read_file --------------------------------------------------------------------------

def test_read_file_exact_format(ctx):
    r = read_file(ctx, "pkg/solver.py")
    assert not r.is_error
    assert r.text == (
        "pkg/solver.py: lines 1-5 of 5\n"
        "     1\tdef solve(items):\n"
        "     2\t    total = 0\n"
        "     3\t    for x in items:\n"
        "     4\t        total += x\n"
        "     5\t    return total"
    )


def test_read_file_window_notes_above_and_below(ctx):
    r = read_file(ctx, "pkg/solver.py", start=2, limit=2)
    assert r.text.splitlines() == [
        "pkg/solver.py: lines 2-3 of 5",
        "(1 more lines above)",
        "     2\t    total = 0",
        "     3\t    for x in items:",
        '(2 more lines below; read_file("pkg/solver.py", start=4) to see them)',
    ]


def test_read_file_negative_start_and_crlf(ctx):
    (ctx.worktree / "w.txt").write_bytes(b"a\r\nb\r\nc\r\n")
    r = read_file(ctx, "w.txt", start=-2)
    assert r.text.splitlines() == ["w.txt: lines 2-3 of 3", "(1 more lines above)", "     2\tb", "     3\tc"]
    assert "\r" not in r.text


def test_read_file_errors(ctx):
    (ctx.worktree / "empty.txt").write_text("")
    r = read_file(ctx, "empty.txt")
    assert not r.is_error and "empty" in r.text
    r = read_file(ctx, "pkg/solvr.py")
    assert r.is_error and "does not exist" in r.text and "pkg/solver.py" in r.text
    r = read_file(ctx, "../outside.txt")
    assert r.is_error and "outside" in r.text
    r = read_file(ctx, "/etc/passwd")
    assert r.is_error and "outside" in r.text
    r = read_file(ctx, str(ctx.worktree / "README.md"))  # absolute inside the worktree is fine
    assert not r.is_error and r.text.startswith("README.md: lines 1-2 of 2")
    r = read_file(ctx, "pkg/solver.py", start=9)
    assert r.is_error and "past the end" in r.text
    r = read_file(ctx, "pkg")
    assert r.is_error and "folder" in r.text
    r = read_file(ctx, "data.bin")
    assert r.is_error and "binary" in r.text


# --- search -----------------------------------------------------------------------------

def test_search_literal_and_regex(ctx):
    r = search(ctx, "total")
    assert r.text.splitlines() == [
        "3 matches in 1 files",
        "pkg/solver.py:2: total = 0",
        "pkg/solver.py:4: total += x",
        "pkg/solver.py:5: return total",
    ]
    r = search(ctx, r"def \w+\(", regex=True)
    assert r.text.splitlines()[0] == "2 matches in 2 files"
    r = search(ctx, "(", path="pkg")  # literal: no regex error
    assert r.text.splitlines()[0] == "2 matches in 2 files"
    r = search(ctx, "solve", path="README.md")  # binary data.bin is skipped anyway
    assert r.text.splitlines() == ["1 matches in 1 files", "README.md:2: solve things"]


def test_search_none_bad_regex_and_too_many(ctx):
    r = search(ctx, "zebra")
    assert not r.is_error and r.text == "no matches for 'zebra' under ."
    r = search(ctx, "(unclosed", regex=True)
    assert r.is_error and "invalid regular expression" in r.text and "missing )" in r.text
    (ctx.worktree / "big.txt").write_text("hit\n" * 150)
    r = search(ctx, "hit", path="big.txt")
    lines = r.text.splitlines()
    assert lines[0] == "150 matches in 1 files"
    assert len(lines) == 1 + 100 + 1
    assert "first 100 of 150" in lines[-1] and "narrow" in lines[-1]
    assert search(ctx, "").is_error
    assert search(ctx, "x", path="..").is_error


# --- edit -------------------------------------------------------------------------------

def test_edit_success_shows_numbered_snippet(ctx):
    r = edit(ctx, "pkg/solver.py", "        total += x\n", "        total += 2 * x\n")
    assert not r.is_error, r.text
    assert "total += 2 * x" in (ctx.worktree / "pkg/solver.py").read_text()
    assert r.text.startswith("Edited pkg/solver.py: replaced 1 line(s) with 1 line(s) at line 4.")
    assert "     4\t        total += 2 * x" in r.text
    assert "     1\tdef solve(items):" in r.text and "     5\t    return total" in r.text


def test_edit_not_found_suggests_nearest_lines(ctx):
    before = (ctx.worktree / "pkg/solver.py").read_text()
    r = edit(ctx, "pkg/solver.py", "    total += y\n", "    total -= y\n")
    assert r.is_error and "not found" in r.text
    assert "Did you mean" in r.text and "     4\t        total += x" in r.text
    assert (ctx.worktree / "pkg/solver.py").read_text() == before


def test_edit_ambiguous_names_lines(ctx):
    r = edit(ctx, "pkg/solver.py", "total", "sum_")
    assert r.is_error and "3 times" in r.text and "lines 2, 4, 5" in r.text and "more surrounding" in r.text
    assert "total" in (ctx.worktree / "pkg/solver.py").read_text()


def test_edit_rejects_broken_python(ctx):
    before = (ctx.worktree / "pkg/solver.py").read_text()
    r = edit(ctx, "pkg/solver.py", "    return total\n", "    return (total\n")
    assert r.is_error and "not applied" in r.text and "SyntaxError" in r.text and "line " in r.text
    assert (ctx.worktree / "pkg/solver.py").read_text() == before


def test_edit_other_errors(ctx):
    r = edit(ctx, "README.md", "Demo", "Demo2")
    assert r.is_error and "not editable" in r.text and "pkg/**/*.py" in r.text
    r = edit(ctx, "pkg/missing.py", "a", "b")
    assert r.is_error and "write_file" in r.text
    assert edit(ctx, "pkg/solver.py", "", "x").is_error
    assert edit(ctx, "pkg/solver.py", "total", "total").is_error
    assert edit(ctx, "../pkg/solver.py", "a", "b").is_error


def test_edit_keeps_crlf(ctx):
    p = ctx.worktree / "pkg" / "win.py"
    p.write_bytes(b"a = 1\r\nb = 2\r\n")
    r = edit(ctx, "pkg/win.py", "b = 2", "b = 3")
    assert not r.is_error
    assert p.read_bytes() == b"a = 1\r\nb = 3\r\n"


# --- write_file -------------------------------------------------------------------------

def test_write_file_creates_and_overwrites(ctx):
    r = write_file(ctx, "pkg/new/mod.py", "x = 1\ny = 2\n")
    assert not r.is_error and r.text == "Created pkg/new/mod.py: wrote 2 lines (12 bytes)."
    assert (ctx.worktree / "pkg/new/mod.py").read_text() == "x = 1\ny = 2\n"
    r = write_file(ctx, "pkg/new/mod.py", "x = 3\n")
    assert r.text.startswith("Overwrote pkg/new/mod.py")


def test_write_file_writes_in_place_but_never_outside(ctx, tmp_path):
    """Files are written in place: a shorter content leaves nothing of the longer one; a link
    the agent planted at an editable path to a file outside is refused, by write and edit,
    and the file outside is untouched."""
    target = ctx.worktree / "pkg" / "solver.py"
    assert len(target.read_text()) > 10
    assert not write_file(ctx, "pkg/solver.py", "x = 1\n").is_error
    assert target.read_bytes() == b"x = 1\n"
    outside = tmp_path / "precious.py"
    outside.write_text("keep = 1\n")
    (ctx.worktree / "pkg" / "evil.py").symlink_to(outside)
    r = write_file(ctx, "pkg/evil.py", "x = 666\n")
    assert r.is_error and "outside" in r.text
    r = edit(ctx, "pkg/evil.py", "keep = 1", "keep = 666")
    assert r.is_error and "outside" in r.text
    assert outside.read_text() == "keep = 1\n"


def test_a_pipe_the_agent_planted_never_hangs_a_tool(ctx):
    """A FIFO (which the agent can make with its run command) at an editable path: opening it
    would block the harness until someone opened the other end. Every tool that reads or
    writes files says no, or passes it by, and returns."""
    os.mkfifo(ctx.worktree / "pkg" / "trap.py")
    results: dict = {}
    calls = {"write_file": lambda: write_file(ctx, "pkg/trap.py", "x = 1\n"),
             "edit": lambda: edit(ctx, "pkg/trap.py", "x", "y"),
             "read_file": lambda: read_file(ctx, "pkg/trap.py"),
             "search": lambda: search(ctx, "total"),
             "list_files": lambda: list_files(ctx, "pkg")}

    def run_all():
        for name, fn in calls.items():
            results[name] = fn()

    worker = threading.Thread(target=run_all, daemon=True)
    worker.start()
    worker.join(60)  # a guard against a hang, not a timing figure
    assert not worker.is_alive(), f"a tool blocked on the pipe after {list(results)}"
    for name in ("write_file", "edit", "read_file"):
        assert results[name].is_error and "not a regular file" in results[name].text, name
    assert "pkg/solver.py" in results["search"].text and "trap" not in results["search"].text
    assert not results["list_files"].is_error


def test_write_file_errors(ctx):
    r = write_file(ctx, "pkg/bad.py", "def f(:\n")
    assert r.is_error and "SyntaxError" in r.text and "line 1" in r.text
    assert not (ctx.worktree / "pkg/bad.py").exists()
    r = write_file(ctx, "notes.txt", "hi")
    assert r.is_error and "not editable" in r.text
    r = write_file(ctx, "../evil.py", "x = 1")
    assert r.is_error and "outside" in r.text


# --- run_evaluator, run, commit, finish -------------------------------------------------

def test_run_evaluator(ctx):
    assert run_evaluator(ctx).text == "evaluated default"
    assert run_evaluator(ctx, "full").text == "evaluated full"
    r = run_evaluator(ctx, "slow")
    assert r.is_error and "quick, full" in r.text
    assert ctx.workspace.calls == [("evaluate", ""), ("evaluate", "full")]


def test_run_requires_permission(tmp_path):
    ctx = make_ctx(tmp_path)
    r = run(ctx, "ls")
    assert r.is_error and r.text.startswith("the task does not allow shell commands")
    ctx.workspace.can_run = True
    assert run(ctx, "ls", 5).text == "ran 'ls' within 5s"
    assert run(ctx, "  ").is_error
    assert run(ctx, "ls", 0).is_error


def test_commit(ctx):
    assert commit(ctx, "faster loop").text == "committed: faster loop"
    r = commit(ctx, "  ")
    assert r.is_error and "empty" in r.text
    assert ctx.workspace.calls == [("commit", "faster loop")]


def test_finish(ctx):
    r = finish(ctx, "done it")
    assert r.text == "episode finished"
    assert ctx.finished and ctx.summary == "done it"


# --- read_log ---------------------------------------------------------------------------

def write_log(ctx, rel, text, age):
    p = ctx.log_dir / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    t = time.time() - age
    os.utime(p, (t, t))


def test_read_log_list_and_read(ctx):
    assert read_log(ctx).text.startswith("no logs yet")
    write_log(ctx, "abc123/quick.log", "old quick\n", age=100)
    write_log(ctx, "def456/quick.log", "new quick\nline 2\nline 3\n", age=10)
    write_log(ctx, "def456/full.log", "full\n", age=50)
    lines = read_log(ctx).text.splitlines()
    assert lines[0] == "3 logs, newest first:"
    assert [line.split("  ")[0] for line in lines[1:]] == ["def456/quick.log", "def456/full.log", "abc123/quick.log"]
    r = read_log(ctx, "quick", limit=2)
    assert r.text.splitlines() == [
        "def456/quick.log: lines 1-2 of 3",
        "     1\tnew quick",
        "     2\tline 2",
        '(1 more lines below; read_log("def456/quick.log", start=3) to see them)',
    ]
    assert read_log(ctx, "abc123/quick.log").text.splitlines()[1] == "     1\told quick"
    assert read_log(ctx, "full.log").text.startswith("def456/full.log: lines 1-1 of 1")


def test_read_log_errors(ctx):
    r = read_log(ctx, "quick")
    assert r.is_error and "no logs yet" in r.text
    write_log(ctx, "r1/quick.log", "x\n", age=1)
    r = read_log(ctx, "slow")
    assert r.is_error and "r1/quick.log" in r.text
    r = read_log(ctx, "../wt/README.md")
    assert r.is_error and "outside" in r.text


# --- registry ---------------------------------------------------------------------------

def test_registry_order():
    assert list(tools.TOOLS) == [
        "list_files", "read_file", "search", "edit", "write_file",
        "run_evaluator", "read_log", "run", "commit", "finish",
    ]
    assert [s["name"] for s in tools.schemas(["edit", "finish"])] == ["edit", "finish"]


def test_call_runs_tool_and_coerces(ctx):
    r = tools.call(ctx, "read_file", {"path": "pkg/solver.py", "start": "2", "limit": 1.0})
    assert not r.is_error and r.text.startswith("pkg/solver.py: lines 2-2 of 5")
    r = tools.call(ctx, "search", {"pattern": "def", "regex": "true"})
    assert not r.is_error
    ctx.workspace.can_run = True
    ctx.workspace.run_report = lambda command, timeout_s: ToolResult(f"{type(timeout_s).__name__} {timeout_s}")
    assert tools.call(ctx, "run", {"command": "ls", "timeout_s": 3}).text == "float 3.0"
    assert tools.call(ctx, "run", {"command": "ls", "timeout_s": "2.5"}).text == "float 2.5"
    r = tools.call(ctx, "read_file", {"path": "pkg/solver.py", "start": None})  # null means default
    assert not r.is_error


def test_call_validation_errors(ctx):
    r = tools.call(ctx, "delete_everything", {})
    assert r.is_error and "unknown tool" in r.text and "list_files" in r.text
    r = tools.call(ctx, "read_file", {})
    assert r.is_error and "missing required argument(s) for read_file: path" in r.text and '"properties"' in r.text
    r = tools.call(ctx, "read_file", {"path": "a", "lines": 3})
    assert r.is_error and "unknown argument(s) for read_file: lines" in r.text
    r = tools.call(ctx, "read_file", {"path": "a", "start": "two"})
    assert r.is_error and "'start'" in r.text and "integer" in r.text
    r = tools.call(ctx, "read_file", {"path": 3})
    assert r.is_error and "'path'" in r.text and "string" in r.text
    r = tools.call(ctx, "read_file", {"path": "a", "start": True})
    assert r.is_error and "integer" in r.text
    r = tools.call(ctx, "read_file", ["a"])
    assert r.is_error and "JSON object" in r.text


def test_call_clips_long_output(tmp_path):
    ctx = make_ctx(tmp_path, max_output_chars=500)
    (ctx.worktree / "long.txt").write_text("".join(f"line {i}\n" for i in range(1000)))
    r = tools.call(ctx, "read_file", {"path": "long.txt"})
    assert len(r.text) < 700
    assert r.text.startswith("long.txt: lines 1-400 of 1000")
    assert "characters cut" in r.text and "start= and limit=" in r.text
    assert r.text.rstrip().endswith('read_file("long.txt", start=401) to see them)')


def test_call_says_when_output_is_empty(tmp_path):
    ctx = make_ctx(tmp_path, workspace=RecordingWorkspace(evaluate_report=lambda stage: ToolResult("")))
    assert tools.call(ctx, "run_evaluator", {}).text == "run_evaluator returned no output."
