"""Hostile candidates and a hostile agent against the harness, on the toy task, for every
jail backend (bwrap and docker) and the process backend's refusal. One test per wall of the
integrity issue; each candidate here really tries to climb it. The nine tasks' own attacks
(patching their simulators, rebuilding their ground truth) are in tests/test_hostile_<task>.py.
"""

from __future__ import annotations

import os
import resource
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.fixtures.helpers import (
    TOY,
    call,
    cli_env,
    events,
    of_type,
    policy,
    run_cli,
    scored,
    solve,
    toy_task,
    turn,
    write_script,
)
from tests.fixtures.hostile import FORGE_AT_EXIT, FORGE_VIA_PARENT, evaluate, not_above, worktree

BASE = -17.0  # the toy baseline (A=3, B=1) on quick/full; test subtracts 0.5
STAGES = {"quick": BASE, "full": BASE, "test": BASE - 0.5}


def toy(tmp_path: Path, source: str, name: str = "wt") -> Path:
    return worktree(TOY, tmp_path, {"pkg/policy.py": source}, name)


def feedback_of(result) -> str:
    return result.feedback + result.error + result.log_tail


# -- 2. a forged result line ------------------------------------------------------------------

@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_forged_result_line_is_never_the_score(tmp_path, backend, stage):
    wt = toy(tmp_path, FORGE_VIA_PARENT + FORGE_AT_EXIT + policy())
    result = evaluate(TOY, wt, stage, backend)
    assert not_above(result, STAGES[stage])
    assert "forged" not in result.feedback


def test_a_forged_reply_from_the_policy_cannot_pass_validation(tmp_path, backend):
    """The policy owns its reply pipe: all it can send is its own answer, and the evaluator
    checks it (here: a non-number for A)."""
    source = textwrap.dedent("""\
        import os
        os.write(int(os.environ.get("X", "1")), b'{"a": "7", "b": 2, "score": 1e9}\\n')
        A = 3.0
        B = 1.0
    """)
    result = evaluate(TOY, toy(tmp_path, source), "quick", backend)
    assert not_above(result, BASE)


# -- 3. patching the evaluator in its own process ------------------------------------------------

def test_patching_the_evaluator_in_process_reaches_nothing(tmp_path, backend):
    source = textwrap.dedent("""\
        import sys, builtins
        main = sys.modules.get("__main__")
        for name in ("number", "emit", "score", "invalid"):
            if main is not None and hasattr(main, name):
                setattr(main, name, lambda *a, **k: 0.0)
        builtins.float = lambda x=0: 7.0  # what the evaluator calls on A and B
        A = 3.0
        B = 1.0
    """)
    result = evaluate(TOY, toy(tmp_path, source), "quick", backend)
    assert result.valid and result.score == BASE


# -- 4. reading the evaluator, its command line and environment, other sessions -------------------

PROBE = textwrap.dedent("""\
    import glob, os, sys
    seen = []
    for pattern in ("/proc/*/cmdline", "/proc/*/environ", "/proc/*/cwd/*", "/proc/*/root/work"):
        for path in glob.glob(pattern)[:200]:
            try:
                seen.append(f"{path}: {open(path, 'rb').read(2000)!r}")
            except OSError:
                pass
    # every file it can see outside the system and Python trees
    skip = {"/proc", "/sys", "/dev", "/usr", sys.prefix, sys.base_prefix}
    for top, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in skip]
        for name in files:
            path = os.path.join(top, name)
            if not os.path.isfile(path):  # its own pipes (docker: /adrs/io) would block it
                seen.append(path)
                continue
            try:
                seen.append(f"{path}: {open(path, 'rb').read(300)!r}")
            except OSError:
                seen.append(path)
    FEEDBACK = "SEEN:\\n" + "\\n".join(seen)
    A = 3.0
    B = 1.0
""")


def test_candidates_see_no_evaluator_argv_environment_or_sessions(tmp_path, backend, monkeypatch):
    monkeypatch.setenv("ADRS_TEST_SECRET_MARKER", "sk-marker-0000")
    result = evaluate(TOY, toy(tmp_path, PROBE), "quick", backend)
    assert result.valid, result.feedback
    seen = result.feedback
    # the evaluator's source and output, its argv, its environment and result file: none of
    # it is readable (a candidate may learn where its own mounts come from, in mountinfo)
    for leak in ("toy-evaluator-call", "policy_file = Path", "--stage\\x00quick",
                 "ADRS_RESULT=", "adrs-result-", "sk-marker-0000", "ADRS_TEST_SECRET_MARKER"):
        assert leak not in seen, f"a candidate read {leak!r}:\n{seen[:2000]}"
    assert "SEEN:" in seen  # the probe ran and reported


