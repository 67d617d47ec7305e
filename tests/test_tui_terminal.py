"""The real thing in a real terminal: `adrs-agent solve tasks/bin-packing` in tmux opens the
watcher on a run it started in the background; keys steer it; `q` detaches (the run goes on),
`adrs-agent watch` reattaches, and the run finishes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from fixtures.helpers import REPO_ROOT, cli_env, events, of_type

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (apt-get install tmux)")]
DEADLINE_S = 180
ADRS = Path(sys.executable).parent / "adrs-agent"


class Tmux:
    """One detached tmux session of a fixed size running bash."""

    def __init__(self, cwd: Path, env: dict[str, str]):
        self.name = f"adrs-test-{uuid.uuid4().hex[:8]}"
        self.env = env
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", "150", "-y", "45",
                        "-c", str(cwd), "bash --norc --noprofile"], check=True, env=env)

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def type(self, line: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", line], check=True)
        self.keys("Enter")

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], check=True,
                              capture_output=True, text=True).stdout

    def wait_for(self, text: str) -> str:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the screen:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False)


def wait_for_event(session: Path, what) -> list[dict]:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        evs = events(session) if (session / "events.jsonl").exists() else []
        if what(evs):
            return evs
        time.sleep(0.2)
    raise AssertionError(f"timed out; events: {[e['type'] for e in evs][-20:]}")


def runner_alive(session: Path) -> bool:
    pid = int((session / "run.pid").read_text())
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_solve_opens_the_app_detach_and_watch_reattaches_until_the_run_finishes(tmp_path):
    if not ADRS.exists():
        pytest.skip(f"no adrs-agent script beside {sys.executable} (pip install -e .)")
    sessions = tmp_path / "sessions"
    env = cli_env(PATH=f"{ADRS.parent}:/usr/bin:/bin", TERM="xterm-256color")
    tmux = Tmux(REPO_ROOT, env)
    try:
        tmux.type(f"{ADRS} solve tasks/bin-packing --model tuner --budget 3 --max-episodes 4 "
                  f"--workers 1 --no-test --seed 2 --sessions-dir {sessions}")
        tmux.wait_for("Pause/resume")  # the footer: the app is up
        tmux.wait_for("running")  # and has read the session
        session = next(sessions.iterdir())
        tmux.keys("Space")  # pause before the run can finish
        evs = wait_for_event(session, lambda evs: any(e.get("command") == "pause" for e in evs))
        screen = tmux.wait_for("paused")
        assert "bin-packing" in screen and session.name in screen

        tmux.keys("n")  # a note, typed into the app
        tmux.wait_for("note")
        tmux.type("prefer first-fit decreasing")
        wait_for_event(session, lambda evs: any(e.get("command") == "note" for e in evs))

        tmux.keys("q")
        tmux.wait_for("Detach")
        tmux.keys("d")
        tmux.wait_for("detached: the run goes on")
        assert runner_alive(session)
        assert not of_type(events(session), "session_finished")

        tmux.type(f"{ADRS} watch {session.name} --sessions-dir {sessions}")
        tmux.wait_for("paused")
        tmux.keys("Space")  # resume: the run goes on to its budget
        evs = wait_for_event(session, lambda evs: of_type(evs, "session_finished"))
        assert of_type(evs, "session_finished")[0]["reason"] in ("budget", "max_episodes")
        tmux.wait_for("session_finished")  # the app has read the end
        tmux.keys("q")  # a finished run: q leaves at once
        tmux.wait_for("finished (")  # the run's own summary, from run.log
    finally:
        tmux.close()
    evs = events(session)
    assert [e["command"] for e in of_type(evs, "steered")] == ["pause", "note", "resume"]
    assert len(of_type(evs, "episode_started")) == 4 or len(of_type(evs, "candidate_committed")) == 3
    assert "prefer first-fit decreasing" in (session / "transcripts").joinpath(
        f"{of_type(evs, 'episode_started')[-1]['episode']}.jsonl").read_text()
