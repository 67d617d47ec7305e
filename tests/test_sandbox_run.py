"""sandbox.run.run on real subprocesses: scrubbed env, private HOME, group kill, limits, netns."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from fixtures.helpers import gone_or_zombie, needs_cgroup
from sandbox import cgroup
from sandbox import run as sandbox_run
from sandbox.jail import Jail, Mount
from sandbox.run import RunResult, allowed_env, run

PRINT_ENV = "import json, os; print(json.dumps(dict(os.environ)))"

SECRETS = {
    "FOO_API_KEY": "sk-foo-SECRET-1",
    "GITHUB_TOKEN": "ghp_SECRET-2",
    "AWS_SECRET_ACCESS_KEY": "aws-SECRET-3",
    "MY_PASSWORD": "hunter2-SECRET-4",
    "AWS_ACCESS_KEY_ID": "AKIA-SECRET-5",
}


def _wait_dead(pid: int, deadline_s: float = 10.0) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if gone_or_zombie(pid):
            return True
        time.sleep(0.05)
    return gone_or_zombie(pid)


def test_only_allowed_variables_reach_the_command(tmp_path, monkeypatch):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    # secrets under harmless names: an allow-list drops them, a deny-list would not
    monkeypatch.setenv("DB_URL", "postgres://u:PW-SECRET-6@db/x")
    monkeypatch.setenv("https_proxy", "http://user:PW-SECRET-7@proxy:3128")
    monkeypatch.setenv("MY_SETTING", "not declared")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    res = run([sys.executable, "-c", PRINT_ENV], tmp_path, timeout_s=60,
              declared_env=["OMP_NUM_THREADS", "DB_URL"])
    assert res.ok, res.stderr
    env = json.loads(res.stdout.strip().splitlines()[-1])
    for k, v in SECRETS.items():
        assert k not in env and v not in res.stdout
    # the values are distinctive: a random temp folder name cannot contain them by chance
    assert "SECRET" not in res.stdout and "PW-" not in res.stdout
    assert "MY_SETTING" not in env and "https_proxy" not in env
    assert env["OMP_NUM_THREADS"] == "3"  # declared by the task
    assert "DB_URL" not in env  # declared, but its name says secret
    assert env["PATH"] == os.environ["PATH"]


def test_allowed_env_function():
    env = {"PATH": "/bin", "LANG": "C", "LC_ALL": "C", "OPENAI_API_KEY": "x", "HF_HOME": "/h",
           "SSH_AUTH_SOCK": "/s", "DB_URL": "postgres://u:p@h", "HTTPS_PROXY": "http://u:p@h",
           "FOO": "1"}
    assert allowed_env(env) == {"PATH": "/bin", "LANG": "C", "LC_ALL": "C"}
    assert allowed_env(env, ["FOO", "HTTPS_PROXY"]) == {"PATH": "/bin", "LANG": "C",
                                                        "LC_ALL": "C", "FOO": "1"}


def test_explicit_env_is_filtered_too(tmp_path):
    res = run([sys.executable, "-c", PRINT_ENV], tmp_path, timeout_s=60,
              env={"PATH": os.environ["PATH"], "ANTHROPIC_API_KEY": "x", "KEEP": "1"},
              extra_env={"ADRS_STAGE": "quick"})
    env = json.loads(res.stdout.strip().splitlines()[-1])
    assert "ANTHROPIC_API_KEY" not in env and "KEEP" not in env
    assert env["ADRS_STAGE"] == "quick"


def test_home_and_tmpdir_private_and_emptied(tmp_path, monkeypatch):
    """HOME is a private folder, empty at every start: what one run leaves there (files,
    folders, a link to a folder outside) is gone before the next, and nothing is followed."""
    monkeypatch.setenv("HOME", str(tmp_path / "real-home"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    script = ("import json, os, pathlib; h = pathlib.Path(os.environ['HOME']); "
              "seen = sorted(os.listdir(h)); (h / 'left.txt').write_text('x'); "
              "(h / 'd' / 'e').mkdir(parents=True); (h / 'd' / 'e' / 'f').write_text('y'); "
              f"(h / 'link').symlink_to({str(outside)!r}); "
              "print(json.dumps({'home': str(h), 'tmp': os.environ['TMPDIR'], 'seen': seen}))")
    homes = []
    for _ in range(3):
        res = run([sys.executable, "-c", script], tmp_path, timeout_s=60)
        assert res.ok, res.stderr
        info = json.loads(res.stdout.strip().splitlines()[-1])
        assert info["seen"] == []
        assert info["home"] == info["tmp"]
        assert info["home"] != str(tmp_path / "real-home")
        assert "adrs-run-" in Path(info["home"]).name
        assert not any(Path(info["home"]).iterdir())
        homes.append(info["home"])
    assert len(set(homes)) == 1  # the folder is reused, emptied
    assert (outside / "keep.txt").read_text() == "mine"
    assert Path(homes[0]).stat().st_mode & 0o777 == 0o700


def test_runs_at_once_get_homes_of_their_own(tmp_path):
    """Two commands running at the same time (each waits until both have started) never
    share a HOME."""
    script = ("import os, pathlib, sys, time; d = pathlib.Path(sys.argv[1]); "
              "(d / sys.argv[2]).write_text(os.environ['HOME']); "
              "t = time.time() + 30\n"
              "while len(list(d.iterdir())) < 2 and time.time() < t: time.sleep(0.01)\n"
              "print(len(list(d.iterdir())))")
    meet = tmp_path / "meet"
    meet.mkdir()
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        results = list(ex.map(lambda name: run([sys.executable, "-c", script, str(meet), name],
                                               tmp_path, timeout_s=60), ["a", "b"]))
    assert all(r.ok and r.stdout.strip() == "2" for r in results), results
    assert (meet / "a").read_text() != (meet / "b").read_text()


def test_hanging_command_and_grandchild_killed(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    script = f"sleep 60 & echo $! > {pidfile}; sleep 60"
    res = run(["bash", "-c", script], tmp_path, timeout_s=1)
    assert res.timed_out is True
    assert not res.ok
    assert "timed out" in res.killed_reason
    pid = int(pidfile.read_text().strip())
    assert _wait_dead(pid), f"grandchild {pid} still running"


def test_background_straggler_killed_after_normal_exit(tmp_path):
    pidfile = tmp_path / "straggler.pid"
    res = run(["bash", "-c", f"sleep 60 & echo $! > {pidfile}; exit 0"], tmp_path, timeout_s=30,
)
    assert res.returncode == 0
    assert res.timed_out is False
    pid = int(pidfile.read_text().strip())
    assert _wait_dead(pid), f"straggler {pid} left running"


def test_memory_limit_blocks_big_allocation(tmp_path):
    res = run([sys.executable, "-c", "bytearray(4 * 1024**3)"], tmp_path, timeout_s=60,
              memory_mb=512)
    assert res.returncode != 0
    assert "MemoryError" in res.stderr


def test_memory_limit_allows_small_allocation(tmp_path):
    res = run([sys.executable, "-c", "b = bytearray(16 * 1024**2); print(len(b))"], tmp_path,
              timeout_s=60, memory_mb=512)
    assert res.ok, res.stderr
    assert res.stdout.strip() == str(16 * 1024**2)


LIMITS = ("import re; t = open('/proc/self/limits').read(); "
          "print((re.search(r'Max address space +(\\S+) +(\\S+)', t).groups(), "
          "re.search(r'Max core file size +(\\S+) +(\\S+)', t).groups()))")


def test_each_process_starts_under_its_address_space_and_core_limits(tmp_path):
    """Soft and hard limits both, set by the one shell that starts the command: in a run
    (with its cgroup), and from the launcher alone (where no cgroup can be made)."""
    res = run([sys.executable, "-c", LIMITS], tmp_path, timeout_s=60, memory_mb=512)
    assert res.ok, res.stderr
    as_limit = str(512 * 1024 * 1024)
    assert res.stdout.strip() == str(((as_limit, as_limit), ("0", "0")))
    alone = subprocess.run(sandbox_run.launcher(None, 300) + [sys.executable, "-c", LIMITS],
                           capture_output=True, text=True, timeout=60)
    as_limit = str(300 * 1024 * 1024)
    assert alone.stdout.strip() == str(((as_limit, as_limit), ("0", "0"))), alone.stderr
    free = run([sys.executable, "-c", LIMITS], tmp_path, timeout_s=60, memory_mb=None)
    assert free.stdout.strip() == str((("unlimited", "unlimited"), ("0", "0")))


def test_missing_program(tmp_path):
    res = run(["adrs-no-such-program-xyz"], tmp_path, timeout_s=30)
    assert res.returncode != 0
    assert not res.ok
    assert "adrs-no-such-program-xyz" in res.stderr


@pytest.mark.parametrize("code", [0, 3, 42])
def test_exit_codes_propagate(tmp_path, code):
    res = run([sys.executable, "-c", f"import sys; print('out'); "
               f"print('err', file=sys.stderr); sys.exit({code})"], tmp_path, timeout_s=60)
    assert res.returncode == code
    assert res.ok is (code == 0)
    assert res.timed_out is False
    assert res.stdout.strip() == "out"
    assert res.stderr.strip() == "err"


def test_killed_by_signal_reason(tmp_path):
    res = run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"],
              tmp_path, timeout_s=60)
    assert res.returncode == -15
    assert "SIGTERM" in res.killed_reason


def test_runs_in_cwd(tmp_path):
    (tmp_path / "here").mkdir()
    res = run([sys.executable, "-c", "import os; print(os.getcwd())"], tmp_path / "here",
              timeout_s=60)
    assert Path(res.stdout.strip()).resolve() == (tmp_path / "here").resolve()


CONNECT = textwrap.dedent("""\
    import socket, sys
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3).close()
    except OSError as e:
        print("blocked", e)
        sys.exit(1)
    print("connected")