def test_candidates_can_write_nothing_but_their_tmp(tmp_path, backend):
    source = textwrap.dedent("""\
        import os
        wrote = []
        for path in ("/candidate/pkg/policy.py", "/candidate/pkg/new.py", "/adrs/task/side.py",
                     "/adrs/kit/adrs_eval/side.py", "/usr/lib/x", "/etc/passwd", "/x",
                     "/tmp/ok"):
            try:
                with open(path, "a") as f:
                    f.write("# overwritten\\n")
                wrote.append(path)
            except OSError:
                pass
        FEEDBACK = "WROTE " + ",".join(wrote)
        A = 3.0
        B = 1.0
    """)
    wt = toy(tmp_path, source)
    result = evaluate(TOY, wt, "quick", backend)
    assert result.feedback == "WROTE /tmp/ok"
    assert (wt / "pkg" / "policy.py").read_text() == source


def test_a_candidate_killing_everything_it_can_kills_only_itself(tmp_path, backend):
    """... and the harness (this test process) and the next evaluation are unharmed."""
    source = "import os, signal\nos.kill(-1, signal.SIGKILL)\nos.kill(os.getppid(), 9)\nA = 3.0\n"
    result = evaluate(TOY, toy(tmp_path, source), "quick", backend)
    assert not result.valid  # it took itself down (or found nothing else to kill) ...
    assert evaluate(TOY, toy(tmp_path, policy(), "again"), "quick", backend).score == BASE


# -- 8. memory and output ------------------------------------------------------------------------

FORKS = textwrap.dedent("""\
    import os, time
    kids = []
    for _ in range(5):  # 5 x 300 MB, each under the per-process limit, together over the cap
        pid = os.fork()
        if pid == 0:
            block = b"x" * (300 * 1024 * 1024)
            time.sleep(5)
            os._exit(0)
        kids.append(pid)
    ok = all(os.waitpid(p, 0)[1] == 0 for p in kids)
    A = 7.0 if ok else 3.0
    B = 2.0 if ok else 1.0
""")


def test_forked_children_share_one_memory_cap(tmp_path, backend):
    task = toy_task(tmp_path, memory_mb=1024)
    wt = worktree(task, tmp_path, {"pkg/policy.py": FORKS})
    result = evaluate(task, wt, "quick", backend)
    assert not (result.valid and result.score == 0.0), "five 300 MB children fit in 1 GB"


def test_a_candidate_flooding_its_output_costs_a_bounded_amount(tmp_path, backend):
    source = textwrap.dedent("""\
        import os, sys
        chunk = b"z" * (1 << 20)
        for _ in range(1536):  # 1.5 GiB on stderr (stdout is redirected there too)
            os.write(2, chunk)
        A = 6.0
        B = 2.0
    """)
    task = toy_task(tmp_path, memory_mb=1024, timeout_s=120)
    wt = worktree(task, tmp_path, {"pkg/policy.py": source})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = evaluate(task, wt, "quick", backend)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert result.valid and result.score == -1.0, feedback_of(result)[-500:]
    assert grown_mb < 200


def test_a_reply_without_end_is_refused(tmp_path, backend):
    source = textwrap.dedent("""\
        import os
        chunk = b"9" * (1 << 20)
        for _ in range(80):  # 80 MB without a line break on the reply pipe
            os.write(3, chunk)
    """)
    # the kit's channel keeps the reply pipe on a dup of fd 1; find it and flood it
    source = source.replace("os.write(3, chunk)", "[os.write(fd, chunk) for fd in _fds]")
    source = ("import os\n_fds = [int(f) for f in os.listdir('/proc/self/fd') if int(f) > 2 "
              "and os.readlink(f'/proc/self/fd/{f}').startswith('pipe:')]\n" + source)
    task = toy_task(tmp_path, timeout_s=60)
    result = evaluate(task, worktree(task, tmp_path, {"pkg/policy.py": source}), "quick", backend)
    assert not result.valid


# -- outliving the timeout ---------------------------------------------------------------------------

def test_nothing_a_candidate_starts_outlives_its_evaluation(tmp_path, backend):
    token = f"adrs-straggler-{os.getpid()}-{backend.name}"
    source = textwrap.dedent(f"""\
        import subprocess, time
        subprocess.Popen(["setsid", "sh", "-c", "exec -a {token} sleep 300"])
        time.sleep(60)  # past the task's timeout
        A = 3.0
        B = 1.0
    """)
    task = toy_task(tmp_path, timeout_s=3)

    def running() -> list[str]:
        return subprocess.run(["pgrep", "-f", token], capture_output=True, text=True).stdout.split()

    class Slot:  # an evaluator slot: what still runs when it is given back
        def __enter__(self) -> None:
            self.left = None

        def __exit__(self, *exc) -> None:
            self.left = running()

    slot = Slot()
    result = evaluate(task, worktree(task, tmp_path, {"pkg/policy.py": source}), "quick", backend,
                      slot=slot)
    assert not result.valid and "timed out" in result.error
    assert slot.left == []  # gone before the next evaluation may take the slot (docker: its container)
    assert running() == []


