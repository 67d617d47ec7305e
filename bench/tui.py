"""The watcher's cost: how long a 10,000-candidate session takes to show, and whether watching
a run slows the runner.

    python bench/tui.py [--candidates 10000] [--budget 30] [--rounds 2]

1. A session of N candidates written directly (events.jsonl as the runner writes it: a
   session_started, the baseline, then N scored candidates on a random genealogy; no git
   repo, so diffs are empty): the time from creating `WatchApp` to its tree showing the
   best path (headless, `App.run_test`) -> tree_shown_s, and the tree nodes built then.
2. The toy task run by the tuner (`solve --no-tui`, one worker) with nothing watching, and
   the same run with the app watching it from another process (headless, polling as it does
   on a terminal), alternated --rounds times: candidates per minute of each (first to last
   candidate_scored) -> cpm_ratio = watched / alone.

Human-readable lines first; the LAST line is one JSON object.
Targets (not asserted): tree_shown_s < 1, cpm_ratio >= 0.95.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.config import RunConfig  # noqa: E402
from agent.events import CandidateScored, EventLog, SessionFinished, SessionStarted  # noqa: E402
from agent.session import Session  # noqa: E402

TOY = ROOT / "tests" / "fixtures" / "toy"


def big_session(root: Path, n: int, seed: int = 0) -> Path:
    """A finished session of n scored candidates on a random genealogy (no repo)."""
    rng = random.Random(seed)
    session = Session.create(root, "big", RunConfig(task_dir=".", budget=n), TOY / "evaluator")
    log, t = EventLog(session.dir / "events.jsonl"), 1_700_000_000.0
    commits = [f"{0:040x}"]
    log.emit(SessionStarted(t=t, task="big", task_dir=".", baseline=commits[0], models=["tuner"],
                            budget=n, direction="maximize", stages=["quick", "full"]))

    def scored(i: int, parent: str | None, score: float, valid: bool) -> None:
        commit = commits[i]
        record = {"commit": commit, "parent": parent, "episode": i // 3 - 1, "island": i % 4,
                  "score": score, "valid": valid, "message": f"candidate {i}", "model": "tuner",
                  "metrics": {"m": score}, "feedback": "ok"}
        log.emit(CandidateScored(t=t + i, commit=commit, parent=parent, episode=record["episode"],
                                 stage="full", score=score, valid=valid, candidate=record,
                                 stages=[{"stage": "full", "score": score, "valid": valid}]))

    scored(0, None, 0.0, True)
    for i in range(1, n + 1):
        commits.append(f"{i:040x}")
        parent = commits[rng.randrange(max(0, i - 50), i)]  # recent parents: deep lineages
        scored(i, parent, rng.gauss(i / n, 0.3), rng.random() > 0.1)
    log.emit(SessionFinished(t=t + n + 1, reason="budget", candidates=n))
    log.close()
    return session.dir


async def time_to_tree(session_dir: Path) -> tuple[float, int]:
    from textual.widgets import Tree

    from agent.tui import WatchApp

    start = time.perf_counter()
    app = WatchApp(session_dir)
    async with app.run_test(size=(140, 45)) as pilot:
        tree = app.query_one(Tree)
        while not tree.root.children:
            await pilot.pause(0.01)
        shown = time.perf_counter() - start
        nodes, stack = 0, [tree.root]
        while stack:
            node = stack.pop()
            nodes += 1
            stack.extend(node.children)
    return shown, nodes


async def watch_headless(sessions: Path) -> None:
    """Watch the one session that appears under `sessions` until it finishes."""
    from agent.tui import WatchApp

    while not list(sessions.glob("*/events.jsonl")):
        await asyncio.sleep(0.05)
    session = next(sessions.glob("*/events.jsonl")).parent
    app = WatchApp(session)
    async with app.run_test(size=(140, 45)) as pilot:
        while '"session_finished"' not in (session / "events.jsonl").read_text():
            await pilot.pause(0.5)


def candidates_per_minute(task: Path, sessions: Path, budget: int, watched: bool) -> float:
    shutil.rmtree(sessions, ignore_errors=True)
    sessions.mkdir(parents=True)
    watcher = subprocess.Popen([sys.executable, __file__, "--watch", str(sessions)]) if watched else None
    subprocess.run([sys.executable, "-m", "agent.cli", "solve", str(task), "--model", "tuner",
                    "--budget", str(budget), "--workers", "1", "--no-test", "--seed", "1",
                    "--sessions-dir", str(sessions), "--no-tui"], cwd=ROOT, check=True,
                   capture_output=True)
    if watcher:
        watcher.wait(timeout=120)
    session = next(sessions.iterdir())
    times = [e.t for e in Session(session).events() if isinstance(e, CandidateScored)]
    return 60 * (len(times) - 1) / (times[-1] - times[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", type=int, default=10_000)
    ap.add_argument("--budget", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--watch", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.watch:
        asyncio.run(watch_headless(args.watch))
        return
    with tempfile.TemporaryDirectory(prefix="adrs-bench-tui-") as tmp:
        root = Path(tmp)
        big = big_session(root / "big", args.candidates)
        shown, nodes = asyncio.run(time_to_tree(big))
        print(f"{args.candidates} candidates: tree shown in {shown:.3f} s with {nodes} nodes built")
        task = root / "toy"
        shutil.copytree(TOY, task, ignore=shutil.ignore_patterns("__pycache__", "calls.log", "sleep_s"))
        alone, watched = [], []
        for r in range(args.rounds):
            alone.append(candidates_per_minute(task, root / "runs", args.budget, watched=False))
            watched.append(candidates_per_minute(task, root / "runs", args.budget, watched=True))
            print(f"round {r + 1}: {alone[-1]:.1f} candidates/min alone, {watched[-1]:.1f} watched")
        ratio = statistics.median(watched) / statistics.median(alone)
        print(f"watched / alone: {ratio:.3f}")
    print(json.dumps({"candidates": args.candidates, "tree_shown_s": round(shown, 3),
                      "tree_nodes_built": nodes, "cpm_alone": round(statistics.median(alone), 1),
                      "cpm_watched": round(statistics.median(watched), 1),
                      "cpm_ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
