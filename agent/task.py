"""Task: loads and validates a task folder's task.toml; every error names the field and the fix.

The file's schema is the pydantic model `TaskFile` (its fields' docstrings document task.toml).
What a schema cannot see (files that must exist, stages that must agree, the evaluator's
command) is checked after it. Every problem is reported at once, one line each:
"<path>: <field>: <problem>; fix: <fix>".
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import shutil
import string
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_origin

from packaging.requirements import InvalidRequirement, Requirement
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from agent.regions import RegionError, blocks
from sandbox.evaluate import EvaluatorSpec
from sandbox.git import is_git_source, matches
from sandbox.jail import BACKENDS
from sandbox.run import SECRET_NAME

STAGE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
PLACEHOLDERS = {"stage", "worktree", "data", "python"}
PYTHONS = ("python", "python3", "{python}")
# The evaluator's defaults have their home in EvaluatorSpec (the sandbox cannot import the
# agent); task.toml's fields take them from there.
SPEC = {f.name: f.default for f in dataclasses.fields(EvaluatorSpec)}


class TaskError(ValueError):
    """A task folder that cannot be used; the message lists every problem and its fix."""


@dataclass(frozen=True)
class Fix:
    """How to fix a field, for its error lines; `problem` replaces the schema's own wording
    ({value} stands for the value found)."""

    fix: str
    problem: str = ""


def _problem(problem: str, fix: str) -> PydanticCustomError:
    """A validator's error that carries its own fix."""
    return PydanticCustomError("task", problem, {"fix": fix})


def _stage_name(name: str) -> str:
    if not STAGE_NAME.match(name):
        raise _problem(f"bad stage name {name!r}", "use letters, digits, '-' and '_' only")
    return name


def _listed_once(stages: list[str]) -> list[str]:
    if len(set(stages)) != len(stages):
        raise _problem("a stage is listed twice", "list each stage once")
    return stages


def _no_secrets(names: list[str]) -> list[str]:
    secret = [n for n in names if SECRET_NAME.search(n)]
    if secret:
        raise _problem(f"{secret} look like secrets; they never reach evaluators",
                       "remove them (pass data with --data instead)")
    return names


StageName = Annotated[str, AfterValidator(_stage_name)]


def _requirement(text: str) -> str:
    try:
        Requirement(text)
    except InvalidRequirement as e:
        raise ValueError(f"{text!r} is not a pip requirement ({e})") from None
    return text

NonEmpty = Annotated[str, Field(min_length=1)]
STAGE_FIX = Fix("use letters, digits, '-' and '_' only")


class _Table(BaseModel):
    # strict: TOML already has types; "60" is not a number of seconds, nor 1 a boolean
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, use_attribute_docstrings=True)


class Repo(_Table):
    source: Annotated[str, Field(min_length=1), Fix('add source = "repo" (a folder, or a git URL/path)')]
    """The baseline: a folder of the task (it becomes the root commit), or a git URL/path."""
    ref: Annotated[str | None, Fix('e.g. ref = "main"')] = None
    """Branch, tag or commit of a git source (none: its default branch)."""
    editable: Annotated[list[NonEmpty], Field(min_length=1),
                        Fix('e.g. editable = ["policy/**/*.py"]', "must be a non-empty list of glob strings")]
    """Globs, relative to the repo, of the files agents may change; commits touching others are
    rejected."""
    regions: Annotated[list[NonEmpty], Fix('e.g. regions = ["initial_program.py"]')] = Field(default_factory=list)
    """Globs of editable files in which only the text between lines holding EVOLVE-BLOCK-START and
    EVOLVE-BLOCK-END may change (the markers stay); commits changing anything else there are
    rejected with the line numbers."""


