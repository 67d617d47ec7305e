"""Scores of one repaired snapshot.

Per counter (as published): accuracy = 1 - min(|rep - gt| / max(gt, 1), 1) (the published
one skips gt = 0; here a true zero counts with a 1 Mbps denominator) and the published
confidence calibration term. Per interface: status correct or not.

The published snapshot score averages over all counters, so the ~80% a bug never touched
dominate and returning the input unchanged beats real repairs. Here each of the three terms
is BALANCED: 0.5 * mean over the counters a bug corrupted (statuses that are reported wrong)
+ 0.5 * mean over the intact ones (a plain mean when one group is empty).
combined = 0.75 counter + 0.05 status + 0.20 calibration, as published.
"""
from __future__ import annotations

FIELDS = ("rx_rate", "tx_rate")
W_COUNTER, W_STATUS, W_CAL = 0.75, 0.05, 0.20


def calibration(gt: float, rep: float, conf: float) -> float:
    """The published per-counter confidence calibration score."""
    acc = 1.0 - abs(gt - rep) / max(abs(gt), abs(rep), 1.0)
    if acc > 0.8:
        s = 1.0 if conf > 0.7 else 0.5 + (conf - 0.3) * 1.25
    elif conf < 0.3:
        s = 0.8
    else:
        s = max(0.0, 0.8 - conf * (1.0 - acc) * 2.0)
    return max(0.0, min(1.0, s))


def accuracy(gt: float, rep: float) -> float:
    return 1.0 - min(abs(rep - gt) / max(gt, 1.0), 1.0)


def _balanced(bad: list[float], good: list[float]) -> float:
    if bad and good:
        return 0.5 * sum(bad) / len(bad) + 0.5 * sum(good) / len(good)
    both = bad + good
    return sum(both) / len(both) if both else 1.0


def score_snapshot(truth: dict, out: dict, corrupted: set, status_faults: set) -> dict:
    """truth {if_id: {rx_rate, tx_rate, interface_status}}; out {if_id: {rx_rate: [orig, rep,
    conf], tx_rate: [...], interface_status: [orig, status, conf]}} (already validated)."""
    acc = {True: [], False: []}
    cal = {True: [], False: []}
    st = {True: [], False: []}
    for if_id, gt in truth.items():
        rep = out[if_id]
        for f in FIELDS:
            bad = (if_id, f) in corrupted
            acc[bad].append(accuracy(gt[f], rep[f][1]))
            cal[bad].append(calibration(gt[f], rep[f][1], rep[f][2]))
        st[if_id in status_faults].append(1.0 if rep["interface_status"][1] == gt["interface_status"] else 0.0)
    counter = _balanced(acc[True], acc[False])
    status = _balanced(st[True], st[False])
    calib = _balanced(cal[True], cal[False])
    return {"counter": counter, "status": status, "calibration": calib,
            "combined": W_COUNTER * counter + W_STATUS * status + W_CAL * calib,
            "corrupted_accuracy": sum(acc[True]) / len(acc[True]) if acc[True] else float("nan"),
            "intact_accuracy": sum(acc[False]) / len(acc[False]) if acc[False] else float("nan")}


def score_published(truth: dict, out: dict) -> dict:
    """The published (legacy) snapshot score: unbalanced, counters with gt > 0 only."""
    errs, cals, st = [], [], []
    for if_id, gt in truth.items():
        rep = out[if_id]
        for f in FIELDS:
            if gt[f] > 0:
                errs.append(min(abs(rep[f][1] - gt[f]) / gt[f], 1.0))
            cals.append(calibration(gt[f], rep[f][1], rep[f][2]))
        st.append(1.0 if rep["interface_status"][1] == gt["interface_status"] else 0.0)
    counter = max(0.0, 1.0 - sum(errs) / len(errs)) if errs else 0.0
    status = sum(st) / len(st) if st else 1.0
    calib = sum(cals) / len(cals) if cals else 1.0
    return {"counter": counter, "status": status, "calibration": calib,
            "combined": W_COUNTER * counter + W_STATUS * status + W_CAL * calib}


def identity_output(telemetry: dict) -> dict:
    """What returning the input unchanged (confidence 1) would answer."""
    return {i: {"rx_rate": [d["rx_rate"], d["rx_rate"], 1.0], "tx_rate": [d["tx_rate"], d["tx_rate"], 1.0],
                "interface_status": [d["interface_status"], d["interface_status"], 1.0]}
            for i, d in telemetry.items()}
