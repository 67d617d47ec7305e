"""Evaluations on a Ray cluster, behind the same `Evaluations` protocol as `LocalPool`.

Only evaluations travel; git, the program database, notes, episodes and events stay on the head.
- The evaluator folder (the session's sealed copy) and the data folder go to the object store
  once per run, as tarballs; a node fetches and unpacks each once, into a folder named by its
  digest (`<tmp>/adrs-ray-<uid>/<digest>`), and reuses it for every later evaluation. An
  evaluation holds a shared lock on the folder while it runs; `close` removes the run's folders
  from every alive node, except one another run's evaluation holds at that moment.
- Each evaluation ships the candidate's files (the worktree without `.git`: no repo, no git
  config, no hooks), runs `sandbox.evaluate.run_stage` on the node under the head's jail
  backend, and returns the stage's record and its log text; the head writes the log.
- The head places each evaluation on the least busy node that can run it (1 CPU and the task's
  `memory_mb`, and the jail the head chose: a node that cannot make it is left out, and said
  why in `stats()`). An evaluation lost with its node or worker runs again on another node, at
  most `max_retries` times, and `on_retry` hears of each retry; after that `EvaluationLost`
  is raised, and the candidate stays unscored until `resume` scores it.

Every node needs this project and the task's `requires` installed, in the Python `ray start`
runs on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import io
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import ray
from ray.exceptions import RayError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from sandbox.evaluate import EvaluatorSpec, StageResult, run_stage
from sandbox.jail import JailConfig, JailError, check_backend
from sandbox.pool import NodeStats, Priority, Slots

MAX_RETRIES = 2
"""Runs of one evaluation beyond the first when its node or worker is lost."""
NODES_TTL_S = 1.0
"""How long the head trusts its last look at the cluster's nodes."""
SKIP = {".git", "__pycache__"}
"""Names never packed: a worktree's `.git` (a file there), and bytecode."""
NODE_DIED = getattr(ray.exceptions, "NodeDiedError", ())  # Ray >= 2.10; before, worker errors


class EvaluationLost(RuntimeError):
    """An evaluation lost with its node (or worker) more often than the retries allow, or no
    node of the cluster is alive to run it."""


@dataclass(frozen=True)
class Retry:
    """One evaluation lost on `node` and run again elsewhere (`attempt` 1 is the first rerun)."""

    stage: str
    label: str
    node: str
    attempt: int
    error: str

    def fields(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Bundle:
    """A folder in the object store, by digest. `ref` travels inside a list so that Ray does not
    fetch it with every task: a node gets it only the first time it needs it."""

    digest: str
    ref: list


# -- on the head ------------------------------------------------------------------------------

def pack(folder: Path) -> bytes:
    """A tarball of `folder`'s files in name order, without `.git` and `__pycache__`; symlinks
    only when they stay inside the folder."""
    root = folder.resolve()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP)
            here = Path(dirpath)
            for name in sorted(set(filenames) - SKIP) + [d for d in dirnames if (here / d).is_symlink()]:
                path = here / name
                if path.is_symlink() and not path.resolve().is_relative_to(root):
                    continue
                tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return buf.getvalue()


