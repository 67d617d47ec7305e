#!/usr/bin/env python3
"""Sealed evaluator for the transaction-scheduling task.

Usage: python evaluate.py --stage {quick,full,test,leaderboard} --candidate WORKTREE
                          [--data DIR] [--time-limit-s S]

The candidate's ``scheduler.py`` runs in a child process (child.py). Only the orders it
returns are used: each must be a permutation of all transactions, and every makespan is
recomputed here with the evaluator's own simulator on its own copy of the workloads.
An instance that raises, times out or is cut off by the time limit scores 0.
Prints ONE JSON object as the last stdout line.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "runtime"))

from generate import GENERATORS  # noqa: E402
from txn_simulator import Workload  # noqa: E402

SHIFT = 0.10  # effective optimum = L + SHIFT * (B - L), as published
NUM_SEQS = 10  # the published harness passes num_seqs=10
LEADERBOARD_TIME_LIMIT_S = 600.0  # the published submission_spec timeout
DEFAULT_TIME_LIMIT_S = 60.0
PUBLISHED = ["workload_1", "workload_2", "workload_3"]

# (name, generator, n_txns, seed); "workload_k" = the shipped published workload k.
STAGES = {
    "quick": [("workload_3", None, 100, 0), ("hotspot_q1", "hotspot", 100, 11),
              ("ycsb_q1", "ycsb", 40, 12)],
    "full": [("workload_1", None, 100, 0), ("workload_2", None, 100, 0),
             ("workload_3", None, 100, 0), ("ycsb_f1", "ycsb", 100, 101),
             ("hotspot_f1", "hotspot", 100, 103), ("pipeline_f1", "pipeline", 100, 104)],
    # Held out: seeds the agent never sees (this folder is sealed).
    "test": [("ycsb_t1", "ycsb", 100, 880_301), ("ycsb_t2", "ycsb", 80, 880_302),
             ("hotspot_t1", "hotspot", 100, 880_304), ("pipeline_t1", "pipeline", 100, 880_305)],
}
INSTANCE_SEED_BASE = 7_000  # random.seed / np.random.seed before instance i: base + i


def _emit(result: dict) -> None:
    sys.stdout.flush()
    print(json.dumps(result), flush=True)


def _invalid(reason: str, metrics: dict | None = None, artifacts: dict | None = None) -> dict:
    return {"score": 0.0, "valid": False, "metrics": metrics or {},
            "feedback": "INVALID: " + reason, "artifacts": artifacts or {}}


def published_dir(data: str | None) -> Path:
    if data:
        d = Path(data)
        if all((d / f"{p}.json").is_file() for p in PUBLISHED):
            return d
        raise FileNotFoundError(f"--data {data}: needs {', '.join(p + '.json' for p in PUBLISHED)}")
    return HERE / "runtime" / "data"


def stage_workloads(stage: str, data: str | None) -> list[tuple[str, str]]:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; use one of {sorted(STAGES) + ['leaderboard']}")
    out = []
    for name, gen, n, seed in STAGES[stage]:
        if gen is None:
            out.append((name, (published_dir(data) / f"{name}.json").read_text()))
        else:
            out.append((name, GENERATORS[gen](n, seed)))
    return out


def check_order(order, n: int) -> str | None:
    """None if ``order`` is a permutation of range(n), else what is wrong."""
    if not isinstance(order, list):
        return f"expected a list of {n} transaction indices, got {type(order).__name__}"
    if len(order) != n:
        return f"has {len(order)} entries, expected {n} (every transaction exactly once)"
    seen = set()
    for pos, t in enumerate(order):
        if not isinstance(t, int) or isinstance(t, bool):
            return f"entry {pos} is {t!r}, not an int"
        if not 0 <= t < n:
            return f"entry {pos} is {t}, outside 0..{n - 1}"
        if t in seen:
            return f"transaction {t} appears twice (second time at position {pos})"
        seen.add(t)
    return None


def run_child(candidate: str, job: dict, time_limit: float, env_extra: dict | None = None):
    """Run child.py; return (messages, timed_out, seconds, stderr tail)."""
    with tempfile.TemporaryDirectory(prefix="txn-eval-") as tmp:
        job_path = Path(tmp) / "job.json"
        job_path.write_text(json.dumps(job))
        err_path = Path(tmp) / "stderr.txt"
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", **(env_extra or {}))
        t0 = time.perf_counter()
        with open(err_path, "wb") as err:
            proc = subprocess.Popen([sys.executable, str(HERE / "child.py"), candidate, str(job_path)],
                                    stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                    cwd=tmp, env=env, start_new_session=True, text=True)
            lines: queue.Queue = queue.Queue()

            def pump():
                for line in proc.stdout:
                    lines.put(line)
                lines.put(None)

            threading.Thread(target=pump, daemon=True).start()
            messages, timed_out = [], False
            deadline = t0 + time_limit
            while True:
                left = deadline - time.perf_counter()
                try:
                    line = lines.get(timeout=max(left, 0.0)) if left > 0 else None
                except queue.Empty:
                    line = None
                if line is None:
                    timed_out = time.perf_counter() >= deadline
                    break
                try:
                    messages.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # not a protocol line
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        seconds = time.perf_counter() - t0
        tail = err_path.read_text(errors="replace")[-1500:]
    return messages, timed_out, seconds, tail


def anchors(w: Workload) -> tuple[int, int, float]:
    """(B sequential makespan, L longest transaction, E effective optimum)."""
    b = w.get_opt_seq_cost(list(range(w.num_txns)))
    lb = max((t[0][3] for t in w.txns if t), default=0)
    return b, lb, lb + SHIFT * (b - lb)


def clamp_score(b: float, e: float, m: float) -> float:
    if m >= b:
        return 0.0
    return max(0.0, min(100.0, 100.0 * (b - m) / (b - e)))


def evaluate_stage(stage: str, candidate: str, data: str | None, time_limit: float) -> dict:
    workloads = stage_workloads(stage, data)
    job = {"mode": "instances", "workloads": [w for _, w in workloads],
           "seeds": [INSTANCE_SEED_BASE + i for i in range(len(workloads))], "num_seqs": NUM_SEQS}
    messages, timed_out, seconds, tail = run_child(candidate, job, time_limit)
    if messages and "import_error" in messages[0]:
        return _invalid(f"importing scheduler.py failed: {messages[0]['import_error']}\n"
                        f"{messages[0].get('tb', '')}")
    if not messages:
        why = f"timed out after {time_limit:.0f}s" if timed_out else "exited without a result"
        return _invalid(f"the scheduler process {why} before importing scheduler.py.\n{tail}")
    results = {m["i"]: m for m in messages if isinstance(m.get("i"), int)}
    metrics: dict[str, float] = {}
    rows, notes, scores = [], [], []
    tot_m = tot_b = 0
    for i, (name, data_json) in enumerate(workloads):
        w = Workload(data_json)
        b, lb, e = anchors(w)
        msg = results.get(i)
        if msg is None or "error" in msg:
            why = ("timed out (time limit %.0fs for the stage)" % time_limit if timed_out
                   else "process ended early") if msg is None else msg["error"]
            notes.append(f"{name}: scored 0 because it {why}" if msg is None
                         else f"{name}: scored 0, get_best_schedule raised {why}\n{msg.get('tb', '')}")
            m, s, t = b, 0.0, (msg or {}).get("t", float("nan"))
        elif "invalid" in msg:
            return _invalid(f"workload {name}: {msg['invalid']}.", metrics=metrics)
        else:
            problem = check_order(msg["order"], w.num_txns)
            if problem:
                return _invalid(f"workload {name}: the schedule {problem}.", metrics=metrics)
            m = w.get_opt_seq_cost(msg["order"])
            s, t = clamp_score(b, e, m), msg["t"]
        scores.append(s)
        tot_m += m
        tot_b += b
        metrics[f"{name}_makespan"] = m
        metrics[f"{name}_score"] = round(s, 4)
        rows.append(f"{name:<14}{w.num_txns:>5}{b:>8}{lb:>5}{e:>8.1f}{m:>9}{s:>8.2f}{t:>8.2f}")
    score = sum(scores) / len(scores)
    failed = len(notes)
    metrics.update(total_makespan=tot_m, total_sequential=tot_b, n_instances=len(workloads),
                   n_failed=failed, time_s=round(seconds, 3), time_limit_s=time_limit)
    feedback = (f"stage {stage}: score {score:.4f} = mean over {len(workloads)} workloads of "
                f"clamp(100 (B - M) / (B - E)), B sequential makespan, E = L + 0.1 (B - L), "
                f"L longest transaction, M your recomputed makespan. Total makespan {tot_m} "
                f"(sequential {tot_b}). Time {seconds:.2f}s of a {time_limit:.0f}s limit "
                f"(import included; unfinished workloads score 0).")
    if notes:
        feedback += "\n" + "\n".join(notes)
    table = "workload      txns       B    L       E        M   score  time_s\n" + "\n".join(rows)
    return {"score": score, "valid": True, "metrics": metrics, "feedback": feedback,
            "artifacts": {"workloads": table, "stderr_tail": tail}}


def evaluate_leaderboard(candidate: str, data: str | None) -> dict:
    """The published leaderboard score: get_random_costs() on the three published workloads."""
    d = published_dir(data)
    ws = [Workload((d / f"{p}.json").read_text()) for p in PUBLISHED]
    anch = [anchors(w) for w in ws]
    b, lb = sum(a[0] for a in anch), sum(a[1] for a in anch)
    e = lb + SHIFT * (b - lb)
    messages, timed_out, seconds, tail = run_child(
        candidate, {"mode": "published"}, LEADERBOARD_TIME_LIMIT_S, {"TXN_WORKLOADS_DIR": str(d)})
    if messages and "import_error" in messages[0]:
        return _invalid(f"importing scheduler.py failed: {messages[0]['import_error']}")
    res = next((m for m in messages if m.get("i") == "published"), None)
    if res is None:
        why = f"timed out after {LEADERBOARD_TIME_LIMIT_S:.0f}s" if timed_out else "ended early"
        return _invalid(f"get_random_costs() {why}.\n{tail}")
    if "invalid" in res:
        return _invalid(res["invalid"])
    if "error" in res:
        return _invalid(f"get_random_costs() raised {res['error']}\n{res.get('tb', '')}")
    orders = res["orders"]
    if len(orders) != len(ws):
        return _invalid(f"get_random_costs() returned {len(orders)} schedules, expected {len(ws)} "
                        "(one per published workload)")
    makespans = []
    for k, (w, order) in enumerate(zip(ws, orders), start=1):
        problem = check_order(order, w.num_txns)
        if problem:
            return _invalid(f"schedule for workload {k}: {problem}.")
        makespans.append(w.get_opt_seq_cost(order))
    m = sum(makespans)
    score = clamp_score(b, e, m)
    metrics = {"makespan": m, "baseline_makespan": b, "optimal_makespan": lb,
               "effective_optimal": round(e, 4), "time_s": round(seconds, 3),
               **{f"workload_{k}_makespan": x for k, x in enumerate(makespans, start=1)}}
    feedback = (f"leaderboard: score {score:.4f} = clamp(100 ({b} - {m}) / ({b} - {e:.1f})); "
                f"recomputed makespans {makespans} (the program reported {res['reported']}, not used). "
                f"Time {seconds:.2f}s of {LEADERBOARD_TIME_LIMIT_S:.0f}s.")
    return {"score": score, "valid": True, "metrics": metrics, "feedback": feedback,
            "artifacts": {"stderr_tail": tail}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stage", required=True)
    ap.add_argument("--candidate", required=True)
    ap.add_argument("--data", default="")
    ap.add_argument("--time-limit-s", type=float, default=DEFAULT_TIME_LIMIT_S)
    args = ap.parse_args(argv)
    data = args.data or os.environ.get("ADRS_DATA") or None
    cand = str(Path(args.candidate).resolve())
    try:
        if not (Path(cand) / "scheduler.py").is_file():
            result = _invalid(f"no scheduler.py in {cand}")
        elif args.stage == "leaderboard":
            result = evaluate_leaderboard(cand, data)
        else:
            result = evaluate_stage(args.stage, cand, data, args.time_limit_s)
    except (ValueError, FileNotFoundError) as exc:
        result = _invalid(str(exc))
    _emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
