"""Hostile candidates against tasks/llm-sql, scored the way a run scores them.

solution.py runs in a jail (bwrap or docker) that sees the stage's input tables (a read-only
job folder) and nothing of the evaluator; the rows come back as strings over a pipe and are
checked against the evaluator's own copy of the tables, and the clock runs in the evaluator.
So: forged result lines go nowhere, patching its own process reaches no scoring code, the
evaluator's files (generator, metric, the leaderboard's data) can be neither read nor
rewritten, and frames or cells that lie about themselves are read as the strings they give.
Each attacker scores no better than the baseline.
"""
from __future__ import annotations

import ast
import hashlib
import shutil
from pathlib import Path

import pytest

from fixtures.hostile import FORGE_AT_EXIT, FORGE_VIA_PARENT, TASKS, evaluate, not_above, worktree

pytest.importorskip("pandas", reason="tasks/llm-sql needs pandas")

TASK = "llm-sql"
EVAL_DIR = TASKS / TASK / "evaluator"
CANDIDATE_MODULES = {"solution"}  # the worktree's modules
SIDE = "runner.py"
SIDE_IMPORTS = {"adrs_eval", "json", "math", "os", "pandas"}
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SEED_SRC = (TASKS / TASK / "repo" / "solution.py").read_text()
STAGES = ["quick", "full", "test", "leaderboard"]


def seed_with(extra: str = "", first: str = "", handicap_s: float = 0.0) -> str:
    """The seed solution, with ``first`` run before its own code (after its __future__
    import), ``extra`` after it, and ``handicap_s`` of sleep per table: a hostile candidate
    that is otherwise the seed is then strictly slower, so the runtime term's noise cannot lift
    it above the baseline."""
    future = "from __future__ import annotations\n"
    assert future in SEED_SRC
    src = SEED_SRC.replace(future, future + first, 1) + "\n" + extra
    if handicap_s:
        src += f'''
import time as _time
_Seed = Solution

class Solution(_Seed):
    def solve(self, df, **kw):
        _time.sleep({handicap_s})
        return super().solve(df, **kw)
'''
    return src


# What a candidate can reach of the evaluator: the known paths, every evaluator/ folder on
# the file system (the system's read-only trees left out: they are the host's own), other
# processes' arguments, environment and working folders. It then tries to rewrite every
# evaluator file it found, so that the next evaluation would count every character of a
# good ordering as a hit (and none of the input order's).
PROBE = r'''
import os as _os
import sys as _sys

def _probe(known, scan=True):
    found = [p for p in known if _os.path.exists(p)]
    if not scan:  # only the known paths
        return found
    system = {"/proc", "/sys", "/dev", "/usr", _sys.prefix, _sys.base_prefix}
    for root, dirs, files in _os.walk("/"):
        dirs[:] = [d for d in dirs if _os.path.join(root, d) not in system]
        if _os.path.basename(root) == "evaluator":
            found += [_os.path.join(root, f) for f in files]
    for pid in [p for p in _os.listdir("/proc") if p.isdigit()]:
        for what in ("cmdline", "environ"):
            try:
                text = open(f"/proc/{pid}/{what}", "rb").read()
            except OSError:
                continue
            if any(w in text for w in (b"evaluate.py", b"--stage", b"ADRS_RESULT", b"ADRS_DATA")):
                found.append(f"/proc/{pid}/{what}")
        try:
            names = _os.listdir(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if {"evaluate.py", "metric.py", "tables.py"} & set(names):
            found.append(f"/proc/{pid}/cwd")
    return found

def _tamper(found):
    wrote = []
    for p in found:
        target = _os.path.join(p, "metric.py") if _os.path.isdir(p) else p
        if not target.endswith("metric.py"):
            continue
        try:
            with open(target, "a") as fh:
                fh.write("\n_hits = prefix_hits\n\ndef prefix_hits(rows):\n    h, t = _hits(rows)\n"
                         "    return (t, t) if 2 * h > t else (0, t)\n")
            wrote.append(target)
        except OSError:
            pass
    return wrote

_FOUND = _probe(KNOWN)
_WROTE = _tamper(_FOUND)
if REPORT:
    raise RuntimeError(f"PROBE found={_FOUND!r} wrote={_WROTE!r} job={sorted(_os.listdir(_os.environ.get('ADRS_JOB', '/')))!r}")
'''

KNOWN = [str(EVAL_DIR), str(EVAL_DIR / "tables.py"), str(EVAL_DIR / "metric.py"),
         str(DATA / TASK / "beer.csv"), str(DATA)]


def folder_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()


class Jail:
    """A backend by name, for runs outside the `backend` fixture (`process`: no jail at all,
    to show what the same attacker does unjailed)."""

    def __init__(self, name: str):
        self.name = name

    def config(self, spec):
        return spec.jail(self.name)


_baselines: dict[str, object] = {}


def baseline(stage: str, tmp_path: Path, backend):
    if stage not in _baselines:
        wt = worktree(TASK, tmp_path, {}, name=f"baseline-{stage}")
        _baselines[stage] = evaluate(TASK, wt, stage, backend, data=data_for(stage))
        assert _baselines[stage].valid, _baselines[stage].feedback
    return _baselines[stage]


def no_better(res, stage: str, tmp_path: Path, backend) -> bool:
    """not_above the baseline; an invalid result needs no baseline run to say so."""
    return not res.valid or not_above(res, baseline(stage, tmp_path, backend))


def data_for(stage: str) -> Path | None:
    if stage != "leaderboard":
        return None
    if not (DATA / TASK / "beer.csv").is_file():
        pytest.skip("needs ../shared/data/llm-sql/beer.csv")
    return DATA


def attacker(tmp_path: Path, src: str, name: str = "wt") -> Path:
    return worktree(TASK, tmp_path, {"solution.py": src}, name=name)


