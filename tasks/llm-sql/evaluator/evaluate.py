#!/usr/bin/env python3
"""Sealed evaluator for the LLM-SQL prefix-reuse task.

Usage: python evaluate.py --stage {quick,full,test,leaderboard} --candidate WORKTREE [--data DIR]
                          [--time-limit-s S]  (default: the stage's own, 60-270 s)

Writes the stage's tables as CSV into a private job folder and runs the candidate in its own
jailed process (jail/runner.py, started with adrs_eval.candidate; it sees the job folder
read-only and nothing of this one): pandas.read_csv, then `import solution` and
Solution().solve(...) per table, timed by this process from the runner's "ready" to the last
table's answer. Then it checks that every returned table is a row permutation of the input
whose rows are field permutations (col_merge groups concatenated whole), and scores the prefix
hit rate as published:
norm = clamp(100 (hit - anchor) / (1 - anchor), 0, 100) with anchor = the identity order's hit
rate, runtime_component = 100 (10 - min(10, avg_runtime_s)) / 10,
score = 0.95 norm + 0.05 runtime_component. Hands ONE JSON result to the harness (adrs_eval.emit).
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from metric import Reference, cell_str, prefix_hits
from tables import STAGES, make_table

from adrs_eval import invalid, result
from adrs_eval.candidate import CandidateError, CandidateExited, CandidateTimeout, start
from adrs_eval.cli import Args, parser, run

HERE = Path(__file__).resolve().parent
WORKER_LIMIT_S = {"quick": 60.0, "full": 150.0, "test": 150.0, "leaderboard": 270.0}
RUNTIME_CAP_S = 10.0
BEER_MERGE = [["beer/beerId", "beer/name"]]


def _find_beer(data: Path | None) -> Path | None:
    if not data:
        return None
    for cand in (data / "beer.csv", data / "llm-sql" / "beer.csv"):
        if cand.is_file():
            return cand
    return None


def _write_tables(stage: str, data: Path | None, jobdir: Path) -> list[dict]:
    """Write the stage's CSVs into jobdir; return [{name, csv, merge}]."""
    if stage == "leaderboard":
        beer = _find_beer(data)
        if beer is None:
            raise ValueError("stage leaderboard needs --data DIR holding beer.csv (or llm-sql/beer.csv)")
        shutil.copyfile(beer, jobdir / "t0.csv")
        return [{"name": "beer", "csv": "t0.csv", "merge": BEER_MERGE}]
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}: expected one of {sorted(STAGES) + ['leaderboard']}")
    tables = []
    for k, (name, family, n_rows, seed) in enumerate(STAGES[stage]):
        df, merge = make_table(family, n_rows, seed)
        df.to_csv(jobdir / f"t{k}.csv", index=False)
        tables.append({"name": name, "csv": f"t{k}.csv", "merge": merge})
    return tables


def _write_job(jobdir: Path, tables: list[dict]) -> None:
    """job.json for the candidate's side: the CSV files and merges, not the tables' names
    (they carry the seeds). The folder is made readable to the jail's user."""
    (jobdir / "job.json").write_text(json.dumps({"tables": [{"csv": t["csv"], "merge": t["merge"]}
                                                            for t in tables]}))
    for f in jobdir.iterdir():
        f.chmod(0o644)
    jobdir.chmod(0o755)


def _recv(cand, deadline: float, limit: float) -> tuple[object, float]:
    """(the next message, when its last byte arrived): parsing it is not the candidate's time."""
    try:
        line = cand.read_line(timeout=max(deadline - time.perf_counter(), 0.001))
    except CandidateTimeout:
        raise TimeoutError(f"the candidate did not finish within {limit:.0f} s") from None
    arrived = time.perf_counter()
    try:
        return json.loads(line), arrived
    except (ValueError, RecursionError):
        raise CandidateError(f"the candidate process sent a line that is not a message: "
                             f"{line[:200]!r}") from None


def _run_worker(worktree: str, jobdir: Path, n_tables: int, limit: float) -> tuple[float, list]:
    """Run jail/runner.py on the job folder; return (seconds from its "ready" to the last
    table's answer, the answers). Raises RuntimeError, TimeoutError or CandidateError."""
    deadline = time.perf_counter() + limit
    with start(worktree, HERE / "jail" / "runner.py", job=jobdir) as cand:
        first, t0 = _recv(cand, deadline, limit)
        if first != {"ready": True}:
            raise RuntimeError(f"worker failed before the candidate ran: {str(first)[:300]}\n"
                               f"{cand.stderr_tail()}")
        answers, t1 = [], t0
        while len(answers) < n_tables:
            msg, t1 = _recv(cand, deadline, limit)
            answers.append(msg)
            if not isinstance(msg, dict) or "rows" not in msg:
                break
        return t1 - t0, answers