class Evaluator(_Table):
    command: Annotated[list[str], Field(min_length=1), Fix(
        'e.g. command = ["python", "evaluate.py", "--stage", "{stage}", "--candidate", "{worktree}"]',
        "must be a non-empty list of strings")]
    """The evaluator's command line; placeholders {stage}, {worktree}, {data} and {python}
    (a leading python runs on the harness's interpreter)."""
    cwd: Annotated[str, Fix("point cwd at the sealed evaluator folder")] = "."
    """The evaluator's folder, relative to the task: sealed, outside the repo, never shown to
    or editable by the agent."""
    stages: Annotated[list[StageName], Field(min_length=1), AfterValidator(_listed_once),
                      Fix('e.g. stages = ["quick", "full"]', "must be a non-empty list of stage names")]
    """Cascade order; a candidate must pass each stage's threshold to go on to the next."""
    thresholds: Annotated[dict[str, float], Fix("e.g. thresholds = { quick = 0.5 }")] = Field(default_factory=dict)
    """Minimum score per stage (a maximum when direction is minimize) to go on."""
    test_stage: Annotated[StageName | None, STAGE_FIX] = None
    """Held-out stage: only `review` and the end of a run call it."""
    extra_stages: Annotated[list[StageName], Fix('e.g. extra_stages = ["leaderboard"]')] = Field(default_factory=list)
    """Stages only `tasks eval --stage` runs (a leaderboard, say)."""
    timeout_s: Annotated[float, Field(gt=0), Fix("e.g. timeout_s = 300", "{value} is not a positive number")] \
        = SPEC["timeout_s"]
    """Seconds one stage may run before it is stopped."""
    direction: Annotated[Literal["maximize", "minimize"], Fix('write direction = "maximize" or "minimize"')] \
        = SPEC["direction"]
    """Whether a higher or a lower score is better."""


class Sandbox(_Table):
    memory_mb: Annotated[int, Field(gt=0), Fix("e.g. memory_mb = 4096", "{value} is not a positive integer")] \
        = SPEC["memory_mb"]
    """Memory limit of the candidate's jail, in MiB."""
    network: Annotated[bool, Fix("write network = false")] = SPEC["network"]
    """Whether candidate code may use the network."""
    allow_run: Annotated[bool, Fix("write allow_run = true")] = True
    """Whether agents get the `run` tool (shell commands in the jail)."""
    backend: Annotated[Literal[("auto", *BACKENDS)], Fix(f"use one of auto, {', '.join(BACKENDS)}")] \
        = SPEC["sandbox"]
    """Jail for candidate code: auto (bwrap where it works), bwrap, docker or process (no jail)."""
    image: Annotated[str, Fix('e.g. image = "python:3.11-slim"')] = SPEC["image"]
    """Docker image for the docker backend ("": the one the project builds)."""
    env: Annotated[list[NonEmpty], AfterValidator(_no_secrets), Fix('e.g. env = ["OMP_NUM_THREADS"]')] \
        = Field(default_factory=list)
    """Environment variables passed through to the evaluator (never secrets)."""
    cpus: Annotated[float, Field(gt=0), Fix("e.g. cpus = 2", "{value} is not a positive number")] = 1.0
    """CPUs one evaluation needs (the ray backend requests them per evaluation)."""
    gpus: Annotated[float, Field(ge=0), Fix("e.g. gpus = 1", "{value} is not a number >= 0")] = 0.0
    """GPUs one evaluation needs: with the ray backend, evaluations go to nodes that have them."""


