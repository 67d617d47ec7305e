"""Task: loads and validates a task folder's task.toml; every error names the field and the fix."""

from __future__ import annotations

import re
import shutil
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path

from sandbox.evaluate import EvaluatorSpec
from sandbox.jail import BACKENDS
from sandbox.run import SECRET_NAME
from sandbox.git import is_git_source, matches

STAGE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
PLACEHOLDERS = {"stage", "worktree", "data", "python"}
KNOWN = {
    "": {"name", "brief", "repo", "evaluator", "sandbox", "description"},
    "repo": {"source", "ref", "editable"},
    "evaluator": {"command", "cwd", "stages", "thresholds", "test_stage", "extra_stages",
                  "timeout_s", "direction"},
    "sandbox": {"memory_mb", "network", "allow_run", "backend", "image", "env"},
}


class TaskError(ValueError):
    """A task folder that cannot be used; the message lists every problem and its fix."""


@dataclass
class Task:
    name: str
    dir: Path
    brief: str
    source: str
    ref: str | None
    editable: list[str]
    evaluator: EvaluatorSpec
    allow_run: bool

    @classmethod
    def load(cls, task_dir: str | Path) -> "Task":
        task_dir = Path(task_dir).resolve()
        path = task_dir / "task.toml"
        if not path.is_file():
            raise TaskError(f"{path}: no task.toml here; fix: write one (see README, "
                            "'Task format')")
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise TaskError(f"{path}: not valid TOML: {e}; fix the syntax there") from e
        return _validate(task_dir, path, raw)