def _exited(exc: CandidateError) -> str:
    if isinstance(exc, CandidateExited):
        return f"the worker exited without sending every result (did the candidate exit the process?): {exc}"
    return str(exc)


def evaluate(args: Args) -> dict:
    stage, worktree, data = args.stage, str(args.candidate), args.data
    # the stage's own budget unless the command names one
    limit = WORKER_LIMIT_S.get(stage, 150.0) if args.time_limit_s is None else args.time_limit_s
    jobdir = Path(tempfile.mkdtemp(prefix="llmsql-"))
    try:
        try:
            tables = _write_tables(stage, data, jobdir)
        except ValueError as exc:
            return invalid(str(exc))
        _write_job(jobdir, tables)
        refs = []
        for t in tables:
            df = pd.read_csv(jobdir / t["csv"], low_memory=False)
            cols = [str(c) for c in df.columns]
            cells = [list(r) for r in zip(*[[cell_str(v) for v in df[c].tolist()] for c in df.columns])]
            refs.append(Reference(cols, cells, t["merge"]))
        try:
            runtime, answers = _run_worker(worktree, jobdir, len(tables), limit)
        except (RuntimeError, TimeoutError) as exc:
            return invalid(str(exc))
        except CandidateError as exc:
            return invalid(_exited(exc))
    finally:
        shutil.rmtree(jobdir, ignore_errors=True)
    error = next((a.get("error") for a in answers if isinstance(a, dict) and "error" in a), None)
    if error is not None:
        return invalid(f"the candidate raised: {str(error)[:4000]}")
    outputs = [a.get("rows") if isinstance(a, dict) else None for a in answers]
    if len(outputs) != len(tables):
        return invalid(f"expected {len(tables)} output tables, got {len(outputs)}")

    metrics: dict[str, float] = {}
    lines = ["table                 rows  anchor%    hit%"]
    hits, anchors = [], []
    for t, ref, rows in zip(tables, refs, outputs):
        if not isinstance(rows, list) or not all(
                isinstance(r, list) and all(isinstance(x, str) for x in r) for r in rows):
            return invalid(f"table {t['name']}: malformed output rows")
        why = ref.check(rows)
        if why:
            return invalid(f"table {t['name']}: {why}")
        h, tot = prefix_hits(["".join(r) for r in rows])
        a, atot = prefix_hits(ref.identity_rows)
        hit = h / tot if tot else 0.0
        anchor = a / atot if atot else 0.0
        hits.append(hit)
        anchors.append(anchor)
        metrics[f"hit_{t['name']}"] = round(100 * hit, 4)
        metrics[f"anchor_{t['name']}"] = round(100 * anchor, 4)
        lines.append(f"{t['name']:<20} {ref.n_rows:>6} {100 * anchor:8.2f} {100 * hit:7.2f}")

    avg_hit = sum(hits) / len(hits)
    base = sum(anchors) / len(anchors)
    norm = max(0.0, min(100.0, 100.0 * (avg_hit - base) / (1.0 - base))) if base < 1.0 else 0.0
    avg_runtime = runtime / len(tables)
    runtime_component = 100.0 * (RUNTIME_CAP_S - min(RUNTIME_CAP_S, avg_runtime)) / RUNTIME_CAP_S
    score = 0.95 * norm + 0.05 * runtime_component
    # Per table, on the score's scale: its hit gain over its identity order, normalized like the
    # mean's (so the mean of these is the score, before norm's clamp), plus the shared runtime term.
    scale = 100.0 / (1.0 - base) if base < 1.0 else 0.0
    instances = {t["name"]: 0.95 * scale * (h - a) + 0.05 * runtime_component
                 for t, h, a in zip(tables, hits, anchors)}
    metrics.update({"avg_hit_rate": round(100 * avg_hit, 4), "anchor_hit_rate": round(100 * base, 4),
                    "normalized_hit_score": round(norm, 4), "runtime_component": round(runtime_component, 4),
                    "avg_runtime_s": round(avg_runtime, 4), "n_tables": len(tables)})
    worst = min(zip(hits, anchors, tables), key=lambda x: x[0] - x[1])
    feedback = (f"stage {stage}: score {score:.3f} = 0.95 x normalized hit {norm:.2f} + 0.05 x runtime "
                f"{runtime_component:.1f}. Mean prefix hit rate {100 * avg_hit:.2f}% vs identity order "
                f"{100 * base:.2f}% over {len(tables)} tables; avg time per table (import + solve) "
                f"{avg_runtime:.2f} s. Weakest gain: {worst[2]['name']} ({100 * worst[0]:.2f}% vs "
                f"{100 * worst[1]:.2f}%).")
    return result(score, metrics=metrics, feedback=feedback, artifacts={"tables": "\n".join(lines)},
                  instances=instances)


if __name__ == "__main__":
    sys.exit(run(evaluate, parser=parser(__doc__)))
