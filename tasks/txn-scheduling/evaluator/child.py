"""Runs a candidate scheduler in its own process; the sealed evaluator talks to it.

Usage: python child.py CANDIDATE_DIR JOB_JSON

JOB_JSON: {"mode": "instances", "workloads": [json, ...], "seeds": [int, ...], "num_seqs": int}
       or {"mode": "published"}.
Writes one JSON line per finished instance to the protocol stream (the original stdout);
the candidate's own prints go to stderr. Nothing written here is trusted: the evaluator
validates every order and recomputes every makespan with its own simulator.
"""

import json
import operator
import os
import random
import sys
import time
import traceback
from pathlib import Path

RUNTIME = Path(__file__).resolve().parent / "runtime"


def as_order(obj):
    """The list of ints in a returned schedule; raises TypeError with the reason."""
    if isinstance(obj, (str, bytes, dict)) or not hasattr(obj, "__iter__"):
        raise TypeError(f"a schedule must be a list of transaction indices, got {type(obj).__name__}")
    out = []
    for x in obj:
        if isinstance(x, bool):
            raise TypeError(f"schedule entry {x!r} is a bool, expected an int")
        try:
            out.append(operator.index(x))
        except TypeError:
            raise TypeError(f"schedule entry {x!r} of type {type(x).__name__} is not an int") from None
    return out


def order_of(result):
    """get_best_schedule returns (makespan, schedule); a bare schedule is accepted too."""
    if isinstance(result, tuple) and len(result) >= 2:
        return as_order(result[1])
    return as_order(result)


def main() -> int:
    cand, job = sys.argv[1], json.loads(Path(sys.argv[2]).read_text())
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # candidate prints land on stderr
    sys.stdout = sys.stderr

    def send(obj):
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    sys.path[:0] = [str(RUNTIME), cand]
    t0 = time.perf_counter()
    try:
        random.seed(0)
        import numpy as np

        np.random.seed(0)
        import scheduler
        from txn_simulator import Workload
    except BaseException as exc:  # noqa: BLE001 - report anything the import raises
        send({"import_error": f"{type(exc).__name__}: {exc}", "tb": traceback.format_exc()[-1500:]})
        return 0
    send({"imported": time.perf_counter() - t0})
    if job["mode"] == "published":
        ts = time.perf_counter()
        try:
            res = scheduler.get_random_costs()
        except BaseException as exc:  # noqa: BLE001
            send({"i": "published", "error": f"{type(exc).__name__}: {exc}",
                  "tb": traceback.format_exc()[-1500:], "t": time.perf_counter() - ts})
            return 0
        try:
            orders = [as_order(s) for s in res[1]]
        except (TypeError, IndexError, KeyError) as exc:
            send({"i": "published", "invalid": f"get_random_costs() must return (makespan, "
                  f"[order, ...], seconds): {type(exc).__name__}: {exc}"})
            return 0
        send({"i": "published", "orders": orders, "reported": repr(res[0])[:50],
              "t": time.perf_counter() - ts})
        return 0
    for i, (data, seed) in enumerate(zip(job["workloads"], job["seeds"])):
        ts = time.perf_counter()
        try:
            random.seed(seed)
            np.random.seed(seed)
            result = scheduler.get_best_schedule(Workload(data), job["num_seqs"])
        except BaseException as exc:  # noqa: BLE001
            send({"i": i, "error": f"{type(exc).__name__}: {exc}",
                  "tb": traceback.format_exc()[-1500:], "t": time.perf_counter() - ts})
            continue
        try:
            send({"i": i, "order": order_of(result), "t": time.perf_counter() - ts})
        except TypeError as exc:
            send({"i": i, "invalid": str(exc)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
