"""A private Docker engine for tests and benchmarks where none runs: `dockerd` with the vfs
storage driver, no bridge and no iptables, its own socket, data root and exec root in a temp
folder (no registry is needed: the sandbox image is imported, see sandbox.jail)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from sandbox import jail


class PrivateDockerd:
    """`with PrivateDockerd() as engine: engine.host` (a unix:// URL); `engine.why` says why
    not when `engine.host` is empty."""

    def __init__(self, timeout_s: float = 90.0):
        self.timeout_s = timeout_s
        self.host, self.why = "", ""
        self.root: Path | None = None
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> PrivateDockerd:
        exe = shutil.which("dockerd")
        if not exe:
            self.why = "dockerd is not installed (apt-get install docker.io)"
            return self
        if os.geteuid() != 0:
            self.why = "starting dockerd needs root"
            return self
        self.root = Path(tempfile.mkdtemp(prefix="adrs-dockerd-"))
        sock = f"unix://{self.root}/docker.sock"
        with open(self.root / "dockerd.log", "wb") as log:
            self.proc = subprocess.Popen(
                [exe, "--iptables=false", "--bridge=none", "--storage-driver=vfs",
                 "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                 "-H", sock, "--pidfile", str(self.root / "docker.pid")],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            jail.docker_status.cache_clear()
            if jail.docker_status(sock)[0]:
                self.host = sock
                return self
            time.sleep(0.5)
        self.why = "dockerd did not come up: " + \
            (self.root / "dockerd.log").read_text(errors="replace")[-600:]
        self.__exit__()
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


def reachable_or_private(stack) -> tuple[str, str]:
    """(docker host, why not): DOCKER_HOST when it answers, else a private engine entered on
    the given contextlib.ExitStack."""
    env_host = os.environ.get("DOCKER_HOST", "")
    if env_host and jail.docker_status(env_host)[0]:
        return env_host, ""
    engine = stack.enter_context(PrivateDockerd())
    return engine.host, engine.why
