#!/usr/bin/env python3
"""Sealed evaluator for the online bin-packing task.

Usage: python evaluate.py --stage {quick,full,test} --candidate /path/to/worktree

Imports ``binpack.policy`` from the candidate worktree, runs the online packing
loop itself (the candidate only answers "which bin?" for one item at a time),
validates every answer, and prints ONE JSON object as the last stdout line.
"""
from __future__ import annotations

import argparse
import json
import operator
import sys
import time
import traceback

import numpy as np

from instances import Instance, stage_instances

FIT_TOL = 1e-9  # an item fits when remaining >= item - FIT_TOL
CAP_TOL = 1e-6  # final re-verification tolerance on bin loads
DEFAULT_TIME_LIMIT_S = 100.0  # soft budget; the harness kills at timeout_s


class CandidateError(Exception):
    """The candidate produced an invalid packing (message is the reason)."""


def _tb_tail(exc: BaseException, lines: int = 8) -> str:
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    text = "".join(tb).rstrip().splitlines()
    return "\n".join(text[-lines:])


def _emit(result: dict) -> None:
    sys.stdout.flush()
    print(json.dumps(result), flush=True)


def _invalid(reason: str, artifacts: dict | None = None, metrics: dict | None = None) -> dict:
    return {
        "score": 0.0,
        "valid": False,
        "metrics": metrics or {},
        "feedback": "INVALID: " + reason,
        "artifacts": artifacts or {},
    }


def load_policy(worktree: str):
    sys.path.insert(0, worktree)
    for mod in [m for m in sys.modules if m == "binpack" or m.startswith("binpack.")]:
        del sys.modules[mod]
    import importlib

    policy = importlib.import_module("binpack.policy")
    fn = getattr(policy, "choose_bin", None)
    if not callable(fn):
        raise AttributeError("binpack.policy has no callable choose_bin(item, remaining)")
    return fn


def pack(inst: Instance, choose_bin, deadline: float) -> int:
    """Run the online loop; return the number of bins used. Raises CandidateError."""
    items = inst.items
    cap = inst.capacity
    n = len(items)
    remaining = np.empty(n, dtype=np.float64)  # at most one bin per item
    assign = np.full(n, -1, dtype=np.int64)
    nbins = 0
    for i in range(n):
        item = float(items[i])
        view = remaining[:nbins].copy()
        try:
            ans = choose_bin(item, view)
        except Exception as exc:  # noqa: BLE001 - candidate code
            raise CandidateError(
                f"choose_bin raised {type(exc).__name__}: {exc} "
                f"(instance {inst.name}, item #{i}, size {item:g}, {nbins} open bins)\n{_tb_tail(exc)}"
            ) from None
        where = f"instance {inst.name}, item #{i} (size {item:g}, {nbins} open bins)"
        if ans is None:
            raise CandidateError(f"choose_bin returned None: item lost ({where})")
        if isinstance(ans, (bool, np.bool_)):
            raise CandidateError(f"choose_bin returned a bool {ans!r}, expected an int index ({where})")
        try:
            idx = operator.index(ans)
        except TypeError:
            raise CandidateError(
                f"choose_bin returned non-integer {ans!r} of type {type(ans).__name__} ({where})"
            ) from None
        if idx == -1 or idx == nbins:
            remaining[nbins] = cap - item
            assign[i] = nbins
            nbins += 1
        elif 0 <= idx < nbins:
            if remaining[idx] < item - FIT_TOL:
                raise CandidateError(
                    f"overfull bin: item does not fit in bin {idx} "
                    f"(remaining {remaining[idx]:g} < item {item:g}) ({where})"
                )
            remaining[idx] -= item
            assign[i] = idx
        else:
            raise CandidateError(
                f"bin index {idx} out of range: valid are 0..{nbins - 1} or {nbins}/-1 for a new bin ({where})"
            )
        if (i & 255) == 0 and time.perf_counter() > deadline:
            raise CandidateError(f"too slow: time budget exhausted during {where}")

    # Independent re-verification from the assignment record.
    if np.any(assign < 0):
        raise CandidateError(f"instance {inst.name}: some items were never placed")
    loads = np.bincount(assign, weights=items, minlength=nbins)
    if len(loads) != nbins or np.any(loads > cap + CAP_TOL):
        raise CandidateError(f"instance {inst.name}: re-verification found a bin over capacity")
    if np.any(loads <= 0):
        raise CandidateError(f"instance {inst.name}: re-verification found an empty bin")
    if abs(loads.sum() - items.sum()) > CAP_TOL * n:
        raise CandidateError(f"instance {inst.name}: placed volume differs from total item volume")
    return nbins


