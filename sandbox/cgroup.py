"""A cgroup per run: one memory cap for every process of it together (a per-process rlimit
lets five forked children of 1.5 GB each pass a 2 GB limit), a cap on how many processes it
may have, and a way to kill all of them, `setsid` stragglers included.

cgroup v1 (memory and pids controllers) where this process may create child cgroups, as on
most container hosts; cgroup v2 where the memory controller is delegated to this process's
cgroup. `Cgroup.create` returns None where neither is writable; `available()` says why.
"""

from __future__ import annotations

import functools
import itertools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

_counter = itertools.count()


@dataclass(frozen=True)
class Controllers:
    memory: Path | None  # our own cgroup folder in the memory hierarchy
    pids: Path | None
    v2: bool
    why_not: str = ""


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, super options) of every cgroup mount."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(rfields) >= 3 and rfields[0] in ("cgroup", "cgroup2"):
            out.append((fields[4], rfields[0], set(rfields[2].split(","))))
    return out


def _own_paths() -> dict[str, str]:
    """controller (or '' for v2) -> this process's cgroup path in that hierarchy."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in (ctrls.split(",") if ctrls else [""]):
            paths[c] = path
    return paths


def _writable_dir(path: Path) -> bool:
    probe = path / f"adrs-probe-{os.getpid()}-{next(_counter)}"
    try:
        probe.mkdir()
    except OSError:
        return False
    probe.rmdir()
    return True


@functools.lru_cache(maxsize=1)
def controllers() -> Controllers:
    try:
        mounts, own = _mounts(), _own_paths()
    except OSError as e:
        return Controllers(None, None, False, f"cannot read /proc/self: {e}")
    found: dict[str, Path] = {}
    for point, kind, opts in mounts:
        if kind != "cgroup":
            continue
        for ctrl in ("memory", "pids"):
            if ctrl in opts and ctrl in own:
                path = Path(point) / own[ctrl].lstrip("/")
                if path.is_dir() and _writable_dir(path):
                    found[ctrl] = path
    if "memory" in found:
        for parent in {found["memory"], found.get("pids")} - {None}:
            sweep(parent)
        return Controllers(found["memory"], found.get("pids"), False)
    for point, kind, _ in mounts:
        if kind == "cgroup2" and "" in own:
            path = Path(point) / own[""].lstrip("/")
            ctl = path / "cgroup.subtree_control"
            if ctl.is_file() and "memory" in ctl.read_text().split() and _writable_dir(path):
                pids = path if "pids" in ctl.read_text().split() else None
                return Controllers(path, pids, True)
            return Controllers(None, None, True, "cgroup v2 without a delegated memory "
                               "controller (run under `systemd-run --user -p Delegate=yes`)")
    return Controllers(None, None, False, "no writable memory cgroup (v1 memory hierarchy "
                       "not mounted or read-only)")


def available() -> tuple[bool, str]:
    c = controllers()
    if c.memory is None:
        return False, c.why_not
    return True, f"cgroup {'v2' if c.v2 else 'v1'} at {c.memory}"


def sweep(parent: Path) -> None:
    """Remove empty cgroups that a killed harness process left behind (adrs-<its pid>-N)."""
    for d in parent.glob("adrs-*-*"):
        pid = d.name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            try:
                d.rmdir()  # only succeeds when no process is left in it
            except OSError:
                pass  # still busy, or removed by another sweep meanwhile


class Cgroup:
    """One run's cgroup(s): join with `wrap(argv)`, end with `close()`."""

    def __init__(self, dirs: list[Path], memory_dir: Path, v2: bool):
        self.dirs, self.memory_dir, self.v2 = dirs, memory_dir, v2

    @classmethod
    def create(cls, memory_mb: int | None, pids: int | None = 1024) -> Cgroup | None:
        c = controllers()
        if c.memory is None:
            return None
        name = f"adrs-{os.getpid()}-{next(_counter)}"
        mem = c.memory / name
        mem.mkdir()
        dirs = [mem]
        limit = str(memory_mb * 1024 * 1024) if memory_mb else None
        if c.v2:
            if limit:
                (mem / "memory.max").write_text(limit)
                if (mem / "memory.swap.max").exists():
                    (mem / "memory.swap.max").write_text("0")
            if pids and c.pids is not None:
                (mem / "pids.max").write_text(str(pids))
        else:
            if limit:
                (mem / "memory.limit_in_bytes").write_text(limit)
                swap = mem / "memory.memsw.limit_in_bytes"
                if swap.exists():  # memory + swap: no escape into swap
                    swap.write_text(limit)
            if pids and c.pids is not None:
                pid_dir = c.pids / name
                pid_dir.mkdir()
                (pid_dir / "pids.max").write_text(str(pids))
                dirs.append(pid_dir)
        return cls(dirs, mem, c.v2)

    def pids(self) -> list[int]:
        try:
            text = (self.memory_dir / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this cgroup for memory."""
        try:
            if self.v2:
                stats = (self.memory_dir / "memory.events").read_text()
            else:
                stats = (self.memory_dir / "memory.oom_control").read_text()
        except OSError:
            return False
        for line in stats.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip() not in ("", "0"):
                return True
        return False

    def kill_all(self) -> None:
        for _ in range(200):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass  # gone already
            time.sleep(0.005)

    def close(self) -> None:
        """Kill whatever is left and remove the cgroup folders."""
        self.kill_all()
        for d in self.dirs:
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY while the last processes are reaped
                    time.sleep(0.01)
