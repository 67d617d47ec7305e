"""TunerModel driven through a tiny real episode loop over a temp folder."""

from __future__ import annotations

import ast
import fnmatch
import math
import re
from pathlib import Path

import pytest

from agent.models.base import Turn
from agent.models.tuner import TunerModel, find_sites, parse_read, parse_report, rebuild_text

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    if not text:
        return []
    lines = _LINE_BREAK.split(text)
    if lines[-1] == "":
        lines.pop()
    return lines


def window(label: str, lines: list[str], start: int, limit: int) -> tuple[str, bool]:
    """The read_file output format: header, lines-above note, numbered lines, lines-below note."""
    total = len(lines)
    if total == 0:
        return f"{label}: the file is empty (0 lines)", False
    if start > total:
        return f"{label} has {total} lines; start={start} is past the end.", True
    start, limit = max(1, start), max(1, limit)
    end = min(total, start + limit - 1)
    out = [f"{label}: lines {start}-{end} of {total}"]
    if start > 1:
        out.append(f"({start - 1} more lines above)")
    out.append("\n".join(f"{i:>6}\t{line}" for i, line in enumerate(lines[start - 1:end], start)))
    if end < total:
        out.append(f'({total - end} more lines below; read_file("{label}", start={end + 1}) to see them)')
    return "\n".join(out), False


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 2 // 3], text[-(limit // 3):]
    return f"{head}\n[... {len(text) - len(head) - len(tail)} characters cut ...]\n{tail}"


class MiniEnv:
    """A worktree folder, the tools the tuner uses, and a scorer that runs the code."""

    def __init__(self, root: Path, files: dict[str, str], editable=("pkg/*.py",),
                 direction: str = "maximize", clip_chars: int | None = None, broken_eval=False,
                 scorer=lambda ns: ns["score"]()):
        self.root = root
        self.scorer = scorer
        self.editable = list(editable)
        self.direction = direction
        self.clip_chars = clip_chars
        self.broken_eval = broken_eval
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8", newline="")
        self.commits: list[tuple[str, float, float | None]] = []  # (message, score, previous best)
        self.committed = {rel: self.text(rel) for rel in files}
        self.best: float | None = None
        self.edits: list[tuple[str, str]] = []
        self.summary: str | None = None

    def text(self, rel: str) -> str:
        with open(self.root / rel, encoding="utf-8", newline="") as f:
            return f.read()

    def score_of(self) -> float | None:
        ns: dict = {}
        try:
            exec(compile(self.text("pkg/policy.py"), "policy.py", "exec"), ns)
            value = float(self.scorer(ns))
        except Exception:
            return None
        return value if math.isfinite(value) else None

    def report(self, score: float | None) -> str:
        if self.broken_eval:
            return "evaluator says: ¯\\_(ツ)_/¯"
        valid = score is not None
        return (f"stage: full\nscore: {score if valid else 'None'}\nvalid: {'true' if valid else 'false'}\n"
                f"direction: {self.direction}\n  stage full: score: 12345 valid: true")

    # -- tools ----------------------------------------------------------------------------

    def list_files(self, path: str = ".", pattern: str = "*"):
        files = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        ed = [any(fnmatch.fnmatchcase(f, g) for g in self.editable) for f in files]
        lines = [f"{len(files)} files ({sum(ed)} editable) under ."]
        lines += [f + ("  [editable]" if e else "") for f, e in zip(files, ed)]
        return "\n".join(lines), False

    def read_file(self, path: str, start: int = 1, limit: int = 400):
        if not (self.root / path).is_file():
            return f"{path} does not exist.", True
        out, err = window(path, split_lines(self.text(path)), start, limit)
        if self.clip_chars:
            out = clip(out, self.clip_chars)
        return out, err

    def edit(self, path: str, old_str: str, new_str: str):
        if not any(fnmatch.fnmatchcase(path, g) for g in self.editable):
            return f"{path} is not editable", True
        text = self.text(path)
        if text.count(old_str) != 1:
            return f"old_str occurs {text.count(old_str)} times in {path}; it must occur once", True
        new = text.replace(old_str, new_str, 1)
        try:
            ast.parse(new)
        except SyntaxError as e:
            return f"SyntaxError: {e}", True
        (self.root / path).write_text(new, encoding="utf-8", newline="")
        self.edits.append((old_str, new_str))
        return f"edited {path}", False

    def run_evaluator(self, stage: str = ""):
        return self.report(self.score_of()), False

    def commit(self, message: str):
        score = self.score_of()
        self.commits.append((message, score, self.best))
        self.best = score
        self.committed = {rel: self.text(rel) for rel in self.committed}
        return f"committed deadbeef: {message}\n" + self.report(score), False

    def finish(self, summary: str):
        self.summary = summary
        return "finished", False


