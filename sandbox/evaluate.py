"""Run a task evaluator stage on a worktree -> StageResult; cascades; the evaluation cache.

The evaluator is trusted: it runs as a plain child process (allow-list environment, its own
cgroup, a timeout) and starts the candidate's code in jails of its own (`adrs_eval.candidate`,
with the jail settings this module hands it in ADRS_JAIL). Its result is ONE JSON object,
{"score": float, "valid": bool, "metrics": {...}, "feedback": str, "artifacts": {...},
"instances": {...}}, written to the file named by ADRS_RESULT (a private folder no candidate
sees; `adrs_eval.emit` does it) or, for evaluators that do not use the kit, printed as the last
stdout line. A crash, a timeout or no result gives `valid: false` with the reason and a log tail.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sandbox import run as sandbox_run
from sandbox.jail import JailConfig, remove_containers, resolve_backend
from sandbox.scratch import scratch

LOG_TAIL_CHARS = 2000
MAX_RESULT_BYTES = 32 * 1024 * 1024


@dataclass
class EvaluatorSpec:
    """A task's evaluator and its candidates' jail, as task.toml gives them. Its defaults are
    the task defaults: agent/task.py's schema of task.toml reads them from here (the sandbox
    imports nothing of the agent), so they are written once."""

    command: list[str]
    cwd: Path
    stages: list[str]
    thresholds: dict[str, float] = field(default_factory=dict)
    test_stage: str | None = None
    extra_stages: list[str] = field(default_factory=list)  # only `tasks eval` runs these
    timeout_s: float = 300.0
    direction: str = "maximize"
    memory_mb: int | None = 4096
    network: bool = False
    sandbox: str = "auto"  # jail backend for candidate code: auto, bwrap, docker, process
    image: str = ""  # docker image ("" = the one the project builds)
    cpus: float = 1.0  # what one evaluation needs: a Ray backend requests it per evaluation
    gpus: float = 0.0
    env: list[str] = field(default_factory=list)  # variables passed through to the evaluator

    def jail(self, backend: str | None = None) -> JailConfig:
        """The jail settings for this task's candidates (`backend` overrides the task's)."""
        return JailConfig(backend=resolve_backend(backend or self.sandbox),
                          memory_mb=self.memory_mb, network=self.network,
                          wall_s=self.timeout_s, image=self.image,
                          docker_host=os.environ.get("DOCKER_HOST", ""))

    @property
    def all_stages(self) -> list[str]:
        return self.stages + ([self.test_stage] if self.test_stage else []) + self.extra_stages



@dataclass
class StageResult:
    stage: str
    score: float | None
    valid: bool
    metrics: dict = field(default_factory=dict)
    feedback: str = ""
    artifacts: dict = field(default_factory=dict)
    error: str = ""
    log_tail: str = ""
    wall_s: float = 0.0
    log: str = ""  # where the full output was written
    instances: dict = field(default_factory=dict)
    """Per-instance scores (name -> finite number) when the evaluator reports them: what
    `review` pairs against the baseline's for an error bar."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> StageResult:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass
class CascadeResult:
    stages: list[StageResult]
    score: float | None  # the last cascade stage's score; None if the cascade stopped early
    valid: bool
    stopped_at: str | None = None  # the stage whose threshold or validity stopped it

    @property
    def feedback(self) -> str:
        return self.stages[-1].feedback if self.stages else ""


def format_command(command: list[str], stage: str, worktree: Path, data: Path | None,
                   python: str) -> list[str]:
    values = {"stage": stage, "worktree": str(worktree), "data": str(data or ""),
              "python": python}
    argv = [part.format(**values) for part in command]
    if argv and argv[0] in ("python", "python3"):
        argv[0] = python  # the evaluator runs on the harness's interpreter and packages
    return argv


MAX_INSTANCES = 10_000


def parse_result(stage: str, res: sandbox_run.RunResult, reported: str | None = None
                 ) -> StageResult:
    """The stage's result from the evaluator's result file (`reported`) or, without one, its
    last stdout line."""
    log = res.stdout + ("\n--- stderr ---\n" + res.stderr if res.stderr else "")
    tail = log[-LOG_TAIL_CHARS:]
    if res.timed_out or res.out_of_memory:
        return StageResult(stage, None, False, error=res.killed_reason, log_tail=tail,
                           feedback=f"the evaluation was {res.killed_reason}; make it "
                                    f"{'faster' if res.timed_out else 'use less memory'}",
                           wall_s=res.wall_s)
    if reported is None:
        lines = [line for line in res.stdout.splitlines() if line.strip()]
        reported = lines[-1] if lines else ""
    try:
        data = json.loads(reported)
        if not isinstance(data, dict) or res.returncode:
            raise ValueError("not an object, or the evaluator crashed after reporting it")
    except ValueError:
        why = res.killed_reason or f"exit code {res.returncode}"
        error = (f"evaluator crashed ({why})" if res.returncode else
                 "the evaluator reported no result (no result file, and its last stdout line "
                 "is not a JSON object)")
        return StageResult(stage, None, False, error=error, log_tail=tail,
                           feedback=f"{error}; log tail:\n{tail[-800:]}", wall_s=res.wall_s)
    score = data.get("score")
    valid = data.get("valid", True) is True
    if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
        valid, error = False, f"score is not a finite number: {score!r}"
        score = None
    else:
        score, error = float(score), ""
    metrics = data.get("metrics") if isinstance(data.get("metrics"), dict) else {}
    artifacts = data.get("artifacts") if isinstance(data.get("artifacts"), dict) else {}
    return StageResult(
        stage, score, valid, metrics=metrics, feedback=str(data.get("feedback") or ""),
        artifacts=artifacts, error=error, log_tail="" if valid else tail, wall_s=res.wall_s,
        instances=instance_scores(data.get("instances")),
    )


