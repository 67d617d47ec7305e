#!/usr/bin/env python3
"""Sealed evaluator for the telemetry-repair task.

Usage: python evaluate.py --stage {quick,full,test,leaderboard} --candidate WORKTREE [--data DIR]
                          [--time-limit-s S]

Snapshots (network.py) are built here; the candidate's repair.py runs in its own jailed
process (jail/side.py, started with adrs_eval.candidate) that receives ONLY the corrupted
reports and the topology over a pipe, and sees neither this folder nor this process. Every
output value is checked here (every interface present, rates finite and >= 0, confidences
in [0, 1], status 'up'/'down'); a malformed output makes the run invalid, a
snapshot that raises or is not reached before the time limit scores 0. Scores (metric.py):
balanced counter / status / calibration terms, combined 0.75/0.05/0.20 as published.
`leaderboard` replays the published legacy evaluator on evaluation_data.csv (--data): its
row sample, perturbations and unbalanced score (ground-truth leak removed).
Hands ONE JSON result to the harness (adrs_eval.emit).
"""
from __future__ import annotations

import ast
import csv
import math
import random
import sys
import time
from pathlib import Path

from adrs_eval import invalid, result
from adrs_eval.candidate import Candidate, CandidateError, CandidateTimeout, start
from adrs_eval.cli import Args, parser, run

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from metric import identity_output, score_published, score_snapshot  # noqa: E402
from network import BUG_TYPES, Snapshot, make_stage  # noqa: E402

STAGES = {"quick": (1, 24), "full": (2, 160), "test": (7_770_001, 320)}
DEFAULT_TIME_LIMIT_S = 60.0  # whole stage, import included (the published timeout)


# ------------------------------------------------------------------ published legacy replay

def _legacy_interfaces(row: dict) -> dict:
    """The published convert_csv_row_to_interfaces (ground truth kept aside, in order)."""
    ifs = {}
    for col, val in row.items():
        if not (col.startswith("low_") and ("_egress_to_" in col or "_ingress_from_" in col)):
            continue
        cell = ast.literal_eval(val)
        if "_egress_to_" in col:
            a, b = col[4:].split("_egress_to_")
            if_id, f = f"{a}_to_{b}", "tx_rate"
        else:
            a, b = col[4:].split("_ingress_from_")
            if_id, f = f"{a}_to_{b}", "rx_rate"
        d = ifs.setdefault(if_id, {"interface_status": "up", "rx_rate": 0.0, "tx_rate": 0.0,
                                   "connected_to": f"{b}_to_{a}", "local_router": a, "remote_router": b})
        v = cell["perturbed"] if cell["perturbed"] is not None else cell["ground_truth"]
        d[f] = float(v) if v is not None else 0.0
        d["_gt_" + f] = float(cell["ground_truth"])
    return ifs


def _legacy_perturb(ifs: dict, topology: dict) -> tuple[dict, dict]:
    """The published apply_test_perturbations, same draws from the global `random`."""
    pert, truth = {}, {}
    bug = random.choice(["dropped", "scaled", "correlated_dropped", "correlated_scaled"])
    for if_id, d in ifs.items():
        truth[if_id] = {"rx_rate": d["_gt_rx_rate"], "tx_rate": d["_gt_tx_rate"],
                        "interface_status": d["interface_status"]}
        p = dict(d)
        p["rx_rate"] *= random.uniform(0.98, 1.02)
        p["tx_rate"] *= random.uniform(0.98, 1.02)
        if bug == "dropped":
            if random.random() < 0.20:
                p["rx_rate"] = 0
                p["tx_rate"] = 0
        elif bug == "scaled":
            if random.random() < 0.20:
                p["rx_rate"] *= random.choice([random.uniform(0.5, 0.8), random.uniform(1.2, 1.5)])
                p["tx_rate"] *= random.choice([random.uniform(0.5, 0.8), random.uniform(1.2, 1.5)])
        pert[if_id] = p
    for _, if_ids in topology.items():
        if random.random() < 0.80:
            continue
        for if_id in if_ids:
            p = dict(ifs[if_id])
            if bug == "correlated_dropped":
                p["rx_rate"] = 0
                p["tx_rate"] = 0
            elif bug == "correlated_scaled":
                p["rx_rate"] *= random.choice([random.uniform(0.5, 0.8), random.uniform(1.2, 1.5)])
                p["tx_rate"] *= random.choice([random.uniform(0.5, 0.8), random.uniform(1.2, 1.5)])
            else:
                continue
            pert[if_id] = p
    for p in pert.values():  # the published evaluator leaked these into correlated copies
        p.pop("_gt_rx_rate", None)
        p.pop("_gt_tx_rate", None)
    corrupted = {(i, f) for i in pert for f in ("rx_rate", "tx_rate")
                 if truth[i][f] > 0 and abs(pert[i][f] - truth[i][f]) > 0.05 * truth[i][f]}
    return pert, truth, corrupted, bug


