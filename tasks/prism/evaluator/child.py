"""Runs a candidate placement policy in its own process; the sealed evaluator talks to it.

Usage: python child.py CANDIDATE_DIR JOB_JSON
JOB_JSON: {"cases": [[gpu_num, sizes, rates, slos], ...], "start": k}
Before case i it writes {"start": i}; after it {"i": i, "groups": [[gpu_id, [model index,
...]], ...]} or {"i": i, "error"|"invalid": text} on the protocol stream (the original
stdout; the candidate's prints go to stderr). The candidate gets fresh Model objects; the
evaluator maps them back by identity and validates and scores with its own case data.
"""

import json
import operator
import os
import random
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import Model  # noqa: E402


def to_groups(result, models):
    """[[gpu_id, [index, ...]], ...] by object identity; raises ValueError saying why."""
    if not isinstance(result, dict):
        raise ValueError(f"compute_model_placement must return a dict, got {type(result).__name__}")
    index = {id(m): j for j, m in enumerate(models)}
    groups = []
    for gpu_id, assigned in result.items():
        if isinstance(gpu_id, bool):
            raise ValueError(f"GPU id {gpu_id!r} is a bool, expected an int")
        try:
            gid = operator.index(gpu_id)
        except TypeError:
            raise ValueError(f"GPU id {gpu_id!r} is not an int") from None
        if not isinstance(assigned, list):
            raise ValueError(f"GPU {gid}: value must be a list, got {type(assigned).__name__}")
        idx = []
        for m in assigned:
            j = index.get(id(m))
            if j is None:
                raise ValueError(f"GPU {gid}: {m!r} is not one of the given model objects "
                                 "(return the objects you were given, not copies)")
            idx.append(j)
        groups.append([gid, idx])
    return groups


def main() -> int:
    cand, job = sys.argv[1], json.loads(Path(sys.argv[2]).read_text())
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(obj):
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    sys.path.insert(1, cand)
    t0 = time.perf_counter()
    try:
        random.seed(0)
        import numpy as np

        np.random.seed(0)
        import placement
    except BaseException as exc:  # noqa: BLE001 - report anything the import raises
        send({"import_error": f"{type(exc).__name__}: {exc}", "tb": traceback.format_exc()[-1500:]})
        return 0
    send({"imported": time.perf_counter() - t0})
    for i in range(job["start"], len(job["cases"])):
        gpu_num, sizes, rates, slos = job["cases"][i]
        models = [Model(f"model_{j}", s, r, o, j) for j, (s, r, o) in enumerate(zip(sizes, rates, slos))]
        send({"start": i})
        ts = time.perf_counter()
        try:
            result = placement.compute_model_placement(gpu_num=gpu_num, models=list(models))
        except BaseException as exc:  # noqa: BLE001
            send({"i": i, "error": f"{type(exc).__name__}: {exc}", "tb": traceback.format_exc()[-1200:]})
            continue
        t = time.perf_counter() - ts
        try:
            send({"i": i, "groups": to_groups(result, models), "t": t})
        except ValueError as exc:
            send({"i": i, "invalid": str(exc)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