# -- 9. unix sockets and the network ------------------------------------------------------------------

def test_candidates_reach_no_socket_and_no_network(tmp_path, backend):
    import socket

    path = tmp_path / "host.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(b"\0adrs-hostile-abstract")
    abstract.listen(1)
    source = textwrap.dedent(f"""\
        import socket
        reached = []
        for target in ({str(path)!r}, b"\\0adrs-hostile-abstract", "/var/run/docker.sock",
                       "/run/docker.sock", "/tmp/.X11-unix/X0"):
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(target)
                reached.append(str(target))
            except OSError:
                pass
        for host in ("127.0.0.1", "1.1.1.1"):
            try:
                socket.create_connection((host, 80), timeout=2)
                reached.append(host)
            except OSError:
                pass
        FEEDBACK = "REACHED " + ",".join(reached)
        A = 3.0
        B = 1.0
    """)
    try:
        result = evaluate(TOY, toy(tmp_path, source), "quick", backend)
    finally:
        server.close()
        abstract.close()
    assert result.feedback == "REACHED ", result.feedback


# -- 1, 6, 7. a hostile agent in a whole run -----------------------------------------------------------

HOSTILE_DOTGIT = ("rm -f .git && git init -q . && git config core.fsmonitor "
                  "'env > {marker}; false' && git config core.hooksPath hooks && mkdir -p hooks "
                  "&& printf '#!/bin/sh\\nenv > {marker}\\n' > hooks/pre-commit && "
                  "chmod +x hooks/pre-commit && echo new > pkg/new_file.txt")


def sandbox_args(backend) -> tuple[list[str], dict[str, str]]:
    """`solve` options and environment that run a whole session under this backend."""
    env = cli_env(DOCKER_HOST=backend.docker_host) if backend.docker_host else cli_env()
    return ["--sandbox", backend.name], env


def test_an_agent_cannot_escape_through_a_dot_git_of_its_own(tmp_path, backend):
    marker = tmp_path / "pwned"
    task = toy_task(tmp_path)
    script = write_script(tmp_path / "s.jsonl", [
        turn(call("run", command=HOSTILE_DOTGIT.format(marker=marker)),
             call("write_file", path="pkg/policy.py", content=policy("5.0")),
             call("run_evaluator", stage="quick"),
             call("commit", message="rejected: hooks/ is not editable")),
        turn(call("commit", message="after replacing .git")),
    ])
    args, env = sandbox_args(backend)
    env["ANTHROPIC_API_KEY"] = "sk-ant-hostile-9999"
    proc, session = solve(task, script, tmp_path / "sessions", 1, *args, env=env)
    assert f"isolation: {backend.name} jail" in proc.stdout
    assert not marker.exists(), "a command from the agent's .git config ran outside the jail"
    assert "sk-ant-hostile-9999" not in proc.stdout + proc.stderr
    good = [e for e in scored(events(session)) if e["episode"] == 0]
    assert good and good[0]["valid"] and good[0]["score"] == pytest.approx(-5.0)


def test_commits_with_dot_git_paths_or_escaping_symlinks_are_rejected(tmp_path, backend):
    task = toy_task(tmp_path)
    script = write_script(tmp_path / "s.jsonl", [
        turn(call("write_file", path="pkg/sub/.git/evil.py", content="A = 1\n"),
             call("run", command="mkdir -p pkg/sub/.git && echo 'A = 1' > pkg/sub/.git/evil.py"),
             call("commit", message="a .git path")),
        turn(call("run", command="ln -s /etc/passwd pkg/leak.py && ln -s ../../../.. pkg/up.py"),
             call("search", pattern="root:", path="."),
             call("list_files", path="pkg"),
             call("commit", message="symlinks out")),
        turn(call("write_file", path="pkg/policy.py", content=policy("4.0")),
             call("commit", message="fine")),
    ])
    args, env = sandbox_args(backend)
    _, session = solve(task, script, tmp_path / "sessions", 3, *args, env=env)
    evs = events(session)
    rejected = [e for e in of_type(evs, "candidate_rejected") if e["episode"] == 0]
    assert [r["paths"] for r in rejected] == [["pkg/sub/.git/evil.py"],
                                               ["pkg/leak.py", "pkg/up.py"]]
    transcript = (session / "transcripts" / "0.jsonl").read_text()
    assert "git data is off limits" in transcript  # write_file refused the path
    assert "root:x:0:0" not in transcript  # search did not read through the symlink
    fine = [e for e in scored(evs) if e["episode"] == 0]
    assert len(fine) == 1 and fine[0]["score"] == pytest.approx(-10.0)
    finished = of_type(evs, "session_finished")[-1]
    assert finished["best_score"] == pytest.approx(-10.0)
    heldout = of_type(evs, "candidate_tested")
    assert heldout and all(e["valid"] for e in heldout)
    git_fsck = subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=session / "repo",
                              capture_output=True, text=True)
    assert git_fsck.returncode == 0, git_fsck.stderr