class TaskFile(_Table):
    """task.toml: a task's baseline repo, its sealed evaluator, and the jail candidates run in."""

    name: Annotated[str, Field(pattern=r"\S"), Fix('add name = "{folder}"', "{value} is not a non-empty string")]
    """The task's name (session folders and branches carry it)."""
    brief: Annotated[str, Fix('add brief = "BRIEF.md" naming the problem statement file')]
    """File of the task folder holding the problem statement the agent reads."""
    description: str = ""
    """One line about the task, for listings."""
    requires: Annotated[list[Annotated[str, AfterValidator(_requirement)]],
                        Fix('e.g. requires = ["numpy>=1.26", "torch>=2"]')] = Field(default_factory=list)
    """pip requirements the evaluator and candidates need, checked up front in the interpreter the
    evaluator runs on (`tasks check`, `solve`)."""
    repo: Annotated[Repo, Fix('write a [repo] table with source and editable')]
    """[repo]: the baseline code and what agents may change in it."""
    evaluator: Annotated[Evaluator, Fix('write an [evaluator] table with command and stages')]
    """[evaluator]: the sealed program that scores a candidate, stage by stage."""
    sandbox: Annotated[Sandbox, Fix("write it as a [sandbox] table")] = Field(default_factory=Sandbox)
    """[sandbox]: the jail candidate code and the agents' commands run in."""


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
    requires: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)

    def missing(self) -> list[str]:
        """The requirements the evaluator's interpreter lacks (or has at a version they exclude)."""
        return missing_requirements(self.requires, self.evaluator.command)

    def install_hint(self, missing: list[str]) -> str:
        extra = f" (or pip install -e '.[{self.name}]' in adrs-agent's folder)" if self.name in TASK_EXTRAS else ""
        return "pip install " + " ".join(shlex.quote(r) for r in missing) + extra

    @classmethod
    def load(cls, task_dir: str | Path) -> Task:
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


Err = Callable[[str, str, str], None]


def _validate(task_dir: Path, path: Path, raw: dict) -> Task:
    errors: list[str] = []

    def err(field: str, problem: str, fix: str) -> None:
        errors.append(f"{path}: {field}: {problem}; fix: {fix}")

    doc: TaskFile | None = None
    try:
        doc = TaskFile.model_validate(raw)
    except ValidationError as e:
        for field, problem, fix in _describe(e, task_dir.name):
            err(field, problem, fix)
    # the checks below run on every table that is valid by itself, so all problems show at once
    brief = doc.brief if doc else raw.get("brief") if isinstance(raw.get("brief"), str) else None
    repo = doc.repo if doc else _valid(Repo, raw.get("repo"))
    ev = doc.evaluator if doc else _valid(Evaluator, raw.get("evaluator"))
    brief_text = _check_brief(task_dir, brief, err)
    source, source_dir = _check_repo(task_dir, repo, err)
    cwd = _check_evaluator(task_dir, ev, source_dir, err)
    if errors or doc is None:
        raise TaskError(f"{len(errors)} problem(s) in {path}:\n- " + "\n- ".join(errors))
    ev, sb = doc.evaluator, doc.sandbox
    spec = EvaluatorSpec(command=list(ev.command), cwd=cwd, stages=list(ev.stages),
                         thresholds=dict(ev.thresholds), test_stage=ev.test_stage,
                         extra_stages=list(ev.extra_stages), timeout_s=ev.timeout_s,
                         direction=ev.direction, memory_mb=sb.memory_mb, network=sb.network,
                         sandbox=sb.backend, image=sb.image, env=list(sb.env), cpus=sb.cpus, gpus=sb.gpus)
    return Task(name=doc.name, dir=task_dir, brief=brief_text, source=source, ref=doc.repo.ref,
                editable=list(doc.repo.editable), evaluator=spec, allow_run=sb.allow_run,
                requires=list(doc.requires), regions=list(doc.repo.regions))


TASK_EXTRAS = {"eplb", "llm-sql", "cloudcast", "cbl", "cbl-multi"}
"""The shipped tasks with an extra of their own in pyproject.toml (`.[tasks]` installs them all)."""
CHECK_SCRIPT = """
import json, sys
from importlib.metadata import PackageNotFoundError, version
from packaging.requirements import Requirement
missing = []
for text in json.loads(sys.argv[1]):
    req = Requirement(text)
    try:
        have = version(req.name)
    except PackageNotFoundError:
        missing.append(text)
        continue
    if req.specifier and not req.specifier.contains(have, prereleases=True):
        missing.append(text)
print(json.dumps(missing))
"""


