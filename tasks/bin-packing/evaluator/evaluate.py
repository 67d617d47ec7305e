#!/usr/bin/env python3
"""Sealed evaluator for the online bin-packing task.

Usage: python evaluate.py --stage {quick,full,test} --candidate /path/to/worktree [--time-limit-s S]

The candidate's ``binpack.policy`` runs in a jailed process of its own (jail/side.py); this
process owns the instances, runs the online loop and keeps the authoritative bins. It steps
all instances of the stage in lockstep: one message per item index carries, for every
instance still packing, its next item and the previous decision as applied here (so the
candidate side can keep its own copy of the remaining capacities); one reply carries each
instance's bin index. Every answer is validated here and every packing re-verified at the end.
The result goes to the harness with ``adrs_eval.emit``.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from instances import Instance, stage_instances

from adrs_eval import invalid, result
from adrs_eval.candidate import CandidateError, CandidateTimeout, start
from adrs_eval.cli import Args, parser, run

HERE = Path(__file__).resolve().parent
SIDE = HERE / "jail" / "side.py"
FIT_TOL = 1e-9  # an item fits when remaining >= item - FIT_TOL
CAP_TOL = 1e-6  # final re-verification tolerance on bin loads
DEFAULT_TIME_LIMIT_S = 100.0  # soft budget; the harness kills at timeout_s
TEXT_CHARS = 2000  # most characters of candidate-sent text quoted in feedback


class PackingError(Exception):
    """The candidate produced an invalid packing (message is the reason)."""


@dataclass
class Packing:
    """One instance's online loop, as this evaluator tracks it."""

    inst: Instance
    remaining: np.ndarray = field(init=False)
    assign: np.ndarray = field(init=False)
    nbins: int = 0

    def __post_init__(self) -> None:
        n = len(self.inst.items)
        self.remaining = np.empty(n, dtype=np.float64)  # at most one bin per item
        self.assign = np.full(n, -1, dtype=np.int64)

    def where(self, i: int) -> str:
        return (f"instance {self.inst.name}, item #{i} (size {float(self.inst.items[i]):g}, "
                f"{self.nbins} open bins)")

    def place(self, i: int, ans) -> None:
        """Apply the answer for item i; raise PackingError if it is not a valid bin."""
        item = float(self.inst.items[i])
        if isinstance(ans, dict):
            raise PackingError(rejection(ans, self.where(i)))
        if type(ans) is not int:  # JSON true/false, floats, lists: never a bin index
            raise PackingError(f"choose_bin's answer reached the evaluator as "
                               f"{str(ans)[:200]!r}, not an int index ({self.where(i)})")
        nbins = self.nbins
        if ans == -1 or ans == nbins:
            self.remaining[nbins] = self.inst.capacity - item
            self.assign[i] = nbins
            self.nbins += 1
        elif 0 <= ans < nbins:
            if self.remaining[ans] < item - FIT_TOL:
                raise PackingError(
                    f"overfull bin: item does not fit in bin {ans} "
                    f"(remaining {self.remaining[ans]:g} < item {item:g}) ({self.where(i)})")
            self.remaining[ans] -= item
            self.assign[i] = ans
        else:
            raise PackingError(f"bin index {ans} out of range: valid are 0..{nbins - 1} or "
                               f"{nbins}/-1 for a new bin ({self.where(i)})")

    def verify(self) -> int:
        """Re-verify the finished packing from the assignment record; the number of bins."""
        inst, items, nbins = self.inst, self.inst.items, self.nbins
        if np.any(self.assign < 0):
            raise PackingError(f"instance {inst.name}: some items were never placed")
        loads = np.bincount(self.assign, weights=items, minlength=nbins)
        if len(loads) != nbins or np.any(loads > inst.capacity + CAP_TOL):
            raise PackingError(f"instance {inst.name}: re-verification found a bin over capacity")
        if np.any(loads <= 0):
            raise PackingError(f"instance {inst.name}: re-verification found an empty bin")
        if abs(loads.sum() - items.sum()) > CAP_TOL * len(items):
            raise PackingError(f"instance {inst.name}: placed volume differs from total item volume")
        return nbins


def rejection(ans: dict, where: str) -> str:
    """The feedback for an answer the candidate side reported as no int (candidate text)."""
    if "raised" in ans:
        return (f"choose_bin raised {str(ans['raised'])[:TEXT_CHARS]} ({where})\n"
                f"{str(ans.get('tb', ''))[:TEXT_CHARS]}")
    return f"choose_bin {str(ans.get('why', 'sent an unreadable answer'))[:TEXT_CHARS]} ({where})"


def left(deadline: float) -> float:
    return max(0.0, deadline - time.perf_counter())