def evaluate(stage: str, worktree: str, time_limit: float) -> dict:
    t0 = time.perf_counter()
    try:
        instances = stage_instances(stage)
    except ValueError as exc:
        return _invalid(str(exc))
    try:
        choose_bin = load_policy(worktree)
    except BaseException as exc:  # noqa: BLE001 - includes SyntaxError, SystemExit
        if isinstance(exc, KeyboardInterrupt):
            raise
        return _invalid(
            f"importing binpack.policy failed with {type(exc).__name__}: {exc}\n{_tb_tail(exc)}"
        )

    deadline = t0 + time_limit
    metrics: dict[str, float] = {}
    rows = []
    bins_total = 0
    l1_total = 0
    for inst in instances:
        ts = time.perf_counter()
        try:
            bins = pack(inst, choose_bin, deadline)
        except CandidateError as exc:
            return _invalid(str(exc), metrics=metrics)
        except BaseException as exc:  # noqa: BLE001 - e.g. SystemExit from candidate
            if isinstance(exc, KeyboardInterrupt):
                raise
            return _invalid(
                f"packing {inst.name} failed with {type(exc).__name__}: {exc}\n{_tb_tail(exc)}",
                metrics=metrics,
            )
        dt = time.perf_counter() - ts
        l1 = inst.l1
        ratio = l1 / bins
        metrics[inst.name] = round(ratio, 6)
        bins_total += bins
        l1_total += l1
        rows.append((inst.name, len(inst.items), l1, bins, ratio, dt))

    score = float(np.mean([r[4] for r in rows]))
    metrics["bins_total"] = bins_total
    metrics["l1_total"] = l1_total
    metrics["n_instances"] = len(rows)
    elapsed = time.perf_counter() - t0

    worst = sorted(rows, key=lambda r: r[4])[:3]
    worst_txt = "; ".join(
        f"{name}: {ratio:.4f} ({bins} bins vs L1 {l1}, +{bins - l1})" for name, _, l1, bins, ratio, _ in worst
    )
    feedback = (
        f"stage {stage}: score {score:.6f} (mean L1/bins over {len(rows)} instances; 1.0 = every "
        f"instance packed at its lower bound). Total bins {bins_total} vs L1 {l1_total} "
        f"(+{bins_total - l1_total}). Worst: {worst_txt}. "
        f"Hint: bins above L1 come from wasted space; consider how leftover gaps of different sizes "
        f"are likely to be filled later (small gaps often stay empty forever). Time {elapsed:.2f}s."
    )
    table = ["instance            items     L1   bins   ratio     time_s"]
    for name, n, l1, bins, ratio, dt in rows:
        table.append(f"{name:<18} {n:>6} {l1:>6} {bins:>6}  {ratio:.5f}  {dt:8.3f}")
    return {
        "score": score,
        "valid": True,
        "metrics": metrics,
        "feedback": feedback,
        "artifacts": {"instances": "\n".join(table)},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stage", required=True)
    ap.add_argument("--candidate", required=True, help="path to the candidate worktree")
    ap.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S)
    args = ap.parse_args(argv)
    try:
        result = evaluate(args.stage, args.candidate, args.time_limit)
    except BaseException as exc:  # noqa: BLE001 - never crash without a JSON line
        if isinstance(exc, KeyboardInterrupt):
            raise
        result = _invalid(f"evaluator error {type(exc).__name__}: {exc}\n{_tb_tail(exc)}")
    _emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
