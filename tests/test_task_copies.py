"""What task folders promise beyond task.toml's schema: the deliberate copies in tasks/ stay
byte-identical, and the brief the agent reads says nothing about the sealed side.

A task folder is self-contained (the harness copies its repo/ into a session and runs its
evaluator/ from where it is), so code shared by two tasks, or by a task's sealed evaluator and
the API its candidates import, is copied rather than imported. Each group below is one
logical file set: a change must go to every copy.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.fixtures.tasks import TASKS

CBL_TASKS = ("cbl", "cbl-multi")
ALL_TASKS = sorted(p.parent.name for p in TASKS.glob("*/task.toml"))


def files(root: Path) -> list[Path]:
    found = sorted(p.relative_to(root) for p in root.rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts)
    assert found, f"no files under {root}"
    return found


def assert_same(a: Path, b: Path, names: list[Path]) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{a / name} != {b / name}"


@pytest.mark.parametrize("task", CBL_TASKS)
def test_sealed_sky_spot_is_the_repos_copy(task):
    """The evaluator simulates with its own sky_spot, never the worktree's: the two are one."""
    sealed, public = TASKS / task / "evaluator" / "sky_spot", TASKS / task / "repo" / "sky_spot"
    assert files(sealed) == files(public)
    assert_same(sealed, public, files(public))


@pytest.mark.parametrize("where", ["repo", "evaluator"])
def test_both_cbl_tasks_share_the_sky_spot_code(where):
    """Only the fitted trace parameters in data/ are each task's own."""
    single, multi = (TASKS / t / where / "sky_spot" for t in CBL_TASKS)
    code = [f for f in files(single) if f.parts[0] != "data"]
    assert code == [f for f in files(multi) if f.parts[0] != "data"]
    assert any(f.suffix == ".py" for f in code)
    assert_same(single, multi, code)


def test_both_cbl_tasks_share_the_policy_process_and_lockstep_driver():
    single, multi = (TASKS / t / "evaluator" for t in CBL_TASKS)
    assert_same(single, multi, [Path("lockstep.py"), Path("jail/side.py")])


def test_txn_sealed_simulator_is_the_candidate_apis_copy():
    """The evaluator scores with runtime/ (and hands runtime/'s files to the candidate side),
    never with the worktree's copy; the two must not drift apart."""
    runtime, repo = TASKS / "txn-scheduling" / "evaluator" / "runtime", TASKS / "txn-scheduling" / "repo"
    expected = [Path(f"data/workload_{k}.json") for k in (1, 2, 3)] + [
        Path("txn_simulator.py"), Path("workloads.py")]
    assert files(runtime) == expected
    assert_same(runtime, repo, expected)


def test_every_task_is_here():
    assert len(ALL_TASKS) >= 9, ALL_TASKS


@pytest.mark.parametrize("task", ALL_TASKS)
def test_the_agent_reads_brief_md_and_maintainers_readme_md(task):
    folder = TASKS / task
    with open(folder / "task.toml", "rb") as f:
        assert tomllib.load(f)["brief"] == "BRIEF.md"
    assert (folder / "BRIEF.md").is_file() and (folder / "README.md").is_file()


@pytest.mark.parametrize("task", ALL_TASKS)
def test_no_brief_points_at_the_evaluators_side(task):
    """The brief goes into the agent's prompt: it must not tell a candidate where the sealed
    evaluator lives or how to reach it through /proc (the jail hides both; the brief must
    not invite trying)."""
    text = (TASKS / task / "BRIEF.md").read_text()
    lowered = text.lower()
    for banned in ("/proc", "ppid", "evaluator/", str(TASKS / task / "evaluator")):
        assert banned.lower() not in lowered, f"{task}/BRIEF.md mentions {banned!r}"