""")


@pytest.fixture
def local_tcp_server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                conn.close()
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(timeout=5)
    srv.close()


def test_network_on_reaches_local_server(tmp_path, local_tcp_server):
    (tmp_path / "connect.py").write_text(CONNECT)
    res = run([sys.executable, "connect.py", str(local_tcp_server)], tmp_path, timeout_s=30,
              network=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "connected" in res.stdout


def test_network_off_cannot_reach_local_server(tmp_path, local_tcp_server):
    if not sandbox_run.netns_prefix():
        pytest.skip("no network namespace on this machine (unshare -n / -rn not permitted)")
    (tmp_path / "connect.py").write_text(CONNECT)
    res = run([sys.executable, "connect.py", str(local_tcp_server)], tmp_path, timeout_s=30,
              network=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "blocked" in res.stdout
    assert "connected" not in res.stdout


def test_runresult_ok():
    assert RunResult(0, "", "", False, 0.0).ok
    assert not RunResult(0, "", "", True, 0.0).ok
    assert not RunResult(None, "", "", False, 0.0).ok


FORK_HOGS = textwrap.dedent("""\
    import os, sys, time
    kids = []
    for _ in range(5):  # five children of 200 MB each: every one is under the 512 MB rlimit
        pid = os.fork()
        if pid == 0:
            block = b"x" * (200 * 1024 * 1024)
            time.sleep(3)
            os._exit(0)
        kids.append(pid)
    statuses = [os.waitpid(pid, 0)[1] for pid in kids]
    if all(s == 0 for s in statuses):
        print("all children survived")
    print("statuses", statuses)
