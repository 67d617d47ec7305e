"""Task.load on real task folders: a valid one loads; every broken field is named with a fix."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.task import Task, TaskError

GOOD_TOML = """\
name = "toy"
brief = "README.md"
[repo]
source = "repo"
editable = ["pkg/**/*.py"]
[evaluator]
command = ["python", "evaluate.py", "--stage", "{stage}", "--candidate", "{worktree}"]
cwd = "evaluator"
stages = ["quick", "full"]
thresholds = { quick = 0.5 }
test_stage = "test"
timeout_s = 60
direction = "maximize"
[sandbox]
memory_mb = 1024
network = false
allow_run = true
"""


def write_task(root: Path, toml: str | None = GOOD_TOML) -> Path:
    """A toy task folder: task.toml, README.md, repo/pkg/policy.py, evaluator/evaluate.py."""
    task = root / "toy-task"
    (task / "repo" / "pkg").mkdir(parents=True)
    (task / "repo" / "pkg" / "policy.py").write_text("def policy(x):\n    return x\n")
    (task / "repo" / "notes.txt").write_text("not editable\n")
    (task / "evaluator").mkdir()
    (task / "evaluator" / "evaluate.py").write_text(
        "import json\nprint(json.dumps({'score': 1.0}))\n")
    (task / "README.md").write_text("# Toy\nMake policy better.\n")
    if toml is not None:
        (task / "task.toml").write_text(toml)
    return task


def load_error(task_dir: Path) -> str:
    with pytest.raises(TaskError) as info:
        Task.load(task_dir)
    return str(info.value)


def assert_problem(msg: str, field: str, *words: str) -> None:
    lines = [line for line in msg.splitlines() if field in line]
    assert lines, f"no problem names {field!r}:\n{msg}"
    assert any("fix" in line and all(w in line for w in words) for line in lines), msg


def broken(tmp_path: Path, old: str, new: str) -> Path:
    assert old in GOOD_TOML, old
    return write_task(tmp_path, GOOD_TOML.replace(old, new))


def test_valid_minimal_task_loads(tmp_path):
    task_dir = write_task(tmp_path)
    task = Task.load(task_dir)
    assert task.name == "toy"
    assert task.dir == task_dir.resolve()
    assert "Make policy better." in task.brief
    assert Path(task.source) == (task_dir / "repo").resolve()
    assert task.editable == ["pkg/**/*.py"]
    assert task.allow_run is True
    ev = task.evaluator
    assert ev.stages == ["quick", "full"]
    assert ev.thresholds == {"quick": 0.5}
    assert ev.test_stage == "test"
    assert ev.timeout_s == 60.0
    assert ev.direction == "maximize"
    assert ev.memory_mb == 1024
    assert ev.network is False
    assert ev.cwd == (task_dir / "evaluator").resolve()
    assert ev.command[0] == "python"


def test_defaults_when_optional_fields_left_out(tmp_path):
    toml = """\
