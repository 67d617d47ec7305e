"""TunerModel: an offline optimiser of numeric constants that speaks the tool protocol.

It needs no LLM and sees the code only through tool calls, one per turn:

    list_files -> read_file (each editable .py file) -> run_evaluator (the reference score)
    then `trials` times: edit (mutate one or two sites) -> run_evaluator
                         -> commit if valid and strictly better, else edit back (revert)
    -> finish, after `trials` trials or `max_commits` commits.

Mutation sites are found with tree-sitter-python: numeric literals (integers and floats, a
leading unary minus included; not subscript indices or slices, not in strings) and the
comparison operators `<`, `<=`, `>`, `>=`. Module-level upper-case constants (`NAME = 1.5`,
`NAME = (1, 2.0)`) are picked with higher probability.

The plan is a generator (`_plan`) that yields tool calls and receives their results; the
instance keeps it between `complete` calls, so one instance serves exactly one episode.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.config import TunerConfig
from agent.models.base import ToolCall, Turn, Usage

CONSTANT_PROB = 0.7  # chance of drawing a module-level constant when there are some
TWO_SITES_PROB = 0.2  # chance of mutating two sites at once
MAX_CONTEXT_LINES = 40  # an edit's old_str grows at most this many lines for uniqueness
_FLIPS = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}
_UPPER = re.compile(r"^_*[A-Z][A-Z0-9_]*$")


@dataclass
class Report:
    """The structured part of an evaluation or commit result (`ToolResult.data`)."""

    score: float | None
    valid: bool | None
    direction: str | None

    @property
    def parsed(self) -> bool:
        return self.valid is not None or self.score is not None

    @classmethod
    def of(cls, data: dict[str, Any]) -> Report:
        score = data.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            score = None
        valid = data.get("valid")
        direction = data.get("direction")
        return cls(None if score is None else float(score), valid if isinstance(valid, bool) else None,
                   direction if direction in ("maximize", "minimize") else None)


# ---------------------------------------------------------------------------------------
# Mutation sites


@dataclass
class Site:
    path: str
    kind: str  # "int" | "float" | "cmp"
    start: int  # byte offsets into the file's utf-8 bytes
    end: int
    text: str  # the source text of the site
    value: Any  # int or float, or the operator string
    line: int  # 1-based line number
    name: str  # constant name, enclosing function, or ""
    constant: bool
    bare: bool  # a literal without its own unary minus


_PARSER = None


def _parser():
    global _PARSER
    if _PARSER is None:
        import tree_sitter
        import tree_sitter_python

        _PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_python.language()))
    return _PARSER


def _parse_number(kind: str, text: str) -> int | float | None:
    t = text.replace("_", "")
    if not t or t[-1] in "jJlL":
        return None
    try:
        if kind == "integer":
            if len(t) > 1 and t[0] == "0" and t[1] in "xXoObB":
                return None  # bit masks and such: leave them alone
            return int(t)
        v = float(t)
        return v if math.isfinite(v) else None
    except ValueError:
        return None


def find_sites(path: str, text: str) -> list[Site]:
    """Numeric literals and comparison operators of a Python file worth mutating."""
    data = text.encode("utf-8")
    tree = _parser().parse(data)
    newlines = [i for i, b in enumerate(data) if b == 0x0A]

    def line_of(offset: int) -> int:
        return bisect.bisect_right(newlines, offset - 1) + 1 if newlines else 1

    sites: list[Site] = []

    def context(node) -> tuple[bool, str, bool]:
        """(skip, name, constant) for a literal node."""
        child, cur = node, node.parent
        name, constant, func = "", False, ""
        while cur is not None:
            t = cur.type
            if t in ("string", "slice", "import_statement", "import_from_statement",
                     "future_import_statement", "decorator", "type"):
                return True, "", False
            if t == "subscript":
                value = cur.child_by_field_name("value")
                if value is None or not (value.start_byte <= child.start_byte < value.end_byte):
                    return True, "", False
            if t in ("keyword_argument", "default_parameter", "typed_default_parameter"):
                key = cur.child_by_field_name("name")
                if key is not None and "seed" in key.text.decode("utf-8", "replace").lower():
                    return True, "", False
            if t == "assignment":
                left = cur.child_by_field_name("left")
                if left is not None and left.type == "identifier":
                    lname = left.text.decode("utf-8", "replace")
                    if "seed" in lname.lower():
                        return True, "", False
                    stmt = cur.parent
                    at_module = (stmt is not None and stmt.type == "expression_statement"
                                 and stmt.parent is not None and stmt.parent.type == "module")
                    if not name:
                        name = lname
                    if at_module and _UPPER.match(lname):
                        constant = True
                        name = lname
            if t in ("function_definition", "class_definition") and not func:
                fn = cur.child_by_field_name("name")
                func = fn.text.decode("utf-8", "replace") if fn is not None else ""
            child, cur = cur, cur.parent
        return False, name or func, constant

    def visit(node) -> None:
        stack = [node]
        while stack:
            n = stack.pop()
            if n.type in ("integer", "float"):
                value = _parse_number(n.type, n.text.decode("utf-8", "replace"))
                if value is not None:
                    skip, name, constant = context(n)
                    if not skip:
                        target, bare = n, True
                        p = n.parent
                        if (p is not None and p.type == "unary_operator" and p.child_count == 2
                                and p.children[0].type == "-"):
                            target, bare, value = p, False, -value
                        sites.append(Site(
                            path, "int" if n.type == "integer" else "float",
                            target.start_byte, target.end_byte,
                            target.text.decode("utf-8"), value,
                            line_of(target.start_byte), name, constant, bare,
                        ))
                continue
            if n.type == "comparison_operator":
                for c in n.children:
                    if not c.is_named and c.type in _FLIPS:
                        skip, name, _ = context(c)
                        if not skip:
                            sites.append(Site(path, "cmp", c.start_byte, c.end_byte, c.type,
                                              c.type, line_of(c.start_byte), name, False, True))
            if n.type in ("string", "comment"):
                continue
            stack.extend(reversed(n.children))

    visit(tree.root_node)
    sites.sort(key=lambda s: s.start)
    return sites


def format_float(x: float) -> str:
    s = f"{x:.6g}"
    if not any(ch in s for ch in ".eEn"):  # "n" keeps inf/nan out of this branch
        s += ".0"
    return s


def mutate(site: Site, rng: np.random.Generator) -> tuple[str, str]:
    """(replacement text, description of the new value) for one site."""
    if site.kind == "cmp":
        new = _FLIPS[site.value]
        return new, new
    v = site.value
    if site.kind == "float":
        for _ in range(20):
            if v == 0.0:
                step = 10 ** rng.uniform(-2, 1)
                x = step if rng.random() < 0.5 else -step
            elif rng.random() < 0.8:
                x = v * math.exp(rng.normal(0.0, 0.3))
            else:
                x = v + rng.normal(0.0, 0.5 * abs(v) + 0.5)
            s = format_float(x)
            if float(s) != v and math.isfinite(float(s)):
                break
        new_val: int | float = float(s)
        text = s
    else:
        delta = max(1, int(round(abs(v) * abs(rng.normal(0.0, 0.2)))))
        sign = 1 if rng.random() < 0.5 else -1
        x = v + sign * delta
        if v > 0 and x <= 0:  # a positive int stays positive (counts, sizes, limits)
            x = v + delta if v == 1 else 1
        new_val, text = x, str(x)
    if site.bare and new_val < 0:
        text = f"({text})"
    return text, str(new_val)


# ---------------------------------------------------------------------------------------
# The model


@dataclass
class Trial:
    path: str
    old_str: str
    new_str: str
    old_text: str
    new_text: str
    label: str  # e.g. "A 3.0 -> 3.52 (pkg/policy.py:1)"


Step = tuple[str, dict[str, Any], str]
"""A tool call to make: (tool name, arguments, what the turn's text says)."""


@dataclass
class Reply:
    """What came back for a step: the tool's text, its error flag and its structured data."""

    content: str
    err: bool
    data: dict[str, Any]


class TunerModel:
    """Random-mutation hill climbing on numeric constants, one tool call per turn."""

    name = "tuner"

    def __init__(self, seed: int = 0, config: TunerConfig | None = None):
        config = config or TunerConfig()
        self.seed = seed
        self.trials = max(0, config.trials)
        self.max_commits = max(0, config.max_commits)
        self.rng = np.random.default_rng(seed)
        self.max_turns = 40 + 4 * self.trials + 2 * self.max_commits
        self.turns = 0
        self.finished = False
        self.files: dict[str, str] = {}  # path -> current text, kept in sync with edits
        self.tried: set[tuple[str, str]] = set()
        self.log: list[str] = []  # one line per trial, for the summary
        self.kept: list[str] = []
        self._last_id: str | None = None
        self._plan_gen = self._plan()
        self._pending: tuple[str, dict[str, Any], str] | None = None

    # -- protocol -------------------------------------------------------------------------

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Turn:
        if self.finished:
            return Turn(text="(finished)", tool_calls=[], usage=Usage(), stop_reason="end_turn")
        self.turns += 1
        try:
            if self._pending is None:
                step = next(self._plan_gen)
            else:
                step = self._plan_gen.send(self._result(messages))
        except StopIteration as stop:
            step = ("finish", {"summary": str(stop.value or "done")}, "finishing")
        if self.turns >= self.max_turns and step[0] != "finish":
            step = ("finish", {"summary": self._summary(f"stopped at the turn cap ({self.max_turns})")},
                    "turn cap reached; finishing")
        name, args, note = step
        if name == "finish":
            self.finished = True
            self._plan_gen.close()
        self._pending = step
        self._last_id = f"tuner-{self.turns}"
        return Turn(text=note, tool_calls=[ToolCall(self._last_id, name, args)], usage=Usage())

    def _result(self, messages: list[dict[str, Any]]) -> Reply:
        """The tool message answering our last call: its text, error flag and data."""
        for msg in reversed(messages):
            if msg.get("role") == "tool" and msg.get("tool_call_id") == self._last_id:
                content = msg.get("content")
                data = msg.get("data")
                return Reply("" if content is None else str(content), bool(msg.get("is_error", False)),
                             data if isinstance(data, dict) else {})
        return Reply(f"(no result for {self._last_id})", True, {})

    # -- the plan -------------------------------------------------------------------------

    def _summary(self, why: str) -> str:
        parts = [f"tuner (seed {self.seed}): {why}."]
        if self.log:
            parts.append(f"{len(self.log)} trial(s): " + "; ".join(self.log) + ".")
        parts.append("Kept: " + ("; ".join(self.kept) if self.kept else "nothing") + ".")
        return " ".join(parts)

    def _plan(self) -> Generator[Step, Reply, str]:
        got = yield ("list_files", {}, "listing the repository to find editable Python files")
        paths = [] if got.err else [p for p in got.data.get("editable", []) if str(p).endswith(".py")]
        if not paths:
            why = "list_files failed" if got.err else "no editable .py files"
            return self._summary(f"nothing to tune: {why}")

        for path in paths:
            text = yield from self._read(path)
            if text is not None:
                self.files[path] = text
        if not self.files:
            return self._summary("nothing to tune: could not read any editable .py file")

        sites = [s for p, t in self.files.items() for s in find_sites(p, t)]
        if not sites:
            return self._summary("nothing to tune: no numeric literals or comparisons in the editable files")

        got = yield ("run_evaluator", {}, "scoring the unmodified code as the reference")
        ref = Report.of(got.data)
        if not ref.parsed:
            return self._summary(f"the reference evaluation reported no score: {got.content[:200]!r}")
        direction = ref.direction or "maximize"
        best = ref.score if ref.valid is not False else None
        start = best
        commits = 0

        for k in range(1, self.trials + 1):
            if commits >= self.max_commits:
                break
            trial = self._draw_trial()
            if trial is None:
                self.log.append(f"#{k} no new mutation found")
                break
            got = yield ("edit", {"path": trial.path, "old_str": trial.old_str, "new_str": trial.new_str},
                         f"trial {k}/{self.trials}: {trial.label}")
            if got.err:
                self.log.append(f"#{k} {trial.label}: edit rejected")
                continue
            self.files[trial.path] = trial.new_text
            got = yield ("run_evaluator", {}, f"trial {k}: evaluating {trial.label}")
            rep = Report.of(got.data)
            ok = not got.err and rep.valid is not False and rep.score is not None
            if ok and _better(rep.score, best, direction):
                got = yield ("commit", {"message": f"tuner: {trial.label}"},
                             f"trial {k}: {rep.score:g} beats {_fmt(best)}; committing")
                if not got.err:
                    crep = Report.of(got.data)
                    new_best = crep.score if crep.score is not None and crep.valid is not False else rep.score
                    self.log.append(f"#{k} {trial.label}: {_fmt(best)} -> {new_best:g}, committed")
                    self.kept.append(f"{trial.label} (score {new_best:g})")
                    best = new_best
                    commits += 1
                    continue
                self.log.append(f"#{k} {trial.label}: better ({rep.score:g}) but commit failed")
            else:
                what = "invalid" if not ok else f"{rep.score:g} not better than {_fmt(best)}"
                self.log.append(f"#{k} {trial.label}: {what}")
            # revert
            got = yield ("edit", {"path": trial.path, "old_str": trial.new_str, "new_str": trial.old_str},
                         f"trial {k}: reverting {trial.label}")
            if got.err:
                # one more try with the whole file as context
                got = yield ("edit", {"path": trial.path, "old_str": trial.new_text, "new_str": trial.old_text},
                             f"trial {k}: reverting {trial.label} (whole file)")
                if got.err:
                    return self._summary(f"could not revert {trial.label}; stopping")
            self.files[trial.path] = trial.old_text

        why = f"done; best score {_fmt(best)} (started at {_fmt(start)}, {direction})"
        if commits >= self.max_commits:
            why += f"; reached {self.max_commits} commit(s)"
        return self._summary(why)

    def _read(self, path: str) -> Generator[Step, Reply, str | None]:
        # the whole text comes back in the result's data; the window shown is only its first line
        got = yield ("read_file", {"path": path, "limit": 1}, f"reading {path}")
        text = got.data.get("text")
        return None if got.err or not isinstance(text, str) else text

    def _draw_trial(self) -> Trial | None:
        for _ in range(30):
            trial = self._try_draw()
            if trial is not None and (trial.path, trial.new_text) not in self.tried:
                self.tried.add((trial.path, trial.new_text))
                return trial
        return None

    def _pick(self, sites: list[Site]) -> Site:
        consts = [s for s in sites if s.constant]
        others = [s for s in sites if not s.constant]
        pool = consts if consts and (not others or self.rng.random() < CONSTANT_PROB) else others
        if pool is others:
            nums = [s for s in others if s.kind != "cmp"]
            cmps = [s for s in others if s.kind == "cmp"]
            if nums and cmps:
                pool = cmps if self.rng.random() < 0.4 else nums
        return pool[int(self.rng.integers(len(pool)))]

    def _try_draw(self) -> Trial | None:
        paths = sorted(self.files)
        all_sites = {p: find_sites(p, self.files[p]) for p in paths}
        paths = [p for p in paths if all_sites[p]]
        if not paths:
            return None
        # weight files by their number of sites
        flat = [s for p in paths for s in all_sites[p]]
        first = self._pick(flat)
        path, text = first.path, self.files[first.path]
        sites = all_sites[path]
        chosen = [first]
        if len(sites) > 1 and self.rng.random() < TWO_SITES_PROB:
            second = self._pick(sites)
            if second.start != first.start and abs(second.line - first.line) <= 10:
                chosen.append(second)
        chosen.sort(key=lambda s: s.start)
        data = text.encode("utf-8")
        out, pos, labels = [], 0, []
        for s in chosen:
            new, shown = mutate(s, self.rng)
            out.append(data[pos:s.start])
            out.append(new.encode("utf-8"))
            pos = s.end
            who = s.name or ("comparison" if s.kind == "cmp" else "literal")
            labels.append(f"{who} {s.text} -> {shown} ({path}:{s.line})")
        out.append(data[pos:])
        new_text = b"".join(out).decode("utf-8")
        if new_text == text:
            return None
        old_lines, new_lines = text.split("\n"), new_text.split("\n")
        if len(old_lines) != len(new_lines):
            return None
        lo, hi = chosen[0].line - 1, chosen[-1].line - 1  # 0-based, inclusive
        for _ in range(MAX_CONTEXT_LINES):
            old_str = "\n".join(old_lines[lo:hi + 1])
            new_str = "\n".join(new_lines[lo:hi + 1])
            if _unique(text, old_str) and _unique(new_text, new_str):
                return Trial(path, old_str, new_str, text, new_text, "; ".join(labels))
            if lo == 0 and hi == len(old_lines) - 1:
                break
            lo, hi = max(0, lo - 1), min(len(old_lines) - 1, hi + 1)
        return None


def _unique(text: str, s: str) -> bool:
    i = text.find(s)
    return bool(s) and i >= 0 and text.find(s, i + 1) < 0


def _better(a: float | None, b: float | None, direction: str) -> bool:
    if a is None:
        return False
    if b is None:
        return True
    return a < b if direction == "minimize" else a > b


def _fmt(x: float | None) -> str:
    return "None" if x is None else f"{x:g}"
