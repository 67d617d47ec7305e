"""Steering a live run: commands appended to control.jsonl (what the TUI writes) reach a real
runner, which obeys them between episodes, records each as a `steered` event, and keeps the
ones that carry over (pause, notes, pin, budget) when the session is resumed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from agent.events import EventLog, Steered
from agent.steering import CONTROL_FILE, Command, Steering, receive, send
from fixtures.helpers import CLI, REPO_ROOT, cli_env, events, first_prompt, of_type, run_cli, toy_task

DEADLINE_S = 240


# -- the control file ------------------------------------------------------------------------
def test_commands_round_trip_and_a_half_written_line_waits(tmp_path):
    send(tmp_path, Command("pause"))
    send(tmp_path, Command("note", text="try a smaller B"))
    with open(tmp_path / CONTROL_FILE, "a") as f:
        f.write('{"command": "nonsense"}\n["not", "an", "object"]\n{"command": "budget", "amount": -3}\n'
                '{"command": "note", "text": 5}\n{"command": "pin", "commit": ["a"]}\n')
        f.write('{"command": "stop"')  # being written
    got = receive(tmp_path, 0)
    assert [c.command for c, _ in got] == ["pause", "note"]
    assert got[1][0].text == "try a smaller B"
    end = got[-1][1]
    assert receive(tmp_path, end) == []  # the bad lines are passed over, the cut one waits
    with open(tmp_path / CONTROL_FILE, "a") as f:
        f.write("}\n")
    (stop, offset), = receive(tmp_path, end)
    assert stop.command == "stop" and offset == (tmp_path / CONTROL_FILE).stat().st_size


@pytest.mark.parametrize("command", [Command("fly"), Command("note", text="  "), Command("pin"),
                                     Command("stop_episode"), Command("budget", amount=0)])
def test_a_command_the_runner_could_not_obey_is_not_sent(tmp_path, command):
    with pytest.raises(ValueError):
        send(tmp_path, command)
    assert not (tmp_path / CONTROL_FILE).exists()


def test_a_resumed_run_keeps_pauses_notes_pins_and_budget_but_not_stops():
    steps = [Steered(command="pause", offset=10), Steered(command="note", text="a", offset=20),
             Steered(command="pin", commit="abc", offset=30), Steered(command="budget", amount=5, offset=40),
             Steered(command="stop_episode", episode=2, offset=50), Steered(command="stop", offset=60)]
    live = Steering()
    for e in steps:
        live.apply(e)
    assert live.stop and live.stop_episodes == {2}
    resumed = Steering.replayed(steps)
    assert (resumed.paused, resumed.notes, resumed.pinned, resumed.extra_budget, resumed.offset) == (
        True, ["a"], "abc", 5, 60)
    assert not resumed.stop and not resumed.stop_episodes


# -- a real runner obeys -------------------------------------------------------------------------
def wait_for(session: Path, what, timeout: float = DEADLINE_S):
    """Poll the session's events until `what(events)` is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (session / "events.jsonl").exists():
            found = what(events(session))
            if found:
                return found
        time.sleep(0.1)
    raise AssertionError(f"timed out; events: {[e['type'] for e in events(session)][-30:]}")


def steered(evs: list[dict], command: str) -> list[dict]:
    return [e for e in of_type(evs, "steered") if e["command"] == command]


def after(evs: list[dict], event: dict) -> list[dict]:
    return evs[evs.index(event) + 1:]


