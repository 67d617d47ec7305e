"""The watch app (agent/tui) on real and fixture sessions: what it shows, what it sends, how it
scales; snapshots at 140x45 of its main views."""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import pytest
from textual.widgets import Static

from agent.events import CandidateCommitted, CandidateScored, EpisodeStarted, Evaluators, EventLog
from agent.tui import WatchApp
from agent.tui.app import PAGE
from agent.tui.model import CandidateRecord, SessionView, nodes_line
from fixtures.helpers import REPO_ROOT, run_cli, toy_task
from fixtures.session import DEMO_ID, demo_session, large_session, synthetic_sha

pytestmark = pytest.mark.anyio
SIZE = (140, 45)
UI_ONLY = ("textual", "textual_plotext", "textual_serve")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Event times print as HH:MM:SS in local time: fix the zone so snapshots do not move."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def demo(tmp_path) -> Path:
    return demo_session(tmp_path)


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def text_of(app: WatchApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def detail(app: WatchApp) -> str:
    """The Candidate tab as plain text (its renderable printed without colour)."""
    from rich.console import Console
    console = Console(width=200, record=True, color_system=None)
    console.print(app.query_one("#detail", Static).content)
    return console.export_text()


def tree_nodes(app: WatchApp) -> int:
    return len(app.genealogy._tree_nodes)


async def until(pilot, condition, deadline_s: float = 20.0) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, "the app did not catch up before the deadline"
        await pilot.pause(0.1)


def control(session: Path) -> list[dict]:
    path = session / "control.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- only agent/tui touches textual --------------------------------------------------------------
def test_only_agent_tui_imports_textual_and_it_never_imports_the_solver():
    roots = [REPO_ROOT / d for d in ("agent", "tools", "sandbox", "adrs_eval")]
    files = [f for root in roots for f in root.rglob("*.py") if "tui" not in f.relative_to(REPO_ROOT).parts]
    files += list(REPO_ROOT.glob("tasks/*/evaluator/**/*.py"))
    offenders = [str(f.relative_to(REPO_ROOT)) for f in files
                 if any(m.split(".")[0] in UI_ONLY for m in imports(f))]
    assert offenders == []
    tui = list((REPO_ROOT / "agent" / "tui").rglob("*.py"))
    assert tui
    solver = [str(f) for f in tui for m in imports(f) if m in ("agent.solve", "agent.progress")
              or m.startswith(("agent.solve.", "agent.progress."))]
    assert solver == []


def test_the_model_imports_no_textual():
    assert not any(m.split(".")[0] in UI_ONLY for m in imports(REPO_ROOT / "agent" / "tui" / "model.py"))


# -- the model -----------------------------------------------------------------------------------
def test_the_view_folds_the_demo_session_into_its_facts(demo):
    view = SessionView(demo)
    view.poll()
    h = view.header
    assert (h.task, h.session_id, h.models, h.budget, h.used, h.max_cost) == ("demo", DEMO_ID, ["tuner"], 20, 8, 1.0)
    assert view.runner_state() == "finished" and view.elapsed() == 230.0
    assert h.best_score == -0.04 and h.baseline_score == -17.0
    assert h.gain() == pytest.approx((16.96, 99.7647), rel=1e-4)
    best = view.candidates[h.best]
    assert best.test_score == -0.05 and best.message == "tuner: A -> 7.0, B -> 1.8"
    assert [view.candidates[c].message for c in view.best_path()] == [
        "baseline", "tuner: A -> 5.0, B -> 1.0", "tuner: A -> 6.0, B -> 1.5", best.message]
    assert sorted(view.rank(c) for c in view.candidates.values()) == ["best", "invalid", "invalid"] + ["normal"] * 6
    [rejected] = [r for r in view.children[h.baseline] if not isinstance(r, CandidateRecord)]
    assert rejected.paths == ["README.md"] and rejected.episode == 1
    assert view.steering.notes == ["try B near 2"]
    assert "+A = 7.0" in view.diff(h.best, "parent") and "-A = 6.0" in view.diff(h.best, "parent")
    assert "-A = 3.0" in view.diff(h.best, "baseline")
    assert view.diff(h.baseline, "parent") == ""
    assert nodes_line(view.nodes) == "evaluators  local: 17 evaluations, 4.2 s busy"
    assert view.poll() == []


def test_the_evaluators_line_names_each_node_and_what_went_wrong():
    assert nodes_line({}).startswith("evaluators: none reported yet")
    line = nodes_line({
        "3f2a9c1b77d0aa": {"host": "gpu-1", "evaluations": 15, "busy_s": 8.14, "lost": 1, "jail": "ok"},
        "9e8d7c6b5a4f33": {"address": "10.0.0.3", "evaluations": 0, "busy_s": 0.0, "lost": 0,
                           "jail": "bwrap: no user namespaces"}})
    assert line == ("evaluators  3f2a9c1b (gpu-1): 15 evaluations, 8.1 s busy, 1 lost;  "
                    "9e8d7c6b (10.0.0.3): 0 evaluations, 0.0 s busy, jail: bwrap: no user namespaces")


# -- a real session --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_session(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("real")
    task = toy_task(tmp)
    run_cli("solve", str(task), "--model", "tuner", "--budget", "6", "--workers", "1", "--sessions-dir",
            str(tmp / "sessions"), "--no-test", "--no-tui", "--unsafe-no-sandbox")
    [session] = [p for p in (tmp / "sessions").iterdir() if (p / "session.toml").is_file()]
    return session


@pytest.mark.slow
async def test_selecting_a_node_shows_its_commit_message_score_and_diff(real_session):
    view = SessionView(real_session)
    view.poll()
    app = WatchApp(real_session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        tree = app.genealogy
        best = app.selected
        assert isinstance(best, CandidateRecord) and best.commit == view.header.best
        assert best.message in detail(app)
        for node in list(app.nodes.values()):
            tree.move_cursor(node)
            await pilot.pause()
            cand = view.candidates[node.data.commit]
            shown = detail(app)
            assert cand.commit in shown and cand.message in shown
            assert f"{cand.score:.6g}" in shown

        child = next(c for c in view.candidates.values() if c.parent and c.parent != view.header.baseline
                     and c.commit in app.nodes)
        tree.move_cursor(app.nodes[child.commit])
        await pilot.pause()
        against_parent = detail(app)
        assert view.diff(child.commit, "parent") and "against its parent" in against_parent
        await pilot.press("d")
        against_base = detail(app)
        assert "against the baseline" in against_base
        assert view.diff(child.commit, "parent") != view.diff(child.commit, "baseline")
        assert against_parent != against_base

        app.tabs.active = "score"
        await pilot.pause()
        assert app.plotted == app.view.version
        app.tabs.active = "episodes-tab"
        await pilot.pause()
        table = app.table
        assert table.row_count == len(view.episodes)


@pytest.mark.slow
async def test_p_writes_the_selected_candidates_pull_request_as_a_dry_run(real_session):
    app = WatchApp(real_session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        best = app.selected
        app.select(app.genealogy.root)  # the baseline cannot be a pull request
        await pilot.press("p")
        assert not (real_session / "pr").exists()
        app.select(app.nodes[best.commit])
        await pilot.press("p")
        body = real_session / "pr" / best.commit[:10] / "body.md"
        await until(pilot, lambda: any(line.text.startswith("pr: body: ") for line in app.events_log.lines), 120)
        assert body.is_file() and best.commit[:10] in body.read_text()


# -- following a live log ------------------------------------------------------------------------
def without_end(session: Path) -> list[str]:
    """Drop the session's session_finished line (as if its runner were killed); the lines left."""
    events = [line for line in (session / "events.jsonl").read_text().splitlines() if "session_finished" not in line]
    (session / "events.jsonl").write_text("".join(line + "\n" for line in events))
    return events


async def test_candidates_and_episodes_appended_while_watching_appear(demo):
    without_end(demo)
    (demo / "run.log").write_text("session started\nTraceback: the runner died\n")
    view = SessionView(demo)
    view.poll()
    best = view.header.best
    app = WatchApp(demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert view.runner_state() == "dead" and app.view.runner_state() == "dead"
        assert "Traceback: the runner died" in [line.text for line in app.events_log.lines]
        assert best in app.nodes and app.nodes[best].data.commit == best
        log = EventLog(demo / "events.jsonl")
        log.emit(EpisodeStarted(episode=7, island=1, parent=best, model="tuner", branch="adrs/1/7"))
        new = "f" * 40
        log.emit(CandidateCommitted(commit=new, parent=best, episode=7, island=1, model="tuner", message="late"))
        log.emit(CandidateScored(commit=new, parent=best, episode=7, stage="full", score=1.5, valid=True,
                                 candidate={"island": 1, "model": "tuner", "message": "late"}, stages=[]))
        sibling = "e" * 40  # under the baseline, whose children are in the tree already
        log.emit(CandidateCommitted(commit=sibling, parent=view.header.baseline, episode=7, island=1,
                                    model="tuner", message="later"))
        worse = "d" * 40  # under the new best, which is a leaf of the tree so far
        log.emit(CandidateScored(commit=worse, parent=new, episode=7, stage="full", score=0.5, valid=True,
                                 candidate={"island": 1, "model": "tuner", "message": "worse"}, stages=[]))
        log.emit(Evaluators(nodes={"a1b2c3d4e5": {"host": "head", "evaluations": 9, "busy_s": 2.0},
                                   "f6e5d4c3b2": {"host": "second", "evaluations": 11, "busy_s": 2.5}}))
        log.close()
        await until(pilot, lambda: "second): 11 evaluations" in str(app.evaluators_line.render()))
        await until(pilot, lambda: sibling in app.nodes)
        await until(pilot, lambda: new in app.nodes)  # a new best: the path down to it opens
        assert worse not in app.nodes  # its parent was never expanded
        app.nodes[new].expand()
        await until(pilot, lambda: worse in app.nodes)
        table = app.table
        await until(pilot, lambda: "7" in [str(table.get_row_at(i)[0]) for i in range(table.row_count)])
        assert app.view.header.best == new
        assert "★" in str(app.nodes[new].label)
        assert "running" in [str(table.get_row_at(i)[-1]) for i in range(table.row_count)]


# -- steering --------------------------------------------------------------------------------------
@pytest.fixture
def live(demo) -> Path:
    """The demo session without its end, episode 4 running: no runner is alive, so commands
    wait for a resume."""
    events = without_end(demo)
    log = EventLog(demo / "events.jsonl")
    log.emit(EpisodeStarted(episode=4, island=0, parent=json.loads(events[0])["baseline"], model="tuner",
                            branch="adrs/0/4"))
    log.close()
    return demo


async def test_each_steering_key_writes_its_command(live):
    app = WatchApp(live)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        best = app.view.header.best
        await pilot.press("space")
        await pilot.press("space")
        await pilot.press("n")
        await pilot.press(*"try A=7", "enter")
        await pilot.press("P")
        await pilot.press("x")  # not on the Episodes tab: nothing is sent
        await pilot.press("plus")
        await pilot.press("s")
        app.tabs.active = "episodes-tab"
        await pilot.pause()
        app.table.focus()
        await pilot.press("x")
        await pilot.pause()
        assert app.selected_episode() == 4
        await pilot.press("down", "x")  # an ended episode: nothing is sent
    assert control(live) == [{"command": "pause"}, {"command": "resume"}, {"command": "note", "text": "try A=7"},
                             {"command": "pin", "commit": best}, {"command": "budget", "amount": 10},
                             {"command": "stop"}, {"command": "stop_episode", "episode": 4}]


async def test_pin_on_the_pinned_candidate_unpins(live):
    log = EventLog(live / "events.jsonl")
    view = SessionView(live)
    view.poll()
    from agent.events import Steered
    log.emit(Steered(command="pin", commit=view.header.best))
    log.close()
    app = WatchApp(live)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("P")
    assert control(live) == [{"command": "unpin"}]


async def test_quit_detach_leaves_the_run_and_quit_stop_stops_it(live):
    app = WatchApp(live)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.click("#detach")
    assert app.return_value == "detach"
    assert control(live) == []

    app = WatchApp(live)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.click("#cancel")
        assert app.is_running
        await pilot.press("q")
        await pilot.click("#stop")
    assert app.return_value == "stop"
    assert control(live) == [{"command": "stop"}]


async def test_steering_keys_on_a_finished_run_send_nothing(demo):
    app = WatchApp(demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.view.runner_state() == "finished"
        await pilot.press("space", "P", "plus", "s", "n")
        app.tabs.active = "episodes-tab"
        await pilot.pause()
        await pilot.press("x", "q")  # q leaves at once: nothing to detach from or stop
    assert app.return_value is None
    assert not (demo / "control.jsonl").exists()


# -- 10,000 candidates ----------------------------------------------------------------------------
@pytest.mark.slow
async def test_ten_thousand_candidates_build_a_bounded_tree(tmp_path):
    session = large_session(tmp_path, 10_000)
    app = WatchApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert len(app.view.candidates) == 10_001
        built = tree_nodes(app)
        assert built < 1_000
        hub = app.nodes[synthetic_sha(1)]
        assert len(app.view.children[hub.data.commit]) > 2_000
        hub.expand()
        await pilot.pause()
        assert tree_nodes(app) - built <= PAGE + 1
        more = app.more[hub.data.commit]
        app.genealogy.select_node(more)
        await pilot.pause()
        assert tree_nodes(app) - built <= 2 * PAGE + 1
        assert app.shown[hub.data.commit] == 2 * PAGE


# -- snapshots -------------------------------------------------------------------------------------
def snapshot_app(tmp_path: Path) -> WatchApp:
    return WatchApp(demo_session(tmp_path))


def test_snapshot_main_view(tmp_path, snap_compare):
    assert snap_compare(snapshot_app(tmp_path), terminal_size=SIZE)


def test_snapshot_score_tab(tmp_path, snap_compare):
    async def score(pilot):
        pilot.app.tabs.active = "score"
        await pilot.pause()
    assert snap_compare(snapshot_app(tmp_path), terminal_size=SIZE, run_before=score)


def test_snapshot_episodes_tab(tmp_path, snap_compare):
    async def episodes(pilot):
        pilot.app.tabs.active = "episodes-tab"
        await pilot.pause()
        table = pilot.app.table
        table.focus()
        table.move_cursor(row=table.get_row_index("2"))
        await pilot.pause()
    assert snap_compare(snapshot_app(tmp_path), terminal_size=SIZE, run_before=episodes)


def test_snapshot_diff_against_the_baseline(tmp_path, snap_compare):
    assert snap_compare(snapshot_app(tmp_path), terminal_size=SIZE, press=["d"])


def test_snapshot_quit_dialog(tmp_path, snap_compare):
    session = demo_session(tmp_path, finished=False)  # a finished run's q just leaves
    assert snap_compare(WatchApp(session), terminal_size=SIZE, press=["q"])


def test_the_demo_session_is_the_same_every_time(tmp_path):
    a, b = demo_session(tmp_path / "a"), demo_session(tmp_path / "b")
    assert a.name == b.name == DEMO_ID
    assert (a / "events.jsonl").read_text() == (b / "events.jsonl").read_text()