def leaderboard_snapshots(data: Path | None) -> list[Snapshot]:
    csv_path = None
    for cand in ((data / "evaluation_data.csv", data / "telemetry-repair" / "evaluation_data.csv")
                 if data else ()):
        if cand.is_file():
            csv_path = cand
            break
    if csv_path is None:
        raise ValueError("stage leaderboard needs --data DIR holding evaluation_data.csv "
                         "(or telemetry-repair/evaluation_data.csv)")
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    random.seed(42)
    sample = random.sample(rows, min(30, len(rows)))
    snaps = []
    for row in sample:
        ifs = _legacy_interfaces(row)
        topology: dict = {}
        for if_id, d in ifs.items():
            topology.setdefault(d["local_router"], []).append(if_id)
        pert, truth, corrupted, bug = _legacy_perturb(ifs, topology)
        snaps.append(Snapshot(pert, topology, truth, corrupted, set(), bug))
    return snaps


# ------------------------------------------------------------------ running the candidate

def _recv(cand: Candidate, deadline: float):
    """The candidate's next message, or None once the stage's time is up."""
    left = deadline - time.perf_counter()
    if left <= 0:
        return None
    try:
        return cand.recv(timeout=left)
    except CandidateTimeout:  # the kit killed it
        return None


def _snapshot_index(msg: dict, n: int) -> int | None:
    i = msg.get("i")
    return i if type(i) is int and 0 <= i < n else None


def run_candidate(candidate: str, snaps: list[Snapshot], time_limit: float):
    """({i: message} from the jailed candidate, an import error or None, why the rest was not
    reached, seconds, stderr tail). The candidate sees only each snapshot's reported telemetry
    and topology."""
    results: dict[int, dict] = {}
    import_error, imported, tail = None, False, ""
    stopped = f"not reached within the stage time limit ({time_limit:.0f}s)"
    job = {"snapshots": [{"telemetry": s.telemetry, "topology": s.topology} for s in snaps]}
    t0 = time.perf_counter()
    deadline = t0 + time_limit
    try:
        with start(candidate, HERE / "jail" / "side.py") as cand:
            try:
                cand.send(job, timeout=time_limit)
                while len(results) < len(snaps):
                    msg = _recv(cand, deadline)
                    if msg is None:
                        break
                    if not isinstance(msg, dict):
                        continue
                    if "import_error" in msg:
                        import_error = f"{str(msg['import_error'])[:2000]}\n{str(msg.get('tb', ''))[:2000]}"
                        break
                    if "imported" in msg:
                        imported = True
                    elif imported and (i := _snapshot_index(msg, len(snaps))) is not None:
                        results.setdefault(i, msg)
            except CandidateError as exc:  # it exited, or sent what is not a message
                stopped = f"not reached: {str(exc)[:300]}"
                tail = f"{exc}\n"
            tail = (tail + cand.stderr_tail())[-1500:]
    except CandidateError as exc:  # the jail could not start
        import_error = f"the candidate process could not start: {exc}"
    seconds = time.perf_counter() - t0
    if not imported and import_error is None:
        import_error = f"the process ended before importing repair.py\n{tail}"
    return results, import_error, stopped, seconds, tail


def _number(x) -> float | None:
    """x as a float if it is a plain JSON number, else None."""
    if type(x) not in (int, float):
        return None
    try:
        return float(x)
    except OverflowError:
        return None


def check_output(snap: Snapshot, out) -> tuple[str | None, dict]:
    """(why the output is malformed or None, the output as plain floats and strings).

    Every value comes from the candidate's process, so each one is checked here."""
    if not isinstance(out, dict):
        return f"the output is {type(out).__name__}, not an object of interfaces", {}
    clean = {}
    for if_id in snap.telemetry:
        row = out.get(if_id)
        if not isinstance(row, dict):
            return f"interface {if_id} is missing", {}
        checked = {}
        for f in ("rx_rate", "tx_rate", "interface_status"):
            t = row.get(f)
            if not isinstance(t, list) or len(t) != 3:
                return f"{if_id}.{f} must be a tuple (original, repaired, confidence)", {}
            c = _number(t[2])
            if c is None or not 0.0 <= c <= 1.0:
                return f"{if_id}.{f} confidence {t[2]!r:.40} is outside [0, 1]", {}
            if f == "interface_status":
                if t[1] not in ("up", "down"):
                    return f"{if_id}.interface_status {t[1]!r:.40} is not 'up' or 'down'", {}
                checked[f] = [None, t[1], c]
                continue
            v = _number(t[1])
            if v is None or not (math.isfinite(v) and v >= 0):
                return f"{if_id}.{f} repaired value {t[1]!r:.40} is not a finite rate >= 0", {}
            checked[f] = [None, v, c]
        clean[if_id] = checked
    return None, clean


def _mean(xs):
    xs = [x for x in xs if not math.isnan(x)]
    return sum(xs) / len(xs) if xs else float("nan")


