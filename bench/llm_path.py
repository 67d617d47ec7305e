"""Per-candidate cost on the real LLM path, beside OpenEvolve 0.4.0 on the same task.

    python bench/llm_path.py [--sizes 200 1000] [--programs tiny bin-packing] [--repeat R]
                             [--systems ...] [--no-openevolve] [--profile N]
    python bench/llm_path.py --sizes 50 --programs tiny --no-openevolve     # a quick run

Both systems go through their OpenAI-compatible path (the openai SDK, HTTP) to an instant
fake Chat Completions server on 127.0.0.1 (tests/fakes, in a child process, as a remote API
is), one model call per candidate:
The program both evolve is one file, `A = <n>` (distinct per candidate) on top of a body:
`tiny` has none; `bin-packing` is that task's editable policy.py (1.9 KB, the size of the
shipped tasks' programs: 1.9-7.4 KB), so each reply carries the whole file, as a model's does.
- adrs-agent: `Solver` in-process with `openai/bench@URL`; each reply is ONE turn calling
  write_file (pkg/policy.py, the whole file), commit, finish. Four ways:
  - `ours`: one worker, streamed (the default); `ours_json`: one worker with
    `provider.stream = false` (one JSON reply per call, as OpenEvolve asks for its replies).
    One candidate at a time: the next parent is chosen once this one is scored.
  - `ours_pipelined`, `ours_json_pipelined`: the same with `--workers 2 --evaluators 1`. One
    evaluation at a time, as OpenEvolve's one evaluation worker; the other episode's prompt,
    model call and commit go on beside it. Its figure is the evaluator slot's idle time per
    candidate: it stays low while an evaluation takes longer than the harness's own work on
    a candidate (what `ours` measures), as it does here (~30 ms) and in ADRS tasks (seconds).
- OpenEvolve: `openevolve.run_evolution`-style controller on the same program,
  full rewrites (each reply a ```python block of the whole file), one evaluation worker; its
  defaults otherwise (checkpoints every 100, 5 islands, in-memory database). Its controller keeps
  one iteration per island in flight (5) for that worker, and its main process (database,
  snapshot, the next submission) works beside the worker (prompt, model call, evaluation): it is
  pipelined as `ours_*_pipelined` is, not one candidate at a time as `ours` is.
The evaluator is the same script for both (a Python process reading A and printing a score):
ours runs it as the harness does (sandbox.run), OpenEvolve's evaluate() runs it with
subprocess.run and records its wall time. Per candidate: the gap between consecutive
candidates' end of scoring minus that candidate's evaluator wall time = the harness's own
cost (prompt, model call, edit, commit, bookkeeping). Reported over the first 100, the last
100 and all (median). Sizes run ABBA-interleaved: ours, theirs at the first size, theirs,
ours at the next, ... for each program.

OpenEvolve runs in its own virtualenv (`--openevolve-venv`, made with
`pip install openevolve==0.4.0` when missing; skipped, and said so, when that fails).
`--profile N` cProfiles N candidates of ours in-process and prints where the time goes.

Human-readable lines first; the LAST line is one JSON object (milliseconds; keys name the
program and the size, e.g. ratio_json_median_bin-packing_200).
Targets (not asserted): ours <= 15 ms per candidate, <= 0.6x OpenEvolve at 200, flat to 1,000.
The ratios: `ratio_*` one candidate at a time against OpenEvolve's pipeline,
`ratio_*pipelined*` pipeline against pipeline (like for like).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from overhead import make_task as bench_task  # noqa: E402

from fakes import call, reply  # noqa: E402
from fakes.openai_server import FakeOpenAI  # noqa: E402

OPENEVOLVE = "openevolve==0.4.0"
DEFAULT_VENV = Path.home() / ".cache" / "adrs-bench" / "openevolve-0.4.0"
SPARE_REPLIES = 50
PROGRAMS = {"tiny": "", "bin-packing": (ROOT / "tasks" / "bin-packing" / "repo" / "binpack" /
                                        "policy.py").read_text()}

EVALUATOR = textwrap.dedent('''\
    import json, re, sys
    args = sys.argv[1:]
    path = (args[args.index("--file") + 1] if "--file" in args
            else args[args.index("--candidate") + 1] + "/pkg/policy.py")
    m = re.search(r"A = (\\d+)", open(path).read())
    a = int(m.group(1)) if m else 0
    print(json.dumps({"score": (a * 7919) % 1000 / 1000, "valid": True, "metrics": {},
                      "feedback": "ok"}))
''')


# -- the fake API, in a child process -------------------------------------------------------
def program(name: str, i: int) -> str:
    return f"A = {i}\n{PROGRAMS[name]}"


def serve(kind: str, n: int, name: str) -> None:
    """Serve n distinct replies until stdin closes; then print the connection count."""
    if kind == "adrs":
        script = [reply("", call("write_file", path="pkg/policy.py", content=program(name, i + 1)),
                        call("commit", message=f"A = {i + 1}"), call("finish", summary="done"),
                        input=2000, output=60) for i in range(n)]
    else:
        script = [reply(f"```python\n{program(name, i + 1)}```", input=2000, output=60)
                  for i in range(n)]
    server = FakeOpenAI(script).start()
    print(server.url, flush=True)
    sys.stdin.read()
    print(json.dumps({"connections": server.connections, "requests": len(server.requests)}),
          flush=True)
    server.stop()


class Fake:
    """A fake API in a child process, for one run."""

    def __init__(self, kind: str, n: int, name: str):
        self.child = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--n", str(n),
                                       "--programs", name],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.child.stdout.readline().strip()
        self.stats: dict = {}

    def close(self) -> dict:
        self.child.stdin.close()
        self.stats = json.loads(self.child.stdout.readline() or "{}")
        self.child.wait(timeout=30)
        return self.stats


# -- figures --------------------------------------------------------------------------------
def figures(ends: list[float], walls: list[float]) -> dict:
    """Per candidate (ms): gap between consecutive ends minus the later one's evaluator."""
    per = [(b - a - w) * 1000 for a, b, w in zip(ends, ends[1:], walls[1:])]
    if not per:
        return {"candidates": 0}
    return {"candidates": len(per) + 1, "first100_ms": round(statistics.median(per[:100]), 2),
            "last100_ms": round(statistics.median(per[-100:]), 2),
            "median_ms": round(statistics.median(per), 2),
            "mean_ms": round(statistics.mean(per), 2),
            "eval_ms_median": round(statistics.median(walls[1:]) * 1000, 2)}