name = "toy"
brief = "README.md"
[repo]
source = "repo"
editable = ["pkg/*.py"]
[evaluator]
command = ["python", "evaluate.py", "{worktree}"]
cwd = "evaluator"
stages = ["only"]
"""
    task = Task.load(write_task(tmp_path, toml))
    assert task.evaluator.direction == "maximize"
    assert task.evaluator.test_stage is None
    assert task.evaluator.thresholds == {}
    assert task.evaluator.timeout_s > 0
    assert task.evaluator.network is False


def test_missing_task_toml(tmp_path):
    task_dir = write_task(tmp_path, toml=None)
    msg = load_error(task_dir)
    assert "task.toml" in msg
    assert str(task_dir) in msg
    assert "Task format" in msg  # points at the README section that explains the fix


def test_toml_syntax_error(tmp_path):
    task_dir = write_task(tmp_path, GOOD_TOML.replace('name = "toy"', 'name = "toy'))
    msg = load_error(task_dir)
    assert "task.toml" in msg
    assert "not valid TOML" in msg
    assert "fix" in msg


def test_missing_name(tmp_path):
    msg = load_error(broken(tmp_path, 'name = "toy"\n', ""))
    assert_problem(msg, "name", "toy-task")  # the fix suggests the folder's name


def test_missing_brief(tmp_path):
    msg = load_error(broken(tmp_path, 'brief = "README.md"\n', ""))
    assert_problem(msg, "brief", "BRIEF.md")


def test_brief_file_absent(tmp_path):
    msg = load_error(broken(tmp_path, 'brief = "README.md"', 'brief = "PROBLEM.md"'))
    assert_problem(msg, "brief", "PROBLEM.md", "does not exist")


def test_repo_source_folder_missing(tmp_path):
    msg = load_error(broken(tmp_path, 'source = "repo"', 'source = "nowhere"'))
    assert_problem(msg, "[repo] source", "nowhere", "does not exist")


def test_repo_source_missing(tmp_path):
    msg = load_error(broken(tmp_path, 'source = "repo"\n', ""))
    assert_problem(msg, "[repo] source", "missing")


@pytest.mark.parametrize("value", ['"pkg/**/*.py"', "[]", "[1]"], ids=["string", "empty", "int"])
def test_editable_not_a_nonempty_list_of_strings(tmp_path, value):
    msg = load_error(broken(tmp_path, 'editable = ["pkg/**/*.py"]', f"editable = {value}"))
    assert_problem(msg, "[repo] editable", "non-empty list")


def test_editable_glob_matching_nothing(tmp_path):
    msg = load_error(broken(tmp_path, 'editable = ["pkg/**/*.py"]',
                            'editable = ["pkg/**/*.py", "src/**/*.rs"]'))
    assert_problem(msg, "[repo] editable", "src/**/*.rs", "matches no file")
    assert "pkg/**/*.py" not in msg  # the good glob is not reported


def test_evaluator_command_missing(tmp_path):
    msg = load_error(broken(
        tmp_path,
        'command = ["python", "evaluate.py", "--stage", "{stage}", "--candidate", "{worktree}"]\n',
        ""))
    assert_problem(msg, "[evaluator] command", "non-empty list")


def test_evaluator_program_not_on_path(tmp_path):
    msg = load_error(broken(tmp_path, 'command = ["python", "evaluate.py"',
                            'command = ["no-such-program-adrs", "evaluate.py"'))
    assert_problem(msg, "[evaluator] command", "no-such-program-adrs", "not on PATH")


def test_evaluator_python_script_missing(tmp_path):
    msg = load_error(broken(tmp_path, '"python", "evaluate.py"', '"python", "evaluat.py"'))
    assert_problem(msg, "[evaluator] command", "evaluat.py", "does not exist")


def test_evaluator_unknown_placeholder(tmp_path):
    msg = load_error(broken(tmp_path, '"{stage}"', '"{stgae}"'))
    assert_problem(msg, "[evaluator] command", "stgae", "unknown placeholder")


def test_evaluator_command_without_worktree(tmp_path):
    msg = load_error(broken(tmp_path, '"--candidate", "{worktree}"', '"--candidate", "."'))
    assert_problem(msg, "[evaluator] command", "{worktree}")


def test_evaluator_lone_brace_is_a_task_error(tmp_path):
    task_dir = broken(tmp_path, '"--stage", "{stage}"', '"--stage", "{stage}", "--x", "a{b"')
    try:
        Task.load(task_dir)
    except TaskError as e:
        assert_problem(str(e), "[evaluator] command")
    else:
        pytest.fail("a lone '{' was accepted")


def test_evaluator_empty_placeholder_rejected(tmp_path):
    task_dir = broken(tmp_path, '"--stage", "{stage}"', '"--stage", "{stage}", "--x", "{}"')
    msg = load_error(task_dir)
    assert_problem(msg, "[evaluator] command", "placeholder")


def test_evaluator_cwd_missing(tmp_path):
    msg = load_error(broken(tmp_path, 'cwd = "evaluator"', 'cwd = "evaluatr"'))
    assert_problem(msg, "[evaluator] cwd", "evaluatr", "does not exist")


def test_evaluator_cwd_inside_repo(tmp_path):
    task_dir = broken(tmp_path, 'cwd = "evaluator"', 'cwd = "repo/ev"')
    (task_dir / "repo" / "ev").mkdir()
    (task_dir / "repo" / "ev" / "evaluate.py").write_text("print('{}')\n")
    msg = load_error(task_dir)
    assert_problem(msg, "[evaluator] cwd", "inside the editable repo")


def test_evaluator_cwd_is_the_repo(tmp_path):
    task_dir = broken(tmp_path, 'cwd = "evaluator"', 'cwd = "repo"')
    (task_dir / "repo" / "evaluate.py").write_text("print('{}')\n")
    msg = load_error(task_dir)
    assert_problem(msg, "[evaluator] cwd", "inside the editable repo")


def test_stages_empty(tmp_path):
    msg = load_error(broken(tmp_path, 'stages = ["quick", "full"]', "stages = []"))
    assert_problem(msg, "[evaluator] stages", "non-empty list")


def test_bad_stage_name(tmp_path):
    msg = load_error(broken(tmp_path, 'stages = ["quick", "full"]', 'stages = ["quick", "fu ll"]'))
    assert_problem(msg, "[evaluator] stages", "fu ll")


def test_duplicated_stage(tmp_path):
    msg = load_error(broken(tmp_path, 'stages = ["quick", "full"]',
                            'stages = ["quick", "full", "quick"]'))
    assert_problem(msg, "[evaluator] stages", "twice")


def test_test_stage_also_in_stages(tmp_path):
    msg = load_error(broken(tmp_path, 'test_stage = "test"', 'test_stage = "full"'))
    assert_problem(msg, "[evaluator] test_stage", "full")


def test_threshold_for_unknown_stage(tmp_path):
    msg = load_error(broken(tmp_path, "thresholds = { quick = 0.5 }",
                            "thresholds = { quick = 0.5, fulll = 0.9 }"))
    assert_problem(msg, "[evaluator] thresholds", "fulll", "unknown stage")


def test_threshold_not_a_number(tmp_path):
    msg = load_error(broken(tmp_path, "thresholds = { quick = 0.5 }",
                            'thresholds = { quick = "high" }'))
    assert_problem(msg, "[evaluator] thresholds.quick", "not a number")


@pytest.mark.parametrize("value", ["-5", "0", '"60"'])
def test_timeout_not_positive(tmp_path, value):
    msg = load_error(broken(tmp_path, "timeout_s = 60", f"timeout_s = {value}"))
    assert_problem(msg, "[evaluator] timeout_s", "positive")


def test_direction_invalid(tmp_path):
    msg = load_error(broken(tmp_path, 'direction = "maximize"', 'direction = "maximise"'))
    assert_problem(msg, "[evaluator] direction", "maximise")


@pytest.mark.parametrize("value", ["0", "-1", "512.5", '"1G"', "true"])
def test_memory_mb_invalid(tmp_path, value):
    msg = load_error(broken(tmp_path, "memory_mb = 1024", f"memory_mb = {value}"))
    assert_problem(msg, "[sandbox] memory_mb", "positive integer")


def test_network_not_bool(tmp_path):
    msg = load_error(broken(tmp_path, "network = false", 'network = "no"'))
    assert_problem(msg, "[sandbox] network", "true/false")


def test_unknown_field_in_evaluator(tmp_path):
    msg = load_error(broken(tmp_path, 'stages = ["quick", "full"]',
                            'stages = ["quick", "full"]\nstagse = ["x"]'))
    assert_problem(msg, "[evaluator] stagse", "unknown field", "stages")


def test_unknown_top_level_field(tmp_path):
    msg = load_error(broken(tmp_path, 'name = "toy"', 'name = "toy"\nbreif = "x"'))
    assert_problem(msg, "breif", "unknown field")


def test_several_errors_reported_at_once(tmp_path):
    toml = (GOOD_TOML.replace('name = "toy"\n', "")
            .replace('direction = "maximize"', 'direction = "up"')
            .replace("network = false", "network = 1")
            .replace("timeout_s = 60", "timeout_s = -1"))
    msg = load_error(write_task(tmp_path, toml))
    assert msg.startswith("4 problem(s)")
    for field in ("name", "[evaluator] direction", "[sandbox] network", "[evaluator] timeout_s"):
        assert_problem(msg, field)


def _cli(*args: str) -> subprocess.CompletedProcess:
    """The installed `adrs-agent` script (or the same entry point on this interpreter)."""
    exe = shutil.which("adrs-agent")
    argv = [exe] if exe else [sys.executable, "-c", "from agent.cli import main; main()"]
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=120, env=env)


def test_cli_tasks_check_broken_task_exits_2(tmp_path):
    task_dir = broken(tmp_path, 'direction = "maximize"', 'direction = "sideways"')
    proc = _cli("tasks", "check", str(task_dir))
    assert proc.returncode == 2, proc.stderr
    out = proc.stdout + proc.stderr
    assert "direction" in out
    assert "sideways" in out


def test_cli_tasks_check_good_task_exits_0(tmp_path):
    proc = _cli("tasks", "check", str(write_task(tmp_path)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok" in proc.stdout
    assert "toy" in proc.stdout


# -- the schema --------------------------------------------------------------------------------
def test_defaults_have_one_home_evaluator_spec(tmp_path):
    from sandbox.evaluate import EvaluatorSpec

    toml = GOOD_TOML.replace("timeout_s = 60\n", "").replace("[sandbox]\nmemory_mb = 1024\n", "[sandbox]\n")
    task = Task.load(write_task(tmp_path, toml))
    bare = EvaluatorSpec(command=[], cwd=Path("."), stages=["quick"])
    assert task.evaluator.timeout_s == bare.timeout_s
    assert task.evaluator.memory_mb == bare.memory_mb
    assert (task.evaluator.sandbox, task.evaluator.image) == (bare.sandbox, bare.image)


def test_every_field_of_task_toml_is_documented():
    from agent.task import TaskFile

    tables = [TaskFile, *(TaskFile.model_fields[t].annotation for t in ("repo", "evaluator", "sandbox"))]
    for table in tables:
        for name, info in table.model_fields.items():
            assert info.description, f"{table.__name__}.{name} has no docstring"


def test_secret_env_names_refused(tmp_path):
    msg = load_error(broken(tmp_path, "memory_mb = 1024", 'memory_mb = 1024\nenv = ["OMP_NUM_THREADS", "MY_API_KEY"]'))
    assert_problem(msg, "[sandbox] env", "MY_API_KEY", "secrets")
    assert "OMP_NUM_THREADS" not in msg


def test_extra_stage_also_a_cascade_stage(tmp_path):
    msg = load_error(broken(tmp_path, 'test_stage = "test"', 'test_stage = "test"\nextra_stages = ["lb", "quick"]'))
    assert_problem(msg, "[evaluator] extra_stages", "quick", "already")


def test_unknown_sandbox_backend(tmp_path):
    msg = load_error(broken(tmp_path, "network = false", 'network = false\nbackend = "chroot"'))
    assert_problem(msg, "[sandbox] backend", "chroot", "bwrap")


def test_a_table_written_as_a_value(tmp_path):
    toml = GOOD_TOML.split("[repo]")[0] + 'repo = "repo"\n[evaluator]' + GOOD_TOML.split("[evaluator]")[1]
    msg = load_error(write_task(tmp_path, toml))
    assert_problem(msg, "[repo]", "not a table")


def test_problems_in_one_table_do_not_hide_those_of_another(tmp_path):
    toml = (GOOD_TOML.replace('direction = "maximize"', 'direction = "up"')
            .replace('editable = ["pkg/**/*.py"]', 'editable = ["src/*.rs"]'))
    msg = load_error(write_task(tmp_path, toml))
    assert msg.startswith("2 problem(s)")
    assert_problem(msg, "[evaluator] direction", "up")
    assert_problem(msg, "[repo] editable", "src/*.rs", "matches no file")


def test_description_is_a_known_field(tmp_path):
    task = Task.load(broken(tmp_path, 'name = "toy"', 'name = "toy"\ndescription = "A toy."'))
    assert task.name == "toy"


def test_sandbox_cpus_and_gpus_reach_the_evaluator_spec(tmp_path):
    from fixtures.helpers import toy_task

    task = toy_task(tmp_path)
    toml = task / "task.toml"
    toml.write_text(toml.read_text().replace("[sandbox]\n", "[sandbox]\ncpus = 2\ngpus = 1\n"))
    spec = Task.load(task).evaluator
    assert (spec.cpus, spec.gpus) == (2.0, 1.0)
    toml.write_text(toml.read_text().replace("gpus = 1", "gpus = -1"))
    with pytest.raises(TaskError, match="gpus"):
        Task.load(task)
