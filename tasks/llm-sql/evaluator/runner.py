"""Candidate-side worker (copied into a private temp dir and run there by evaluate.py).

argv: WORKTREE JOBDIR. Reads JOBDIR/job.json (table CSV names + merge specs), loads every CSV
with pandas.read_csv as the published evaluator does, prints READY, then imports the
candidate's solution module and calls Solution().solve(...) on every table (the evaluator's
clock runs from READY to this process's exit, so import time counts), and writes the output
rows as cell strings to JOBDIR/out.json.
"""
import json
import math
import sys
import traceback

import pandas as pd


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


def main() -> int:
    worktree, jobdir = sys.argv[1], sys.argv[2]
    job = json.load(open(f"{jobdir}/job.json"))
    frames = [pd.read_csv(f"{jobdir}/{t['csv']}", low_memory=False) for t in job["tables"]]
    print("READY", flush=True)
    out = {"tables": [], "error": None}
    try:
        sys.path.insert(0, worktree)
        import solution  # noqa: PLC0415 - the candidate, imported inside the timed window

        for t, df in zip(job["tables"], frames):
            res = solution.Solution().solve(
                df, early_stop=100000, row_stop=4, col_stop=2, col_merge=t["merge"],
                one_way_dep=[], distinct_value_threshold=0.7, parallel=True)
            if not isinstance(res, pd.DataFrame):
                raise TypeError(f"solve() returned {type(res).__name__}, expected a pandas DataFrame")
            rows = [[cell(v) for v in r] for r in res.itertuples(index=False, name=None)]
            out["tables"].append(rows)
    except BaseException as exc:  # noqa: BLE001 - report the candidate's failure to the evaluator
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        out["error"] = f"{type(exc).__name__}: {exc}\n" + "".join(tb[-6:])
    with open(f"{jobdir}/out.json", "w") as fh:
        json.dump(out, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