def run_episode(model, env: MiniEnv, hard_cap: int = 1000) -> list[dict]:
    """The episode loop: complete, run each call, append results, until finish."""
    if env.best is None:
        env.best = env.score_of()
    tools = [{"name": n, "description": "", "input_schema": {}} for n in
             ("list_files", "read_file", "edit", "run_evaluator", "commit", "finish")]
    messages: list[dict] = [{"role": "system", "content": "tune"}, {"role": "user", "content": "go"}]
    for _ in range(hard_cap):
        turn = model.complete(messages, tools)
        assert isinstance(turn, Turn)
        assert len(turn.tool_calls) == 1
        assert turn.usage.input_tokens == 0 and turn.usage.cost_usd == 0
        messages.append(turn.as_message())
        done = False
        for call in turn.tool_calls:
            content, err = getattr(env, call.name)(**call.arguments)
            messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name,
                             "content": content, "is_error": err})
            done |= call.name == "finish"
        if done:
            return messages
    raise AssertionError("the model never finished")


POLICY = '''"""A policy with tunable constants — ünïcode in a docstring: ≤ ≥ π."""
import math

A = 3.0
B = 0
LABEL = "x = 1.5"  # a string, not a literal to tune: 2.0


def policy(x):
\t# a tab before this comment, on purpose
    if x > A:
        return x * 0.5 + B
    return x - 1.25


def helper(xs):

    return xs[0] + xs[1:3][0]
'''


def score_of(ns):
    """The objective lives in the evaluator, so the tuner cannot change it."""
    assert ns["policy"](10.0) is not None
    return -(ns["A"] - 7.0) ** 2 - (ns["B"] - 2) ** 2


def test_tuner_improves_over_episodes(tmp_path):
    env = MiniEnv(tmp_path, {"pkg/policy.py": POLICY,
                             "README.md": "not python\n", "pkg/data.json": "{}\n"}, scorer=score_of)
    start = env.score_of()
    scores = [start]
    for ep in range(5):
        model = TunerModel(seed=ep, trials=8, max_commits=3)
        messages = run_episode(model, env)
        assert model.turns <= model.max_turns
        assert env.summary and "tuner" in env.summary
        # the worktree ends at the last committed text: every rejected trial was reverted
        assert env.text("pkg/policy.py") == env.committed["pkg/policy.py"]
        ast.parse(env.text("pkg/policy.py"))
        scores.append(env.score_of())
        # the model only reads editable .py files
        reads = [m for m in messages if m["role"] == "assistant"
                 and m["tool_calls"][0]["name"] == "read_file"]
        assert {m["tool_calls"][0]["arguments"]["path"] for m in reads} == {"pkg/policy.py"}
    assert env.commits, "no improvement was ever committed"
    for message, score, previous in env.commits:
        assert message.startswith("tuner: ")
        assert "(pkg/policy.py:" in message
        assert previous is None or score > previous
    assert all(b >= a for a, b in zip(scores, scores[1:]))
    assert scores[-1] > start
    assert scores[-1] <= 0
    # strings, indices and slices were never touched
    text = env.text("pkg/policy.py")
    assert 'LABEL = "x = 1.5"  # a string, not a literal to tune: 2.0' in text
    assert "return xs[0] + xs[1:3][0]" in text
    assert "import math" in text


def test_tuner_minimize_direction(tmp_path):
    src = "A = 3.0\nB = 0\n\n\ndef score():\n    return (A - 7.0) ** 2 + (B - 2) ** 2\n"
    env = MiniEnv(tmp_path, {"pkg/policy.py": src}, direction="minimize")
    start = env.score_of()
    for ep in range(4):
        run_episode(TunerModel(seed=10 + ep, trials=8), env)
    assert env.commits
    for _, score, previous in env.commits:
        assert previous is None or score < previous
    assert env.score_of() < start


def test_tuner_flips_comparisons(tmp_path):
    src = ("def score():\n"
           "    xs = [0.1, 0.5, 0.9, 0.5]\n"
           "    return sum(1 for x in xs if x > 0.5) + (2 if len(xs) < 4 else 0)\n")
    flips = 0
    for seed in range(6):
        env = MiniEnv(tmp_path / f"s{seed}", {"pkg/policy.py": src})
        run_episode(TunerModel(seed=seed, trials=6), env)
        for old, new in env.edits:
            if old.replace("<", "").replace(">", "").replace("=", "") == \
                    new.replace("<", "").replace(">", "").replace("=", "") and old != new:
                flips += 1
        for _, score, previous in env.commits:
            assert score > previous
    assert flips > 0


def test_tuner_stops_within_turn_cap(tmp_path):
    src = "A = 3.0\n\n\ndef score():\n    return -abs(A - 1000.0)\n"
    env = MiniEnv(tmp_path, {"pkg/policy.py": src})
    model = TunerModel(seed=1, trials=40, max_commits=2)
    run_episode(model, env)
    assert len(env.commits) <= 2
    assert model.turns <= model.max_turns
    # after finishing it asks for nothing more
    assert model.complete([], []).tool_calls == []


