"""TunerModel driven through the real tools and a real episode loop over a temp folder; the
workspace behind run_evaluator and commit scores the code by running it (MiniEnv)."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import tools
from agent.config import TunerConfig
from agent.models.base import Turn
from agent.models.tuner import Report, TunerModel, find_sites
from tools.base import ToolContext, ToolResult


class MiniEnv:
    """A worktree folder, the real tools over it, and a workspace that scores the code."""

    def __init__(self, root: Path, files: dict[str, str], editable=("pkg/*.py",),
                 direction: str = "maximize", clip_chars: int = 12000, broken_eval=False,
                 scorer=lambda ns: ns["score"]()):
        self.root = root
        self.scorer = scorer
        self.direction = direction
        self.broken_eval = broken_eval
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8", newline="")
        self.ctx = ToolContext(worktree=root, editable=list(editable), stages=["full"],
                               log_dir=root / "logs", workspace=self, max_output_chars=clip_chars)
        self.can_run = False
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

    def report(self, score: float | None) -> ToolResult:
        if self.broken_eval:
            return ToolResult("evaluator says: ¯\\_(ツ)_/¯")
        valid = score is not None
        return ToolResult(f"score: {score}", data={"score": score, "valid": valid,
                                                   "direction": self.direction})

    # -- the Workspace protocol --------------------------------------------------------------
    def evaluate(self, stage: str) -> ToolResult:
        return self.report(self.score_of())

    def commit(self, message: str) -> ToolResult:
        score = self.score_of()
        self.commits.append((message, score, self.best))
        self.best = score
        self.committed = {rel: self.text(rel) for rel in self.committed}
        return self.report(score)

    def run(self, command: str, timeout_s: float) -> ToolResult:
        raise AssertionError("the tuner never runs commands")

    def call(self, name: str, arguments: dict) -> ToolResult:
        result = tools.call(self.ctx, name, arguments)
        if name == "edit" and not result.is_error:
            self.edits.append((arguments["old_str"], arguments["new_str"]))
        if name == "finish":
            self.summary = arguments["summary"]
        return result


def run_episode(model, env: MiniEnv, hard_cap: int = 1000) -> list[dict]:
    """The episode loop: complete, run each call, append results (text and data), until finish."""
    if env.best is None:
        env.best = env.score_of()
    messages: list[dict] = [{"role": "system", "content": "tune"}, {"role": "user", "content": "go"}]
    for _ in range(hard_cap):
        turn = model.complete(messages, tools.schemas())
        assert isinstance(turn, Turn)
        assert len(turn.tool_calls) == 1
        assert turn.usage.input_tokens == 0 and turn.usage.cost_usd == 0
        messages.append(turn.as_message())
        done = False
        for call in turn.tool_calls:
            result = env.call(call.name, call.arguments)
            messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name,
                             "content": result.text, "is_error": result.is_error, "data": result.data})
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
        model = TunerModel(seed=ep, config=TunerConfig(trials=8, max_commits=3))
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
        run_episode(TunerModel(seed=10 + ep, config=TunerConfig(trials=8)), env)
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
        run_episode(TunerModel(seed=seed, config=TunerConfig(trials=6)), env)
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
    model = TunerModel(seed=1, config=TunerConfig(trials=40, max_commits=2))
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


def test_tuner_finishes_on_a_report_without_data(tmp_path):
    env = MiniEnv(tmp_path, {"pkg/policy.py": "A = 1.0\n\ndef score():\n    return A\n"},
                  broken_eval=True)
    run_episode(TunerModel(), env)
    assert "reported no score" in env.summary
    assert not env.commits and not env.edits


def test_tuner_reads_clipped_output_in_chunks(tmp_path):
    body = "".join(f"C{i} = {i}.5  # padding padding padding padding\n" for i in range(300))
    src = body + "\n\ndef score():\n    return -(C7 - 20.0) ** 2\n"
    env = MiniEnv(tmp_path, {"pkg/policy.py": src}, clip_chars=3000)
    model = TunerModel(seed=3, config=TunerConfig(trials=3))
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


def test_rebuild_through_the_model(tmp_path):
    src = TRICKY + "\n\ndef score():\n\treturn V * 2.0\n"
    env = MiniEnv(tmp_path, {"pkg/policy.py": src})
    model = TunerModel(seed=0, config=TunerConfig(trials=2))
    run_episode(model, env)
    # the in-memory copy matches the file on disk after every edit and revert
    assert model.files["pkg/policy.py"] == env.text("pkg/policy.py")


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




def test_report_reads_only_well_formed_data():
    assert Report.of({"score": 1.5, "valid": True, "direction": "minimize"}) == Report(1.5, True, "minimize")
    r = Report.of({"score": None, "valid": False})
    assert r.score is None and r.valid is False and r.parsed
    assert not Report.of({}).parsed
    assert Report.of({"score": float("nan"), "valid": "yes", "direction": "up"}) == Report(None, None, None)
    assert Report.of({"score": True}).score is None
