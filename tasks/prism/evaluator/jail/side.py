"""Candidate side of the PRISM task (runs inside the jail, next to the candidate's code).

Protocol (one JSON value per line):
- this side sends {"imported": seconds} or {"import_error": text, "tb": text};
- then, per case, the evaluator sends {"i": i, "gpu_num": g, "sizes": [...], "rates": [...],
  "slos": [...]} and this side answers {"i": i, "groups": [[gpu_id, [model index, ...]], ...],
  "t": seconds}, or {"i": i, "error"|"invalid": text}.

The candidate gets fresh Model objects per case; this side maps the returned objects back to
model indices by identity. Nothing sent from here is trusted: the evaluator validates the
placement and computes every KVPR from its own copy of the case.
"""

import operator
import random
import time
import traceback
from dataclasses import dataclass

from adrs_eval.side import channel, load_candidate


@dataclass
class Model:
    """The model record of the published API (the evaluator's cases.Model, field for field)."""

    model_name: str
    model_size: int
    req_rate: int
    slo: int
    cur_gpu_id: int


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
            gid = int(operator.index(gpu_id))
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


def answer(placement, case: dict) -> dict:
    i = case["i"]
    models = [Model(f"model_{j}", s, r, o, j)
              for j, (s, r, o) in enumerate(zip(case["sizes"], case["rates"], case["slos"]))]
    ts = time.perf_counter()
    try:
        result = placement.compute_model_placement(gpu_num=case["gpu_num"], models=list(models))
    except BaseException as exc:  # noqa: BLE001 - the candidate's error, reported as such
        return {"i": i, "error": f"{type(exc).__name__}: {exc}", "tb": traceback.format_exc()[-1200:]}
    t = time.perf_counter() - ts
    try:
        return {"i": i, "groups": to_groups(result, models), "t": t}
    except ValueError as exc:
        return {"i": i, "invalid": str(exc)}


def main() -> None:
    chan = channel()
    t0 = time.perf_counter()
    try:
        random.seed(0)
        import numpy as np

        np.random.seed(0)
        placement = load_candidate("placement")
    except BaseException as exc:  # noqa: BLE001 - report anything the import raises
        chan.send({"import_error": f"{type(exc).__name__}: {exc}",
                   "tb": traceback.format_exc()[-1500:]})
        return
    chan.send({"imported": time.perf_counter() - t0})
    for case in chan:
        chan.send(answer(placement, case))


main()