# -- ours -----------------------------------------------------------------------------------
def solver(root: Path, task_dir: Path, url: str, n: int, stream: bool = True,
           workers: int = 1, evaluators: int = 0):
    from agent.config import RunConfig
    from agent.session import Session
    from agent.solve import Solver
    from agent.task import Task

    task = Task.load(task_dir)
    cfg = RunConfig(task_dir=str(task_dir), models=[f"openai/bench@{url}"], budget=n,
                    workers=workers, evaluators=evaluators, test_at_end=False, seed=0,
                    provider={"stream": stream})
    session = Session.create(root / "sessions", task.name, cfg, task.evaluator.cwd)
    s = Solver(session, task, cfg)
    s.start()
    return s, session


OURS = {"ours": (True, 1, 0), "ours_json": (False, 1, 0),  # streamed, workers, evaluators
        "ours_pipelined": (True, 2, 1), "ours_json_pipelined": (False, 2, 1)}


def run_ours(root: Path, task_dir: Path, name: str, n: int, system: str = "ours",
             rep: int = 0) -> dict:
    stream, workers, evaluators = OURS[system]
    fake = Fake("adrs", n + SPARE_REPLIES, name)
    try:
        s, session = solver(root / f"{system}-{n}-{rep}", task_dir, fake.url, n, stream,
                            workers, evaluators)
        t = time.perf_counter()
        s.run()
        wall = time.perf_counter() - t
        session.close()
    finally:
        stats = fake.close()
    events = [json.loads(line) for line in (session.dir / "events.jsonl").open()]
    scored = [e for e in events if e["type"] == "candidate_scored" and e["episode"] >= 0]
    out = figures([e["t"] for e in scored],
                  [sum(st.get("wall_s", 0.0) for st in e["stages"]) for e in scored])
    # a step's median from the events' times means something only one episode at a time
    return {**out, "wall_s": round(wall, 2), **stats,
            "phases_ms": phases(events) if workers == 1 else {}}


PHASES = [("episode_finished", "episode_started", "between episodes"),
          ("episode_started", "candidate_committed", "start to commit (prompt, worktree, "
           "model call, tools)"),
          ("candidate_committed", "evaluated", "commit to evaluated, evaluator wall excluded"),
          ("evaluated", "candidate_scored", "evaluated to scored"),
          ("candidate_scored", "episode_finished", "scored to episode finished")]