def pack_all(cand, packings: list[Packing], deadline: float) -> dict[int, str]:
    """Run every instance's online loop in lockstep; return the failed instances' reasons.

    One message per item index carries item #i of every instance still packing (with its
    capacity on the first item), one reply a bin index for each: no instance ever sees an
    item before it has answered for the previous one. The candidate side applies its own
    answers to its copy of the bins; this evaluator applies them to its own, validating
    each, while the policy works on the next item (so the two processes work at once, not
    in turn). An instance whose answer is invalid stops there (its answer to the item sent
    meanwhile is ignored) while the others go on, so the failure reported is the one of the
    first instance in stage order, as when instances ran one after another. A reply that
    breaks the protocol ends the stage (PackingError).
    """
    failed: dict[int, str] = {}
    longest = max(len(p.inst.items) for p in packings)
    pending = None  # the last reply, not validated yet: (item index, instances, answers)
    for i in range(longest):
        active = [k for k, p in enumerate(packings) if k not in failed and i < len(p.inst.items)]
        if not active:
            break
        step = [[k, float(packings[k].inst.items[i])] if i else
                [k, float(packings[k].inst.items[i]), packings[k].inst.capacity] for k in active]
        try:
            cand.send(step, timeout=left(deadline))
            if pending is not None:
                validate(packings, failed, *pending)
            reply = cand.recv(timeout=left(deadline))
        except CandidateTimeout:
            raise PackingError(f"too slow: time budget exhausted during item #{i} "
                               f"({len(active)} instances still packing)") from None
        if not isinstance(reply, list) or len(reply) != len(active):
            raise PackingError(f"the policy process answered item #{i} with "
                               f"{str(reply)[:200]!r}, not one bin index per instance")
        pending = (i, active, reply)
    if pending is not None:
        validate(packings, failed, *pending)
    return failed


def validate(packings: list[Packing], failed: dict[int, str], i: int, active: list[int],
             reply: list) -> None:
    """Apply the answers for item #i; an invalid one stops its instance."""
    for k, ans in zip(active, reply):
        if k in failed:  # failed on the previous item: this answer came after
            continue
        try:
            packings[k].place(i, ans)
        except PackingError as exc:
            failed[k] = str(exc)


def check_hello(hello) -> None:
    """Raise PackingError unless the policy process reported binpack.policy imported."""
    if isinstance(hello, dict) and "import_error" in hello:
        raise PackingError(f"importing binpack.policy failed with "
                           f"{str(hello['import_error'])[:2 * TEXT_CHARS]}")
    if hello != {"ready": True}:
        raise PackingError(f"the policy process sent {str(hello)[:200]!r} instead of its "
                           "ready message")


def start_policy(worktree: str, deadline: float):
    """The jailed policy process, once binpack.policy is imported; PackingError if it is not."""
    cand = start(worktree, SIDE)
    try:
        check_hello(cand.recv(timeout=left(deadline)))
    except CandidateTimeout:
        cand.close()
        raise PackingError("too slow: time budget exhausted while importing binpack.policy") \
            from None
    except (CandidateError, PackingError):
        cand.close()
        raise
    return cand


def evaluate(args: Args) -> dict:
    stage, worktree, time_limit = args.stage, args.candidate, args.time_limit_s
    t0 = time.perf_counter()
    try:
        instances = stage_instances(stage)
    except ValueError as exc:
        return invalid(str(exc))
    deadline = t0 + time_limit
    packings = [Packing(inst) for inst in instances]
    try:
        with start_policy(worktree, deadline) as cand:
            failed = pack_all(cand, packings, deadline)
    except (PackingError, CandidateError) as exc:
        return invalid(str(exc))
    elapsed = time.perf_counter() - t0

    metrics: dict[str, float] = {}
    rows = []
    for k, p in enumerate(packings):
        try:
            if k in failed:
                raise PackingError(failed[k])
            bins = p.verify()
        except PackingError as exc:
            return invalid(str(exc), metrics=metrics)
        inst = p.inst
        ratio = inst.l1 / bins
        metrics[inst.name] = round(ratio, 6)
        rows.append((inst.name, len(inst.items), inst.l1, bins, ratio))

    score = float(np.mean([r[4] for r in rows]))
    bins_total = sum(r[3] for r in rows)
    l1_total = sum(r[2] for r in rows)
    metrics["bins_total"] = bins_total
    metrics["l1_total"] = l1_total
    metrics["n_instances"] = len(rows)

    worst = sorted(rows, key=lambda r: r[4])[:3]
    worst_txt = "; ".join(
        f"{name}: {ratio:.4f} ({bins} bins vs L1 {l1}, +{bins - l1})" for name, _, l1, bins, ratio in worst
    )
    feedback = (
        f"stage {stage}: score {score:.6f} (mean L1/bins over {len(rows)} instances; 1.0 = every "
        f"instance packed at its lower bound). Total bins {bins_total} vs L1 {l1_total} "
        f"(+{bins_total - l1_total}). Worst: {worst_txt}. "
        f"Hint: bins above L1 come from wasted space; consider how leftover gaps of different sizes "
        f"are likely to be filled later (small gaps often stay empty forever). Time {elapsed:.2f}s."
    )
    table = ["instance            items     L1   bins   ratio"]
    for name, n, l1, bins, ratio in rows:
        table.append(f"{name:<18} {n:>6} {l1:>6} {bins:>6}  {ratio:.5f}")
    return result(score, metrics=metrics, feedback=feedback,
                  artifacts={"instances": "\n".join(table)},
                  instances={name: ratio for name, _, _, _, ratio in rows})


if __name__ == "__main__":
    sys.exit(run(evaluate, parser=parser(__doc__, time_limit_s=DEFAULT_TIME_LIMIT_S)))
