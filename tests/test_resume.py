"""Kill a real `adrs-agent solve` with SIGKILL mid-run, then `adrs-agent resume` it.

The evaluator sleeps 0.3 s per call so the run lasts several seconds; the kill lands while
candidates are being committed and scored. After the resume: nothing scored is lost or
re-scored differently, nothing is evaluated twice, the budget counts what was spent before
the kill, and the session ends with session_finished.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter

import pytest

from fixtures.helpers import (
    CLI,
    REPO_ROOT,
    call,
    calls,
    cli_env,
    events,
    note,
    noted,
    of_type,
    only_session,
    policy,
    run_cli,
    scored,
    toy_task,
    turn,
    write_script,
)

BUDGET = 10


def _read_events(session):
    path = session / "events.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line being written right now
    return out


def killed_session(tmp_path, min_scored: int = 3, budget: int = BUDGET):
    """A real `adrs-agent solve` SIGKILLed while it evaluates a commit (not between episodes).

    Returns (sessions dir, session folder, the events written before the kill).
    """
    task = toy_task(tmp_path, sleep_s=0.3)
    script = write_script(tmp_path / "s.jsonl", [
        turn(call("write_file", path="pkg/policy.py", content=policy("{episode}.{turn}")),
             call("commit", message="e{episode} t{turn}"))
        for _ in range(2)
    ])
    sessions = tmp_path / "sessions"
    proc = subprocess.Popen(
        [*CLI, "solve", str(task), "--model", f"scripted:{script}", "--budget", str(budget),
         "--sessions-dir", str(sessions), "--no-tui", "--no-test"],
        cwd=REPO_ROOT, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it could be killed"
            found = [p for p in sessions.glob("*") if (p / "session.toml").is_file()] \
                if sessions.is_dir() else []
            evs = _read_events(found[0]) if found else []
            # kill while a committed candidate is being evaluated: a commit exists whose
            # candidate_scored has not been written yet
            if len(scored(evs)) >= min_scored and (
                    evs[-1]["type"] == "candidate_committed" or (
                        evs[-1]["type"] == "evaluated" and evs[-1]["stage"] == "quick")):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("no 3 scored candidates within 120 s")
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    session = only_session(sessions)
    before = _read_events(session)
    assert not of_type(before, "session_finished"), "killed too late: the run had finished"
    return sessions, session, before


def test_sigkill_then_resume_keeps_every_score_and_spends_the_budget_once(tmp_path):
    sessions, session, before = killed_session(tmp_path)
    repo = session / "repo"
    scored_before = {e["commit"]: e["score"] for e in scored(before)}
    assert len(scored_before) >= 3
    committed_before = {e["commit"] for e in of_type(before, "candidate_committed")}
    # the kill cut a committed candidate before it was scored: resume must score it
    assert committed_before - set(scored_before)
    time.sleep(0.5)  # let an evaluator the kill orphaned (its own process group) finish

    out = run_cli("resume", session.name, "--sessions-dir", str(sessions), "--no-tui")
    assert "resuming session" in out.stdout

    evs = events(session)
    assert evs[-1]["type"] == "session_finished"
    assert len(of_type(evs, "session_finished")) == 1
    resumed = of_type(evs, "session_resumed")
    assert len(resumed) == 1
    assert resumed[0]["budget_used"] == len(committed_before)

    # every commit scored before the kill keeps its score, in events and in notes
    for e in scored(evs):
        if e["commit"] in scored_before:
            assert e["score"] == scored_before[e["commit"]], e["commit"]
    notes = noted(repo)
    for commit, score in scored_before.items():
        assert commit in notes
        assert note(repo, commit)["candidate"]["score"] == score

    # every commit, before or after the kill, ends up scored and noted
    committed = of_type(evs, "candidate_committed")
    final_scored = {e["commit"] for e in scored(evs)}
    assert committed_before <= {c["commit"] for c in committed}
    assert {c["commit"] for c in committed} <= final_scored
    assert final_scored <= notes

    # the budget counts what was spent before the kill
    assert len(committed) <= BUDGET
    assert evs[-1]["candidates"] == len(committed)
    assert evs[-1]["reason"] == "budget" and len(committed) == BUDGET

    # no code was evaluated twice: one `evaluated` event per (key, stage) ...
    evaluated = Counter((e["key"], e["stage"]) for e in of_type(evs, "evaluated"))
    assert evaluated and max(evaluated.values()) == 1, evaluated
    # ... and the evaluator's own runs (its log lines; a run the kill cut wrote no log)
    ran = Counter(calls(session))
    assert ran and max(ran.values()) == 1, ran
    assert len(ran) == len(evaluated)

    assert list((session / "worktrees").iterdir()) == []
    # `adrs-agent sessions` now sees it as finished
    listing = run_cli("sessions", "--sessions-dir", str(sessions)).stdout
    assert session.name in listing and "finished" in listing and "open" not in listing


LOCKS = {
    # git leaves these when it is killed while holding them: `git notes add` (the one notes
    # writer) and `git worktree add -B adrs/<island>/<n>` of the next episode, whose
    # episode_started event is written only after the worktree exists
    "notes": "refs/notes/adrs.lock",
    "next_branch": "refs/heads/adrs/{island}/{n}.lock",
}


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_resume_after_a_kill_inside_git(tmp_path, lock):
    """Locks a git process held when the kill came are cleared (and reported) on resume."""
    sessions, session, before = killed_session(tmp_path, min_scored=2, budget=4)
    n = max(e["episode"] for e in of_type(before, "episode_started")) + 1
    path = session / "repo" / ".git" / LOCKS[lock].format(island=n % 3, n=n)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")  # what git's lockfile API creates (O_CREAT|O_EXCL), left by the kill
    time.sleep(0.5)

    out = run_cli("resume", session.name, "--sessions-dir", str(sessions), "--no-tui",
                  check=False)
    assert out.returncode == 0, out.stdout[-3000:]
    evs = events(session)
    assert evs[-1]["type"] == "session_finished"
    repaired = of_type(evs, "repaired")
    assert repaired and LOCKS[lock].format(island=n % 3, n=n) in repaired[0]["removed_locks"]
    assert not path.exists()
    assert {e["commit"] for e in scored(evs)} <= noted(session / "repo")
    assert len(of_type(evs, "candidate_committed")) == 4


def test_resume_refuses_a_session_whose_runner_is_alive(tmp_path):
    """Two processes must never drive one session (notes and worktrees have one writer)."""
    import sys

    out = run_cli("solve", str(toy_task(tmp_path)), "--model", "tuner", "--budget", "1",
                  "--no-test", "--sessions-dir", str(tmp_path / "s"))
    assert out.returncode == 0
    session = only_session(tmp_path / "s")
    runner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                               "adrs-agent"])
    try:
        (session / "run.pid").write_text(str(runner.pid))
        refused = run_cli("resume", session.name, "--sessions-dir", str(tmp_path / "s"),
                          check=False)
        assert refused.returncode == 2
        assert f"process {runner.pid}" in refused.stdout
    finally:
        runner.kill()
        runner.wait()
    again = run_cli("resume", session.name, "--sessions-dir", str(tmp_path / "s"))
    assert again.returncode == 0  # the runner is gone: resume goes ahead
