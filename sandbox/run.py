"""Run one command with a wall-clock timeout, a memory cap, bounded output and a built
environment; in a jail when the command is untrusted.

- Trusted commands (a task's evaluator) run as a plain child process.
- Untrusted ones (an agent's `run` command) run in a `sandbox.jail.Jail`.

Either way the command runs in its own session and its own cgroup (where one can be made:
`sandbox.cgroup`), which caps the memory of all its processes together and lets every one of
them be killed at the end, `setsid` stragglers included; each process is also under an
address-space limit (RLIMIT_AS, set by the shell that starts it: `launcher`). Its environment
is an allow-list (PATH, locale, the task's declared variables), never the harness's: no API
key, proxy password or database URL reaches it. HOME and TMPDIR are a private temp folder
(`sandbox.scratch`), empty at the start. stdout and stderr are read as they come and kept as
head and tail (`sandbox.capture`), so a flood of output costs a bounded amount.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.capture import Bounded, drain
from sandbox.cgroup import Cgroup
from sandbox.jail import Jail, JailError, popen
from sandbox.scratch import scratch

ALLOWED_ENV = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM", "PYTHONPATH", "VIRTUAL_ENV",
               "ADRS_SANDBOX")
ALLOWED_ENV_PREFIX = ("LC_",)
# names a task may not pass through even when it declares them
SECRET_NAME = re.compile(
    r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|SESSION|COOKIE)"
    r"|^(AWS|AZURE|GOOGLE|GCP|GCLOUD|CLOUDSDK|ANTHROPIC|OPENAI|HF|HUGGING_FACE|GH|GITHUB|"
    r"GITLAB|DOCKER|KUBE|VAULT|NPM|PYPI|TWINE|SLACK|DATABASE|PG)_"
    r"|^SSH_AUTH_SOCK$|^KUBECONFIG$|_URL$|^(HTTPS?|FTP|ALL|NO)_PROXY$",
    re.IGNORECASE,
)


def allowed_env(env: dict[str, str], declared: list[str] = ()) -> dict[str, str]:
    """The environment a command may see: the allow-list, and the declared names that do not
    look like secrets."""
    keep = set(ALLOWED_ENV) | {n for n in declared if not SECRET_NAME.search(n)}
    return {k: v for k, v in env.items() if k in keep or k.startswith(ALLOWED_ENV_PREFIX)}


@dataclass
class RunResult:
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    wall_s: float
    killed_reason: str = ""
    out_of_memory: bool = False
    dropped_bytes: int = 0  # output cut out of the middle

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


def launcher(cgroup: Cgroup | None, memory_mb: int | None) -> list[str]:
    """The prefix that starts a command in its cgroup and under its limits: one shell, which
    moves itself into the cgroup(s), caps its address space (RLIMIT_AS, `memory_mb`) and core
    dumps, and execs the command (fork-safe with threads: nothing of ours runs between fork
    and exec). One process start where `sh` + `prlimit` were two."""
    files = [str(d / "cgroup.procs") for d in cgroup.dirs] if cgroup else []
    steps = [f'echo $$ > "${i + 1}"' for i in range(len(files))]
    steps += ["ulimit -c 0", f"ulimit -v {memory_mb * 1024 if memory_mb else 'unlimited'}",
              f"shift {len(files)}", 'exec "$@"']
    return ["/bin/sh", "-c", " && ".join(steps), "adrs-run", *files]


def run(
    argv: list[str],
    cwd: str | Path,
    *,
    timeout_s: float,
    memory_mb: int | None = None,
    network: bool = True,
    env: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
    declared_env: list[str] = (),
    jail: Jail | None = None,
    pids: int | None = 1024,
    slot: contextlib.AbstractContextManager | None = None,
) -> RunResult:
    """Run argv; never raises for the command's own failures. With `jail`, argv runs inside
    it (its paths are the jail's; `cwd` is unused); else as a trusted child process in cwd.
    `slot` (an evaluator slot) is held from just before the command starts until it and every
    process it left are gone, and no longer: its cgroup and HOME are made before, and the
    caller's reading of the result after."""
    base = allowed_env(dict(os.environ if env is None else env), list(declared_env))
    cgroup = Cgroup.create(memory_mb, pids)
    with scratch() as home, slot or contextlib.nullcontext():
        start = time.monotonic()
        try:
            prefix = launcher(cgroup, memory_mb)
            if jail is not None:
                proc = jail.spawn(argv, dict(extra_env or {}), stdin=False, prefix=prefix)
            else:
                full_env = {**base, "HOME": str(home), "TMPDIR": str(home),
                            "PYTHONDONTWRITEBYTECODE": "1", **(extra_env or {})}
                netns = list(netns_prefix()) if not network else []
                proc = popen(prefix + netns + argv, full_env, cwd)
        except (JailError, OSError) as e:
            if cgroup:
                cgroup.close()
            return RunResult(None, "", f"could not start {argv[0]!r}: {e}", False, 0.0,
                             killed_reason="start failed")
        out, err = Bounded(), Bounded()
        exited = proc.pidfd()
        try:
            finished = drain({proc.stdout: out, proc.stderr: err}, start + timeout_s, exited)
        finally:
            if exited is not None:
                os.close(exited)
        timed_out = not finished
        if timed_out:
            proc.kill()
        returncode = proc.wait(timeout=None if not timed_out else 10.0)
        oom = bool(cgroup and cgroup.oom_killed())
        proc.close()  # kills what the command left behind in its group
        if cgroup:
            cgroup.close()  # ... and in its cgroup (setsid stragglers)
        wall = time.monotonic() - start
    if timed_out:
        reason = f"timed out after {timeout_s:g} s"
    elif oom:
        reason = f"killed: out of memory (limit {memory_mb} MB for all its processes)"
    else:
        reason = _signal_reason(returncode)
    return RunResult(returncode, out.text(), err.text(), timed_out, wall, reason, oom,
                     out.dropped + err.dropped)


def _signal_reason(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return ""