def instance_scores(reported: object) -> dict[str, float]:
    """The evaluator's per-instance scores, keeping only names with finite numbers (at most
    MAX_INSTANCES of them)."""
    if not isinstance(reported, dict):
        return {}
    found = {}
    for name, value in list(reported.items())[:MAX_INSTANCES]:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            found[str(name)] = float(value)
    return found


@contextlib.contextmanager
def _held(slot: contextlib.AbstractContextManager | None, jail: JailConfig) -> Iterator[None]:
    """`slot`, kept until the candidates' containers a killed evaluator left are gone too."""
    with slot or contextlib.nullcontext():
        try:
            yield
        finally:
            remove_containers(jail)


def run_stage(spec: EvaluatorSpec, worktree: Path, stage: str, *, python: str,
              data: Path | None = None, log_path: Path | None = None,
              jail: JailConfig | None = None,
              slot: contextlib.AbstractContextManager | None = None) -> StageResult:
    """One stage on a worktree. The evaluator gets its jail settings (`jail`, default: the
    task's) in ADRS_JAIL and a private result file in ADRS_RESULT. `slot` is held while the
    evaluator runs (`sandbox.run.run`), not while its result and log are read and written."""
    argv = format_command(spec.command, stage, worktree, data, python)
    jail = dataclasses.replace(jail or spec.jail(), wall_s=spec.timeout_s,
                               label=f"adrs-{os.getpid()}-{uuid.uuid4().hex[:12]}")
    with scratch() as box:
        result_file = box / "result.json"
        extra = {"ADRS_STAGE": stage, "ADRS_DATA": str(data) if data else "",
                 "ADRS_RESULT": str(result_file), "ADRS_JAIL": jail.to_env()}
        res = sandbox_run.run(argv, spec.cwd, timeout_s=spec.timeout_s,
                              memory_mb=spec.memory_mb, network=spec.network,
                              extra_env=extra, declared_env=spec.env, slot=_held(slot, jail))
        reported = None
        if result_file.is_file():
            with open(result_file, errors="replace") as f:
                reported = f.read(MAX_RESULT_BYTES)
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(f"$ {' '.join(argv)}\n{res.stdout}\n--- stderr ---\n{res.stderr}")
    result = parse_result(stage, res, reported)
    result.log = str(log_path or "")
    return result


def passes(spec: EvaluatorSpec, result: StageResult) -> bool:
    if not result.valid or result.score is None:
        return False
    threshold = spec.thresholds.get(result.stage)
    if threshold is None:
        return True
    return result.score >= threshold if spec.direction == "maximize" else result.score <= threshold


def run_cascade(spec: EvaluatorSpec, evaluate: Callable[[str], StageResult]) -> CascadeResult:
    """Stages in order; stop at the first that is invalid or misses its threshold."""
    results = []
    for stage in spec.stages:
        result = evaluate(stage)
        results.append(result)
        if not passes(spec, result):
            last = stage == spec.stages[-1] and result.valid and result.score is not None
            return CascadeResult(results, result.score if last else None, result.valid,
                                 stopped_at=None if last else stage)
    return CascadeResult(results, results[-1].score, True)


class EvalCache:
    """Stage results keyed by (content hash, stage); one evaluation per key even when racing."""

    def __init__(self) -> None:
        self._results: dict[tuple[str, str], StageResult] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: str, stage: str) -> StageResult | None:
        return self._results.get((key, stage))

    def put(self, key: str, result: StageResult) -> None:
        self._results[(key, result.stage)] = result

    def get_or_run(self, key: str, stage: str, fn: Callable[[], StageResult]
                   ) -> tuple[StageResult, bool]:
        """The cached result, or fn()'s; the bool says whether it came from the cache."""
        with self._guard:
            lock = self._locks.setdefault((key, stage), threading.Lock())
        with lock:
            hit = self._results.get((key, stage))
            if hit is not None:
                return hit, True
            result = fn()
            self._results[(key, stage)] = result
            return result, False

    def __len__(self) -> int:
        return len(self._results)
