#!/usr/bin/env python3
"""Sealed evaluator for the PRISM model-placement task.

Usage: python evaluate.py --stage {quick,full,test,leaderboard} --candidate WORKTREE
                          [--time-limit-s S] [--case-timeout-s S]
       python evaluate.py --write-optima   (after changing the case generators)

The candidate's ``placement.py`` runs in a jailed process of its own (jail/side.py), which
gets one case at a time and calls it on fresh Model objects; only the placement it returns
(which model index on which GPU) is used. Validity (GPU ids in range(gpu_num), every model
exactly once, memory) and every KVPR are computed here from the evaluator's own case data.
A case that raises or runs past its timeout scores 0 (it is never dropped); a timeout kills
the candidate process and a new one goes on with the next case. The result goes to the
harness with ``adrs_eval.emit``.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cases import GPU_MEM_SIZE, Case, exact_optimum, generate, lower_bound, max_kvpr, round_robin  # noqa: E402

from adrs_eval import invalid, result  # noqa: E402
from adrs_eval.candidate import CandidateError, CandidateExited, CandidateTimeout, start  # noqa: E402
from adrs_eval.cli import Args, parser, run  # noqa: E402

SIDE = HERE / "jail" / "side.py"
TEXT_CHARS = 1500  # most characters of candidate-sent text quoted in feedback

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


class NoImport(Exception):
    """The candidate process did not import placement.py (the message says why)."""


def text(value, limit: int = TEXT_CHARS) -> str:
    """Candidate-sent text, bounded."""
    return str(value)[:limit]


def start_policy(candidate: str, stage_deadline: float):
    """A candidate process that has imported placement.py; raises NoImport, or
    CandidateTimeout when the stage's time runs out first."""
    cand = start(candidate, SIDE)
    try:
        hello = cand.recv(timeout=max(0.0, stage_deadline - time.perf_counter()))
    except CandidateTimeout:
        cand.close()
        raise
    except CandidateExited:
        cand.close()
        raise NoImport(f"the process ended before importing placement.py\n{cand.stderr_tail()}") \
            from None
    except CandidateError as exc:  # a first message that is not one
        cand.close()
        raise NoImport(str(exc)) from None
    if isinstance(hello, dict) and "imported" in hello:
        return cand
    cand.close()
    if isinstance(hello, dict) and "import_error" in hello:
        raise NoImport(f"{text(hello['import_error'])}\n{text(hello.get('tb', ''))}")
    raise NoImport(f"the process sent {text(hello, 200)!r} instead of its import report")


def case_message(i: int, c: Case) -> dict:
    return {"i": i, "gpu_num": c.gpu_num, "sizes": list(c.sizes), "rates": list(c.rates),
            "slos": list(c.slos)}


def run_cases(candidate: str, cases: list[Case], time_limit: float, case_timeout: float):
    """Run every case in candidate processes, one case per message; a case past its timeout
    (or that ends the process) loses that process, and a new one goes on with the next case.
    Returns (results by case index, import error or None, seconds, stderr tail)."""
    results: dict[int, dict] = {}
    t0 = time.perf_counter()
    stage_deadline = t0 + time_limit
    cand, tail = None, ""
    try:
        for i, c in enumerate(cases):
            if cand is None:
                cand = start_policy(candidate, stage_deadline)
            try:
                cand.send(case_message(i, c), timeout=case_timeout)
                msg = cand.recv(timeout=min(case_timeout, stage_deadline - time.perf_counter()))
            except CandidateTimeout:
                stage_over = time.perf_counter() >= stage_deadline
                results[i] = {"error": f"the stage time limit ({time_limit:.0f}s) ran out"
                              if stage_over else f"timed out after {case_timeout:.0f}s"}
                tail = stop(cand)
                cand = None
                if stage_over:
                    break
                continue
            except CandidateExited:  # it ended in this case: a new process takes the next
                results[i] = {"error": "the process ended during this case"}
                tail = stop(cand)
                cand = None
                continue
            if not isinstance(msg, dict) or msg.get("i") != i:
                msg = {"invalid": f"the placement process answered case {i} with "
                                  f"{text(msg, 200)!r}"}
            results[i] = msg
    except CandidateTimeout:
        pass  # the stage's time ran out while a new process imported: the rest is not run
    except NoImport as exc:
        return results, str(exc), time.perf_counter() - t0, tail
    finally:
        if cand is not None:
            tail = stop(cand)
    return results, None, time.perf_counter() - t0, tail


