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

import shutil
import textwrap
from pathlib import Path

import pytest

from tests.fixtures.hostile import (
    FORGERS,
    SHARED_DATA,
    TASKS,
    UNJAILED,
    Baselines,
    assert_sides_apart,
    bwrap_stages_and_docker_quick,
    evaluate,
    folder_digest,
    leaderboard_data,
    patching,
    probing,
    run_first,
    worktree,
)

pytest.importorskip("pandas", reason="tasks/llm-sql needs pandas")

TASK = "llm-sql"
EVAL_DIR = TASKS / TASK / "evaluator"
SEED_SRC = (TASKS / TASK / "repo" / "solution.py").read_text()
STAGES = ["quick", "full", "test", "leaderboard"]


def seed_with(extra: str = "", first: str = "", handicap_s: float = 0.0) -> str:
    """The seed solution, with ``first`` run before its own code (after its __future__
    import), ``extra`` after it, and ``handicap_s`` of sleep per table: a hostile candidate
    that is otherwise the seed is then strictly slower, so the runtime term's noise cannot lift
    it above the baseline."""
    src = run_first(first, SEED_SRC) + "\n" + extra
    if handicap_s:
        src += "\nimport time as _time\n" + solving(f"""
            _time.sleep({handicap_s})
            return super().solve(df, **kw)
        """)
    return src


def solving(body: str) -> str:
    """Source that replaces Solution by a subclass whose solve() runs `body` (self, df and kw
    in scope; super().solve(df, **kw) is the seed's answer)."""
    return ("\n_Seed = Solution\n\nclass Solution(_Seed):\n    def solve(self, df, **kw):\n"
            + textwrap.indent(textwrap.dedent(body).lstrip("\n"), " " * 8))


# What a candidate can reach of the evaluator (the fixture's probe, told llm-sql's files and
# modules), then an attempt to rewrite every metric.py it found, so that the next evaluation
# would count every character of a good ordering as a hit (and none of the input order's).
TAMPER = r'''
_WROTE = []
for _target in _named(_FOUND, "metric.py"):
    try:
        with open(_target, "a") as fh:
            fh.write("\n_hits = prefix_hits\n\ndef prefix_hits(rows):\n    h, t = _hits(rows)\n"
                     "    return (t, t) if 2 * h > t else (0, t)\n")
        _WROTE.append(_target)
    except OSError:
        pass
if REPORT:
    _JOB = sorted(_os.listdir(_os.environ.get('ADRS_JOB', '/')))
    raise RuntimeError(f"PROBE found={_FOUND!r} wrote={_WROTE!r} job={_JOB!r}")
'''

KNOWN = [str(EVAL_DIR), str(EVAL_DIR / "tables.py"), str(EVAL_DIR / "metric.py"),
         str(SHARED_DATA / TASK / "beer.csv"), str(SHARED_DATA)]


def probe(known: list[str] = KNOWN, report: bool = True) -> str:
    """The probe and the tampering, at import, and (if `report`) an error saying what they
    reached; unreported, it only looks at the known paths (the unjailed demonstration)."""
    return (probing(secrets={"evaluate.py", "metric.py", "tables.py"}, known=known,
                    modules=("metric", "tables", "evaluate"), scan=report)
            + f"REPORT = {report}\n" + TAMPER)


def data_for(stage: str) -> Path | None:
    return leaderboard_data(stage, SHARED_DATA, needs=SHARED_DATA / TASK / "beer.csv")


baseline = Baselines(TASK, data_for)


def attacker(tmp_path: Path, src: str, name: str = "wt") -> Path:
    return worktree(TASK, tmp_path, {"solution.py": src}, name=name)


@pytest.mark.parametrize("backend, stage", bwrap_stages_and_docker_quick(STAGES),
                         indirect=["backend"])
def test_forged_result_lines_do_not_count_on_any_stage(tmp_path, backend, stage):
    src = seed_with(first=FORGERS, handicap_s=1.0)
    res = evaluate(TASK, attacker(tmp_path, src), stage, backend, data=data_for(stage))
    assert res.score is not None and res.score <= 100.0
    assert baseline.no_better(res, stage, tmp_path, backend)


def test_patching_its_own_process_finds_no_scoring_code(tmp_path, backend):
    src = seed_with(patching(
        modules=("metric", "tables", "evaluate"),
        names=("prefix_hits", "Reference", "make_table", "evaluate", "_run_worker"))
        + 'raise RuntimeError(f"PATCHED={PATCHED!r}")\n')
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert "PATCHED=[]" in res.feedback
    assert baseline.no_better(res, "quick", tmp_path, backend)


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
    src = seed_with(probe())
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert "PROBE found=[] wrote=[] job=['job.json', 't0.csv']" in res.feedback, res.feedback
    assert folder_digest(EVAL_DIR) == before
    assert baseline.no_better(res, "quick", tmp_path, backend)


def test_the_tampering_attack_is_real_without_a_jail(tmp_path):
    # Unjailed (the `process` backend), the same attacker rewrites a copy of the evaluator so
    # that the NEXT evaluation of the plain seed counts every character as a hit.
    task = tmp_path / "task"
    shutil.copytree(TASKS / TASK, task, ignore=shutil.ignore_patterns("__pycache__"))
    src = seed_with(probe(known=[str(task / "evaluator")], report=False))
    wt = worktree(task, tmp_path, {"solution.py": src}, name="attacker")
    evaluate(task, wt, "quick", UNJAILED)
    res = evaluate(task, worktree(task, tmp_path, {}, name="seed"), "quick", UNJAILED)
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
''' + solving("return Liar(super().solve(df, **kw))\n"))
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
''' + solving("return super().solve(df, **kw).map(Chameleon)\n"))
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert not res.valid and res.score == 0.0
    assert "not a field permutation" in res.feedback


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_hand_written_answers_are_checked(tmp_path, backend):
    # Answers written straight to the pipe: rows of numbers, then nesting too deep to parse.
    src = seed_with("\nfrom adrs_eval.side import channel\n" + solving(r'''
        out = channel().output
        out.write(b'{"rows": [[1, 2], [null]]}\n' + b"[" * 100000 + b"\n")
        out.flush()
        return super().solve(df, **kw)
    '''))
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert not res.valid and res.score == 0.0
    assert "malformed output rows" in res.feedback


def test_neither_side_imports_the_other_sides_code():
    assert_sides_apart(TASK, worktree_modules={"solution"},
                       side_imports={"adrs_eval", "json", "math", "os", "pandas"},
                       scripts=("runner.py",))