@pytest.mark.parametrize("backend, stage", [("bwrap", s) for s in STAGES] + [("docker", "quick")],
                         indirect=["backend"])
def test_forged_result_lines_do_not_count_on_any_stage(tmp_path, backend, stage):
    src = seed_with(first=FORGE_VIA_PARENT + FORGE_AT_EXIT, handicap_s=1.0)
    res = evaluate(TASK, attacker(tmp_path, src), stage, backend, data=data_for(stage))
    assert res.score is not None and res.score <= 100.0
    assert no_better(res, stage, tmp_path, backend)


def test_patching_its_own_process_finds_no_scoring_code(tmp_path, backend):
    src = seed_with(r'''
import sys
PATCHED = []
for mod in [sys.modules.get(n) for n in ("__main__", "metric", "tables", "evaluate")]:
    for name in ("prefix_hits", "Reference", "make_table", "evaluate", "_run_worker"):
        if mod is not None and hasattr(mod, name):
            PATCHED.append(f"{mod.__name__}.{name}")
for name in ("metric", "tables", "evaluate"):
    try:
        __import__(name)
        PATCHED.append("imported " + name)
    except ImportError:
        pass
raise RuntimeError(f"PATCHED={PATCHED!r}")
''')
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert "PATCHED=[]" in res.feedback
    assert no_better(res, "quick", tmp_path, backend)


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_patching_the_runners_cell_strings_is_caught(tmp_path, backend):
    # The side's serializer is in the candidate's process: make every cell the same long
    # string (every row a perfect prefix of the next) and the clock read zero.
    src = seed_with(r'''
import sys, time
sys.modules["__main__"].cell = lambda value: "A" * 40
time.perf_counter = time.monotonic = time.time = lambda: 0.0
''')
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert not res.valid and res.score == 0.0
    assert "not a field permutation" in res.feedback


def test_the_evaluators_files_can_be_neither_read_nor_rewritten(tmp_path, backend):
    before = folder_digest(EVAL_DIR)
    src = seed_with(PROBE.replace("KNOWN", repr(KNOWN)).replace("REPORT", "True"))
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert "PROBE found=[] wrote=[] job=['job.json', 't0.csv']" in res.feedback, res.feedback
    assert folder_digest(EVAL_DIR) == before
    assert no_better(res, "quick", tmp_path, backend)


def test_the_tampering_attack_is_real_without_a_jail(tmp_path):
    # Unjailed (the `process` backend), the same attacker rewrites a copy of the evaluator so
    # that the NEXT evaluation of the plain seed counts every character as a hit.
    task = tmp_path / "task"
    shutil.copytree(TASKS / TASK, task, ignore=shutil.ignore_patterns("__pycache__"))
    known = [str(task / "evaluator")]
    src = seed_with(PROBE.replace("_probe(KNOWN)", "_probe(KNOWN, scan=False)")
                    .replace("KNOWN", repr(known)).replace("REPORT", "False"))
    evaluate(task, worktree(task, tmp_path, {"solution.py": src}, name="attacker"), "quick", Jail("process"))
    res = evaluate(task, worktree(task, tmp_path, {}, name="seed"), "quick", Jail("process"))
    assert res.valid and res.score > 99.0


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_a_dataframe_that_lies_about_its_rows_is_read_as_what_it_yields(tmp_path, backend):
    # A frame subclass that keeps the real rows (len, shape, values) but yields one constant
    # row per row when iterated: what the evaluator receives is what it yields.
    src = seed_with(r'''
import pandas as pd

class Liar(pd.DataFrame):
    @property
    def _constructor(self):
        return Liar
    def itertuples(self, index=True, name="Pandas"):
        width = self.shape[1]
        return iter([("A" * 40,) * width] * len(self))

_Seed = Solution

class Solution(_Seed):
    def solve(self, df, **kw):
        return Liar(super().solve(df, **kw))
''')
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert not res.valid and res.score == 0.0
    assert "not a field permutation" in res.feedback


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_cells_that_lie_about_themselves_are_read_as_their_strings(tmp_path, backend):
    # Cells equal to everything, hashing alike, whose str() is a long shared prefix.
    src = seed_with(r'''
import pandas as pd

class Chameleon:
    def __init__(self, value):
        self.value = value
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    def __hash__(self):
        return 0
    def __str__(self):
        return "A" * 40 + str(self.value)

_Seed = Solution

class Solution(_Seed):
    def solve(self, df, **kw):
        out = super().solve(df, **kw)
        return out.map(Chameleon)
''')
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert not res.valid and res.score == 0.0
    assert "not a field permutation" in res.feedback


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_hand_written_answers_are_checked(tmp_path, backend):
    # Answers written straight to the pipe: rows of numbers, then nesting too deep to parse.
    src = seed_with(r'''
from adrs_eval.side import channel

_Seed = Solution

class Solution(_Seed):
    def solve(self, df, **kw):
        out = channel().output
        out.write(b'{"rows": [[1, 2], [null]]}\n' + b"[" * 100000 + b"\n")
        out.flush()
        return super().solve(df, **kw)
''')
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert not res.valid and res.score == 0.0
    assert "malformed output rows" in res.feedback


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


def test_neither_side_imports_the_other_sides_code():
    """The evaluator imports nothing of the worktree; the candidate side (whose folder the
    candidate can read) is alone in its folder and imports nothing of the evaluator's."""
    for module in EVAL_DIR.glob("*.py"):
        assert not imported_modules(module) & CANDIDATE_MODULES, module.name
    jail = EVAL_DIR / "jail"
    assert sorted(p.name for p in jail.iterdir() if p.name != "__pycache__") == [SIDE]
    assert imported_modules(jail / SIDE) <= SIDE_IMPORTS
