#!/usr/bin/env python3
"""Sealed evaluator for the PRISM model-placement task.

Usage: python evaluate.py --stage {quick,full,test,leaderboard} --candidate WORKTREE
                          [--time-limit-s S] [--case-timeout-s S]

The candidate's ``placement.py`` runs in a child process (child.py) on fresh Model objects;
only the placement it returns (which object on which GPU) is used. Validity (GPU ids in
range(gpu_num), every model exactly once, memory) and every KVPR are computed here from the
evaluator's own case data. A case that raises or runs past its timeout scores 0 (it is
never dropped). Prints ONE JSON object as the last stdout line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
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
sys.path.insert(0, str(HERE))

from cases import GPU_MEM_SIZE, Case, exact_optimum, generate, lower_bound, max_kvpr, round_robin  # noqa: E402

CASE_TIMEOUT_S = 10.0  # per case, as published
DEFAULT_TIME_LIMIT_S = 120.0  # whole stage, import included
OPTIMA = HERE / "optima.json"


def stage_cases(stage: str) -> list[Case]:
    if stage == "quick":
        return generate(1, 10)
    if stage == "full":
        return generate(2, 50)
    if stage == "test":  # held out: seeds the agent never sees; 10 heavier cases
        return generate(550_011, 40) + generate(550_012, 10, gpus=(8, 12), size=(10, 36))
    if stage == "leaderboard":  # exactly the published cases (np.random.seed(42))
        return generate(42, 50)
    raise ValueError(f"unknown stage {stage!r}; use quick, full, test or leaderboard")


def fingerprint(cases: list[Case]) -> str:
    return hashlib.sha256(repr(cases).encode()).hexdigest()[:16]


def optima(stage: str, cases: list[Case]) -> tuple[list[float], list[bool]]:
    """Exact optimum per case: from optima.json when it matches these cases, else computed."""
    if OPTIMA.is_file():
        cache = json.loads(OPTIMA.read_text()).get(stage)
        if cache and cache["fingerprint"] == fingerprint(cases):
            return cache["optimum"], cache["proven"]
    vals, proven = [], []
    for c in cases:
        v, p = exact_optimum(c, round_robin(c) if max_kvpr(c, round_robin(c)) < 1e5 else
                             _first_fit(c))
        vals.append(v)
        proven.append(p)
    return vals, proven


def _first_fit(c: Case) -> list[list[int]]:
    free = [GPU_MEM_SIZE] * c.gpu_num
    groups: list[list[int]] = [[] for _ in range(c.gpu_num)]
    for i in sorted(range(len(c.sizes)), key=lambda i: -c.sizes[i]):
        g = max(range(c.gpu_num), key=lambda g: free[g])
        groups[g].append(i)
        free[g] -= c.sizes[i]
    return groups


def _emit(result: dict) -> None:
    sys.stdout.flush()
    print(json.dumps(result), flush=True)


def _invalid(reason: str, metrics: dict | None = None) -> dict:
    return {"score": 0.0, "valid": False, "metrics": metrics or {},
            "feedback": "INVALID: " + reason, "artifacts": {}}


def run_cases(candidate: str, cases: list[Case], time_limit: float, case_timeout: float):
    """Run every case in child processes; a case past its timeout kills the child, which
    restarts after it. Returns (results by case index, import error or None, seconds, tail)."""
    payload = [[c.gpu_num, list(c.sizes), list(c.rates), list(c.slos)] for c in cases]
    results: dict[int, dict] = {}
    t0 = time.perf_counter()
    stage_deadline = t0 + time_limit
    tail = ""
    start = 0
    with tempfile.TemporaryDirectory(prefix="prism-eval-") as tmp:
        while start < len(cases):
            job = Path(tmp) / "job.json"
            job.write_text(json.dumps({"cases": payload, "start": start}))
            err_path = Path(tmp) / "stderr.txt"
            with open(err_path, "wb") as err:
                proc = subprocess.Popen(
                    [sys.executable, str(HERE / "child.py"), candidate, str(job)],
                    stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, cwd=tmp,
                    env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"), start_new_session=True,
                    text=True)
                lines: queue.Queue = queue.Queue()

                def pump(p=proc, q=lines):
                    for line in p.stdout:
                        q.put(line)
                    q.put(None)

                threading.Thread(target=pump, daemon=True).start()
                current, case_deadline, next_start = None, None, len(cases)
                while True:
                    deadline = min(stage_deadline, case_deadline or stage_deadline)
                    left = deadline - time.perf_counter()
                    try:
                        line = lines.get(timeout=left) if left > 0 else None
                    except queue.Empty:
                        line = None
                    if line is None:
                        now = time.perf_counter()
                        if current is not None and current not in results:
                            if now >= stage_deadline:
                                why = f"the stage time limit ({time_limit:.0f}s) ran out"
                                next_start = len(cases)
                            elif case_deadline is not None and now >= case_deadline:
                                why = f"timed out after {case_timeout:.0f}s"
                                next_start = current + 1
                            else:
                                why = "the process ended during this case"
                                next_start = current + 1
                            results[current] = {"error": why}
                        elif now >= stage_deadline or current is None:
                            next_start = len(cases)
                        else:  # ended between cases: go on after the last one
                            next_start = current + 1
                        break
                    try:
                        msg = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if "import_error" in msg:
                        proc.kill()
                        proc.wait()
                        return results, msg["import_error"] + "\n" + msg.get("tb", ""), \
                            time.perf_counter() - t0, ""
                    if "start" in msg and isinstance(msg["start"], int):
                        current, case_deadline = msg["start"], time.perf_counter() + case_timeout
                    elif isinstance(msg.get("i"), int) and msg["i"] == current:
                        results[current] = msg
                        case_deadline = None
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            tail = err_path.read_text(errors="replace")[-1500:]
            if current is None and next_start == len(cases) and not results:
                return results, f"the process ended before importing placement.py\n{tail}", \
                    time.perf_counter() - t0, tail
            start = max(next_start, start + 1) if next_start < len(cases) else len(cases)
            if time.perf_counter() >= stage_deadline:
                break
    return results, None, time.perf_counter() - t0, tail


def check_groups(case: Case, groups) -> str | None:
    """None if the placement is valid, else what is wrong."""
    n = len(case.sizes)
    seen_gpu, owner = set(), {}
    for gid, idx in groups:
        if not 0 <= gid < case.gpu_num:
            return f"GPU id {gid} is outside range({case.gpu_num}) (only {case.gpu_num} GPUs exist)"
        if gid in seen_gpu:
            return f"GPU id {gid} appears twice"
        seen_gpu.add(gid)
        for j in idx:
            if j in owner:
                return (f"model_{j} is placed twice (GPU {owner[j]} and GPU {gid})" if owner[j] != gid
                        else f"model_{j} is listed twice on GPU {gid}")
            owner[j] = gid
        used = sum(case.sizes[j] for j in idx)
        if used > GPU_MEM_SIZE:
            return f"GPU {gid} holds {used} GB of models > {GPU_MEM_SIZE} GB"
    missing = [j for j in range(n) if j not in owner]
    if missing:
        return f"{len(missing)} of {n} models are not placed (e.g. model_{missing[0]})"
    return None


def sqrt_score(base: float, anchor: float, sol: float) -> float:
    if base > anchor:
        return 100.0 * math.sqrt(max(0.0, min(1.0, (base - sol) / (base - anchor))))
    return 100.0 if sol <= anchor else 0.0


def evaluate(stage: str, candidate: str, time_limit: float, case_timeout: float) -> dict:
    cases = stage_cases(stage)
    results, import_error, seconds, tail = run_cases(candidate, cases, time_limit, case_timeout)
    if import_error:
        return _invalid(f"importing placement.py failed: {import_error}")
    opt, proven = optima(stage, cases)
    scores, vs_opt, sols, notes, rows = [], [], [], [], []
    for i, c in enumerate(cases):
        base, lb = max_kvpr(c, round_robin(c)), lower_bound(c)
        msg = results.get(i, {"error": "not run (stage time limit)"})
        if "invalid" in msg:
            return _invalid(f"case {i} ({c.gpu_num} GPUs, {len(c.sizes)} models): {msg['invalid']}")
        if "error" in msg:
            notes.append(f"case {i}: scored 0: {msg['error']}")
            s = so = 0.0
            sol = float("nan")
        else:
            problem = check_groups(c, msg["groups"])
            if problem:
                return _invalid(f"case {i} ({c.gpu_num} GPUs, {len(c.sizes)} models): {problem}")
            full = [[] for _ in range(c.gpu_num)]
            for gid, idx in msg["groups"]:
                full[gid] = idx
            sol = max_kvpr(c, full)
            s, so = sqrt_score(base, lb, sol), sqrt_score(base, opt[i], sol)
            sols.append(sol)
        scores.append(s)
        vs_opt.append(so)
        rows.append(f"{i:>4}{c.gpu_num:>5}{len(c.sizes):>7}{base:>10.5f}{lb:>10.5f}{opt[i]:>10.5f}"
                    f"{sol:>10.5f}{s:>8.2f}")
    score = sum(scores) / len(scores)
    metrics = {
        "avg_max_kvpr": round(sum(sols) / len(sols), 6) if sols else float("nan"),
        "avg_optimum_kvpr": round(sum(opt) / len(opt), 6),
        "avg_lower_bound_kvpr": round(sum(lower_bound(c) for c in cases) / len(cases), 6),
        "avg_round_robin_kvpr": round(sum(max_kvpr(c, round_robin(c)) for c in cases) / len(cases), 6),
        "score_vs_optimum": round(sum(vs_opt) / len(vs_opt), 4),
        "optimum_score": round(sum(sqrt_score(max_kvpr(c, round_robin(c)), lower_bound(c), o)
                                   for c, o in zip(cases, opt)) / len(cases), 4),
        "n_cases": len(cases), "n_failed": len(notes), "optima_proven": sum(proven),
        "time_s": round(seconds, 3), "time_limit_s": time_limit,
    }
    feedback = (
        f"stage {stage}: score {score:.4f} = mean over {len(cases)} cases of "
        f"100 sqrt(clamp((RR - yours) / (RR - LB))), RR = round-robin max KVPR, LB = the "
        f"fractional lower bound (unreachable). Avg max KVPR {metrics['avg_max_kvpr']} vs the "
        f"exact optimum {metrics['avg_optimum_kvpr']} (which would score "
        f"{metrics['optimum_score']:.2f}); against the optimum instead of LB you score "
        f"{metrics['score_vs_optimum']:.2f}/100. Time {seconds:.2f}s (limit {time_limit:.0f}s "
        f"per stage, {case_timeout:.0f}s per case; failed cases score 0).")
    if notes:
        feedback += "\n" + "\n".join(notes[:10])
    table = "case gpus models   rr_kvpr   lb_kvpr  opt_kvpr  yours     score\n" + "\n".join(rows)
    return {"score": score, "valid": True, "metrics": metrics, "feedback": feedback,
            "artifacts": {"cases": table, "stderr_tail": tail}}


def write_optima() -> None:
    """Recompute optima.json for every stage (run after changing the case generators)."""
    out = {}
    for stage in ("quick", "full", "test", "leaderboard"):
        cases = stage_cases(stage)
        if OPTIMA.is_file():
            OPTIMA.unlink()
        vals, proven = optima(stage, cases)
        out[stage] = {"fingerprint": fingerprint(cases), "optimum": vals, "proven": proven}
    OPTIMA.write_text(json.dumps(out, indent=1) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stage")
    ap.add_argument("--candidate")
    ap.add_argument("--data", default="", help="unused: every case is generated")
    ap.add_argument("--time-limit-s", type=float, default=DEFAULT_TIME_LIMIT_S)
    ap.add_argument("--case-timeout-s", type=float, default=CASE_TIMEOUT_S)
    ap.add_argument("--write-optima", action="store_true")
    args = ap.parse_args(argv)
    if args.write_optima:
        write_optima()
        return 0
    if not args.stage or not args.candidate:
        ap.error("--stage and --candidate are required")
    cand = str(Path(args.candidate).resolve())
    try:
        if not (Path(cand) / "placement.py").is_file():
            result = _invalid(f"no placement.py in {cand}")
        else:
            result = evaluate(args.stage, cand, args.time_limit_s, args.case_timeout_s)
    except ValueError as exc:
        result = _invalid(str(exc))
    _emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