@dataclass
class RayPool:
    """Evaluations as Ray tasks, `slots` in flight at once (0: the cluster's CPUs), commits
    before tool calls. `address` None starts (or finds) a local Ray."""

    address: str | None = None
    slots: int = 0
    on_retry: Callable[[Retry], None] | None = None
    """Told of each evaluation run again after its node or worker was lost."""
    max_retries: int = MAX_RETRIES
    _bundles: dict[Path, Bundle] = field(default_factory=dict, init=False, repr=False)
    _stats: dict[str, NodeStats] = field(default_factory=dict, init=False, repr=False)
    _inflight: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _started: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _lost_nodes: set[str] = field(default_factory=set, init=False, repr=False)
    _no_jail: dict[tuple[str, str], str] = field(default_factory=dict, init=False, repr=False)
    _nodes: tuple[float, list[dict]] = field(default=(0.0, []), init=False, repr=False)
    forgotten: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False)
    """After `close`: per node, the bundle digests it removed (or why it could not)."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._connected_here = not ray.is_initialized()
        if self._connected_here:
            ray.init(address=self.address, log_to_driver=False,
                     **({} if self.address else {"include_dashboard": False}))
        self.size = self.slots or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._slots = Slots(self.size)
        self._task = ray.remote(max_retries=0)(evaluate_on_node)

    # -- the Evaluations protocol --------------------------------------------------------------
    def run(self, spec: EvaluatorSpec, worktree: Path, stage: str, *, data: Path | None,
            log_path: Path | None, jail: JailConfig, priority: Priority = Priority.TOOL) -> StageResult:
        label = log_path.parent.name if log_path else worktree.name
        evaluator = self._bundle(spec.cwd)
        data_bundle = self._bundle(data) if data else None
        files = pack(worktree)
        memory = (spec.memory_mb or 0) * 1024 * 1024
        avoid: set[str] = set()
        lost = 0
        self._slots.acquire(priority)
        try:
            while True:
                node = self._place(memory, jail.backend, avoid, spec.cpus, spec.gpus)
                if isinstance(node, StageResult):
                    return dataclasses.replace(node, stage=stage)
                try:
                    out = self._attempt(node, memory, spec, stage, jail, evaluator, files, data_bundle)
                except RayError as e:
                    lost += 1
                    avoid.add(node)
                    error = first_line(e)
                    if lost > self.max_retries:
                        raise EvaluationLost(f"{stage} of {label}: lost {lost} times, last on node "
                                             f"{node}: {error}") from e
                    if self.on_retry is not None:
                        self.on_retry(Retry(stage=stage, label=label, node=node, attempt=lost,
                                            error=error))
                    continue
                if out.get("cannot_jail"):
                    avoid.add(node)
                    continue
                return self._result(out, log_path)
        finally:
            self._slots.release()

    def check_nodes(self, jail: JailConfig, timeout_s: float = 60.0) -> dict[str, str]:
        """Whether each alive node can make the head's jail: node id -> 'ok' or why not (what
        to install). Nodes that cannot are left out of placement; the rest keep working."""
        check = ray.remote(num_cpus=0, max_retries=0)(check_node_jail)
        refs = {n["NodeID"]: check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote(jail) for n in self._alive()}
        report = {}
        for node, ref in refs.items():
            try:
                report[node] = ray.get(ref, timeout=timeout_s)
            except (RayError, TimeoutError) as e:  # GetTimeoutError is both
                report[node] = f"no answer: {first_line(e)}"
            with self._lock:
                self._stats.setdefault(node, NodeStats(node)).jail = report[node]
                if report[node] != "ok":
                    self._no_jail[(node, jail.backend)] = report[node]
        return report

    def close(self, timeout_s: float = 30.0) -> None:
        """Remove this run's unpacked bundles from every alive node, then leave the cluster
        (when this pool joined it). `forgotten` says what each node removed."""
        digests = [b.digest for b in self._bundles.values()]
        if digests and ray.is_initialized():
            forget = ray.remote(num_cpus=0, max_retries=0)(forget_bundles)
            refs = {n["NodeID"]: forget.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
                n["NodeID"], soft=False)).remote(digests) for n in self._alive()}
            for node, ref in refs.items():
                try:
                    self.forgotten[node] = ray.get(ref, timeout=timeout_s)
                except (RayError, TimeoutError) as e:  # a node gone meanwhile keeps its copy
                    self.forgotten[node] = [f"not cleaned: {first_line(e)}"]
        if self._connected_here and ray.is_initialized():
            ray.shutdown()

    def stats(self) -> dict[str, NodeStats]:
        """Per node (by Ray node id): evaluations run, busy seconds, evaluations lost, its jail."""
        with self._lock:
            return {n: dataclasses.replace(s) for n, s in self._stats.items()}

    # -- placing and running one attempt -------------------------------------------------------
    def _alive(self) -> list[dict]:
        with self._lock:
            seen, nodes = self._nodes
            if time.monotonic() - seen > NODES_TTL_S:
                nodes = [n for n in ray.nodes() if n.get("Alive")]
                self._nodes = (time.monotonic(), nodes)
            return nodes

    def _place(self, memory: int, backend: str, avoid: set[str], cpus: float = 1.0,
               gpus: float = 0.0) -> str | StageResult:
        """The least busy node able to run the evaluation (fewest in flight per CPU, then fewest
        started), preferring those not in `avoid`; a failed StageResult when no node can."""
        nodes = self._alive()
        fits = [n for n in nodes if n["Resources"].get("CPU", 0) >= cpus
                and n["Resources"].get("memory", 0) >= memory and n["Resources"].get("GPU", 0) >= gpus]
        with self._lock:
            usable = [n for n in fits if n["NodeID"] not in self._lost_nodes
                      and (n["NodeID"], backend) not in self._no_jail]
            if not usable:
                if fits and not any((n["NodeID"], backend) not in self._no_jail for n in fits):
                    why = "; ".join(f"{n['NodeID'][:12]}: {self._no_jail[(n['NodeID'], backend)]}"
                                    for n in fits)
                    error = (f"no node of the Ray cluster can run the {backend} jail the head "
                             f"chose ({why})")
                    return StageResult("", None, False, error=error, feedback=error)
                if nodes and not fits:
                    error = (f"no node of the Ray cluster has {cpus:g} CPU, {gpus:g} GPU and {memory >> 20} "
                             f"MiB of memory (the task's cpus, gpus and memory_mb) for an evaluation: "
                             + ", ".join(f"{n['NodeID'][:12]}: {n['Resources'].get('CPU', 0):g} "
                                         f"CPU, {n['Resources'].get('GPU', 0):g} GPU, "
                                         f"{int(n['Resources'].get('memory', 0)) >> 20} MiB"
                                         for n in nodes))
                    return StageResult("", None, False, error=error, feedback=error)
                raise EvaluationLost("no node of the Ray cluster is alive to run evaluations" if not fits
                                     else "every node able to run evaluations was lost")
            fresh = [n for n in usable if n["NodeID"] not in avoid] or usable
            best = min(fresh, key=lambda n: (self._inflight.get(n["NodeID"], 0) / n["Resources"]["CPU"],
                                             self._started.get(n["NodeID"], 0), n["NodeID"]))
            node = best["NodeID"]
            self._inflight[node] = self._inflight.get(node, 0) + 1
            self._started[node] = self._started.get(node, 0) + 1
            self._stats.setdefault(node, NodeStats(node, address=best.get("NodeManagerAddress", "")))
            return node

    def _attempt(self, node: str, memory: int, spec: EvaluatorSpec, stage: str, jail: JailConfig,
                 evaluator: Bundle, files: bytes, data: Bundle | None) -> dict:
        """One run of the evaluation on `node` (soft affinity: elsewhere if it died meanwhile)."""
        options = {"num_cpus": spec.cpus, "num_gpus": spec.gpus,
                   "scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=True)}
        if memory:
            options["memory"] = memory
        try:
            out = ray.get(self._task.options(**options).remote(spec, stage, jail, evaluator, files, data))
        except RayError as e:
            with self._lock:
                self._stats[node].lost += 1
                if isinstance(e, NODE_DIED):  # its other evaluations are lost too: place none there
                    self._lost_nodes.add(node)
            raise
        finally:
            with self._lock:
                self._inflight[node] -= 1
        ran_on = out["node"]
        with self._lock:
            stats = self._stats.setdefault(ran_on, NodeStats(ran_on))
            stats.host = out.get("host") or stats.host
            stats.busy_s += out["busy_s"]
            if out.get("cannot_jail"):
                stats.jail = out["cannot_jail"]
                self._no_jail[(ran_on, jail.backend)] = out["cannot_jail"]
            else:
                stats.jail, stats.evaluations = "ok", stats.evaluations + 1
        return out

    def _result(self, out: dict, log_path: Path | None) -> StageResult:
        result = StageResult.from_dict(out["result"])
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text(out["log"])
        result.log = str(log_path or "")
        return result

    def _bundle(self, folder: Path) -> Bundle:
        """The folder in the object store, put there the first time it is asked for."""
        folder = Path(folder).resolve()
        with self._lock:
            if folder not in self._bundles:
                blob = pack(folder)
                self._bundles[folder] = Bundle(hashlib.sha256(blob).hexdigest()[:24], [ray.put(blob)])
            return self._bundles[folder]


def first_line(error: BaseException) -> str:
    """The error's type and first line (a task's own exception rather than Ray's wrapper)."""
    if isinstance(error, RayTaskError) and getattr(error, "cause", None) is not None:
        error = error.cause
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"[:500]


