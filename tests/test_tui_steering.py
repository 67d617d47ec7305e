"""The app's keys steer a real runner: a live `solve` of the toy task (slow evaluations, so there
is time to steer) watched by `WatchApp` under a pilot; every key's command is obeyed and shows up
in the events, the next episode's parent and its first prompt."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from agent.tui import WatchApp
from fixtures.helpers import CLI, REPO_ROOT, cli_env, events, first_prompt, of_type, toy_task

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
SIZE = (140, 45)
DEADLINE_S = 240


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def until(pilot, session: Path, what):
    """Let the app run until `what(events)` holds; returns the events."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        evs = events(session) if (session / "events.jsonl").exists() else []
        if what(evs):
            return evs
        await pilot.pause(0.1)
    raise AssertionError(f"timed out; events: {[e['type'] for e in evs][-20:]}")


async def shows(pilot, what):
    """Let the app poll until `what()` holds (it reads the session every 0.5 s)."""
    deadline = time.monotonic() + DEADLINE_S
    while not what():
        assert time.monotonic() < deadline, "the app never caught up with the session"
        await pilot.pause(0.1)


def steered(evs: list[dict], command: str) -> list[dict]:
    return [e for e in of_type(evs, "steered") if e["command"] == command]


async def test_every_key_is_obeyed_by_a_live_runner(tmp_path):
    task = toy_task(tmp_path, sleep_s=1.0)
    sessions = tmp_path / "sessions"
    runner = subprocess.Popen([*CLI, "solve", str(task), "--model", "tuner", "--budget", "10",
                               "--workers", "1", "--no-test", "--seed", "4", "--sessions-dir",
                               str(sessions), "--no-tui"], cwd=REPO_ROOT, env=cli_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not list(sessions.glob("*/events.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.1)
        session = next(sessions.glob("*/events.jsonl")).parent
        app = WatchApp(session)
        async with app.run_test(size=SIZE) as pilot:
            evs = await until(pilot, session, lambda evs: of_type(evs, "episode_started"))
            baseline = of_type(evs, "session_started")[0]["baseline"]

            # x on the running episode, then space: it ends after its turn, none starts after
            app.tabs.active = "episodes-tab"
            await shows(pilot, lambda: 0 in app.view.episodes and app.table.row_count > 0
                        and app.view.header.baseline in app.nodes)
            app.table.move_cursor(row=app.table.get_row_index("0"))
            await pilot.press("x", "space")
            evs = await until(pilot, session, lambda evs: steered(evs, "pause") and of_type(evs, "episode_finished"))
            assert steered(evs, "stop_episode")[0]["episode"] == 0
            assert of_type(evs, "episode_finished")[0]["reason"] == "stopped"
            await shows(pilot, lambda: "paused" in str(app.money.render()))

            # paused: pin the baseline, add a note, raise the budget; nothing starts meanwhile
            app.tabs.active = "candidate"
            await pilot.pause()
            app.select(app.nodes[baseline])
            await pilot.press("P", "n")
            await pilot.pause()
            await pilot.press(*"start from the baseline", "enter", "plus")
            evs = await until(pilot, session, lambda evs: steered(evs, "budget"))
            assert steered(evs, "pin")[0]["commit"] == baseline
            assert steered(evs, "note")[0]["text"] == "start from the baseline"
            pause = steered(evs, "pause")[0]
            assert not of_type(evs[evs.index(pause):], "episode_started")
            await shows(pilot, lambda: app.view.header.budget == 20)

            # space again: the next episode starts from the pin, with the note in its prompt
            await pilot.press("space")
            evs = await until(pilot, session, lambda evs: len(of_type(evs, "episode_started")) > 1)
            nxt = of_type(evs, "episode_started")[1]
            assert nxt["parent"] == baseline
            assert "start from the baseline" in first_prompt(session, nxt["episode"])

            # P on the pinned candidate unpins; s stops the run cleanly
            app.select(app.nodes[baseline])
            await pilot.press("P", "s")
            evs = await until(pilot, session, lambda evs: of_type(evs, "session_finished"))
            assert [e["command"] for e in of_type(evs, "steered")] == [
                "stop_episode", "pause", "pin", "note", "budget", "resume", "unpin", "stop"]
            assert of_type(evs, "session_finished")[0]["reason"] == "stopped"
            await shows(pilot, lambda: "finished" in str(app.money.render()))
        assert runner.wait(timeout=DEADLINE_S) == 0
    finally:
        if runner.poll() is None:
            runner.kill()
