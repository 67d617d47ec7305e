"""Jails for code nobody vouches for: candidate policies, and the agents' shell commands.

A jailed process sees the system's programs and libraries and the Python it runs on, all
read-only; the mounts it is given (a candidate's files read-only, an agent's worktree
writable); a private /tmp; its own /proc. Nothing else: not the evaluator, the session, other
sessions, the host's /tmp or /run (so no unix sockets), no network, no secret (its
environment is built, not inherited). It runs as uid 65534 with no capabilities.

Backends:
- `bwrap`: bubblewrap; new user, pid, network, ipc, uts, cgroup and mount namespaces; the
  whole namespace dies with the process that started it.
- `docker`: one container per process through the docker SDK; network none, read-only root,
  memory, pids and wall-clock limits; an image the project builds itself (`docker import` of
  an empty root: the host's programs are mounted read-only), so no registry is needed.
- `process`: no jail at all, a plain child process in its own session. Only for code you
  trust, or with `--unsafe-no-sandbox`.

The harness hands the evaluator its jail settings in the environment (`ADRS_JAIL`, JSON),
so the evaluator starts candidates the same way (`adrs_eval.candidate`).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import json
import os
import shutil
import site
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BACKENDS = ("bwrap", "docker", "process")
ENV_VAR = "ADRS_JAIL"
UID = 65534  # nobody
TOP_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "passwd", "group",
       "nsswitch.conf", "alternatives", "mime.types")
IMAGE_REPO = "adrs-agent-sandbox"
INSTALL = {
    "bwrap": "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf "
             "install bubblewrap)",
    "docker": "install a Docker engine (apt-get install docker.io) and start dockerd, or set "
              "DOCKER_HOST",
}


class JailError(RuntimeError):
    """A jail could not be started (a missing backend, an engine that refused)."""


@dataclass(frozen=True)
class Mount:
    host: str
    inside: str
    writable: bool = False


@dataclass(frozen=True)
class JailConfig:
    """How jails are made for one evaluation or command; travels as JSON in ADRS_JAIL."""

    backend: str = "bwrap"
    memory_mb: int | None = None  # docker: the container's limit (bwrap: the caller's cgroup)
    pids: int = 512
    network: bool = False
    wall_s: float = 3600.0  # docker: no container outlives this
    docker_host: str = ""
    image: str = ""  # docker: "" = the image this module builds
    label: str = ""  # docker: containers carry it, so the harness can remove leftovers

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> JailConfig:
        """The harness's settings, or (an evaluator run by hand) the best jail here."""
        raw = (os.environ if environ is None else environ).get(ENV_VAR)
        if not raw:
            backend = resolve_backend("auto")
            if backend == "process":
                print(f"WARNING: no jail for candidate code ({bwrap_status()[1]}); "
                      f"{INSTALL['bwrap']}", file=sys.stderr)
            return cls(backend=backend)
        data = json.loads(raw)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


# -- what a jail sees -------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def system_mounts() -> tuple[Mount, ...]:
    """Read-only mounts to run programs and this Python: /usr, the interpreter's prefixes and
    site-packages (wherever they live), and the few /etc files libraries look for."""
    wanted = [Path("/usr")]
    exe_dir = Path(sys.executable).parent
    for p in (sys.base_prefix, sys.prefix, exe_dir, Path(os.path.realpath(sys.executable)).parent,
              *site.getsitepackages(), site.getusersitepackages()):
        if p and Path(p).is_dir():
            wanted.append(Path(p).absolute())
    for name in TOP_LINKS:
        p = Path("/") / name
        if p.is_dir() and not p.is_symlink():
            wanted.append(p)
    wanted.sort(key=lambda p: len(p.parts))
    kept: list[Path] = []
    for p in wanted:
        if not any(p == k or k in p.parents for k in kept):
            kept.append(p)
    mounts = [Mount(str(p), str(p)) for p in kept]
    mounts += [Mount(f"/etc/{n}", f"/etc/{n}") for n in ETC if os.path.lexists(f"/etc/{n}")]
    return tuple(mounts)