def phases(events: list[dict]) -> dict[str, float]:
    """Median ms of each step of a one-commit episode, from the events' times."""
    out: dict[str, list[float]] = {}
    last: dict[str, dict] = {}
    for e in events:
        if e.get("episode", 0) < 0 and e["type"] != "episode_finished":
            continue
        for a, b, name in PHASES:
            if e["type"] == b and a in last:
                ms = (e["t"] - last[a]["t"]) * 1000
                if b == "evaluated":
                    ms -= e["result"].get("wall_s", 0.0) * 1000
                out.setdefault(name, []).append(ms)
        last[e["type"]] = e
    return {name: round(statistics.median(v[len(v) // 2:]), 2) for name, v in out.items()}


def profile_ours(root: Path, task_dir: Path, name: str, n: int) -> str:
    fake = Fake("adrs", n + SPARE_REPLIES, name)
    try:
        s, session = solver(root / "profile", task_dir, fake.url, n)
        s.scorer.score_commit(s.scorer.baseline, None, -1, 0, "baseline", "baseline")
        prof = cProfile.Profile()  # episodes in this thread (the run's are in workers)
        prof.enable()
        for i in range(n):
            s.episodes_started += 1
            s.episode(i)
        s.scorer.notes.flush()
        prof.disable()
        s._finish(None)
        session.close()
    finally:
        fake.close()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(20)
    return out.getvalue()


# -- OpenEvolve -----------------------------------------------------------------------------
OE_DRIVER = textwrap.dedent('''\
    import asyncio, logging, sys
    from openevolve import OpenEvolve
    from openevolve.config import Config
    url, n, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    cfg = Config.from_dict({
        "max_iterations": n, "log_level": "WARNING", "diff_based_evolution": False,
        "llm": {"api_base": url, "api_key": "not-needed", "retries": 0,
                "models": [{"name": "bench", "weight": 1.0}]},
        "evaluator": {"cascade_evaluation": False, "parallel_evaluations": 1,
                      "max_retries": 0},
    })
    logging.disable(logging.WARNING)
    oe = OpenEvolve(f"{work}/initial_program.py", f"{work}/evaluator.py", config=cfg,
                    output_dir=f"{work}/out")
    asyncio.run(oe.run(iterations=n))
''')

OE_EVALUATOR = textwrap.dedent('''\
    import json, subprocess, time
    PYTHON, SCRIPT, LOG = {python!r}, {script!r}, {log!r}
    def evaluate(program_path):
        t = time.time()
        out = subprocess.run([PYTHON, SCRIPT, "--file", program_path], capture_output=True,
                             text=True, check=True).stdout
        wall = time.time() - t
        score = json.loads(out.strip().splitlines()[-1])["score"]
        with open(LOG, "a") as f:
            f.write(f"{{time.time()}} {{wall}}\\n")
        return {{"combined_score": score, "score": score}}
''')


def openevolve_python(venv: Path, install: bool) -> Path | None:
    python = venv / "bin" / "python"
    if python.is_file() and subprocess.run([python, "-c", "import openevolve"],
                                           capture_output=True).returncode == 0:
        return python
    if not install:
        return None
    print(f"installing {OPENEVOLVE} into {venv} ...", flush=True)
    ok = subprocess.run([sys.executable, "-m", "venv", str(venv)]).returncode == 0 and \
        subprocess.run([python, "-m", "pip", "install", "-q", OPENEVOLVE]).returncode == 0
    return python if ok else None


def run_openevolve(root: Path, task_dir: Path, python: Path, name: str, n: int,
                   rep: int = 0) -> dict:
    work = root / f"oe-{n}-{rep}"
    work.mkdir()
    log = work / "evals.log"
    (work / "initial_program.py").write_text(program(name, 0))
    (work / "evaluator.py").write_text(OE_EVALUATOR.format(
        python=sys.executable, script=str(task_dir / "evaluator" / "evaluate.py"), log=str(log)))
    (work / "driver.py").write_text(OE_DRIVER)
    fake = Fake("openevolve", n + SPARE_REPLIES, name)
    try:
        t = time.perf_counter()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        proc = subprocess.run([python, str(work / "driver.py"), fake.url, str(n), str(work)],
                              capture_output=True, text=True, env=env, cwd=work)
        wall = time.perf_counter() - t
    finally:
        stats = fake.close()
    if proc.returncode:
        raise RuntimeError(f"OpenEvolve failed:\n{proc.stderr[-3000:]}")
    rows = [line.split() for line in log.read_text().splitlines()]
    ends, walls = [float(a) for a, _ in rows], [float(b) for _, b in rows]
    return {**figures(ends, walls), "wall_s": round(wall, 2), **stats}


def python_start_ms(argv: list[str], runs: int = 20) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([*argv, "-c", "pass"], check=True)
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 1)


# -- main -----------------------------------------------------------------------------------
def show(name: str, program_name: str, n: int, f: dict) -> None:
    print(f"{name:19s} {program_name:11s} {n:5d} candidates: first 100 {f['first100_ms']:6.1f} ms"
          f"   last 100 {f['last100_ms']:6.1f} ms   median {f['median_ms']:6.1f} ms   (evaluator "
          f"{f['eval_ms_median']:.1f} ms, {f['wall_s']:.0f} s in all, {f.get('requests')} "
          f"requests over {f.get('connections')} connections)", flush=True)
    for phase, ms in f.get("phases_ms", {}).items():
        print(f"    {ms:6.1f} ms  {phase} (median, second half)")


def middle(runs: list[dict]) -> dict:
    """Of repeated runs, the one with the median per-candidate median (the lower middle)."""
    return sorted(runs, key=lambda f: f["median_ms"])[(len(runs) - 1) // 2]


def summarize(result: dict, sizes: list[int]) -> dict:
    """The headline figures of one program's runs."""
    out: dict = {}
    for n in map(str, sizes):
        theirs = result.get("openevolve", {}).get(n)
        if theirs:
            out[f"openevolve_ms_median_{n}"] = theirs["median_ms"]
            out[f"openevolve_ms_last100_{n}"] = theirs["last100_ms"]
        for system in [s for s in OURS if s in result]:
            ours, tail = result[system][n], system.removeprefix("ours")  # "", "_json_pipelined"
            out[f"{system}_ms_median_{n}"] = ours["median_ms"]
            out[f"{system}_ms_last100_{n}"] = ours["last100_ms"]
            if theirs:
                out[f"ratio{tail}_median_{n}"] = round(ours["median_ms"] / theirs["median_ms"], 3)
    big, small = str(max(sizes)), str(min(sizes))
    if big != small:
        for system in [s for s in OURS if s in result]:
            out[f"{system}_flatness_last100_vs_first100"] = round(
                result[system][big]["last100_ms"] / result[system][big]["first100_ms"], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 1000])
    ap.add_argument("--programs", nargs="+", choices=list(PROGRAMS), default=list(PROGRAMS))
    ap.add_argument("--repeat", type=int, default=1, metavar="R",
                    help="run each size R times (the order alternating) and report, per system, "
                         "the run with the median figure (this machine's noise is large)")
    ap.add_argument("--systems", nargs="+", choices=list(OURS), default=list(OURS),
                    help="which of ours to run (default: all four)")
    ap.add_argument("--no-openevolve", action="store_true")
    ap.add_argument("--no-install", action="store_true", help="do not pip install OpenEvolve")
    ap.add_argument("--openevolve-venv", type=Path, default=DEFAULT_VENV)
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="cProfile N candidates of ours (the first program) and print the top "
                         "functions")
    ap.add_argument("--serve", choices=["adrs", "openevolve"], help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.serve, args.n, args.programs[0])
    warnings.simplefilter("ignore")
    for var in [v for v in os.environ if v.startswith("OPENAI_")]:
        del os.environ[var]
    python = None if args.no_openevolve else openevolve_python(args.openevolve_venv,
                                                                not args.no_install)
    if not args.no_openevolve and python is None:
        print(f"OpenEvolve: not available ({OPENEVOLVE} could not be installed); ours only")
    startup = {flags: python_start_ms([sys.executable, *flags.split()]) for flags in ("", "-S")}
    print(f"evaluator interpreter start-up: {startup['']:.1f} ms ({startup['-S']:.1f} ms "
          "without site and its .pth files)")
    results: dict = {}
    summary: dict = {}
    with tempfile.TemporaryDirectory(prefix="adrs-llm-path-") as tmp:
        for name in args.programs:
            root = Path(tmp) / name
            root.mkdir()
            task_dir = bench_task(root, EVALUATOR)
            (task_dir / "repo" / "pkg" / "policy.py").write_text(program(name, 0))
            every: dict = {}
            for rep in range(args.repeat):
                for i, n in enumerate(args.sizes):
                    runs = [(system, partial(run_ours, root, task_dir, name, n, system, rep))
                            for system in args.systems]
                    if python is not None:
                        runs.append(("openevolve", partial(run_openevolve, root, task_dir,
                                                           python, name, n, rep)))
                    for system, fn in (runs if (i + rep) % 2 == 0 else runs[::-1]):  # ABBA
                        f = fn()
                        every.setdefault(system, {}).setdefault(str(n), []).append(f)
                        show(system, name, n, f)
            result = {system: {n: middle(runs) for n, runs in by_size.items()}
                      for system, by_size in every.items()}
            results[name] = result
            summary.update({_key(key, name): value
                            for key, value in summarize(result, args.sizes).items()})
        if args.profile:
            name = args.programs[0]
            print(f"--- cProfile of ours, {name}, {args.profile} candidates ---")
            print(profile_ours(Path(tmp) / name, Path(tmp) / name / "task", name, args.profile))
    summary["python_start_ms"], summary["python_start_no_site_ms"] = startup[""], startup["-S"]
    print(json.dumps({**summary, "runs": results}))


def _key(key: str, program_name: str) -> str:
    """ratio_json_median_200 -> ratio_json_median_bin-packing_200 (the size stays last)."""
    head, _, size = key.rpartition("_")
    return f"{head}_{program_name}_{size}" if size.isdigit() else f"{key}_{program_name}"


if __name__ == "__main__":
    main()
