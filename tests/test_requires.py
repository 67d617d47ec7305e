"""Tasks say what they need (`requires` in task.toml): `tasks check`, `tasks eval` and `solve` verify
it in the evaluator's interpreter and stop, before anything is created, with the install command."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.task import Task, TaskError
from fixtures.helpers import CLI, cli_env, git, run_cli, toy_task

TASKS = Path(__file__).resolve().parent.parent / "tasks"


def with_requires(task: Path, requires: str) -> Path:
    toml = task / "task.toml"
    toml.write_text(re.sub(r"(?m)^brief = .*$", lambda m: f"{m.group(0)}\nrequires = {requires}", toml.read_text()))
    return task


def test_a_missing_or_too_old_requirement_stops_check_eval_and_solve_before_anything(tmp_path):
    task = with_requires(toy_task(tmp_path), '["numpy>=1.26", "adrs-surely-absent>=1", "numpy<1"]')
    assert Task.load(task).missing() == ["adrs-surely-absent>=1", "numpy<1"]
    sessions = tmp_path / "sessions"
    for args in (["tasks", "check", str(task)], ["tasks", "eval", str(task)],
                 ["solve", str(task), "--model", "tuner", "--sessions-dir", str(sessions), "--no-tui"]):
        proc = run_cli(*args, check=False)
        assert proc.returncode == 2, proc.stdout
        line, = proc.stdout.strip().splitlines()
        assert "needs adrs-surely-absent>=1, numpy<1" in line
        assert "install: pip install 'adrs-surely-absent>=1' 'numpy<1'" in line
        assert "Traceback" not in proc.stderr
    assert not sessions.exists()


def test_what_the_interpreter_has_passes(tmp_path):
    task = with_requires(toy_task(tmp_path), '["numpy>=1.26", "pydantic>=2"]')
    assert Task.load(task).missing() == []
    assert "ok: task 'toy'" in run_cli("tasks", "check", str(task)).stdout


def test_a_requirement_that_is_not_one_is_a_task_toml_error(tmp_path):
    task = with_requires(toy_task(tmp_path), '["numpy >= = 1"]')
    with pytest.raises(TaskError, match=r"requires.*not a pip requirement"):
        Task.load(task)


@pytest.mark.parametrize("name, needs", [("eplb", "torch>=2"), ("llm-sql", "pandas>=2,<3"),
                                         ("cloudcast", "networkx>=3")])
def test_the_shipped_tasks_name_their_extra_dependencies(name, needs):
    task = Task.load(TASKS / name)
    assert needs in task.requires and "numpy>=1.26" in task.requires
    assert task.install_hint([needs]).endswith(f"(or pip install -e '.[{name}]' in adrs-agent's folder)")


def test_every_shipped_task_checks_ok_here():
    for folder in sorted(p for p in TASKS.iterdir() if (p / "task.toml").is_file()):
        assert Task.load(folder).missing() == [], folder.name


def test_a_relative_candidate_repo_is_read_from_the_current_folder(tmp_path):
    task = toy_task(tmp_path)
    repo = tmp_path / "work" / "cand"
    shutil.copytree(task / "repo", repo)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    commit = git(repo, "rev-parse", "HEAD").strip()
    proc = subprocess.run([*CLI, "tasks", "eval", str(task), "--candidate", f"cand@{commit}", "--stage", "quick"],
                          cwd=repo.parent, capture_output=True, text=True, env=cli_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"valid": true' in proc.stdout
    missing = subprocess.run([*CLI, "tasks", "eval", str(task), "--candidate", "nowhere@HEAD"], cwd=repo.parent,
                             capture_output=True, text=True, env=cli_env())
    assert missing.returncode == 2 and "not a git repository" in missing.stdout and "Traceback" not in missing.stderr
