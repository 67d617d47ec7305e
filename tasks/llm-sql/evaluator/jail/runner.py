"""The candidate's side of llm-sql: runs solution.py inside the jail (adrs_eval.candidate).

The job folder ($ADRS_JOB, read-only) holds only the stage's input tables as CSV and a
job.json of [{"csv", "merge"}] (no table names, no seeds). This side loads every CSV with
pandas.read_csv as the published evaluator does, sends {"ready": true}, then imports the
candidate's solution module and calls Solution().solve(...) on every table (the evaluator's
clock runs from "ready" to the last table's answer, so import time counts), answering
{"rows": [[cell, ...], ...]} per table as cell strings, or {"error": text} once.
The evaluator checks every row against its own copy of the tables.
"""
import json
import math
import os

import pandas as pd

from adrs_eval.side import channel, describe, load_candidate


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    try:
        if value != value:  # pandas.NA, NaT
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def solve_all(chan, tables: list[dict], frames: list) -> None:
    solution = load_candidate("solution")  # inside the timed window
    for t, df in zip(tables, frames):
        res = solution.Solution().solve(
            df, early_stop=100000, row_stop=4, col_stop=2, col_merge=t["merge"],
            one_way_dep=[], distinct_value_threshold=0.7, parallel=True)
        if not isinstance(res, pd.DataFrame):
            raise TypeError(f"solve() returned {type(res).__name__}, expected a pandas DataFrame")
        chan.send({"rows": [[cell(v) for v in r] for r in res.itertuples(index=False, name=None)]})


def main() -> None:
    chan = channel()
    job_dir = os.environ["ADRS_JOB"]
    with open(os.path.join(job_dir, "job.json")) as fh:
        tables = json.load(fh)["tables"]
    frames = [pd.read_csv(os.path.join(job_dir, t["csv"]), low_memory=False) for t in tables]
    chan.send({"ready": True})
    try:
        solve_all(chan, tables, frames)
    except BaseException as exc:  # noqa: BLE001 - report the candidate's failure to the evaluator
        chan.send({"error": describe(exc)})


if __name__ == "__main__":
    main()
