"""Where evaluations run: a pool of evaluator slots shared by every episode of a run.

`Evaluations` is the seam: the scorer hands it one stage of one code version and gets the
result back. `LocalPool` runs them here, at most `slots` at once, the candidates' commits before
the agents' `run_evaluator` calls and first come first served within each; a thread waiting for a
slot holds none. `sandbox/ray_pool.py` runs them on a Ray cluster behind the same protocol.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import importlib.util
import itertools
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Protocol

from sandbox.evaluate import EvaluatorSpec, StageResult, run_stage
from sandbox.jail import JailConfig


class Priority(IntEnum):
    COMMIT = 0
    """Scoring a commit: it decides what the search keeps."""
    TOOL = 1
    """An agent's run_evaluator call."""


@dataclass
class NodeStats:
    """What one node did for this run."""

    node: str
    address: str = ""
    host: str = ""
    evaluations: int = 0
    busy_s: float = 0.0
    """Seconds it spent on evaluations: here, the evaluators' run; on Ray, the whole task
    (unpacking the candidate's files, the evaluator)."""
    lost: int = 0
    """Evaluations lost with this node or one of its workers."""
    jail: str = ""
    """'ok' once it ran an evaluation under the head's jail; else why it cannot."""


class Evaluations(Protocol):
    def run(self, spec: EvaluatorSpec, worktree: Path, stage: str, *, data: Path | None,
            log_path: Path | None, jail: JailConfig, priority: Priority) -> StageResult: ...

    def stats(self) -> dict[str, NodeStats]:
        """Per node (here: "local"): evaluations run and seconds spent on them."""
        ...

    def close(self) -> None: ...


def default_slots() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class Slots:
    """`n` slots handed out by priority, then in order of asking."""

    def __init__(self, n: int):
        self.free = n
        self._waiting: list[tuple[int, int]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()

    def acquire(self, priority: int) -> None:
        with self._cond:
            me = (priority, next(self._order))
            heapq.heappush(self._waiting, me)
            while not (self.free and self._waiting[0] == me):
                self._cond.wait()
            heapq.heappop(self._waiting)
            self.free -= 1
            self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self.free += 1
            self._cond.notify_all()


class LocalPool:
    """Evaluations on this machine, `slots` at a time."""

    def __init__(self, slots: int = 0):
        self.size = slots or default_slots()
        self.slots = Slots(self.size)
        self._stats = NodeStats("local", host=socket.gethostname())
        self._lock = threading.Lock()

    def run(self, spec: EvaluatorSpec, worktree: Path, stage: str, *, data: Path | None,
            log_path: Path | None, jail: JailConfig, priority: Priority = Priority.TOOL) -> StageResult:
        return run_stage(spec, worktree, stage, python=sys.executable, data=data,
                         log_path=log_path, jail=jail, slot=self._slot(priority))

    @contextlib.contextmanager
    def _slot(self, priority: Priority) -> Iterator[None]:
        """A slot, held while one evaluator runs: the harness's work before and after it (its
        cgroup, reading its result, writing its log) leaves the slot to the next one."""
        self.slots.acquire(priority)
        start = time.monotonic()
        try:
            yield
        finally:
            self.slots.release()
            with self._lock:
                self._stats.evaluations += 1
                self._stats.busy_s += time.monotonic() - start

    def stats(self) -> dict[str, NodeStats]:
        with self._lock:
            return {"local": dataclasses.replace(self._stats)}

    def close(self) -> None:
        pass


class BackendError(RuntimeError):
    """The evaluation backend cannot be used as set; the message is one line."""


def check_backend_reachable(backend: str, address: str | None, label: str = "--ray-address",
                            timeout_s: float = 5.0) -> None:
    """Fail fast, before a run starts, where `make_pool` would fail or wait for minutes: Ray
    not installed, or nothing listening at the cluster's address (Ray retries it for ever)."""
    if backend != "ray":
        return
    if importlib.util.find_spec("ray") is None:
        raise BackendError("the ray backend needs Ray: pip install -e '.[ray]'")
    if not address or address == "auto":
        return  # none: a local Ray is started; auto: the one `ray start` made here
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise BackendError(f"{label} {address}: expected HOST:PORT (or ray://HOST:PORT, or auto)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise BackendError(f"{label} {address}: nothing answers there ({e.strerror or e}); start "
                           "the cluster with `ray start --head` or give its address") from None


def make_pool(backend: str, slots: int, address: str | None = None) -> Evaluations:
    """The run's evaluations: `slots` here, or on the Ray cluster at `address`."""
    if backend == "ray":
        from sandbox.ray_pool import RayPool  # ray is an optional extra

        return RayPool(address=address, slots=slots)
    return LocalPool(slots)
