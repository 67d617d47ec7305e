"""The candidate's side of telemetry-repair: runs repair.py inside the jail (adrs_eval.candidate).

Protocol (JSON lines over the kit's pipe): the evaluator sends one message
{"snapshots": [{"telemetry", "topology"}, ...]}, the corrupted reports only (the truth, the bug
positions and the seeds stay in the evaluator). This side answers {"imported": s} or
{"import_error": text, "tb": text}, then per snapshot {"i": i, "out": {...}, "t": s} or
{"i": i, "error"|"invalid": text}. Outputs are converted to JSON lists here so that a malformed
one gets a readable reason; the evaluator checks every value again, since anything the
candidate's code shares this process with can also write to the pipe.
"""
import math
import numbers
import time

from adrs_eval.side import channel, describe, load_candidate

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
                    raise ValueError(f"{if_id}.interface_status repaired value must be 'up' or 'down', "
                                     f"got {t[1]!r:.40}")
                row[k] = [None, str(t[1]), _num(t[2], f"{if_id}.{k} confidence")]
            else:
                row[k] = [None, _num(t[1], f"{if_id}.{k} repaired value"), _num(t[2], f"{if_id}.{k} confidence")]
        out[if_id] = row
    return out


def answer(fn, i: int, snap: dict) -> dict:
    ids = list(snap["telemetry"])
    ts = time.perf_counter()
    try:
        result = fn(snap["telemetry"], snap["topology"])
    except BaseException as exc:  # noqa: BLE001 - a failing snapshot scores 0
        return {"i": i, "error": f"{type(exc).__name__}: {exc}", "tb": describe(exc)[-800:]}
    t = time.perf_counter() - ts
    try:
        return {"i": i, "out": to_json(result, ids), "t": t}
    except ValueError as exc:
        return {"i": i, "invalid": str(exc)}
    except BaseException as exc:  # noqa: BLE001 - an output object that fails to convert itself
        return {"i": i, "invalid": f"the output could not be read: {describe(exc)[:600]}"}


def main() -> None:
    chan = channel()
    job = chan.recv()
    if not isinstance(job, dict):
        return
    t0 = time.perf_counter()
    try:
        repair = load_candidate("repair")
        fn = getattr(repair, "run_repair", None) or repair.repair_network_telemetry
    except BaseException as exc:  # noqa: BLE001 - report whatever the import raises
        chan.send({"import_error": f"{type(exc).__name__}: {exc}", "tb": describe(exc)[-1500:]})
        return
    chan.send({"imported": time.perf_counter() - t0})
    for i, snap in enumerate(job["snapshots"]):
        chan.send(answer(fn, i, snap))


if __name__ == "__main__":
    main()
