#!/usr/bin/env python3
"""Sealed evaluator for the LLM-SQL prefix-reuse task.

Usage: python evaluate.py --stage {quick,full,test,leaderboard} --candidate WORKTREE [--data DIR]

Writes the stage's tables as CSV into a private temp dir, runs the candidate there in a worker
subprocess (runner.py: pandas.read_csv, then `import solution` and Solution().solve(...) per
table, timed by this process from the worker's READY line to its exit), then checks that every
returned table is a row permutation of the input whose rows are field permutations (col_merge
groups concatenated whole), and scores the prefix hit rate as published:
norm = clamp(100 (hit - anchor) / (1 - anchor), 0, 100) with anchor = the identity order's hit
rate, runtime_component = 100 (10 - min(10, avg_runtime_s)) / 10,
score = 0.95 norm + 0.05 runtime_component. Prints ONE JSON object as the last stdout line.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from metric import Reference, cell_str, prefix_hits
from tables import STAGES, make_table

HERE = Path(__file__).resolve().parent
WORKER_LIMIT_S = {"quick": 60.0, "full": 150.0, "test": 150.0, "leaderboard": 270.0}
RUNTIME_CAP_S = 10.0
BEER_MERGE = [["beer/beerId", "beer/name"]]


def _invalid(reason: str, metrics: dict | None = None) -> dict:
    return {"score": 0.0, "valid": False, "metrics": metrics or {}, "feedback": "INVALID: " + reason,
            "artifacts": {}}


def _find_beer(data: str) -> Path | None:
    if not data:
        return None
    for cand in (Path(data) / "beer.csv", Path(data) / "llm-sql" / "beer.csv"):
        if cand.is_file():
            return cand
    return None


def _write_tables(stage: str, data: str, jobdir: Path) -> list[dict]:
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


def _run_worker(worktree: str, jobdir: Path, limit: float) -> tuple[float, str, str]:
    """Run runner.py in jobdir; return (seconds from READY to exit, stdout tail, stderr tail)."""
    shutil.copyfile(HERE / "runner.py", jobdir / "runner.py")
    env = {k: v for k, v in os.environ.items() if k != "ADRS_DATA"}
    proc = subprocess.Popen([sys.executable, "runner.py", worktree, str(jobdir)], cwd=jobdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    t0 = time.perf_counter()
    if first.strip() != "READY":
        out, err = proc.communicate(timeout=limit)
        raise RuntimeError(f"worker failed before the candidate ran: {(first + out + err)[-1500:]}")
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise TimeoutError(f"the candidate did not finish within {limit:.0f} s") from None
    return time.perf_counter() - t0, out[-2000:], err[-2000:]


def evaluate(stage: str, worktree: str, data: str) -> dict:
    jobdir = Path(tempfile.mkdtemp(prefix="llmsql-"))
    try:
        try:
            tables = _write_tables(stage, data, jobdir)
        except ValueError as exc:
            return _invalid(str(exc))
        (jobdir / "job.json").write_text(json.dumps({"tables": tables}))
        refs = []
        for t in tables:
            df = pd.read_csv(jobdir / t["csv"], low_memory=False)
            cols = [str(c) for c in df.columns]
            cells = [list(r) for r in zip(*[[cell_str(v) for v in df[c].tolist()] for c in df.columns])]
            refs.append(Reference(cols, cells, t["merge"]))
        try:
            runtime, out_tail, err_tail = _run_worker(worktree, jobdir, WORKER_LIMIT_S.get(stage, 150.0))
        except (RuntimeError, TimeoutError) as exc:
            return _invalid(str(exc))
        out_path = jobdir / "out.json"
        if not out_path.is_file():
            return _invalid(f"the worker exited without writing results (did the candidate exit the process?)\n"
                            f"stdout: {out_tail}\nstderr: {err_tail}")
        try:
            result = json.loads(out_path.read_text())
            outputs = result["tables"]
            error = result["error"]
        except (ValueError, KeyError, TypeError) as exc:
            return _invalid(f"unreadable worker results ({exc})")
        if error:
            return _invalid(f"the candidate raised: {error}")
        if not isinstance(outputs, list) or len(outputs) != len(tables):
            return _invalid(f"expected {len(tables)} output tables, got {type(outputs).__name__}")
    finally:
        shutil.rmtree(jobdir, ignore_errors=True)

    metrics: dict[str, float] = {}
    lines = ["table                 rows  anchor%    hit%"]
    hits, anchors = [], []
    for t, ref, rows in zip(tables, refs, outputs):
        if not isinstance(rows, list) or not all(isinstance(r, list) and all(isinstance(x, str) for x in r) for r in rows):
            return _invalid(f"table {t['name']}: malformed output rows")
        why = ref.check(rows)
        if why:
            return _invalid(f"table {t['name']}: {why}")
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
    metrics.update({"avg_hit_rate": round(100 * avg_hit, 4), "anchor_hit_rate": round(100 * base, 4),
                    "normalized_hit_score": round(norm, 4), "runtime_component": round(runtime_component, 4),
                    "avg_runtime_s": round(avg_runtime, 4), "n_tables": len(tables)})
    worst = min(zip(hits, anchors, tables), key=lambda x: x[0] - x[1])
    feedback = (f"stage {stage}: score {score:.3f} = 0.95 x normalized hit {norm:.2f} + 0.05 x runtime "
                f"{runtime_component:.1f}. Mean prefix hit rate {100 * avg_hit:.2f}% vs identity order "
                f"{100 * base:.2f}% over {len(tables)} tables; avg time per table (import + solve) "
                f"{avg_runtime:.2f} s. Weakest gain: {worst[2]['name']} ({100 * worst[0]:.2f}% vs "
                f"{100 * worst[1]:.2f}%).")
    return {"score": score, "valid": True, "metrics": metrics, "feedback": feedback,
            "artifacts": {"tables": "\n".join(lines)}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stage", required=True)
    ap.add_argument("--candidate", required=True)
    ap.add_argument("--data", default="")
    args = ap.parse_args(argv)
    try:
        result = evaluate(args.stage, str(Path(args.candidate).resolve()), args.data or os.environ.get("ADRS_DATA", ""))
    except (OSError, ValueError, RuntimeError) as exc:
        result = _invalid(f"evaluator error {type(exc).__name__}: {exc}")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