def evaluate(args: Args) -> dict:
    stage, candidate, data, time_limit = args.stage, str(args.candidate), args.data, args.time_limit_s
    if not (args.candidate / "repair.py").is_file():
        return invalid(f"no repair.py in {candidate}")
    if stage == "leaderboard":
        snaps = leaderboard_snapshots(data)
    elif stage in STAGES:
        snaps = make_stage(*STAGES[stage])
    else:
        raise ValueError(f"unknown stage {stage!r}; use quick, full, test or leaderboard")
    results, import_error, stopped, seconds, tail = run_candidate(candidate, snaps, time_limit)
    if import_error:
        return invalid(f"importing repair.py failed: {import_error}")
    per, pub, ident, ident_pub, notes, rows = [], [], [], [], [], []
    by_bug: dict[str, list[float]] = {b: [] for b in BUG_TYPES}
    for i, s in enumerate(snaps):
        ident.append(score_snapshot(s.truth, identity_output(s.telemetry), s.corrupted, s.status_faults))
        ident_pub.append(score_published(s.truth, identity_output(s.telemetry)))
        msg = results.get(i, {"error": stopped})
        if "invalid" in msg:
            return invalid(f"snapshot {i}: {str(msg['invalid'])[:2000]}")
        if "error" in msg:
            notes.append(f"snapshot {i}: scored 0: {str(msg['error'])[:2000]}")
            sc = {"counter": 0.0, "status": 0.0, "calibration": 0.0, "combined": 0.0,
                  "corrupted_accuracy": float("nan"), "intact_accuracy": float("nan")}
            sp = {"combined": 0.0}
        else:
            problem, out = check_output(s, msg.get("out"))
            if problem:
                return invalid(f"snapshot {i}: {problem}")
            sc = score_snapshot(s.truth, out, s.corrupted, s.status_faults)
            sp = score_published(s.truth, out)
        per.append(sc)
        pub.append(sp)
        by_bug.setdefault(s.bug_type, []).append(sc["combined"])
        rows.append(f"{i:>4} {s.bug_type:<19}{len(s.corrupted):>5}{len(s.status_faults):>3}"
                    f"{sc['counter']:>9.4f}{sc['status']:>8.4f}{sc['calibration']:>8.4f}{sc['combined']:>9.4f}"
                    f"{ident[-1]['combined']:>9.4f}")
    balanced = _mean([p["combined"] for p in per])
    published = _mean([p["combined"] for p in pub])
    metrics = {
        "combined": round(balanced, 6),
        "counter_repair": round(_mean([p["counter"] for p in per]), 6),
        "status_repair": round(_mean([p["status"] for p in per]), 6),
        "calibration": round(_mean([p["calibration"] for p in per]), 6),
        "corrupted_accuracy": round(_mean([p["corrupted_accuracy"] for p in per]), 6),
        "intact_accuracy": round(_mean([p["intact_accuracy"] for p in per]), 6),
        "published_combined": round(published, 6),
        "identity_combined": round(_mean([p["combined"] for p in ident]), 6),
        "identity_published_combined": round(_mean([p["combined"] for p in ident_pub]), 6),
        "n_snapshots": len(snaps), "n_failed": len(notes), "time_s": round(seconds, 3),
    }
    for b, xs in by_bug.items():
        if xs:
            metrics[f"combined_{b}"] = round(_mean(xs), 6)
    score = published if stage == "leaderboard" else balanced
    chosen = pub if stage == "leaderboard" else per
    instances = {f"snapshot_{i}": p["combined"] for i, p in enumerate(chosen)}
    if stage == "leaderboard":
        head = (f"stage leaderboard: published legacy score {published:.4f} on 30 sampled rows of "
                f"evaluation_data.csv (returning the input unchanged: {metrics['identity_published_combined']:.4f}); "
                f"balanced score {balanced:.4f}.")
    else:
        head = (f"stage {stage}: score {balanced:.4f} = mean over {len(snaps)} snapshots of 0.75 counter + "
                f"0.05 status + 0.20 calibration, each term 0.5 x (corrupted counters / wrong statuses) + "
                f"0.5 x (intact ones). Returning the input unchanged scores {metrics['identity_combined']:.4f}.")
    feedback = (head + f" counter {metrics['counter_repair']:.4f} (accuracy on corrupted counters "
                f"{metrics['corrupted_accuracy']:.4f}, intact {metrics['intact_accuracy']:.4f}), status "
                f"{metrics['status_repair']:.4f}, calibration {metrics['calibration']:.4f}. Per bug type: "
                + ", ".join(f"{b} {metrics[f'combined_{b}']:.4f}" for b in BUG_TYPES if f"combined_{b}" in metrics)
                + f". Time {seconds:.2f}s (limit {time_limit:.0f}s).")
    if notes:
        feedback += "\n" + "\n".join(notes[:10])
    table = ("   i bug_type           bad flt  counter  status   calib combined identity\n" + "\n".join(rows))
    return result(score, metrics=metrics, feedback=feedback,
                  artifacts={"snapshots": table, "stderr_tail": tail}, instances=instances)


if __name__ == "__main__":
    # A bad stage name or a missing leaderboard file (ValueError) is the result's own message.
    sys.exit(run(evaluate, parser=parser(__doc__, time_limit_s=DEFAULT_TIME_LIMIT_S),
                 expected=(ValueError,)))