""")


@pytest.mark.slow
@needs_cgroup
def test_memory_cap_covers_all_processes_together(tmp_path):
    res = run([sys.executable, "-c", FORK_HOGS], tmp_path, timeout_s=60, memory_mb=512)
    assert "all children survived" not in res.stdout
    assert res.out_of_memory, (res.returncode, res.stderr[-500:])
    assert "out of memory" in res.killed_reason


@needs_cgroup
def test_setsid_straggler_killed_after_normal_exit(tmp_path):
    pidfile = tmp_path / "straggler.pid"
    script = f"import os, subprocess; p = subprocess.Popen(['setsid', 'sleep', '60']); " \
             f"open('{pidfile}', 'w').write(str(p.pid))"
    res = run([sys.executable, "-c", script], tmp_path, timeout_s=30)
    assert res.ok, res.stderr
    assert _wait_dead(int(pidfile.read_text()))


def test_output_flood_is_kept_bounded(tmp_path):
    script = "import sys\nchunk = 'y' * (1 << 20) + '\\n'\nfor _ in range(400): sys.stdout.write(chunk)\nprint('END')"
    res = run([sys.executable, "-c", script], tmp_path, timeout_s=120)
    assert res.ok, res.stderr[-300:]
    assert len(res.stdout) < 2 * 1024 * 1024
    assert res.dropped_bytes > 390 * 1024 * 1024
    assert res.stdout.rstrip().endswith("END")  # the tail is kept
    assert "bytes of output dropped" in res.stdout


# -- jails: what an agent's command can and cannot reach --------------------------------------

def jailed(backend, wt: Path, command: str, timeout_s: float = 30, memory_mb: int = 512):
    config = dataclasses.replace(backend.config(), memory_mb=memory_mb, wall_s=timeout_s)
    jail = Jail(config, [Mount(str(wt), "/candidate", writable=True)],
                workdir="/candidate")
    return run(["bash", "-c", command], wt, timeout_s=timeout_s, memory_mb=memory_mb, jail=jail)


def test_jail_writes_only_its_worktree_and_tmp(tmp_path, backend):
    wt = tmp_path / "wt"
    wt.mkdir()
    res = jailed(backend, wt, f"touch /candidate/ok; touch {tmp_path}/bad 2>/dev/null || "
                              "echo refused; touch /usr/bad 2>/dev/null || echo usr-refused; "
                              "touch /tmp/t && echo tmp-writable; id -u")
    assert res.ok, res.stderr
    assert (wt / "ok").exists() and not (tmp_path / "bad").exists()
    assert "refused" in res.stdout and "usr-refused" in res.stdout
    assert "tmp-writable" in res.stdout


def test_jail_sees_no_host_files_sessions_or_processes(tmp_path, backend):
    secret = tmp_path / "heldout"
    secret.mkdir()
    (secret / "answers.txt").write_text("HELD-OUT-ANSWER")
    here = Path(__file__).resolve().parents[1]
    res = jailed(backend, tmp_path / "wt" if (tmp_path / "wt").mkdir() is None else None,
                 f"cat {secret}/answers.txt; ls {here}/tasks; ls /work /root/.ssh; "
                 "ls /proc | grep -c '^[0-9]'; cat /proc/1/environ | tr '\\0' '\\n'; "
                 "ls /run /var/run; echo done")
    assert "HELD-OUT-ANSWER" not in res.stdout and "cbl-multi" not in res.stdout
    assert "ANTHROPIC" not in res.stdout and "done" in res.stdout
    procs = int([line for line in res.stdout.splitlines() if line.isdigit()][0])
    assert procs < 10  # its own pid namespace: only the jail's processes


def test_jail_cannot_reach_host_unix_sockets_or_network(tmp_path, backend, local_tcp_server):
    sock_path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    server.listen(1)
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(b"\0adrs-test-abstract")
    abstract.listen(1)
    probe = textwrap.dedent(f"""\
        import socket
        for target in ({str(sock_path)!r}, b"\\0adrs-test-abstract", "/var/run/docker.sock",
                       "/run/docker.sock"):
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(target)
                print("REACHED", target)
            except OSError as e:
                print("blocked", target, e)
        try:
            socket.create_connection(("127.0.0.1", {local_tcp_server}), timeout=3)
            print("REACHED tcp")
        except OSError as e:
            print("blocked tcp", e)
    """)
    wt = tmp_path / "wt"
    wt.mkdir()
    (wt / "probe.py").write_text(probe)
    try:
        res = jailed(backend, wt, "python3 probe.py || python probe.py")
    finally:
        server.close()
        abstract.close()
    assert "REACHED" not in res.stdout, res.stdout
    assert res.stdout.count("blocked") == 5, res.stdout + res.stderr


@pytest.mark.slow
def test_jail_is_killed_whole_at_the_timeout(tmp_path, backend):
    token = "61.73519"
    wt = tmp_path / "wt"
    wt.mkdir()
    res = jailed(backend, wt, f"setsid sleep {token} & sleep {token}", timeout_s=2)
    assert res.timed_out is True

    def alive() -> list[int]:
        pids = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if token.encode() in (proc / "cmdline").read_bytes():
                        pids.append(int(proc.name))
                except OSError:
                    continue
        return [p for p in pids if not gone_or_zombie(p)]

    deadline = time.monotonic() + 20
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive() == []


@pytest.mark.slow
def test_jail_memory_cap(tmp_path, backend):
    wt = tmp_path / "wt"
    wt.mkdir()
    (wt / "hogs.py").write_text(FORK_HOGS)
    res = jailed(backend, wt, "python3 hogs.py || python hogs.py", memory_mb=512)
    assert "all children survived" not in res.stdout


@needs_cgroup
def test_cgroups_a_killed_harness_left_behind_are_swept():
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid is free now: the "harness" that died without cleaning up
    parent = cgroup.controllers().memory
    left = parent / f"adrs-{dead.pid}-0"
    left.mkdir()
    busy = parent / f"adrs-{os.getpid()}-999"  # a live process's cgroup is not touched
    busy.mkdir()
    try:
        cgroup.controllers.cache_clear()
        assert cgroup.available()[0]
        assert not left.exists() and busy.exists()
    finally:
        busy.rmdir()
        if left.exists():
            left.rmdir()
