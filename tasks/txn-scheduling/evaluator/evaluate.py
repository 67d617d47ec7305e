#!/usr/bin/env python3
"""Sealed evaluator for the transaction-scheduling task.

Usage: python evaluate.py --stage {quick,full,test,leaderboard} --candidate WORKTREE
                          [--data DIR] [--time-limit-s S]

The candidate's ``scheduler.py`` runs in a jailed process of its own (jail/side.py), which
gets the candidate API (a copy of the simulator, workloads.py and the published workloads)
as its job folder. Only the orders it returns are used: each must be a permutation of all
transactions, and every makespan is recomputed here with the evaluator's own simulator
(runtime/) on its own copy of the workloads. An instance that raises, times out or is cut
off by the time limit scores 0. The result goes to the harness with ``adrs_eval.emit``.
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "runtime"))

from generate import GENERATORS  # noqa: E402
from txn_simulator import Workload  # noqa: E402

from adrs_eval import invalid, result  # noqa: E402
from adrs_eval.candidate import CandidateError, CandidateExited, CandidateTimeout, start  # noqa: E402
from adrs_eval.cli import Args, parser, run  # noqa: E402

SIDE = HERE / "jail" / "side.py"
API_FILES = ("txn_simulator.py", "workloads.py")  # what the candidate side may import
TEXT_CHARS = 1500  # most characters of candidate-sent text quoted in feedback

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


def published_dir(data: Path | None) -> Path:
    if data:
        d = data
        if all((d / f"{p}.json").is_file() for p in PUBLISHED):
            return d
        raise FileNotFoundError(f"--data {data}: needs {', '.join(p + '.json' for p in PUBLISHED)}")
    return HERE / "runtime" / "data"


def stage_workloads(stage: str, data: Path | None) -> list[tuple[str, str]]:
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


def api_folder(tmp: Path, data: Path) -> Path:
    """The job folder the candidate side sees: the simulator, workloads.py and `data`'s
    published workloads (all public; nothing else of this folder)."""
    api = tmp / "api"
    (api / "data").mkdir(parents=True)
    for name in API_FILES:
        shutil.copyfile(HERE / "runtime" / name, api / name)
    for p in PUBLISHED:
        shutil.copyfile(data / f"{p}.json", api / "data" / f"{p}.json")
    return api


def text(value, limit: int = TEXT_CHARS) -> str:
    """Candidate-sent text, bounded."""
    return str(value)[:limit]


def seconds_of(msg: dict) -> float:
    t = msg.get("t")
    ok = isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t)
    return float(t) if ok else float("nan")


def run_child(candidate: str, job: dict, time_limit: float, data: Path):
    """Run the candidate side on `job`; return (messages, timed_out, seconds, stderr tail).

    messages[0] is the import report, then one message per instance in order; reading stops
    at the time limit, when the process ends, or at the first message out of order.
    """
    t0 = time.perf_counter()
    deadline = t0 + time_limit
    messages, timed_out, error = [], False, ""
    with tempfile.TemporaryDirectory(prefix="txn-eval-") as tmp:
        cand = start(candidate, SIDE, job=api_folder(Path(tmp), data))
        try:
            messages.append(cand.recv(timeout=max(0.0, deadline - time.perf_counter())))
            if isinstance(messages[0], dict) and "imported" in messages[0]:
                cand.send(job, timeout=max(0.0, deadline - time.perf_counter()))
                expected = ["published"] if job["mode"] == "published" else \
                    list(range(len(job["workloads"])))
                for i in expected:
                    msg = cand.recv(timeout=max(0.0, deadline - time.perf_counter()))
                    if not isinstance(msg, dict) or msg.get("i") != i:
                        break  # not the next instance's result: the rest score 0
                    messages.append(msg)
        except CandidateTimeout:
            timed_out = True
        except CandidateExited:
            pass  # it ended: what it sent before counts
        except CandidateError as exc:  # a line that is not a message: what came before counts
            error = f"{exc}\n"
        finally:
            cand.close()
        tail = error + cand.stderr_tail(TEXT_CHARS)
    return messages, timed_out, time.perf_counter() - t0, tail


def import_failure(first) -> str | None:
    """The feedback when the candidate side did not import scheduler.py, else None."""
    if isinstance(first, dict) and "imported" in first:
        return None
    if isinstance(first, dict) and "import_error" in first:
        return (f"importing scheduler.py failed: {text(first['import_error'])}\n"
                f"{text(first.get('tb', ''))}")
    return f"the scheduler process sent {text(first, 200)!r} instead of its import report"


def anchors(w: Workload) -> tuple[int, int, float]:
    """(B sequential makespan, L longest transaction, E effective optimum)."""
    b = w.get_opt_seq_cost(list(range(w.num_txns)))
    lb = max((t[0][3] for t in w.txns if t), default=0)
    return b, lb, lb + SHIFT * (b - lb)


def clamp_score(b: float, e: float, m: float) -> float:
    if m >= b:
        return 0.0
    return max(0.0, min(100.0, 100.0 * (b - m) / (b - e)))


def evaluate_stage(stage: str, candidate: str, data: Path | None, time_limit: float) -> dict:
    workloads = stage_workloads(stage, data)
    job = {"mode": "instances", "workloads": [w for _, w in workloads],
           "seeds": [INSTANCE_SEED_BASE + i for i in range(len(workloads))], "num_seqs": NUM_SEQS}
    messages, timed_out, seconds, tail = run_child(candidate, job, time_limit,
                                                   published_dir(data))
    if not messages:
        why = f"timed out after {time_limit:.0f}s" if timed_out else "exited without a result"
        return invalid(f"the scheduler process {why} before importing scheduler.py.\n{tail}")
    failure = import_failure(messages[0])
    if failure:
        return invalid(failure)
    results = {m["i"]: m for m in messages[1:]}
    metrics: dict[str, float] = {}
    rows, notes, scores = [], [], {}
    tot_m = tot_b = 0
    for i, (name, data_json) in enumerate(workloads):
        w = Workload(data_json)
        b, lb, e = anchors(w)
        msg = results.get(i)
        if msg is None or "error" in msg:
            why = (f"timed out (time limit {time_limit:.0f}s for the stage)" if timed_out
                   else "process ended early") if msg is None else text(msg["error"])
            notes.append(f"{name}: scored 0 because it {why}" if msg is None
                         else f"{name}: scored 0, get_best_schedule raised {why}\n"
                              f"{text(msg.get('tb', ''))}")
            m, s, t = b, 0.0, seconds_of(msg or {})
        elif "invalid" in msg:
            return invalid(f"workload {name}: {text(msg['invalid'])}.", metrics=metrics)
        else:
            problem = check_order(msg.get("order"), w.num_txns)
            if problem:
                return invalid(f"workload {name}: the schedule {problem}.", metrics=metrics)
            m = w.get_opt_seq_cost(msg["order"])
            s, t = clamp_score(b, e, m), seconds_of(msg)
        scores[name] = s
        tot_m += m
        tot_b += b
        metrics[f"{name}_makespan"] = m
        metrics[f"{name}_score"] = round(s, 4)
        rows.append(f"{name:<14}{w.num_txns:>5}{b:>8}{lb:>5}{e:>8.1f}{m:>9}{s:>8.2f}{t:>8.2f}")
    score = sum(scores.values()) / len(scores)
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
    return result(score, metrics=metrics, feedback=feedback,
                  artifacts={"workloads": table, "stderr_tail": tail}, instances=scores)


def evaluate_leaderboard(candidate: str, data: Path | None) -> dict:
    """The published leaderboard score: get_random_costs() on the three published workloads."""
    d = published_dir(data)
    ws = [Workload((d / f"{p}.json").read_text()) for p in PUBLISHED]
    anch = [anchors(w) for w in ws]
    b, lb = sum(a[0] for a in anch), sum(a[1] for a in anch)
    e = lb + SHIFT * (b - lb)
    messages, timed_out, seconds, tail = run_child(
        candidate, {"mode": "published"}, LEADERBOARD_TIME_LIMIT_S, d)
    failure = import_failure(messages[0]) if messages else None
    if failure:
        return invalid(failure)
    res = messages[1] if len(messages) > 1 else None
    if res is None:
        why = f"timed out after {LEADERBOARD_TIME_LIMIT_S:.0f}s" if timed_out else "ended early"
        return invalid(f"get_random_costs() {why}.\n{tail}")
    if "invalid" in res:
        return invalid(text(res["invalid"]))
    if "error" in res:
        return invalid(f"get_random_costs() raised {text(res['error'])}\n{text(res.get('tb', ''))}")
    orders = res.get("orders")
    if not isinstance(orders, list) or len(orders) != len(ws):
        count = len(orders) if isinstance(orders, list) else "no list of"
        return invalid(f"get_random_costs() returned {count} schedules, expected {len(ws)} "
                       "(one per published workload)")
    makespans = []
    for k, (w, order) in enumerate(zip(ws, orders), start=1):
        problem = check_order(order, w.num_txns)
        if problem:
            return invalid(f"schedule for workload {k}: {problem}.")
        makespans.append(w.get_opt_seq_cost(order))
    m = sum(makespans)
    score = clamp_score(b, e, m)
    # each workload's share of the published score (its saving over sequential, on the
    # score's scale): they sum to the score before it is clamped to [0, 100]
    shares = {p: 100.0 * (a[0] - x) / (b - e) for p, a, x in zip(PUBLISHED, anch, makespans)}
    metrics = {"makespan": m, "baseline_makespan": b, "optimal_makespan": lb,
               "effective_optimal": round(e, 4), "time_s": round(seconds, 3),
               **{f"workload_{k}_makespan": x for k, x in enumerate(makespans, start=1)}}
    feedback = (f"leaderboard: score {score:.4f} = clamp(100 ({b} - {m}) / ({b} - {e:.1f})); "
                f"recomputed makespans {makespans} (the program reported "
                f"{text(res.get('reported'), 50)}, not used). "
                f"Time {seconds:.2f}s of {LEADERBOARD_TIME_LIMIT_S:.0f}s.")
    return result(score, metrics=metrics, feedback=feedback, artifacts={"stderr_tail": tail},
                  instances=shares)


def evaluate(args: Args) -> dict:
    cand = str(args.candidate)
    if not (args.candidate / "scheduler.py").is_file():
        return invalid(f"no scheduler.py in {cand}")
    if args.stage == "leaderboard":
        return evaluate_leaderboard(cand, args.data)
    return evaluate_stage(args.stage, cand, args.data, args.time_limit_s)


if __name__ == "__main__":
    # A bad stage name, a --data folder without the published workloads, or a candidate
    # process that cannot start is the result's own message, not an evaluator error.
    sys.exit(run(evaluate, parser=parser(__doc__, time_limit_s=DEFAULT_TIME_LIMIT_S),
                 expected=(ValueError, FileNotFoundError, CandidateError)))