def missing_requirements(requires: list[str], command: list[str]) -> list[str]:
    """Which of `requires` the evaluator's interpreter cannot satisfy: the harness's own when the
    command starts with python or {python} (the harness runs those on its interpreter), else the
    command's first word."""
    if not requires:
        return []
    interpreter = sys.executable if command[0] in ("python", "python3", "{python}") else command[0]
    proc = subprocess.run([interpreter, "-c", CHECK_SCRIPT, json.dumps(requires)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:  # no packaging there, or not a Python: say all are unchecked
        return list(requires)
    return json.loads(proc.stdout)


def _valid(model: type[_Table], value: Any) -> Any:
    """The table if it is valid by itself, else None (its problems are already reported)."""
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


# -- schema errors -> lines --------------------------------------------------------------------
KINDS = {"string_type": "a string", "int_type": "an integer", "float_type": "a number",
         "bool_type": "true/false", "list_type": "a list", "dict_type": "a table",
         "model_type": "a table", "literal_error": "{expected}"}
TABLES: dict[str, type[BaseModel]] = {"repo": Repo, "evaluator": Evaluator, "sandbox": Sandbox}


def _describe(e: ValidationError, folder: str) -> list[tuple[str, str, str]]:
    """(field, problem, fix) for each schema error, in task.toml's own words."""
    out = []
    for error in e.errors():
        loc = error["loc"]
        table = str(loc[0]) if len(loc) > 1 and loc[0] in TABLES else ""
        model, (key, *rest) = (TABLES[table], loc[1:]) if table else (TaskFile, loc or ("",))
        info = model.model_fields.get(str(key))
        fix = next((m for m in info.metadata if isinstance(m, Fix)), None) if info else None
        field = str(key)
        if info and get_origin(info.annotation) is dict and rest:
            field += f".{rest[0]}"  # thresholds.quick
        field = f"[{table}] {field}" if table else f"[{field}]" if field in TABLES else field
        kind, value = error["type"], error.get("input")
        if kind == "task":  # one of our validators: its own words and fix
            out.append((field, error["msg"], error["ctx"]["fix"]))
        elif kind == "extra_forbidden":
            out.append((field, "unknown field", f"remove it or use one of {sorted(model.model_fields)}"))
        else:
            if kind == "missing":  # "missing: must be a non-empty list of strings"
                says = fix.problem if fix and "{value}" not in fix.problem else ""
                problem = f"missing: {says}" if says else "missing"
            elif fix and fix.problem:
                problem = fix.problem.replace("{value}", repr(value))
            elif kind in KINDS:
                problem = f"{value!r} is not " + KINDS[kind].format(**error.get("ctx", {}))
            else:
                problem = f"{value!r}: {error['msg'][:1].lower()}{error['msg'][1:]}"
            out.append((field, problem, fix.fix.replace("{folder}", folder) if fix
                        else "see README, 'Task format'"))
    return out


# -- what the schema cannot see ----------------------------------------------------------------
def _check_brief(task_dir: Path, brief: str | None, err: Err) -> str:
    if brief is None:
        return ""
    if not (task_dir / brief).is_file():
        err("brief", f"file {brief!r} does not exist in {task_dir}",
            "write the problem statement there or point brief at the right file")
        return ""
    return (task_dir / brief).read_text()


def _check_repo(task_dir: Path, repo: Repo | None, err: Err) -> tuple[str, Path | None]:
    """(the source, resolved when it is a folder; that folder or None)."""
    if repo is None:
        return "", None
    if is_git_source(repo.source) and not (task_dir / repo.source).is_dir():
        return repo.source, None  # a git URL: checked when cloned
    source_dir = task_dir / repo.source
    if not source_dir.is_dir():
        err("[repo] source", f"folder {repo.source!r} does not exist in {task_dir}",
            "create it with the baseline code, or give a git URL")
        return repo.source, None
    files = [p.relative_to(source_dir).as_posix() for p in source_dir.rglob("*")
             if p.is_file() and ".git" not in p.parts]
    for glob in repo.editable:
        if not any(matches(f, [glob]) for f in files):
            err("[repo] editable", f"glob {glob!r} matches no file in {source_dir}",
                "correct the glob (paths are relative to the repo folder)")
    _check_regions(source_dir, files, repo, err)
    return str(source_dir), source_dir


def _check_regions(source_dir: Path, files: list[str], repo: Repo, err: Err) -> None:
    for glob in repo.regions:
        found = [f for f in files if matches(f, [glob])]
        if not found:
            err("[repo] regions", f"glob {glob!r} matches no file in {source_dir}",
                "correct the glob (paths are relative to the repo folder)")
        for f in found:
            if not matches(f, repo.editable):
                err("[repo] regions", f"{f} is not editable", "add it to editable too")
                continue
            try:
                spans = blocks((source_dir / f).read_text(errors="replace"))
            except RegionError as e:
                err("[repo] regions", f"{f}: {e}", "pair every EVOLVE-BLOCK-START with an EVOLVE-BLOCK-END")
                continue
            if not spans:
                err("[repo] regions", f"{f} has no EVOLVE-BLOCK-START/EVOLVE-BLOCK-END lines",
                    "mark the text agents may change, or drop the file from regions")


def _check_evaluator(task_dir: Path, ev: Evaluator | None, source_dir: Path | None,
                     err: Err) -> Path:
    """The evaluator's folder, resolved; its command and stages checked against it."""
    if ev is None:
        return task_dir
    cwd = (task_dir / ev.cwd).resolve()
    if not cwd.is_dir():
        err("[evaluator] cwd", f"folder {ev.cwd!r} does not exist in {task_dir}",
            "point cwd at the sealed evaluator folder")
    elif source_dir is not None and (cwd == source_dir.resolve() or source_dir.resolve() in cwd.parents):
        err("[evaluator] cwd", "is inside the editable repo, so agents could change it",
            "move the evaluator to its own folder beside the repo")

    exe, script = ev.command[0], ev.command[1] if len(ev.command) > 1 else ""
    if exe not in PYTHONS and not shutil.which(exe) and not (cwd / exe).exists():
        err("[evaluator] command", f"program {exe!r} is not on PATH nor in {cwd}",
            "install it, or name the right program")
    if exe in PYTHONS and script.endswith(".py") and "{" not in script and not (cwd / script).is_file():
        err("[evaluator] command", f"script {script!r} does not exist in {cwd}",
            "write the evaluator script there or fix its name")
    try:
        used = {f for part in ev.command for _, f, _, _ in string.Formatter().parse(part) if f is not None}
    except ValueError as e:
        err("[evaluator] command", f"bad braces ({e})", "write a literal { or } as {{ or }}")
        used = {"worktree"}
    if used - PLACEHOLDERS:
        err("[evaluator] command", f"unknown placeholders {sorted(used - PLACEHOLDERS)}",
            f"use only {{{'}, {'.join(sorted(PLACEHOLDERS))}}}")
    if "worktree" not in used:
        err("[evaluator] command", "never mentions {worktree}",
            "pass the candidate's folder to the evaluator with {worktree}")

    if ev.test_stage in ev.stages:
        err("[evaluator] test_stage", f"{ev.test_stage!r} is also a cascade stage",
            "the held-out stage must not be in stages")
    twice = sorted(set(ev.extra_stages) & {*ev.stages, ev.test_stage})
    if twice:
        err("[evaluator] extra_stages", f"{twice} is already a cascade or test stage",
            "list each stage in one place only")
    for stage in ev.thresholds:
        if stage not in ev.stages:
            err("[evaluator] thresholds", f"threshold for unknown stage {stage!r}",
                f"use one of the stages {ev.stages}")
    return cwd