# -- 5. without a jail: loud, and refused for untrusted code ------------------------------------------

def test_solve_says_which_jail_is_in_force(tmp_path):
    task = toy_task(tmp_path)
    script = write_script(tmp_path / "s.jsonl", [turn(call("finish", summary="done"))])
    proc, _ = solve(task, script, tmp_path / "sessions", 1)
    assert proc.stdout.count("isolation: bwrap jail") == 1


def test_no_jail_refuses_untrusted_code_unless_asked(tmp_path):
    task = toy_task(tmp_path)
    script = write_script(tmp_path / "s.jsonl", [turn(call("finish", summary="done"))])
    sessions = tmp_path / "sessions"
    proc = run_cli("solve", str(task), "--model", f"scripted:{script}", "--budget", "1",
                   "--sessions-dir", str(sessions), "--no-tui", "--sandbox", "process",
                   check=False)
    assert proc.returncode == 2
    assert "refusing to run" in proc.stdout and "--unsafe-no-sandbox" in proc.stdout
    assert "NO SANDBOX" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    assert not sessions.exists() or not any(sessions.iterdir())

    proc = run_cli("tasks", "eval", str(task), "--candidate", str(TOY / "repo"), "--sandbox",
                   "process", check=False)
    assert proc.returncode == 2 and "refusing to run" in proc.stdout

    proc = run_cli("solve", str(task), "--model", f"scripted:{script}", "--budget", "1",
                   "--sessions-dir", str(sessions), "--no-tui", "--sandbox", "process",
                   "--unsafe-no-sandbox")
    assert "WARNING" in proc.stdout and "NO SANDBOX" in proc.stdout


def test_the_tuner_runs_without_a_jail_with_a_warning(tmp_path):
    task = toy_task(tmp_path)
    proc = run_cli("solve", str(task), "--model", "tuner", "--budget", "1", "--max-episodes", "1",
                   "--sessions-dir", str(tmp_path / "sessions"), "--no-tui", "--sandbox",
                   "process")
    assert proc.stdout.count("WARNING") == 1 and "NO SANDBOX" in proc.stdout
    assert "bwrap" in proc.stdout  # it says what is missing or how to get a jail


# -- 11. bad input at the CLI -----------------------------------------------------------------------

@pytest.mark.parametrize("args, says", [
    (["--model", "anthropic/"], "names no model"),
    (["--model", "openai/"], "names no model"),
    (["--model", "scripted:/missing.jsonl"], "no such file"),
    (["--model", "openai/x@notaurl"], "not a server URL"),
    (["--model", "tuner", "--workers", "0"], "--workers 0"),
    (["--model", "tuner", "--budget", "-1"], "--budget -1"),
    (["--model", "tuner", "--sandbox", "jail"], "sandbox 'jail'"),
])
def test_bad_solve_options_say_one_line_and_create_nothing(tmp_path, args, says):
    sessions = tmp_path / "sessions"
    proc = run_cli("solve", str(toy_task(tmp_path)), *args, "--sessions-dir", str(sessions),
                   "--no-tui", check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert says in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert len([line for line in proc.stdout.splitlines() if line.strip()]) == 1
    assert not sessions.exists() or not any(sessions.iterdir())


@pytest.mark.parametrize("candidate", ["foo@bar", "no-such-dir", f"{TOY}@deadbeef"])
def test_bad_tasks_eval_candidate_says_one_line(tmp_path, candidate):
    proc = run_cli("tasks", "eval", str(toy_task(tmp_path)), "--candidate", candidate,
                   check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--candidate" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr


def test_an_invalid_baseline_stops_solve_at_once_with_its_feedback(tmp_path):
    task = toy_task(tmp_path)
    (task / "repo" / "pkg" / "policy.py").write_text("A = 'not a number'\nB = 1\n")
    sessions = tmp_path / "sessions"
    proc = run_cli("solve", str(task), "--model", "tuner", "--budget", "5", "--sessions-dir",
                   str(sessions), "--no-tui", check=False)
    assert proc.returncode == 2
    assert "baseline is invalid" in proc.stdout and "not a finite number" in proc.stdout
    session = next(p for p in sessions.iterdir())
    evs = events(session)
    assert not of_type(evs, "episode_started")
    assert of_type(evs, "session_finished")[-1]["reason"] == "invalid_baseline"