# -- on a node --------------------------------------------------------------------------------

def cache_root() -> Path:
    root = Path(tempfile.gettempdir()) / f"adrs-ray-{os.getuid()}"
    root.mkdir(mode=0o755, exist_ok=True)
    return root


def unpack(blob: bytes, dest: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        # the head made it, from files an agent may have written: refuse links that leave `dest`
        tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))


@contextlib.contextmanager
def unpacked(bundle: Bundle) -> Iterator[Path]:
    """The bundle's folder on this node, fetched and unpacked by the first task that needs it
    (under an exclusive lock), then held with a shared lock for the block, so that
    `forget_bundles` never removes it under a running evaluation."""
    root = cache_root()
    dest = root / bundle.digest
    with open(root / f"{bundle.digest}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        while not dest.is_dir():
            fcntl.flock(lock, fcntl.LOCK_EX)  # not atomic: another may unpack first
            if not dest.is_dir():
                part = Path(tempfile.mkdtemp(prefix=f"{bundle.digest}.part-", dir=root))
                unpack(ray.get(bundle.ref[0]), part)
                part.chmod(0o755)
                part.rename(dest)
            fcntl.flock(lock, fcntl.LOCK_SH)  # not atomic either: look again
        yield dest


def forget_bundles(digests: list[str]) -> list[str]:
    """A Ray task: remove these bundles' folders (and half-unpacked parts) from this node,
    skipping any an evaluation holds now; the digests removed."""
    root = cache_root()
    removed = []
    for digest in digests:
        lock_path = root / f"{digest}.lock"
        if not lock_path.exists():
            continue
        with open(lock_path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # another run's evaluation is using it: that run removes it
            for path in [root / digest, *root.glob(f"{digest}.part-*")]:
                shutil.rmtree(path, ignore_errors=True)
            removed.append(digest)
    return removed


def node_jail(jail: JailConfig) -> JailConfig:
    """The head's jail settings as this node makes them (its own docker engine)."""
    return dataclasses.replace(jail, docker_host=os.environ.get("DOCKER_HOST", ""))


def check_node_jail(jail: JailConfig) -> str:
    """A Ray task: 'ok' when this node can make the jail, else why not."""
    try:
        check_backend(node_jail(jail))
    except JailError as e:
        return str(e)
    return "ok"


def evaluate_on_node(spec: EvaluatorSpec, stage: str, jail: JailConfig, evaluator: Bundle,
                     files: bytes, data: Bundle | None) -> dict:
    """A Ray task: one stage on the candidate's `files`, under the head's jail backend (the
    node's own docker engine); the stage's record and the log text, or why it cannot jail."""
    started = time.monotonic()
    node = ray.get_runtime_context().get_node_id()
    done = {"node": node, "host": socket.gethostname()}
    jail = node_jail(jail)
    try:
        check_backend(jail)
    except JailError as e:
        return {**done, "cannot_jail": str(e), "busy_s": time.monotonic() - started}
    with contextlib.ExitStack() as held, tempfile.TemporaryDirectory(prefix="adrs-candidate-") as box:
        here = dataclasses.replace(spec, cwd=held.enter_context(unpacked(evaluator)))
        data_dir = held.enter_context(unpacked(data)) if data else None
        worktree = Path(box) / "worktree"
        unpack(files, worktree)
        Path(box).chmod(0o755)  # the jails' uid reads the candidate's files, as in a worktree
        log = Path(box) / "stage.log"
        result = run_stage(here, worktree, stage, python=sys.executable, data=data_dir,
                           log_path=log, jail=jail)
        text = log.read_text(errors="replace") if log.is_file() else ""
    return {**done, "result": result.to_dict(), "log": text, "busy_s": time.monotonic() - started}