def stop(cand) -> str:
    """Kill a candidate process; the tail of its stderr."""
    cand.close()
    return cand.stderr_tail()


def is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def shape_problem(groups) -> str | None:
    """None if groups is [[gpu_id, [model index, ...]], ...] of plain ints, else what is not."""
    if not isinstance(groups, list):
        return f"the placement reached the evaluator as {text(groups, 200)!r}, not a list"
    for entry in groups:
        ok = isinstance(entry, list) and len(entry) == 2 and is_int(entry[0]) \
            and isinstance(entry[1], list) and all(is_int(j) for j in entry[1])
        if not ok:
            return (f"the placement entry {text(entry, 200)!r} is not "
                    "[gpu_id, [model index, ...]] of ints")
    return None


def check_groups(case: Case, groups) -> str | None:
    """None if the placement is valid, else what is wrong."""
    n = len(case.sizes)
    problem = shape_problem(groups)
    if problem:
        return problem
    seen_gpu, owner = set(), {}
    for gid, idx in groups:
        if not 0 <= gid < case.gpu_num:
            return f"GPU id {gid} is outside range({case.gpu_num}) (only {case.gpu_num} GPUs exist)"
        if gid in seen_gpu:
            return f"GPU id {gid} appears twice"
        seen_gpu.add(gid)
        for j in idx:
            if not 0 <= j < n:
                return f"model index {j} on GPU {gid} is outside range({n})"
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


def evaluate(args: Args) -> dict:
    stage, candidate = args.stage, str(args.candidate)
    time_limit, case_timeout = args.time_limit_s, args.extra.case_timeout_s
    if not (args.candidate / "placement.py").is_file():
        return invalid(f"no placement.py in {candidate}")
    cases = stage_cases(stage)
    results, import_error, seconds, tail = run_cases(candidate, cases, time_limit, case_timeout)
    if import_error:
        return invalid(f"importing placement.py failed: {import_error}")
    opt, proven = optima(stage, cases)
    scores, vs_opt, sols, notes, rows = [], [], [], [], []
    for i, c in enumerate(cases):
        base, lb = max_kvpr(c, round_robin(c)), lower_bound(c)
        msg = results.get(i, {"error": "not run (stage time limit)"})
        if "invalid" in msg:
            return invalid(f"case {i} ({c.gpu_num} GPUs, {len(c.sizes)} models): "
                           f"{text(msg['invalid'])}")
        if "error" in msg:
            notes.append(f"case {i}: scored 0: {text(msg['error'])}")
            s = so = 0.0
            sol = float("nan")
        else:
            problem = check_groups(c, msg.get("groups"))
            if problem:
                return invalid(f"case {i} ({c.gpu_num} GPUs, {len(c.sizes)} models): {problem}")
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
    return result(score, metrics=metrics, feedback=feedback,
                  artifacts={"cases": table, "stderr_tail": tail},
                  instances={f"case_{i}": s for i, s in enumerate(scores)})


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


def main(argv: list[str] | None = None) -> int:
    # A maintainer's command, not an evaluation: it takes no --stage or --candidate.
    if (sys.argv[1:] if argv is None else argv) == ["--write-optima"]:
        write_optima()
        return 0
    ap = parser(__doc__, time_limit_s=DEFAULT_TIME_LIMIT_S)
    ap.add_argument("--case-timeout-s", type=float, default=CASE_TIMEOUT_S)
    # A bad stage name (ValueError) or a candidate process that cannot start is the result's
    # own message, not an evaluator error.
    return run(evaluate, argv, parser=ap, expected=(ValueError, CandidateError))


if __name__ == "__main__":
    sys.exit(main())