@pytest.mark.slow
def test_a_live_run_obeys_each_command_and_resume_keeps_what_carries_over(tmp_path):
    task = toy_task(tmp_path, sleep_s=1.0)  # each evaluation takes a second: room to steer
    sessions = tmp_path / "sessions"
    proc = subprocess.Popen([*CLI, "solve", str(task), "--model", "tuner", "--budget", "12",
                             "--workers", "1", "--no-test", "--seed", "3", "--sessions-dir",
                             str(sessions), "--no-tui"],
                            cwd=REPO_ROOT, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not list(sessions.glob("*/events.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.1)
        session = next(sessions.glob("*/events.jsonl")).parent

        # episode 0 runs six trials of a second each: stop it after its turn, pause the run
        wait_for(session, lambda evs: of_type(evs, "episode_started"))
        send(session, Command("stop_episode", episode=0))
        send(session, Command("pause"))
        evs = wait_for(session, lambda evs: of_type(evs, "episode_finished") and steered(evs, "pause") and evs)
        assert of_type(evs, "episode_finished")[0]["reason"] == "stopped"
        assert steered(evs, "stop_episode")[0]["episode"] == 0

        # paused: notes, pins and an unknown pin are handled, and no episode starts
        baseline = of_type(evs, "session_started")[0]["baseline"]
        send(session, Command("pin", commit="f" * 40))
        send(session, Command("note", text="keep B at 2; move A towards 7"))
        send(session, Command("pin", commit=baseline))
        send(session, Command("budget", amount=2))
        evs = wait_for(session, lambda evs: steered(evs, "budget") and evs)
        pause = steered(evs, "pause")[0]
        assert not of_type(after(evs, pause), "episode_started")
        assert [e["kind"] for e in of_type(evs, "error")] == ["steering"]
        assert steered(evs, "pin")[0]["commit"] == baseline

        # resumed: the next episode starts from the pinned parent, with the note in its prompt
        send(session, Command("resume"))
        evs = wait_for(session, lambda evs: steered(evs, "resume") and len(of_type(evs, "episode_started")) > 1
                       and evs)
        nxt = of_type(after(evs, steered(evs, "resume")[0]), "episode_started")[0]
        assert nxt["parent"] == baseline
        prompt = first_prompt(session, nxt["episode"])
        assert "Notes from the researcher" in prompt and "keep B at 2; move A towards 7" in prompt

        # pause again, then stop: the run ends cleanly, saying so
        send(session, Command("pause"))
        send(session, Command("stop"))
        out, _ = proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "researcher: note added to later prompts" in out
    evs = events(session)
    assert of_type(evs, "session_finished")[-1]["reason"] == "stopped"

    # resume: the pause, note, pin and raised budget carry over; a command written while no
    # runner lived (here: resume) is obeyed when the run picks up
    (session / "evaluator" / "sleep_s").unlink()
    send(session, Command("resume"))
    out = run_cli("resume", session.name, "--sessions-dir", str(sessions), "--no-tui", timeout=DEADLINE_S).stdout
    evs = events(session)
    resumed = of_type(evs, "session_resumed")[0]
    assert resumed["budget"] == 14
    later = after(evs, resumed)
    assert [e["command"] for e in of_type(later, "steered")] == ["resume"]
    first = of_type(later, "episode_started")[0]
    assert first["parent"] == baseline
    assert "keep B at 2; move A towards 7" in first_prompt(session, first["episode"])
    assert of_type(evs, "session_finished")[-1]["reason"] == "budget"
    assert len(of_type(evs, "candidate_committed")) == 14, out


def test_the_event_log_tail_follows_appended_lines(tmp_path):
    log = EventLog(tmp_path / "events.jsonl")
    assert log.tail(0) == ([], 0)
    log.emit(Steered(command="pause"))
    got, offset = log.tail(0)
    assert [e.command for e in got] == ["pause"]
    with open(log.path, "a") as f:
        f.write('{"t": 1, "type": "steered", "v": 2, "command": "res')
    assert log.tail(offset) == ([], offset)
    with open(log.path, "a") as f:
        f.write('ume"}\n')
    got, end = log.tail(offset)
    assert [e.command for e in got] == ["resume"] and end == log.path.stat().st_size


# -- the watch command's bad input -----------------------------------------------------------------
def test_watch_says_in_one_line_what_is_wrong(tmp_path):
    none = run_cli("watch", "--sessions-dir", str(tmp_path), check=False)
    assert none.returncode == 2 and "no session" in none.stdout and "Traceback" not in none.stderr
    session = tmp_path / "20260101-000000-toy-0000"
    session.mkdir()
    (session / "session.toml").write_text('format_version = 1\ntask = "toy"\n[config]\ntask_dir = "."\n')
    piped = run_cli("watch", "--sessions-dir", str(tmp_path), check=False)  # stdout is a pipe here
    assert piped.returncode == 2 and "needs a terminal" in piped.stdout
    assert len(piped.stdout.strip().splitlines()) == 1


# -- a runner in the background ---------------------------------------------------------------------
@pytest.mark.slow
def test_a_background_runner_is_the_sessions_runner_until_it_stops(tmp_path):
    from agent.session import Session
    from agent.tui.model import SessionView

    task = toy_task(tmp_path)
    sessions = tmp_path / "sessions"
    run_cli("solve", str(task), "--model", "tuner", "--budget", "1", "--no-test", "--sessions-dir",
            str(sessions), "--no-tui")
    session = Session(next(sessions.iterdir()))
    send(session.dir, Command("budget", amount=50))
    send(session.dir, Command("pause"))  # obeyed at once: the resumed run waits
    pid = session.launch([*CLI, "run-session", str(session.dir), "--resume"])
    view = SessionView(session.dir)
    deadline = time.monotonic() + DEADLINE_S
    while view.runner_state() != "paused" and time.monotonic() < deadline:
        time.sleep(0.1)
        view.poll()
    assert view.runner_state() == "paused" and session.runner() == pid
    refused = run_cli("resume", session.id, "--sessions-dir", str(sessions), "--no-tui", check=False)
    assert refused.returncode == 2 and f"still being run by process {pid}" in refused.stdout
    assert (session.dir / "run.pid").read_text() == str(pid)

    send(session.dir, Command("stop"))
    while view.runner_state() != "finished" and time.monotonic() < deadline:
        time.sleep(0.1)
        view.poll()
    assert view.runner_state() == "finished" and view.header.budget == 51
    assert "researcher: paused" in (session.dir / "run.log").read_text()
    assert of_type(events(session.dir), "session_finished")[-1]["reason"] == "stopped"
