"""The evaluator pool: episodes outnumber evaluator slots; never more evaluations run at once than
there are slots (the evaluator counts itself, under a file lock), every candidate is scored, and a
tree two episodes commit is evaluated once. And the slots' order: commits before tool calls."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from fixtures.helpers import (
    call,
    cli_env,
    events,
    gone_or_zombie,
    needs_cgroup,
    of_type,
    solve,
    toy_task,
    turn,
    write_script,
)
from sandbox.evaluate import EvaluatorSpec, run_stage
from sandbox.pool import Priority, Slots

# Reads A from policy.py as text (no candidate code runs); while it "works" (0.3 s) it holds a
# place in a shared counter, so the highest count it ever saw is how many ran at once.
COUNTING_EVALUATOR = '''
import argparse, fcntl, hashlib, json, os, re, time
from pathlib import Path
ap = argparse.ArgumentParser()
ap.add_argument("--stage"); ap.add_argument("--candidate")
args = ap.parse_args()
text = (Path(args.candidate) / "pkg" / "policy.py").read_text()
book = Path(os.environ["POOL_BOOK"])
def change(by):
    with open(book.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(book.read_text()) if book.exists() else {"now": 0, "max": 0, "calls": []}
        state["now"] += by
        state["max"] = max(state["max"], state["now"])
        if by > 0:
            state["calls"].append([args.stage, hashlib.sha256(text.encode()).hexdigest()])
        book.write_text(json.dumps(state))
change(+1)
time.sleep(0.3)
change(-1)
a = float(re.search(r"^A = (-?[0-9.]+)$", text, re.M).group(1))
print(json.dumps({"score": -(a - 7) ** 2, "valid": True, "metrics": {"a": a}, "feedback": f"A={a}"}))
'''


@pytest.mark.slow
def test_four_episodes_share_two_evaluator_slots_and_identical_trees_run_once(tmp_path):
    task = toy_task(tmp_path)
    (task / "evaluator" / "evaluate.py").write_text(COUNTING_EVALUATOR)
    toml = task / "task.toml"
    toml.write_text(toml.read_text().replace("allow_run = true", 'allow_run = true\nenv = ["POOL_BOOK"]'))
    book = tmp_path / "book.json"
    script = write_script(tmp_path / "s.jsonl", [
        turn(call("write_file", path="pkg/policy.py", content="A = 1.0\nB = 1.0\n"), call("commit", message="same")),
        turn(call("write_file", path="pkg/policy.py", content="A = {episode}.5\nB = 1.0\n"),
             call("run_evaluator", stage="full"), call("commit", message="mine")),
    ])
    _, session = solve(task, script, tmp_path / "sessions", 8, "--workers", "4", "--evaluators", "2",
                       "--no-test", "--max-episodes", "4", env=cli_env(POOL_BOOK=str(book)))
    state = json.loads(book.read_text())
    assert state["max"] == 2  # the slots were full at times, and never over
    evs = events(session)
    committed = {e["commit"] for e in of_type(evs, "candidate_committed")}
    scored = {e["commit"] for e in of_type(evs, "candidate_scored")}
    assert committed and committed <= scored
    calls = [tuple(c) for c in state["calls"]]
    assert len(calls) == len(set(calls)), "a stage ran twice on the same code"
    used = of_type(evs, "evaluators")[-1]  # the run's end: every evaluation counted
    assert list(used["nodes"]) == ["local"] and used["nodes"]["local"]["evaluations"] == len(calls)
    assert len(of_type(evs, "episode_started")) == 4


def test_slots_go_to_commits_first_then_in_order_and_never_over(tmp_path):
    slots = Slots(1)
    slots.acquire(Priority.TOOL)  # taken: everyone below waits
    order: list[str] = []
    running, most = [0], [0]
    guard = threading.Lock()

    def job(name: str, priority: Priority) -> None:
        slots.acquire(priority)
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
            order.append(name)
        time.sleep(0.01)
        with guard:
            running[0] -= 1
        slots.release()

    threads = []
    for name, priority in [("tool-1", Priority.TOOL), ("tool-2", Priority.TOOL), ("commit-1", Priority.COMMIT),
                           ("commit-2", Priority.COMMIT)]:
        threads.append(threading.Thread(target=job, args=(name, priority)))
        threads[-1].start()
        while len(slots._waiting) < len(threads):  # each is queued before the next asks
            time.sleep(0.001)
    slots.release()
    for t in threads:
        t.join()
    assert order == ["commit-1", "commit-2", "tool-1", "tool-2"]
    assert most[0] == 1 and slots.free == 1


class Watched:
    """An evaluator slot that notes, as it is given back, whether the evaluator's straggler
    still runs and whether the harness has read the result and written the log yet."""

    def __init__(self, pidfile: Path, log: Path):
        self.pidfile, self.log = pidfile, log
        self.held = self.done = False

    def __enter__(self) -> None:
        assert not self.held and not self.pidfile.exists()  # taken before the evaluator starts
        self.held = True

    def __exit__(self, *exc) -> None:
        pid = int(self.pidfile.read_text())
        self.straggler_gone = gone_or_zombie(pid)
        self.log_written = self.log.exists()
        self.done = True


@needs_cgroup
def test_a_slot_is_held_until_all_the_evaluator_left_is_gone_and_no_longer(tmp_path):
    """A hostile evaluator leaves a setsid straggler (out of its process group) and exits: the
    slot is given back only once that straggler is dead, so the next evaluation never runs
    beside it; the log and the result are dealt with after the slot is given back."""
    pidfile = tmp_path / "straggler.pid"
    ev = tmp_path / "evaluator"
    ev.mkdir()
    (ev / "evaluate.py").write_text(
        "import json, subprocess\n"
        "p = subprocess.Popen(['setsid', 'sleep', '300'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "print(json.dumps({'score': 0.5, 'valid': True}))\n")
    spec = EvaluatorSpec(command=["python", "evaluate.py", "{stage}", "{worktree}"], cwd=ev,
                         stages=["full"], timeout_s=60, memory_mb=1024)
    (tmp_path / "wt").mkdir()
    log = tmp_path / "logs" / "c1" / "full.log"
    slot = Watched(pidfile, log)
    result = run_stage(spec, tmp_path / "wt", "full", python=sys.executable, log_path=log,
                       slot=slot)
    assert slot.done and slot.straggler_gone, "the slot was given back with the straggler alive"
    assert not slot.log_written  # the harness's own work is out of the slot
    assert result.valid and result.score == 0.5 and log.is_file()


@pytest.mark.slow
def test_a_session_says_its_backend_and_slots(tmp_path):
    from agent.session import Session

    task = toy_task(tmp_path)
    script = write_script(tmp_path / "s.jsonl", [turn(call("finish", summary="nothing"))])
    _, session = solve(task, script, tmp_path / "sessions", 1, "--evaluators", "3", "--no-test",
                       "--max-episodes", "1")
    cfg, _ = Session(Path(session)).read_config()
    assert (cfg.backend, cfg.evaluators) == ("local", 3)
    from fixtures.helpers import run_cli

    assert "  local  finished" in run_cli("sessions", "--sessions-dir", str(Path(session).parent)).stdout


def test_an_unreachable_ray_cluster_is_one_line_before_anything_is_made(tmp_path):
    """Ray itself would retry a dead address for minutes, printing as it goes: solve checks
    the address first, says so in one line, exits 2 and makes no session; review and resume
    check the run's address the same way."""
    import socket

    from fixtures.helpers import run_cli

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    task = toy_task(tmp_path)
    sessions = tmp_path / "sessions"
    for extra in (["--backend", "ray", "--ray-address", f"127.0.0.1:{port}"],
                  ["--set", "backend=ray", "--set", f"ray_address=ray://127.0.0.1:{port}"],
                  ["--backend", "ray", "--ray-address", "no-port-here"]):
        proc = run_cli("solve", str(task), "--model", "tuner", "--budget", "1", "--no-tui",
                       "--sessions-dir", str(sessions), *extra, check=False, timeout=60)
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr
        assert ("nothing answers there" in lines[0] or "expected HOST:PORT" in lines[0]
                or "needs Ray" in lines[0]), lines[0]
        assert not sessions.exists()
    # a finished local run, reviewed on a cluster that is not there
    script = write_script(tmp_path / "s.jsonl", [turn(call("finish", summary="nothing"))])
    _, session = solve(task, script, sessions, 1, "--no-test", "--max-episodes", "1")
    proc = run_cli("review", session.name, "--sessions-dir", str(sessions), "--backend", "ray",
                   "--ray-address", f"127.0.0.1:{port}", check=False, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in out, out
    (error,) = [line for line in out.splitlines() if line.startswith("error")]  # after the jail's line
    assert "--backend local" in error or "needs Ray" in error


@pytest.mark.slow
def test_a_run_reports_its_evaluators_while_it_runs(tmp_path):
    """The per-node counts go out during the run, not only at its end (the watcher shows them
    live): the baseline and 6 candidates, two stages of at least a second each, make a run of
    over 10 s (EVALUATORS_EVERY_S), so at least one report comes before the last."""
    task = toy_task(tmp_path, sleep_s=1.0)
    _, session = solve(task, "tuner", tmp_path / "sessions", 6, "--workers", "1", "--no-test",
                       "--seed", "1")
    evs = events(session)
    reports = of_type(evs, "evaluators")
    counts = [r["nodes"]["local"]["evaluations"] for r in reports]
    assert len(reports) >= 2 and counts == sorted(counts) and 0 < counts[0] < counts[-1]
    assert counts[-1] == len(of_type(evs, "evaluated"))
    assert evs.index(reports[0]) < evs.index(of_type(evs, "candidate_scored")[-1])
    assert evs.index(reports[-1]) == len(evs) - 2  # the last: just before session_finished
