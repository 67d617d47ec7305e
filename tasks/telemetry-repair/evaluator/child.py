"""Runs the candidate's repair.py in its own process (copied to a private temp dir first).

Usage: python child.py WORKTREE JOB_JSON
JOB_JSON holds only what the candidate may see: {"snapshots": [{"telemetry", "topology"}, ...]}
(the corrupted reports; the truth stays in the evaluator). On the protocol stream (the
original stdout; the candidate's prints go to stderr) it writes {"imported": s}, then per
snapshot {"i": i, "out": {...}, "t": s} or {"i": i, "error"|"invalid": text}. Outputs are
converted to JSON lists here; the evaluator checks every value itself.
"""
import json
import math
import numbers
import os
import sys
import time
import traceback

KEYS = ("rx_rate", "tx_rate", "interface_status")


def _num(v, what):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise ValueError(f"{what} must be a number, got {type(v).__name__}")
    x = float(v)
    if not math.isfinite(x):
        raise ValueError(f"{what} is {x}")
    return x


def to_json(result, telemetry):
    if not isinstance(result, dict):
        raise ValueError(f"the repair must return a dict, got {type(result).__name__}")
    out = {}
    for if_id in telemetry:
        entry = result.get(if_id)
        if not isinstance(entry, dict):
            raise ValueError(f"interface {if_id!r} is missing from the output (every input interface must be returned)")
        row = {}
        for k in KEYS:
            t = entry.get(k)
            if not isinstance(t, (tuple, list)) or len(t) != 3:
                raise ValueError(f"{if_id}.{k} must be a tuple (original, repaired, confidence), got {t!r:.80}")
            if k == "interface_status":
                if not isinstance(t[1], str):
                    raise ValueError(f"{if_id}.interface_status repaired value must be 'up' or 'down', got {t[1]!r:.40}")
                row[k] = [str(t[0]), t[1], _num(t[2], f"{if_id}.{k} confidence")]
            else:
                row[k] = [None, _num(t[1], f"{if_id}.{k} repaired value"), _num(t[2], f"{if_id}.{k} confidence")]
        out[if_id] = row
    return out


def main() -> int:
    worktree, job_path = sys.argv[1], sys.argv[2]
    job = json.load(open(job_path))
    os.unlink(job_path)
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(obj):
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    sys.path.insert(0, worktree)
    t0 = time.perf_counter()
    try:
        import repair  # noqa: PLC0415 - the candidate
        fn = getattr(repair, "run_repair", None) or repair.repair_network_telemetry
    except BaseException as exc:  # noqa: BLE001 - report whatever the import raises
        send({"import_error": f"{type(exc).__name__}: {exc}", "tb": traceback.format_exc()[-1500:]})
        return 0
    send({"imported": time.perf_counter() - t0})
    for i, snap in enumerate(job["snapshots"]):
        ids = list(snap["telemetry"])
        ts = time.perf_counter()
        try:
            result = fn(snap["telemetry"], snap["topology"])
        except BaseException as exc:  # noqa: BLE001 - a failing snapshot scores 0
            send({"i": i, "error": f"{type(exc).__name__}: {exc}", "tb": traceback.format_exc()[-800:]})
            continue
        t = time.perf_counter() - ts
        try:
            send({"i": i, "out": to_json(result, ids), "t": t})
        except ValueError as exc:
            send({"i": i, "invalid": str(exc)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
