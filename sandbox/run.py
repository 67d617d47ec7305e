"""Run one command under isolation, with a wall-clock timeout, a memory limit and a clean env.

The command runs in its own session (process group); at the timeout the whole group is
killed, and so is anything it left behind when it exits. Secrets never reach it: the
environment is scrubbed of anything that looks like a key, token, password or cloud
credential, and HOME/TMPDIR point at a private temp folder. With network off, the command
runs in a new network namespace (`unshare -n`) where the machine allows one.
"""

from __future__ import annotations

import functools
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SECRET_NAME = re.compile(
    r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|SESSION|COOKIE)"
    r"|^(AWS|AZURE|GOOGLE|GCP|GCLOUD|CLOUDSDK|ANTHROPIC|OPENAI|HF|HUGGING_FACE|GH|GITHUB|"
    r"GITLAB|DOCKER|KUBE|VAULT|NPM|PYPI|TWINE|SLACK|DATABASE|PG)_"
    r"|^SSH_AUTH_SOCK$|^KUBECONFIG$",
    re.IGNORECASE,
)


def scrub_env(env: dict[str, str]) -> dict[str, str]:
    """The environment without anything that could be a secret."""
    return {k: v for k, v in env.items() if not SECRET_NAME.search(k)}


@dataclass
class RunResult:
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    wall_s: float
    killed_reason: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


@functools.lru_cache(maxsize=1)
def netns_prefix() -> tuple[str, ...]:
    """How to start a command with no network here: `unshare -n` (root) or `unshare -rn`."""
    exe = shutil.which("unshare")
    if not exe:
        return ()
    for flags in (("-n",), ("-rn",)):
        probe = subprocess.run([exe, *flags, "true"], capture_output=True)
        if probe.returncode == 0:
            return (exe, *flags, "--")
    return ()


@functools.lru_cache(maxsize=None)
def limits_prefix(memory_mb: int | None) -> tuple[str, ...]:
    """`prlimit` caps address space and core dumps in the child (fork-safe with threads)."""
    exe = shutil.which("prlimit")
    if not exe:
        raise RuntimeError("prlimit (util-linux) is needed to limit candidate memory; install it")
    as_limit = f"--as={memory_mb * 1024 * 1024}" if memory_mb else "--as=unlimited"
    return (exe, as_limit, "--core=0", "--")


@functools.lru_cache(maxsize=1)
def bwrap_works() -> bool:
    exe = shutil.which("bwrap")
    if not exe:
        return False
    probe = subprocess.run([exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                            "--unshare-net", "--unshare-pid", "--die-with-parent", "true"],
                           capture_output=True)
    return probe.returncode == 0


def isolation(requested: str | None = None) -> str:
    """`bwrap` (read-only filesystem but for the worktree and temp; hidden paths; no network;
    own pid namespace) where it works, else `process`. ADRS_ISOLATION overrides `auto`."""
    mode = requested or os.environ.get("ADRS_ISOLATION") or "auto"
    if mode not in ("auto", "bwrap", "process"):
        raise ValueError(f"isolation {mode!r}: use auto, bwrap or process")
    if mode == "auto":
        return "bwrap" if bwrap_works() else "process"
    if mode == "bwrap" and not bwrap_works():
        raise RuntimeError("bwrap isolation asked for, but bwrap is missing or cannot make "
                           "namespaces here; install bubblewrap or use isolation 'process'")
    return mode


def bwrap_prefix(cwd: Path, tmp: str, writable: list[Path], hide: list[Path],
                 network: bool) -> tuple[str, ...]:
    args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--bind", tmp, tmp]
    for path in writable:
        args += ["--bind", str(path), str(path)]
    for path in hide:
        if Path(path).is_dir():
            args += ["--tmpfs", str(path)]
    if not network:
        args.append("--unshare-net")
    args += ["--unshare-pid", "--die-with-parent", "--new-session", "--chdir", str(cwd), "--"]
    return tuple(args)


def run(
    argv: list[str],
    cwd: str | Path,
    *,
    timeout_s: float,
    memory_mb: int | None = None,
    network: bool = True,
    env: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
    writable: list[Path] = (),
    hide: list[Path] = (),
    mode: str | None = None,
) -> RunResult:
    """Run argv in cwd; never raises for the command's own failures.

    Under bwrap, only `writable` paths and a private temp folder can be written and `hide`
    folders appear empty; under plain process isolation those two are not enforced.
    """
    base = scrub_env(dict(os.environ if env is None else env))
    with tempfile.TemporaryDirectory(prefix="adrs-run-") as tmp, \
            tempfile.TemporaryDirectory(prefix="adrs-out-") as capture:
        base.update({"HOME": tmp, "TMPDIR": tmp, "PYTHONDONTWRITEBYTECODE": "1"})
        base.update(extra_env or {})
        jailed = isolation(mode) == "bwrap"
        if jailed:
            jail = bwrap_prefix(Path(cwd), tmp, list(writable), [Path(capture), *hide], network)
        else:
            jail = () if network else netns_prefix()
        prefix = jail + limits_prefix(memory_mb)
        out_path, err_path = Path(capture, "stdout"), Path(capture, "stderr")
        start = time.monotonic()
        timed_out = False
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen(
                    [*prefix, *argv], cwd=cwd, env=base, stdout=out, stderr=err,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                )
            except OSError as e:
                return RunResult(None, "", f"could not start {argv[0]!r}: {e}", False, 0.0,
                                 killed_reason="start failed")
            if not _wait(proc, timeout_s):
                timed_out = True
                _kill_group(proc.pid)
            returncode = proc.wait()
            _kill_group(proc.pid)  # stragglers the command left running
        wall = time.monotonic() - start
        if jailed and returncode is not None and 128 < returncode < 128 + 65:
            returncode = 128 - returncode  # bwrap reports a child killed by signal N as 128+N
        stdout = out_path.read_text(errors="replace")
        stderr = err_path.read_text(errors="replace")
    reason = f"timed out after {timeout_s:g} s" if timed_out else _signal_reason(returncode)
    return RunResult(returncode, stdout, stderr, timed_out, wall, reason)


def _wait(proc: subprocess.Popen, timeout_s: float) -> bool:
    """Whether proc exited within timeout_s. A pidfd wakes us the moment it exits, where
    Popen.wait(timeout) would poll with sleeps of up to 50 ms."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout=timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        ready, _, _ = select.select([fd], [], [], timeout_s)
        return bool(ready)
    finally:
        os.close(fd)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone


def _signal_reason(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        name = signal.Signals(-returncode).name
        return f"killed by {name}"
    return ""
