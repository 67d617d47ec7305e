"""Candidate side of the txn-scheduling task (runs inside the jail, next to the candidate).

The job folder ($ADRS_JOB, read-only) holds the candidate API the evaluator hands over: a copy
of the simulator (txn_simulator.py), workloads.py and data/ with the three published
workloads. They are imported before scheduler.py, so the candidate's own copies are not used.

Protocol (one JSON value per line):
- this side sends {"imported": seconds} or {"import_error": text, "tb": text};
- the evaluator sends {"mode": "instances", "workloads": [json, ...], "seeds": [int, ...],
  "num_seqs": int} or {"mode": "published"};
- this side sends one message per finished instance: {"i": i, "order": [...], "t": seconds},
  {"i": i, "error": text, "tb": text, "t": seconds} or {"i": i, "invalid": text}; in published
  mode one {"i": "published", "orders": [[...], ...], "reported": text, "t": seconds} (or
  "error"/"invalid").

Nothing sent from here is trusted: the evaluator validates every order and recomputes every
makespan with its own simulator on its own copy of the workloads.
"""

import operator
import os
import random
import sys
import time
import traceback

from adrs_eval.side import channel, load_candidate


def as_order(obj):
    """The list of ints in a returned schedule; raises TypeError with the reason."""
    if isinstance(obj, (str, bytes, dict)) or not hasattr(obj, "__iter__"):
        raise TypeError(f"a schedule must be a list of transaction indices, got {type(obj).__name__}")
    out = []
    for x in obj:
        if isinstance(x, bool):
            raise TypeError(f"schedule entry {x!r} is a bool, expected an int")
        try:
            out.append(int(operator.index(x)))
        except TypeError:
            raise TypeError(f"schedule entry {x!r} of type {type(x).__name__} is not an int") from None
    return out


def order_of(result):
    """get_best_schedule returns (makespan, schedule); a bare schedule is accepted too."""
    if isinstance(result, tuple) and len(result) >= 2:
        return as_order(result[1])
    return as_order(result)


def run_published(chan, scheduler) -> None:
    ts = time.perf_counter()
    try:
        res = scheduler.get_random_costs()
    except BaseException as exc:  # noqa: BLE001 - the candidate's error, reported as such
        chan.send({"i": "published", "error": f"{type(exc).__name__}: {exc}",
                   "tb": traceback.format_exc()[-1500:], "t": time.perf_counter() - ts})
        return
    try:
        orders = [as_order(s) for s in res[1]]
    except (TypeError, IndexError, KeyError) as exc:
        chan.send({"i": "published", "invalid": f"get_random_costs() must return (makespan, "
                   f"[order, ...], seconds): {type(exc).__name__}: {exc}"})
        return
    chan.send({"i": "published", "orders": orders, "reported": repr(res[0])[:50],
               "t": time.perf_counter() - ts})


def run_instances(chan, scheduler, job: dict, Workload, np) -> None:
    for i, (data, seed) in enumerate(zip(job["workloads"], job["seeds"])):
        ts = time.perf_counter()
        try:
            random.seed(seed)
            np.random.seed(seed)
            result = scheduler.get_best_schedule(Workload(data), job["num_seqs"])
        except BaseException as exc:  # noqa: BLE001 - the candidate's error, reported as such
            chan.send({"i": i, "error": f"{type(exc).__name__}: {exc}",
                       "tb": traceback.format_exc()[-1500:], "t": time.perf_counter() - ts})
            continue
        try:
            chan.send({"i": i, "order": order_of(result), "t": time.perf_counter() - ts})
        except TypeError as exc:
            chan.send({"i": i, "invalid": str(exc)})


def main() -> None:
    chan = channel()
    api = os.environ["ADRS_JOB"]
    os.environ["TXN_WORKLOADS_DIR"] = os.path.join(api, "data")
    sys.path.insert(0, api)
    t0 = time.perf_counter()
    try:
        import txn_simulator  # noqa: F401 - the handed-over API, before the candidate's copy
        import workloads  # noqa: F401

        random.seed(0)
        import numpy as np

        np.random.seed(0)
        scheduler = load_candidate("scheduler")
        from txn_simulator import Workload
    except BaseException as exc:  # noqa: BLE001 - report anything the import raises
        chan.send({"import_error": f"{type(exc).__name__}: {exc}",
                   "tb": traceback.format_exc()[-1500:]})
        return
    chan.send({"imported": time.perf_counter() - t0})
    job = chan.recv()
    if job["mode"] == "published":
        run_published(chan, scheduler)
    else:
        run_instances(chan, scheduler, job, Workload, np)


main()