def top_links() -> dict[str, str]:
    """/bin -> usr/bin and the like, where the host has them as symlinks."""
    return {f"/{n}": os.readlink(f"/{n}") for n in TOP_LINKS if os.path.islink(f"/{n}")}


def base_env(python_dir: str = "") -> dict[str, str]:
    """The whole environment of a jailed process, before the caller's additions."""
    bin_dir = python_dir or str(Path(sys.executable).parent)
    return {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp",
            "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}


# -- which backends work here ---------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def bwrap_status() -> tuple[bool, str]:
    exe = shutil.which("bwrap")
    if not exe:
        return False, "bwrap is not installed"
    probe = subprocess.run(_bwrap_prefix(JailConfig(), [], "/", {}) + ["true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return False, f"bwrap cannot make namespaces here: {probe.stderr.strip()[:300]}"
    return True, exe


@functools.lru_cache(maxsize=8)
def docker_status(docker_host: str = "") -> tuple[bool, str]:
    try:
        client = _docker_client(docker_host)
        version = client.version().get("Version", "?")
    except JailError as e:
        return False, str(e)
    except Exception as e:  # noqa: BLE001 - any failure to reach the engine means "no docker"
        return False, f"no Docker engine reachable ({type(e).__name__}: {str(e)[:200]})"
    return True, f"Docker engine {version}"


def resolve_backend(requested: str | None) -> str:
    """`auto` (or None) is bwrap where it works, else process; ADRS_SANDBOX overrides auto."""
    mode = requested or "auto"
    if mode == "auto":
        mode = os.environ.get("ADRS_SANDBOX") or "auto"
    if mode not in ("auto", *BACKENDS):
        raise JailError(f"sandbox {mode!r}: use auto, {', '.join(BACKENDS)}")
    if mode == "auto":
        return "bwrap" if bwrap_status()[0] else "process"
    return mode


def check_backend(config: JailConfig) -> None:
    """Raise JailError saying what to install when the chosen backend cannot run here."""
    if config.backend == "bwrap":
        ok, why = bwrap_status()
        if not ok:
            raise JailError(f"the bwrap sandbox cannot run: {why}; {INSTALL['bwrap']}")
    elif config.backend == "docker":
        ok, why = docker_status(config.docker_host)
        if not ok:
            raise JailError(f"the docker sandbox cannot run: {why}; {INSTALL['docker']}")


# -- starting a jailed process ----------------------------------------------------------------------

class Jail:
    """Processes that see `mounts` (and the system, read-only) and nothing else."""

    def __init__(self, config: JailConfig, mounts: list[Mount], workdir: str = "/tmp"):
        self.config = config
        self.mounts = sorted(mounts, key=lambda m: len(Path(m.inside).parts))
        self.workdir = workdir

    def path(self, host: str | Path) -> str:
        """Where a host path under one of the mounts appears inside the jail."""
        host = os.path.abspath(host)
        if self.config.backend == "process":
            return host
        for m in sorted(self.mounts, key=lambda m: -len(m.host)):
            if host == m.host or host.startswith(m.host.rstrip("/") + "/"):
                return m.inside + host[len(m.host):]
        raise ValueError(f"{host} is not inside any mount of this jail")

    def spawn(self, argv: list[str], env: dict[str, str] | None = None,
              stdin: bool = False, prefix: list[str] = ()) -> Proc:
        """Start argv; stdin is a pipe when asked for, else /dev/null; stdout and stderr are
        pipes (the caller must read them). `prefix` (joining a cgroup, rlimits) runs before
        the jail is made; docker ignores it (the container has limits of its own)."""
        full_env = {**base_env(), **(env or {})}
        if self.config.backend == "bwrap":
            jail = _bwrap_prefix(self.config, self.mounts, self.workdir, full_env)
            return popen([*prefix, *jail, *argv], {}, None, stdin, signal_codes=True)
        if self.config.backend == "docker":
            return _spawn_docker(self, argv, full_env, stdin)
        if self.config.backend == "process":
            return _spawn_process(self, [*prefix, *argv], full_env, stdin)
        raise JailError(f"unknown sandbox backend {self.config.backend!r}")


class Proc:
    """A started process: fds to talk to it, wait, kill, close."""

    stdin: int | None
    stdout: int
    stderr: int

    def wait(self, timeout: float | None = None) -> int | None:
        """Exit status (negative: killed by that signal), or None if still running."""
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Kill it if it runs, reap it, close the fds, remove what it left."""
        raise NotImplementedError

    def pidfd(self) -> int | None:
        """A pidfd that turns readable when the process exits (None where there is none:
        then its output ends when everything in the jail has exited)."""
        return None


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # an old kernel, or the process is gone already
        return None


def _bwrap_prefix(config: JailConfig, mounts: list[Mount], workdir: str,
                  env: dict[str, str]) -> list[str]:
    args = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--unshare-user",
            *_bwrap_optional(), "--uid", str(UID), "--gid", str(UID), "--die-with-parent",
            "--new-session", "--hostname", "jail", "--proc", "/proc", "--dev", "/dev",
            "--tmpfs", "/tmp", "--clearenv"]
    if config.network:
        args.append("--share-net")
    for m in system_mounts():
        args += ["--ro-bind", m.host, m.inside]
    for link, target in top_links().items():
        args += ["--symlink", target, link]
    for m in mounts:
        args += ["--bind" if m.writable else "--ro-bind", m.host, m.inside]
    args += ["--remount-ro", "/"]  # the root itself (a tmpfs bwrap made) is not for writing
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args + ["--chdir", workdir, "--"]


@functools.lru_cache(maxsize=1)
def _bwrap_optional() -> tuple[str, ...]:
    """Flags of newer bubblewraps: no user namespaces inside the jail (0.8+)."""
    exe = shutil.which("bwrap")
    if not exe:
        return ()
    help_text = subprocess.run([exe, "--help"], capture_output=True, text=True).stdout
    return ("--disable-userns",) if "--disable-userns" in help_text else ()


class _PopenProc(Proc):
    def __init__(self, popen: subprocess.Popen, cleanup: str | None, signal_codes: bool):
        self.popen, self._cleanup, self._signal_codes = popen, cleanup, signal_codes
        self.stdin = popen.stdin.fileno() if popen.stdin else None
        self.stdout = popen.stdout.fileno()
        self.stderr = popen.stderr.fileno()

    def pidfd(self) -> int | None:
        return _pidfd(self.popen.pid)

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if self._signal_codes and 128 < code < 128 + 65:  # bwrap says "killed by N" as 128+N
            code = 128 - code
        return code

    def kill(self) -> None:
        try:
            os.killpg(self.popen.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass  # already gone

    def close(self) -> None:
        self.kill()
        self.popen.wait()
        for f in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if f is not None:
                try:
                    f.close()
                except BrokenPipeError:
                    pass  # a stdin the process never read
        if self._cleanup:
            shutil.rmtree(self._cleanup, ignore_errors=True)


def popen(argv: list[str], env: dict[str, str], cwd: str | Path | None, stdin: bool = False,
          cleanup: str | None = None, signal_codes: bool = False) -> Proc:
    """A child process in its own session, with pipes: jails are started through it, and so
    is a trusted command (an evaluator) that needs no jail."""
    try:
        child = subprocess.Popen(argv, env=env, cwd=cwd, start_new_session=True,
                                 stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        raise JailError(f"could not start {argv[0]!r}: {e}") from e
    return _PopenProc(child, cleanup, signal_codes)


def _spawn_process(jail: Jail, argv: list[str], env: dict[str, str], stdin: bool) -> Proc:
    """No jail: a plain child process; /tmp and HOME are a private folder, and the workdir is
    the host folder mounted there (the paths a jail would see are the host's)."""
    tmp = tempfile.mkdtemp(prefix="adrs-unjailed-")
    env = {k: (tmp if v == "/tmp" else v) for k, v in env.items()}
    cwd = next((m.host for m in jail.mounts if m.inside == jail.workdir), jail.workdir)
    return popen(argv, env, tmp if cwd == "/tmp" else cwd, stdin, cleanup=tmp)


# -- docker ---------------------------------------------------------------------------------------

def _docker_client(docker_host: str = ""):
    try:
        import docker
    except ImportError as e:
        raise JailError("the docker sandbox needs the docker Python SDK: pip install docker") from e
    try:
        if docker_host:
            return docker.DockerClient(base_url=docker_host, timeout=60)
        return docker.from_env(timeout=60)
    except docker.errors.DockerException as e:
        raise JailError(f"no Docker engine reachable: {e}") from e


def image_layout() -> bytes:
    """The sandbox image: an empty root with the host's top-level symlinks and mount points."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("tmp", "proc", "dev", "sys", "etc", "usr", "adrs"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        for link, target in sorted(top_links().items()):
            info = tarfile.TarInfo(link.lstrip("/"))
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def ensure_image(client) -> str:
    """The sandbox image's name, importing it first if the engine does not have it."""
    import docker

    layout = image_layout()
    name = f"{IMAGE_REPO}:{hashlib.sha256(layout).hexdigest()[:12]}"
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        repo, tag = name.split(":")
        client.api.import_image_from_data(layout, repository=repo, tag=tag)
    return name


class _DockerProc(Proc):
    def __init__(self, container, io_dir: str, fds: dict[str, int]):
        self.container, self.io_dir = container, io_dir
        self.stdin, self.stdout, self.stderr = fds.get("in"), fds["out"], fds["err"]
        self._code: int | None = None

    def wait(self, timeout: float | None = None) -> int | None:
        if self._code is not None:
            return self._code
        import requests

        try:
            status = self.container.wait(timeout=timeout if timeout is not None else 10 ** 6)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            return None
        code = int(status.get("StatusCode", -1))
        if 128 < code < 128 + 65:
            code = 128 - code
        self._code = code
        return code

    def kill(self) -> None:
        import docker

        try:
            self.container.kill()
        except docker.errors.APIError:
            pass  # not running any more, or already removed

    def close(self) -> None:
        import docker

        try:
            self.container.remove(force=True)
        except docker.errors.APIError:
            pass  # removed already
        for fd in (self.stdin, self.stdout, self.stderr):
            if fd is not None:
                os.close(fd)
        shutil.rmtree(self.io_dir, ignore_errors=True)


def _spawn_docker(jail: Jail, argv: list[str], env: dict[str, str], stdin: bool) -> Proc:
    """A container whose stdin, stdout and stderr are FIFOs in a folder mounted at /adrs/io."""
    cfg = jail.config
    client = _docker_client(cfg.docker_host)
    image = cfg.image or ensure_image(client)
    io_dir = tempfile.mkdtemp(prefix="adrs-io-")
    os.chmod(io_dir, 0o755)
    for name in ("in", "out", "err"):
        os.mkfifo(os.path.join(io_dir, name), 0o666)
        os.chmod(os.path.join(io_dir, name), 0o666)
    fds = {name: os.open(os.path.join(io_dir, name), os.O_RDONLY | os.O_NONBLOCK)
           for name in ("out", "err")}
    volumes = {m.host: {"bind": m.inside, "mode": "ro"} for m in system_mounts()}
    volumes.update({m.host: {"bind": m.inside, "mode": "rw" if m.writable else "ro"}
                    for m in jail.mounts})
    volumes[io_dir] = {"bind": "/adrs/io", "mode": "ro"}
    redirect = '<"$0/in"' if stdin else "</dev/null"
    command = ["/usr/bin/timeout", "-s", "KILL", str(int(cfg.wall_s) + 1), "/bin/sh", "-c",
               f'exec "$@" {redirect} >"$0/out" 2>"$0/err"', "/adrs/io", *argv]
    import docker

    try:
        container = client.containers.run(
            image, command, detach=True, network_mode="bridge" if cfg.network else "none",
            read_only=True, user=_docker_user(jail), environment=env, working_dir=jail.workdir,
            volumes=volumes, tmpfs={"/tmp": "rw,exec,size=1g,mode=1777"},
            mem_limit=f"{cfg.memory_mb}m" if cfg.memory_mb else None,
            memswap_limit=f"{cfg.memory_mb}m" if cfg.memory_mb else None,
            pids_limit=cfg.pids, cap_drop=["ALL"], security_opt=["no-new-privileges"],
            labels={"adrs.run": cfg.label or "adrs"}, hostname="jail",
            log_config={"type": "json-file", "config": {"max-size": "1m", "max-file": "1"}})
    except docker.errors.DockerException as e:
        for fd in fds.values():
            os.close(fd)
        shutil.rmtree(io_dir, ignore_errors=True)
        raise JailError(f"docker could not start the sandbox container: {e}") from e
    proc = _DockerProc(container, io_dir, fds)
    if stdin:  # the shell in the container opens its end first; until then open() says ENXIO
        deadline = time.monotonic() + 60
        while True:
            try:
                proc.stdin = os.open(os.path.join(io_dir, "in"), os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as e:
                if e.errno != errno.ENXIO:
                    raise
            if time.monotonic() > deadline or proc.wait(timeout=0.005) is not None:
                proc.close()
                raise JailError("the sandbox container exited before it opened its input")
    return proc


def _docker_user(jail: Jail) -> str:
    """uid 65534, except for a jail given a writable mount (an agent's worktree, owned by the
    harness's user): without user namespaces the only way to write it is as its owner, so
    that jail runs as uid 0 with every capability dropped (no DAC override, no mounts)."""
    if any(m.writable for m in jail.mounts):
        return f"{os.getuid()}:{os.getgid()}"
    return f"{UID}:{UID}"


def remove_containers(config: JailConfig) -> int:
    """Remove every container of this label (left behind by an evaluator that was killed)."""
    if config.backend != "docker" or not config.label:
        return 0
    import docker

    client = _docker_client(config.docker_host)
    gone = 0
    for c in client.containers.list(all=True, filters={"label": f"adrs.run={config.label}"}):
        try:
            c.remove(force=True)
            gone += 1
        except docker.errors.APIError:
            pass  # removed meanwhile
    return gone


# -- what is in force ---------------------------------------------------------------------------------

@dataclass
class Isolation:
    """What a run's candidate code is kept from, in words, for the one loud line."""

    backend: str
    jailed: bool
    memory: str
    missing: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.backend == "bwrap":
            what = ("bwrap jail: candidates in their own user/pid/net/mount namespaces as "
                    "uid 65534, seeing only their files and Python")
        elif self.backend == "docker":
            what = "docker jail: one container per candidate process, network none, read-only root"
        else:
            what = ("NO SANDBOX: candidate code runs as this user with this machine's files, "
                    "processes and network")
        text = f"isolation: {what}; memory: {self.memory}"
        if self.missing:
            text += "; missing: " + "; ".join(self.missing)
        return text


def isolation(config: JailConfig) -> Isolation:
    from sandbox import cgroup

    ok, where = cgroup.available()
    memory = (f"{config.memory_mb} MB for all processes of an evaluation ({where})" if ok
              else f"per-process address-space limit only ({where})")
    if config.backend == "docker":
        memory = f"{config.memory_mb} MB per container"
    missing = []
    if config.backend == "process":
        ok_b, why_b = bwrap_status()
        missing.append(f"bwrap ({why_b}: {INSTALL['bwrap']})" if not ok_b else
                       "a jail (bwrap works here: drop --sandbox process)")
    if config.backend != "docker" and not ok:
        missing.append("a memory cgroup (" + where + ")")
    return Isolation(config.backend, config.backend != "process", memory, missing)