def test_tuner_finishes_when_nothing_to_tune(tmp_path):
    env = MiniEnv(tmp_path, {"pkg/notes.txt": "hello\n", "lib/x.py": "A = 1\n"})
    model = TunerModel()
    messages = run_episode(model, env)
    assert "no editable .py files" in env.summary
    assert len([m for m in messages if m["role"] == "assistant"]) == 2

    env2 = MiniEnv(tmp_path / "b", {"pkg/policy.py": "def score():\n    return abs\n"})
    run_episode(TunerModel(), env2)
    assert "no numeric literals" in env2.summary


def test_tuner_finishes_on_unparsable_report(tmp_path):
    env = MiniEnv(tmp_path, {"pkg/policy.py": "A = 1.0\n\ndef score():\n    return A\n"},
                  broken_eval=True)
    run_episode(TunerModel(), env)
    assert "could not be parsed" in env.summary
    assert not env.commits and not env.edits


def test_tuner_reads_clipped_output_in_chunks(tmp_path):
    body = "".join(f"C{i} = {i}.5  # padding padding padding padding\n" for i in range(300))
    src = body + "\n\ndef score():\n    return -(C7 - 20.0) ** 2\n"
    env = MiniEnv(tmp_path, {"pkg/policy.py": src}, clip_chars=3000)
    model = TunerModel(seed=3, trials=3)
    run_episode(model, env)
    assert set(model.files) == {"pkg/policy.py"}
    ast.parse(env.text("pkg/policy.py"))
    assert env.text("pkg/policy.py") == env.committed["pkg/policy.py"]


TRICKY = ("# -*- coding: utf-8 -*-\n"
          "S = 'tab\there'\t# a tab before the comment\n"
          "\n"
          "\t\n"
          "   \n"
          "T = 'ünïcode — ≤ π 🐍'\n"
          "U = 'form\x0cfeed and line\u2028separator'\n"
          "V = 1  # trailing spaces   \n"
          "\n")


def test_rebuild_is_exact():
    lines = split_lines(TRICKY)
    out, _ = window("pkg/t.py", lines, 1, 100000)
    chunk = parse_read(out)
    assert chunk.total == len(lines)
    assert rebuild_text(chunk.lines, chunk.total) == TRICKY
    # read in pieces, with the notes above and below
    got: dict[int, str] = {}
    for start in range(1, len(lines) + 1, 3):
        got.update(parse_read(window("pkg/t.py", lines, start, 3)[0]).lines)
    assert rebuild_text(got, len(lines)) == TRICKY
    # an empty file
    empty = parse_read(window("pkg/e.py", [], 1, 10)[0])
    assert empty.total == 0 and rebuild_text(empty.lines, 0) == ""


def test_rebuild_through_the_model(tmp_path):
    src = TRICKY + "\n\ndef score():\n\treturn V * 2.0\n"
    env = MiniEnv(tmp_path, {"pkg/policy.py": src})
    model = TunerModel(seed=0, trials=2)
    run_episode(model, env)
    # the in-memory copy matches the file on disk after every edit and revert
    assert model.files["pkg/policy.py"] == env.text("pkg/policy.py")


def test_rebuild_against_real_window():
    common = pytest.importorskip("tools._common")
    lines = common.split_lines(TRICKY)
    res = common.window("pkg/t.py", lines, 1, 100000, 'read_file("pkg/t.py", start={start})')
    chunk = parse_read(res.text)
    assert rebuild_text(chunk.lines, chunk.total) == TRICKY


def test_sites_skip_strings_indices_and_find_constants():
    src = ('"""doc 1.0"""\nimport os\nK = 2.5\nW = (1, -0.5)\nx = [1, 2][0]\n'
           'def f(a, seed=7):\n    s = f"{a + 3}"\n    return a[1:2] if a <= 0.25 else K  # 9\n')
    sites = find_sites("p.py", src)
    got = {(s.kind, s.text, s.constant) for s in sites}
    assert ("float", "2.5", True) in got
    assert ("int", "1", True) in got and ("float", "-0.5", True) in got
    assert ("cmp", "<=", False) in got and ("float", "0.25", False) in got
    texts = [s.text for s in sites]
    assert "7" not in texts and "3" not in texts and "9" not in texts and "0" not in texts
    # byte offsets are right even after non-ASCII text
    src2 = "# ünïcode π\nA = 1.5\n"
    (s,) = find_sites("p.py", src2)
    assert src2.encode()[s.start:s.end] == b"1.5" and s.line == 2


def test_parse_report():
    r = parse_report("stage: full\n  score: 3\nscore: 1.5\nvalid: true\ndirection: minimize\n")
    assert (r.score, r.valid, r.direction) == (1.5, True, "minimize")
    r = parse_report("score: None\nvalid: false\n")
    assert r.score is None and r.valid is False and r.parsed
    assert not parse_report("garbage").parsed
