"""`adrs-agent tasks import` and `solve` on OpenEvolve, ShinkaEvolve and ADRS-leaderboard folders,
and the EVOLVE-BLOCK regions they bring (`[repo] regions`)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from agent import prompts
from agent.importers import ADAPTER
from agent.regions import changes_outside
from agent.task import Task, TaskError
from fixtures.helpers import REPO_ROOT, call, events, of_type, run_cli, scored, solve, turn, write_script

IMPORTS = Path(__file__).resolve().parent / "fixtures" / "imports"
OE = IMPORTS / "oe_minimize"
SE = IMPORTS / "se_packing"
LB = IMPORTS / "leaderboard" / "problems" / "knapsack"
COMPAT = ADAPTER / "jail" / "compat"
REAL_OE = Path("/tmp/real/examples/function_minimization")  # codelion/openevolve, if fetched
REAL_SE = Path("/tmp/real/examples/circle_packing")  # SakanaAI/ShinkaEvolve, if fetched


def load(path: Path, name: str):
    """Their evaluator as their framework loads it: its folder importable, our stand-ins last."""
    sys.path[:0] = [str(path.parent)]
    sys.path.append(str(COMPAT))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(path.parent))
        sys.path.remove(str(COMPAT))


def import_task(src: Path, out: Path, *extra: str, check: bool = True):
    return run_cli("tasks", "import", str(src), "--out", str(out), *extra, check=check)


def eval_score(task: Path, stage: str) -> float:
    proc = run_cli("tasks", "eval", str(task), "--stage", stage)
    return json.loads(proc.stdout[proc.stdout.index("{"):])["score"]


# -- regions ----------------------------------------------------------------------------------
BLOCK = "a = 1\n# EVOLVE-BLOCK-START\nx = 1\ny = 2\n# EVOLVE-BLOCK-END\nz = 3\n"


def test_changes_inside_a_region_are_allowed():
    assert changes_outside(BLOCK, BLOCK.replace("x = 1", "x = 10\nw = 4")) == []


def test_changes_outside_a_region_name_their_lines():
    new = BLOCK.replace("x = 1", "x = 5").replace("z = 3", "z = 4")
    assert changes_outside(BLOCK, new) == ["line 6 changed"]
    assert changes_outside(BLOCK, BLOCK.replace("a = 1\n", "")) == ["line 1 of the old text removed"]
    assert "no longer pair up" in changes_outside(BLOCK, BLOCK.replace("# EVOLVE-BLOCK-END\n", ""))[0]


def test_tasks_check_rejects_a_region_file_without_markers(tmp_path):
    task = tmp_path / "t"
    shutil.copytree(REPO_ROOT / "tests" / "fixtures" / "toy", task)
    text = (task / "task.toml").read_text().replace("[evaluator]", 'regions = ["pkg/policy.py"]\n[evaluator]', 1)
    (task / "task.toml").write_text(text)
    with pytest.raises(TaskError, match=r"regions: pkg/policy.py has no EVOLVE-BLOCK-START"):
        Task.load(task)


def test_the_prompt_says_where_the_regions_are():
    class C:
        commit, message, score, feedback = "a" * 40, "", 1.0, ""

    msgs = prompts.episode_messages(
        task_name="t", brief="b", editable=["p.py"], stages=["full"], direction="maximize", parent=C,
        baseline=C, best=C, inspirations=[], failures=[], budget_left=3, diffs=None, regions=["p.py"])
    assert "In p.py only the text between a line holding EVOLVE-BLOCK-START" in msgs[0]["content"]
    assert "In p.py you may change only the text between" in msgs[1]["content"]


# -- importing ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_openevolve_folder_imports_with_cascade_regions_and_its_own_score(tmp_path):
    out = tmp_path / "oe"
    proc = import_task(OE, out)
    doc = tomllib.loads((out / "task.toml").read_text())
    assert doc["repo"]["regions"] == ["initial_program.py"]
    assert doc["evaluator"]["stages"] == ["stage1", "stage2"]
    assert doc["evaluator"]["thresholds"] == {"stage1": 0.5}
    assert "test_stage" not in doc["evaluator"]
    assert (out / "evaluator" / "theirs" / "evaluator.py").read_bytes() == (OE / "evaluator.py").read_bytes()
    assert "minimises f(x)" in (out / "BRIEF.md").read_text()
    assert "combined_score" in (out / "README.md").read_text()
    assert "my_custom_key" in proc.stdout and "llm.* (2 keys)" in proc.stdout
    assert "held-out stage: none" in proc.stdout
    theirs = load(OE / "evaluator.py", "oe_fixture").evaluate_stage2(str(OE / "initial_program.py"))
    assert eval_score(out, "stage2") == pytest.approx(theirs.metrics["combined_score"], rel=1e-12)
    assert f"baseline stage2: score {theirs.metrics['combined_score']:.6g}" in proc.stdout


@pytest.mark.slow
def test_shinka_folder_imports_with_its_own_score(tmp_path):
    out = tmp_path / "se"
    proc = import_task(SE, out)
    assert "four circles" in (out / "BRIEF.md").read_text()
    results = tmp_path / "results"
    load(SE / "evaluate.py", "se_fixture").main(str(SE / "initial.py"), str(results))
    theirs = json.loads((results / "metrics.json").read_text())["combined_score"]
    assert eval_score(out, "full") == pytest.approx(theirs)
    assert "baseline full: score 0.8" in proc.stdout


@pytest.mark.slow
def test_leaderboard_problem_imports_as_a_solution_class(tmp_path):
    out = tmp_path / "lb"
    proc = import_task(LB, out)
    assert (out / "repo" / "solution.py").read_text().count("class Solution") == 1
    doc = tomllib.loads((out / "task.toml").read_text())
    assert doc["repo"]["editable"] == ["initial_program.py"] == doc["repo"]["regions"]
    assert "set_up_env.sh: not run" in proc.stdout
    theirs = load(LB / "evaluator.py", "lb_fixture").evaluate(
        out / "repo" / "solution.py", LB / "resources" / "submission_spec.json")
    assert eval_score(out, "full") == pytest.approx(theirs["score"])


def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path):
    out = tmp_path / "none"
    proc = import_task(tmp_path, out, check=False)
    assert proc.returncode == 2 and "not a folder adrs-agent can import" in proc.stdout
    proc = import_task(OE, out, "--test-split", check=False)
    assert proc.returncode == 2 and "--test-split: cannot split" in proc.stdout
    assert not out.exists()


def test_a_broken_evaluator_is_reported_with_its_error(tmp_path):
    src = tmp_path / "broken"
    shutil.copytree(OE, src)
    text = (src / "evaluator.py").read_text()
    (src / "evaluator.py").write_text(text.replace("    program = load(program_path)\n    result",
                                                   "    program = lod(program_path)\n    result"))
    proc = import_task(src, tmp_path / "out", check=False)
    assert proc.returncode == 1
    assert "baseline stage1: INVALID" in proc.stdout and "NameError" in proc.stdout
    assert "lod" in proc.stdout


# -- solving ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_commit_outside_the_evolve_block_is_rejected_with_its_lines(tmp_path):
    task = tmp_path / "oe"
    import_task(OE, task)
    program = (task / "repo" / "initial_program.py").read_text()
    outside = program.replace("    return search_algorithm()", "    return (1.37, 0.5)")
    inside = program.replace("step = 1.0", "step = 0.01")
    script = write_script(tmp_path / "s.jsonl", [
        turn(call("write_file", path="initial_program.py", content=outside), call("commit", message="cheat")),
        turn(call("write_file", path="initial_program.py", content=inside), call("commit", message="finer")),
    ])
    _, session = solve(task, script, tmp_path / "sessions", 2, "--max-episodes", "1", "--no-test")
    evs = events(session)
    rejected = of_type(evs, "candidate_rejected")
    assert len(rejected) == 1 and rejected[0]["paths"] == ["initial_program.py"]
    line = outside.splitlines().index("    return (1.37, 0.5)") + 1
    assert f"initial_program.py: line {line} changed" in rejected[0]["reason"]
    transcript = (session / "transcripts" / "0.jsonl").read_text()
    assert "commit rejected" in transcript and f"line {line}" in transcript
    committed = of_type(evs, "candidate_committed")
    assert [c["message"] for c in committed] == ["finer"]


@pytest.mark.slow
@pytest.mark.parametrize("src", [OE, SE, LB], ids=["openevolve", "shinka", "leaderboard"])
def test_solve_on_a_foreign_folder_imports_it_on_the_fly_and_the_tuner_improves_it(tmp_path, src):
    before = sorted(p.name for p in src.rglob("*"))
    proc, session = solve(src, "tuner", tmp_path / "sessions", 10, "--workers", "1", "--no-test")
    assert "imported on the fly" in proc.stdout
    assert sorted(p.name for p in src.rglob("*")) == before  # nothing written beside their files
    assert (session / "task" / "task.toml").is_file()
    final = scored(events(session))
    baseline = final[0]["score"]
    best = max(e["score"] for e in final if e["valid"] and e["score"] is not None)
    assert best > baseline


@pytest.mark.slow
@pytest.mark.skipif(not REAL_OE.is_dir(), reason=f"OpenEvolve's example is not at {REAL_OE}")
def test_real_openevolve_function_minimization_imports_and_scores(tmp_path):
    out = tmp_path / "fm"
    proc = import_task(REAL_OE, out)
    assert "baseline stage1: score" in proc.stdout and "baseline stage2: score" in proc.stdout


@pytest.mark.slow
@pytest.mark.skipif(not REAL_SE.is_dir(), reason=f"ShinkaEvolve's example is not at {REAL_SE}")
def test_real_shinka_circle_packing_imports_and_scores(tmp_path):
    out = tmp_path / "cp"
    proc = import_task(REAL_SE, out)
    results = tmp_path / "results"
    load(REAL_SE / "evaluate.py", "se_real").main(str(REAL_SE / "initial.py"), str(results))
    theirs = json.loads((results / "metrics.json").read_text())["combined_score"]
    assert f"baseline full: score {theirs:.6g}" in proc.stdout
