"""Harness overhead per candidate, on an empty session and on one holding 5,000 candidates.

    python bench/overhead.py [--bare-runs 200] [--candidates 60] [--big 5000] [--more 100]
                             [--profile]

1. bare: the task's evaluator command (the argv the harness builds, no sandbox) run N
   times as a plain subprocess -> bare_eval_ms_median.
2. empty session: the real loop in-process (Solver, scripted model writing a distinct
   pkg/policy.py then committing, 5 commits per episode). Per candidate: the gap between
   consecutive candidate_scored events minus that candidate's evaluator wall_s (its stage
   results; this wall includes the sandbox wrapper) -> overhead_ms_median. The same gap minus
   the BARE evaluator time is reported too (overhead incl. the sandbox).
3. a session of 5,000 candidates written directly: the baseline repo plus 5,000 commits via
   `git fast-import` (episode branches adrs/<island>/<n>, 5 commits each, notes in
   refs/notes/adrs), and events.jsonl cloned from the real events of step 2 (so the format
   is exactly what the Solver writes). Solver.restore() on it -> resume_load_s_5000; then the
   loop continues for --more candidates -> overhead_ms_median_at_5000.

Human-readable lines first; the LAST line is one JSON object with the figures.
Targets (not asserted): overhead <= 15 ms median, <= 1.5x at 5,000, resume load < 1 s.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.config import RunConfig  # noqa: E402
from agent.session import Session  # noqa: E402
from agent.solve import Solver  # noqa: E402
from agent.task import Task  # noqa: E402
from sandbox import git  # noqa: E402
from sandbox.evaluate import format_command  # noqa: E402

COMMITS_PER_EPISODE = 5
EVALUATOR = 'print(\'{"score": 1.0, "valid": true, "metrics": {}, "feedback": "ok"}\')\n'


def make_task(root: Path, evaluator: str = EVALUATOR) -> Path:
    """A one-stage task whose evaluator is `evaluator` (by default one that returns at once)."""
    task = root / "task"
    (task / "repo" / "pkg").mkdir(parents=True)
    (task / "evaluator").mkdir()
    (task / "repo" / "pkg" / "__init__.py").write_text("")
    (task / "repo" / "pkg" / "policy.py").write_text("A = 0\n")
    (task / "evaluator" / "evaluate.py").write_text(evaluator)
    (task / "README.md").write_text("Raise the score.\n")
    (task / "task.toml").write_text(
        'name = "bench"\nbrief = "README.md"\n[repo]\nsource = "repo"\n'
        'editable = ["pkg/**/*.py"]\n[evaluator]\n'
        'command = ["python", "evaluate.py", "--stage", "{stage}", "--candidate", "{worktree}"]\n'
        'cwd = "evaluator"\nstages = ["full"]\ntimeout_s = 60\ndirection = "maximize"\n'
        '[sandbox]\nmemory_mb = 1024\nnetwork = false\n')
    return task


def make_script(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "script.jsonl"
    turns = [{"text": "", "tool_calls": [
        {"name": "write_file", "arguments": {
            "path": "pkg/policy.py", "content": "A = {episode}\nB = {turn}\n"}},
        {"name": "commit", "arguments": {"message": "e{episode} t{turn}"}}]}
        for _ in range(COMMITS_PER_EPISODE)]
    path.write_text("".join(json.dumps(t) + "\n" for t in turns))
    return path


def bare_eval_ms(task: Task, worktree: Path, runs: int) -> float:
    spec = task.evaluator
    argv = format_command(spec.command, spec.stages[0], worktree, None, sys.executable)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, cwd=spec.cwd, capture_output=True, check=True)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def raw_events(session: Session) -> list[dict]:
    """events.jsonl as written (the bench edits and times the lines themselves)."""
    return [json.loads(line) for line in (session.dir / "events.jsonl").read_text().splitlines()]


def overheads(events: list[dict], bare_ms: float, after: int = 0
              ) -> tuple[list[float], list[float], list[float]]:
    """Per candidate (ms): gap - evaluator wall_s, gap - bare evaluator, and the sandboxed
    evaluator wall itself; from candidate_scored events after index `after`."""
    scored = [e for e in events[after:] if e["type"] == "candidate_scored"
              and e["episode"] >= 0]
    net, gross, wall = [], [], []
    for prev, cur in zip(scored, scored[1:]):
        gap = (cur["t"] - prev["t"]) * 1000
        w = sum(s.get("wall_s", 0.0) for s in cur["stages"]) * 1000
        net.append(gap - w)
        gross.append(gap - bare_ms * len(cur["stages"]))
        wall.append(w)
    return net, gross, wall


def new_session(root: Path, task: Task, budget: int) -> tuple[Session, RunConfig]:
    cfg = RunConfig(task_dir=str(task.dir), models=[f"scripted:{make_script(root)}"],
                    budget=budget, workers=1, test_at_end=False, seed=0)
    return Session.create(root / "sessions", task.name, cfg, task.evaluator.cwd), cfg


def run_loop(root: Path, task_dir: Path, n: int) -> tuple[Session, float]:
    task = Task.load(task_dir)
    session, cfg = new_session(root, task, n)
    solver = Solver(session, task, cfg)
    t = time.perf_counter()
    solver.start()
    solver.run()
    session.close()
    return session, time.perf_counter() - t


# -- the 5,000-candidate session -------------------------------------------------------------
def blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def replace(obj, strings: dict[str, str], numbers: dict[str, object]):
    """A deep copy of a JSON value with exact strings replaced and named fields set."""
    if isinstance(obj, str):
        return strings.get(obj, obj)
    if isinstance(obj, list):
        return [replace(v, strings, numbers) for v in obj]
    if isinstance(obj, dict):
        return {k: (numbers[k] if k in numbers and not isinstance(v, (dict, list))
                    else replace(v, strings, numbers)) for k, v in obj.items()}
    return obj


def build_big(root: Path, task_dir: Path, template: list[dict], n_cands: int, more: int
              ) -> tuple[Session, RunConfig, float]:
    """A session holding n_cands candidates, from the real events of a small run."""
    t0 = time.perf_counter()
    task = Task.load(task_dir)
    session, cfg = new_session(root / "big", task, n_cands + more)
    baseline = git.init_repo(session.repo, task.source, task.ref)
    base_files = git.files_at(session.repo, baseline)
    old_base = template[0]["baseline"]
    # the template: the baseline's events and one full episode of the real run
    head = [e for e in template if e["type"] in ("session_started", "evaluated",
                                                  "candidate_scored")
            and (e["type"] == "session_started" or e.get("commit") == old_base
                 or (e["type"] == "evaluated" and e is template[1]))]
    ep = next(e["episode"] for e in template if e["type"] == "episode_finished"
              and len(e["commits"]) == COMMITS_PER_EPISODE)
    lo = next(i for i, e in enumerate(template) if e["type"] == "episode_started"
              and e["episode"] == ep)
    hi = next(i for i, e in enumerate(template) if e["type"] == "episode_finished"
              and e["episode"] == ep)
    episode_events = template[lo:hi + 1]
    t_commits = next(e for e in episode_events if e["type"] == "episode_finished")["commits"]
    t_keys = [next(e["candidate"]["key"] for e in episode_events
                   if e["type"] == "candidate_scored" and e["commit"] == c) for c in t_commits]
    t_branch = next(e for e in episode_events if e["type"] == "episode_started")["branch"]

    # 1. git: commits and notes through one fast-import stream
    episodes = n_cands // COMMITS_PER_EPISODE
    stream = io.BytesIO()
    contents, mark = {}, 0
    now = int(time.time())
    for e in range(episodes):
        for k in range(COMMITS_PER_EPISODE):
            mark += 1
            body = f"A = {e}\nB = {k}\n".encode()
            contents[mark] = body
            msg = f"e{e} t{k}".encode()
            stream.write(f"commit refs/heads/adrs/{e % 3}/{e}\nmark :{mark}\n"
                         f"committer adrs-agent <adrs-agent@localhost> {now} +0000\n"
                         f"data {len(msg)}\n".encode() + msg + b"\n")
            if k == 0:
                stream.write(f"from {baseline}\n".encode())
            stream.write(f"M 100644 inline pkg/policy.py\ndata {len(body)}\n".encode()
                         + body + b"\n")
    marks = root / "marks"
    git.git(["fast-import", "--quiet", f"--export-marks={marks}"], cwd=session.repo,
            input=stream.getvalue().decode())
    sha = {int(m[1:]): s for m, s in (line.split() for line in marks.read_text().splitlines())}

    # 2. events, cloned from the template with new commits, keys, episodes and scores
    lines = []
    notes: dict[str, dict] = {}
    for e in head:
        ev = replace(e, {old_base: baseline}, {})
        lines.append(ev)
        if ev["type"] == "candidate_scored":
            notes[baseline] = {"candidate": ev["candidate"], "stages": ev["stages"]}
    mark = 0
    for e in range(episodes):
        strings = {old_base: baseline, t_branch: f"adrs/{e % 3}/{e}"}
        for k in range(COMMITS_PER_EPISODE):
            mark += 1
            files = dict(base_files, **{"pkg/policy.py": blob_sha(contents[mark])})
            strings[t_commits[k]] = sha[mark]
            strings[t_keys[k]] = git.content_hash(files, task.editable)
        score = float(-((e * 7 + 3) % 997))
        for ev in episode_events:
            nums: dict[str, object] = {"episode": e, "island": e % 3}
            if ev["type"] in ("candidate_scored", "evaluated"):
                nums["score"] = score
            new = replace(ev, strings, nums)
            lines.append(new)
            if new["type"] == "candidate_scored":
                notes[new["commit"]] = {"candidate": new["candidate"], "stages": new["stages"]}
    with open(session.dir / "events.jsonl", "w") as f:
        for ev in lines:
            f.write(json.dumps(ev, default=str) + "\n")
    stream = io.BytesIO()
    stream.write(f"commit refs/notes/adrs\ncommitter adrs-agent <adrs-agent@localhost> {now} "
                 f"+0000\ndata 5\nnotes\n".encode())
    for commit, data in notes.items():
        text = json.dumps(data, sort_keys=True, indent=1).encode()
        stream.write(f"N inline {commit}\ndata {len(text)}\n".encode() + text + b"\n")
    git.git(["fast-import", "--quiet"], cwd=session.repo, input=stream.getvalue().decode())
    n_scored = sum(1 for ev in lines if ev["type"] == "candidate_scored")
    print(f"built a session of {n_scored - 1} candidates (+ baseline), {len(notes)} notes, "
          f"{len(lines)} events in {time.perf_counter() - t0:.1f} s")
    return session, cfg, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bare-runs", type=int, default=200)
    ap.add_argument("--candidates", type=int, default=60)
    ap.add_argument("--big", type=int, default=5000)
    ap.add_argument("--more", type=int, default=100)
    ap.add_argument("--profile", action="store_true", help="cProfile one episode in-process")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="adrs-bench-") as tmp:
        root = Path(tmp)
        task_dir = make_task(root)
        task = Task.load(task_dir)
        bare = bare_eval_ms(task, task_dir / "repo", args.bare_runs)
        print(f"bare evaluator: {bare:.1f} ms median over {args.bare_runs} runs")

        session, wall = run_loop(root / "empty", task_dir, args.candidates)
        evs = raw_events(session)
        net, gross, sb = overheads(evs, bare)
        print(f"empty session: {args.candidates} candidates in {wall:.1f} s "
              f"({wall / args.candidates * 1000:.0f} ms per candidate)")
        print(f"  overhead (gap - evaluator wall_s): median {statistics.median(net):.1f} ms, "
              f"mean {statistics.mean(net):.1f} ms over {len(net)}")
        print(f"  sandboxed evaluator wall_s: median {statistics.median(sb):.1f} ms "
              f"(bare {bare:.1f} ms: sandbox adds {statistics.median(sb) - bare:.1f} ms)")
        print(f"  overhead incl. sandbox (gap - bare evaluator): median "
              f"{statistics.median(gross):.1f} ms")

        big, cfg, _ = build_big(root, task_dir, evs, args.big, args.more)
        n_eval = sum(1 for e in raw_events(big) if e["type"] == "evaluated")
        t = time.perf_counter()
        solver = Solver(big, Task.load(task_dir), cfg)
        solver.restore()
        load = time.perf_counter() - t
        mark = sum(1 for _ in raw_events(big))
        rescored = [e for e in raw_events(big) if e["type"] == "evaluated"][n_eval:]
        print(f"restore() of {len(solver.db) - 1} candidates: {load:.2f} s "
              f"(budget used {solver.candidates_used}; re-evaluated {len(rescored)})")
        t = time.perf_counter()
        solver.run()
        big.close()
        wall5k = time.perf_counter() - t
        evs5k = list(raw_events(big))
        net5k, gross5k, _ = overheads(evs5k, bare, after=mark)
        print(f"5,000 session: {args.more} more candidates in {wall5k:.1f} s")
        print(f"  overhead (gap - evaluator wall_s): median {statistics.median(net5k):.1f} ms, "
              f"mean {statistics.mean(net5k):.1f} ms over {len(net5k)}")
        print(f"  overhead incl. sandbox: median {statistics.median(gross5k):.1f} ms")

        if args.profile:
            for label, s in (("empty", None), ("5000", solver)):
                if s is None:
                    t2 = Task.load(task_dir)
                    ps, pcfg = new_session(root / "prof", t2, 10)
                    s = Solver(ps, t2, pcfg)
                    s.start()
                    s._score_commit(s.baseline, None, -1, 0, "baseline", "baseline")
                s.cfg.budget += COMMITS_PER_EPISODE
                prof = cProfile.Profile()
                prof.enable()
                s.episode(s.episodes_started)
                prof.disable()
                s.episodes_started += 1
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
                print(f"--- cProfile, one episode of {COMMITS_PER_EPISODE} commits ({label}) ---")
                print("\n".join(out.getvalue().splitlines()[:30]))

        med, med5k = statistics.median(net), statistics.median(net5k)
        print(json.dumps({
            "bare_eval_ms_median": round(bare, 2),
            "overhead_ms_median": round(med, 2),
            "overhead_ms_median_at_5000": round(med5k, 2),
            "overhead_ratio_5000_vs_empty": round(med5k / med, 3) if med > 0 else None,
            "resume_load_s_5000": round(load, 3),
            "candidates_measured": len(net) + len(net5k),
            "overhead_incl_sandbox_ms_median": round(statistics.median(gross), 2),
            "overhead_incl_sandbox_ms_median_at_5000": round(statistics.median(gross5k), 2),
            "sandboxed_eval_ms_median": round(statistics.median(sb), 2),
        }))


if __name__ == "__main__":
    main()