def _validate(task_dir: Path, path: Path, raw: dict) -> Task:
    errors: list[str] = []

    def err(field: str, problem: str, fix: str) -> None:
        errors.append(f"{path}: {field}: {problem}; fix: {fix}")

    for table, keys in KNOWN.items():
        section = raw if not table else raw.get(table, {})
        if not isinstance(section, dict):
            err(f"[{table}]", "is not a table", f"write it as a [{table}] section")
            continue
        for key in section:
            if key not in keys and not (not table and key in KNOWN):
                where = f"[{table}] {key}" if table else key
                err(where, "unknown field", f"remove it or use one of {sorted(keys)}")
    repo = raw.get("repo") if isinstance(raw.get("repo"), dict) else {}
    ev = raw.get("evaluator") if isinstance(raw.get("evaluator"), dict) else {}
    sb = raw.get("sandbox") if isinstance(raw.get("sandbox"), dict) else {}

    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        err("name", "missing or empty", f'add name = "{task_dir.name}"')
        name = task_dir.name

    brief = ""
    brief_name = raw.get("brief")
    if not isinstance(brief_name, str):
        err("brief", "missing", 'add brief = "README.md" naming the problem statement file')
    elif not (task_dir / brief_name).is_file():
        err("brief", f"file {brief_name!r} does not exist in {task_dir}",
            "write the problem statement there or point brief at the right file")
    else:
        brief = (task_dir / brief_name).read_text()

    source = repo.get("source")
    source_dir: Path | None = None
    if not isinstance(source, str) or not source:
        err("[repo] source", "missing", 'add source = "repo" (a folder, or a git URL/path)')
        source = ""
    elif is_git_source(source) and not (task_dir / source).is_dir():
        pass  # a git URL: checked when cloned
    elif (task_dir / source).is_dir():
        source_dir = task_dir / source
        source = str(source_dir)
    else:
        err("[repo] source", f"folder {source!r} does not exist in {task_dir}",
            "create it with the baseline code, or give a git URL")
    ref = repo.get("ref")
    editable = repo.get("editable")
    if not isinstance(editable, list) or not editable or not all(
            isinstance(g, str) and g for g in editable):
        err("[repo] editable", "must be a non-empty list of glob strings",
            'e.g. editable = ["policy/**/*.py"]')
        editable = []
    elif source_dir is not None:
        files = [p.relative_to(source_dir).as_posix() for p in source_dir.rglob("*")
                 if p.is_file() and ".git" not in p.parts]
        for glob in editable:
            if not any(matches(f, [glob]) for f in files):
                err("[repo] editable", f"glob {glob!r} matches no file in {source_dir}",
                    "correct the glob (paths are relative to the repo folder)")

    cwd_name = ev.get("cwd", ".")
    cwd = task_dir / cwd_name if isinstance(cwd_name, str) else task_dir
    if not isinstance(cwd_name, str) or not cwd.is_dir():
        err("[evaluator] cwd", f"folder {cwd_name!r} does not exist in {task_dir}",
            "point cwd at the sealed evaluator folder")
    elif source_dir is not None and (cwd.resolve() == source_dir.resolve()
                                     or source_dir.resolve() in cwd.resolve().parents):
        err("[evaluator] cwd", "is inside the editable repo, so agents could change it",
            "move the evaluator to its own folder beside the repo")

    command = ev.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        err("[evaluator] command", "must be a non-empty list of strings",
            'e.g. command = ["python", "evaluate.py", "--stage", "{stage}", '
            '"--candidate", "{worktree}"]')
        command = []
    else:
        exe = command[0]
        if exe not in ("python", "python3", "{python}") and not shutil.which(exe) and not (
                cwd / exe).exists():
            err("[evaluator] command", f"program {exe!r} is not on PATH nor in {cwd}",
                "install it, or name the right program")
        if len(command) > 1 and exe in ("python", "python3", "{python}") and command[1].endswith(
                ".py") and "{" not in command[1] and not (cwd / command[1]).is_file():
            err("[evaluator] command", f"script {command[1]!r} does not exist in {cwd}",
                "write the evaluator script there or fix its name")
        try:
            used = {f for part in command for _, f, _, _ in string.Formatter().parse(part)
                    if f is not None}
        except ValueError as e:
            err("[evaluator] command", f"bad braces ({e})", "write a literal { or } as {{ or }}")
            used = {"worktree"}
        if used - PLACEHOLDERS:
            err("[evaluator] command", f"unknown placeholders {sorted(used - PLACEHOLDERS)}",
                f"use only {{{'}, {'.join(sorted(PLACEHOLDERS))}}}")
        if "worktree" not in used:
            err("[evaluator] command", "never mentions {worktree}",
                "pass the candidate's folder to the evaluator with {worktree}")

    stages = ev.get("stages")
    if not isinstance(stages, list) or not stages or not all(isinstance(s, str) for s in stages):
        err("[evaluator] stages", "must be a non-empty list of stage names",
            'e.g. stages = ["quick", "full"]')
        stages = []
    else:
        for s in stages:
            if not STAGE_NAME.match(s):
                err("[evaluator] stages", f"bad stage name {s!r}",
                    "use letters, digits, '-' and '_' only")
        if len(set(stages)) != len(stages):
            err("[evaluator] stages", "a stage is listed twice", "list each stage once")
    test_stage = ev.get("test_stage")
    if test_stage is not None and (not isinstance(test_stage, str) or not STAGE_NAME.match(test_stage)):
        err("[evaluator] test_stage", f"bad stage name {test_stage!r}",
            "use letters, digits, '-' and '_' only")
    elif test_stage in stages:
        err("[evaluator] test_stage", f"{test_stage!r} is also a cascade stage",
            "the held-out stage must not be in stages")
    extra = ev.get("extra_stages", [])
    if not isinstance(extra, list) or not all(isinstance(s, str) and STAGE_NAME.match(s)
                                              for s in extra):
        err("[evaluator] extra_stages", "must be a list of stage names",
            'e.g. extra_stages = ["leaderboard"]')
        extra = []
    elif set(extra) & (set(stages) | {test_stage}):
        err("[evaluator] extra_stages", f"{sorted(set(extra) & (set(stages) | {test_stage}))} "
            "is already a cascade or test stage", "list each stage in one place only")
    thresholds = ev.get("thresholds", {})
    if not isinstance(thresholds, dict):
        err("[evaluator] thresholds", "must be a table", "e.g. thresholds = { quick = 0.5 }")
        thresholds = {}
    for s, v in thresholds.items():
        if s not in stages:
            err("[evaluator] thresholds", f"threshold for unknown stage {s!r}",
                f"use one of the stages {stages}")
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            err(f"[evaluator] thresholds.{s}", f"{v!r} is not a number", "give a number")
    timeout = ev.get("timeout_s", 300)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        err("[evaluator] timeout_s", f"{timeout!r} is not a positive number", "e.g. timeout_s = 300")
        timeout = 300
    direction = ev.get("direction", "maximize")
    if direction not in ("maximize", "minimize"):
        err("[evaluator] direction", f"{direction!r} is neither maximize nor minimize",
            'write direction = "maximize" or "minimize"')
    memory = sb.get("memory_mb", 4096)
    if not isinstance(memory, int) or isinstance(memory, bool) or memory <= 0:
        err("[sandbox] memory_mb", f"{memory!r} is not a positive integer", "e.g. memory_mb = 4096")
        memory = 4096
    network = sb.get("network", False)
    if not isinstance(network, bool):
        err("[sandbox] network", f"{network!r} is not true/false", "write network = false")
    allow_run = sb.get("allow_run", True)
    if not isinstance(allow_run, bool):
        err("[sandbox] allow_run", f"{allow_run!r} is not true/false", "write allow_run = true")
    backend = sb.get("backend", "auto")
    if backend not in ("auto", *BACKENDS):
        err("[sandbox] backend", f"{backend!r} is not a sandbox backend",
            f"use one of auto, {', '.join(BACKENDS)}")
        backend = "auto"
    image = sb.get("image", "")
    if not isinstance(image, str):
        err("[sandbox] image", f"{image!r} is not a string", 'e.g. image = "python:3.11-slim"')
        image = ""
    env_names = sb.get("env", [])
    if not isinstance(env_names, list) or not all(isinstance(n, str) and n for n in env_names):
        err("[sandbox] env", f"{env_names!r} is not a list of variable names",
            'e.g. env = ["OMP_NUM_THREADS"]')
        env_names = []
    secret = [n for n in env_names if SECRET_NAME.search(n)]
    if secret:
        err("[sandbox] env", f"{secret} look like secrets; they never reach evaluators",
            "remove them (pass data with --data instead)")

    if errors:
        raise TaskError(f"{len(errors)} problem(s) in {path}:\n- " + "\n- ".join(errors))
    spec = EvaluatorSpec(command=command, cwd=cwd.resolve(), stages=stages,
                         thresholds={k: float(v) for k, v in thresholds.items()},
                         test_stage=test_stage, extra_stages=list(extra),
                         timeout_s=float(timeout), direction=direction,
                         memory_mb=memory, network=bool(network), sandbox=backend,
                         image=image, env=list(env_names))
    return Task(name=name, dir=task_dir, brief=brief, source=source, ref=ref,
                editable=list(editable), evaluator=spec, allow_run=bool(allow_run))
