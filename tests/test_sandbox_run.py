"""sandbox.run.run on real subprocesses: scrubbed env, private HOME, group kill, limits, netns."""

from __future__ import annotations

import json
import os
import socket
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sandbox import run as sandbox_run
from sandbox.run import RunResult, run, scrub_env

PRINT_ENV = "import json, os; print(json.dumps(dict(os.environ)))"

SECRETS = {
    "FOO_API_KEY": "sk-foo",
    "GITHUB_TOKEN": "ghp_x",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "MY_PASSWORD": "hunter2",
    "AWS_ACCESS_KEY_ID": "AKIA",
}


def _gone_or_zombie(pid: int) -> bool:
    """True once pid no longer runs (a zombie waiting for init's reaping counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state in ("Z", "X")


def _wait_dead(pid: int, deadline_s: float = 10.0) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if _gone_or_zombie(pid):
            return True
        time.sleep(0.05)
    return _gone_or_zombie(pid)


def test_secrets_scrubbed_path_kept(tmp_path, monkeypatch):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("ADRS_HARMLESS_SETTING", "kept")
    res = run([sys.executable, "-c", PRINT_ENV], tmp_path, timeout_s=60)
    assert res.ok, res.stderr
    env = json.loads(res.stdout.strip().splitlines()[-1])
    for k, v in SECRETS.items():
        assert k not in env
        assert v not in res.stdout
    assert env["PATH"] == os.environ["PATH"]
    assert env["ADRS_HARMLESS_SETTING"] == "kept"


def test_scrub_env_function():
    env = {"PATH": "/bin", "LANG": "C", "OPENAI_API_KEY": "x", "HF_HOME": "/h",
           "SSH_AUTH_SOCK": "/s", "KUBECONFIG": "/k", "SESSION_COOKIE": "c", "db_password": "p"}
    assert scrub_env(env) == {"PATH": "/bin", "LANG": "C"}


def test_explicit_env_is_scrubbed_too(tmp_path):
    res = run([sys.executable, "-c", PRINT_ENV], tmp_path, timeout_s=60,
              env={"PATH": os.environ["PATH"], "ANTHROPIC_API_KEY": "x", "KEEP": "1"},
              extra_env={"ADRS_STAGE": "quick"})
    env = json.loads(res.stdout.strip().splitlines()[-1])
    assert "ANTHROPIC_API_KEY" not in env
    assert env["KEEP"] == "1"
    assert env["ADRS_STAGE"] == "quick"


def test_home_and_tmpdir_private_and_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "real-home"))
    script = ("import json, os, pathlib; h = os.environ['HOME']; "
              "pathlib.Path(h, 'left.txt').write_text('x'); "
              "print(json.dumps({'home': h, 'tmp': os.environ['TMPDIR'], "
              "'exists': os.path.isdir(h)}))")
    res = run([sys.executable, "-c", script], tmp_path, timeout_s=60)
    assert res.ok, res.stderr
    info = json.loads(res.stdout.strip().splitlines()[-1])
    assert info["exists"] is True
    assert info["home"] == info["tmp"]
    assert info["home"] != str(tmp_path / "real-home")
    assert "adrs-run-" in Path(info["home"]).name
    assert not Path(info["home"]).exists()


def test_hanging_command_and_grandchild_killed(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    script = f"sleep 60 & echo $! > {pidfile}; sleep 60"
    res = run(["bash", "-c", script], tmp_path, timeout_s=1, mode="process")
    assert res.timed_out is True
    assert not res.ok
    assert "timed out" in res.killed_reason
    pid = int(pidfile.read_text().strip())
    assert _wait_dead(pid), f"grandchild {pid} still running"


def test_background_straggler_killed_after_normal_exit(tmp_path):
    pidfile = tmp_path / "straggler.pid"
    res = run(["bash", "-c", f"sleep 60 & echo $! > {pidfile}; exit 0"], tmp_path, timeout_s=30,
              mode="process")
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


# -- bwrap isolation: the filesystem is read-only but for the worktree and temp ---------------

needs_bwrap = pytest.mark.skipif(not sandbox_run.bwrap_works(),
                                 reason="bubblewrap is not installed or cannot make namespaces")


@needs_bwrap
def test_bwrap_writes_only_where_allowed(tmp_path):
    wt, outside = tmp_path / "wt", tmp_path / "outside"
    wt.mkdir()
    outside.mkdir()
    script = (f"touch {wt}/ok; touch {outside}/bad 2>/dev/null || echo refused; "
              'touch "$TMPDIR/tmp_ok" && echo tmp-writable')
    res = run(["bash", "-c", script], wt, timeout_s=30, writable=[wt], mode="bwrap")
    assert res.ok, res.stderr
    assert (wt / "ok").exists() and not (outside / "bad").exists()
    assert "refused" in res.stdout and "tmp-writable" in res.stdout


@needs_bwrap
def test_bwrap_hides_folders(tmp_path):
    secret = tmp_path / "heldout"
    secret.mkdir()
    (secret / "answers.txt").write_text("42")
    res = run(["bash", "-c", f"ls -A {secret}; cat {secret}/answers.txt 2>&1 || true"],
              tmp_path, timeout_s=30, hide=[secret], mode="bwrap")
    assert "42" not in res.stdout
    assert (secret / "answers.txt").read_text() == "42"  # hidden, not harmed


@needs_bwrap
def test_bwrap_kills_the_whole_tree_at_the_timeout(tmp_path):
    token = "61.73519"
    res = run(["bash", "-c", f"sleep {token} & sleep {token}"], tmp_path, timeout_s=1,
              mode="bwrap")
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
        return [p for p in pids if not _gone_or_zombie(p)]

    deadline = time.monotonic() + 10
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive() == []


@needs_bwrap
def test_bwrap_output_capture_cannot_be_forged(tmp_path):
    """The candidate cannot overwrite the files its output is captured in."""
    script = ("import os, glob; print('real'); "
              "[open(p, 'w').write('{\"score\": 1e9}') for p in glob.glob('/tmp/adrs-out-*/*')]")
    res = run([sys.executable, "-c", script], tmp_path, timeout_s=30, mode="bwrap")
    assert res.stdout.strip() == "real"
