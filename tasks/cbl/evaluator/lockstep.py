"""Many CBL jobs stepped together against one jailed policy process (the evaluator's side).

Each job is a ``sky_spot.sim.tick_loop`` generator of this folder's sealed simulator copy. All
jobs of a batch advance one tick at a time in lockstep: one message carries every active job's
view of the tick (what the published ``env`` shows, nothing later), one reply carries every
job's decision: the request, the region after the step and, in leaderboard accounting, the
policy's ``remaining_restart_overhead``. Each decision is validated before the simulator sees
it; everything scored is computed here. The protocol is described in jail/side.py, the other
end. Identical in tasks/cbl and tasks/cbl-multi (a test checks).
"""

from __future__ import annotations

import sys
import time
from array import array
from dataclasses import dataclass
from itertools import repeat

from sky_spot.sim import MODES, TraceEnded, tick_loop
from sky_spot.utils import ClusterType

from adrs_eval.candidate import CandidateError

NONE, SPOT, ON_DEMAND = ClusterType.NONE, ClusterType.SPOT, ClusterType.ON_DEMAND
REQUESTS = (NONE, SPOT, ON_DEMAND)  # by code
MAX_ERROR = 4000  # characters of a job's error text kept


class PolicyLoadError(Exception):
    """Loading the candidate's policy failed in its process (the message says why)."""


class JobError(Exception):
    """One job failed: the policy raised, or sent a decision that is not one."""


@dataclass
class Job:
    avail: list  # avail[region][tick]: spot available
    duration: float
    deadline: float
    overhead: float
    spot_prices: list
    od_price: float
    names: list[str]
    params: dict  # the strategy's arguments (task_duration_hours, deadline_hours, ...)


class BadRequest:
    """What ``_step`` returned when it was not a ``ClusterType``, as the policy process
    described it; the simulator fails the job with it (unless the job is already done)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def short(value, n: int = 200) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= n else text[:n] + "..."


def hello(cand, deadline: float) -> str:
    """Wait for the policy process to load the policy; its NAME, or PolicyLoadError."""
    msg = cand.recv(timeout=left(deadline))
    if isinstance(msg, dict) and isinstance(msg.get("error"), str):
        raise PolicyLoadError(msg["error"][:MAX_ERROR])
    if not isinstance(msg, dict) or not isinstance(msg.get("ok"), str):
        raise CandidateError(f"the policy process sent {short(msg)} instead of its greeting")
    return msg["ok"][:200]


def left(deadline: float) -> float:
    return max(0.01, deadline - time.monotonic())


def spot_bits(avail: list) -> list[int]:
    """Per tick, the regions that have spot as the bits of an int (bit r: region r).

    Done on whole traces at once: region r's trace becomes one big int with the tick-t flag at
    bit t*W + r (a W-bit array word per tick), the regions' ints are ORed, and the words read
    back; about 50x faster than a loop over ticks."""
    length = min(len(a) for a in avail)
    word = array("Q")
    if len(avail) > 8 * word.itemsize:
        return [sum(1 << r for r, a in enumerate(col) if a) for col in zip(*avail)]
    total = 0
    for r, a in enumerate(avail):
        total |= int.from_bytes(array("Q", a[:length]).tobytes(), sys.byteorder) << r
    word.frombytes(total.to_bytes(length * word.itemsize, sys.byteorder))
    return word.tolist()


def decision(code, region, rem, n_regions: int, leaderboard: bool):
    """(request, region, policy's remaining_restart_overhead) from one job's reply."""
    if code is None:  # the policy raised: its error text
        raise JobError(short(region, MAX_ERROR))
    if code.__class__ is int and 0 <= code <= 2:
        request = REQUESTS[code]
    else:
        request = BadRequest(short(code, 300))
    if region.__class__ is not int or not 0 <= region < n_regions:
        raise JobError(f"IndexError: region index {short(region)} out of range 0..{n_regions - 1}")
    if not leaderboard:
        return request, region, None
    # a float, or None (the simulator reads None as published: no overhead, and fails comparing)
    if rem.__class__ is int and abs(rem) < 1e300:
        rem = float(rem)
    elif rem.__class__ is not float and rem is not None:
        raise JobError(f"TypeError: remaining_restart_overhead {short(rem)} is not a number")
    return request, region, rem


def streams(started: list[int]) -> tuple[list[int], list[int]]:
    """The two streams of a batch's started jobs (jail/side.py splits them the same way)."""
    return started[0::2], started[1::2]


def run_batch(cand, jobs: list[Job], *, gap: float, mode: str, deadline: float) -> list[dict]:
    """Simulate every job with the policy process `cand`. One result dict per job, in order:
    the simulator's figures, or {"error": text} for a job that failed (it stops there; the
    others go on). Raises CandidateError when the process breaks the protocol or misses
    `deadline` (time.monotonic())."""
    if mode not in MODES:
        raise ValueError(f"unknown accounting mode {mode!r}")
    cand.send({"start": [[j.params, j.names, j.duration] for j in jobs], "gap": gap,
               "mode": mode}, timeout=left(deadline))
    started = cand.recv(timeout=left(deadline))
    if (started.__class__ is not list or len(started) != len(jobs)
            or not all(e is None or e.__class__ is str for e in started)):
        raise CandidateError(f"the policy process answered the start of {len(jobs)} jobs with "
                             f"{short(started)}")
    batch = Batch(cand, jobs, started, gap, mode, deadline)
    batch.run()
    return batch.results


class Batch:
    """The jobs of one run_batch call, stepped together tick by tick.

    The started jobs are split into two streams (even and odd positions), each a message per
    tick, so that the policy process decides one stream while this process simulates the other
    (two cores work at once). A stream's tick t+1 goes out only once both streams' tick t are
    answered: the policy process never sees a later tick of a trace that another of its jobs
    is still on (jobs share traces: the same zone window is in several scenarios)."""

    def __init__(self, cand, jobs: list[Job], started: list, gap: float, mode: str,
                 deadline: float):
        self.cand, self.deadline = cand, deadline
        self.leaderboard = mode == "leaderboard"
        self.width = 3 if self.leaderboard else 2  # numbers per job in a reply
        n = len(jobs)
        self.results: list = [None] * n
        self.loops: list = [None] * n  # the running jobs' tick_loop generators
        self.views: list = [None] * n  # what each yielded last
        self.bits: list = [None] * n  # spot_bits of each job's trace
        self.regions = [0] * n
        self.started = [i for i, err in enumerate(started) if err is None]
        shared_bits: dict = {}
        for i, (job, err) in enumerate(zip(jobs, started)):
            if err is not None:
                self.results[i] = {"error": short(err, MAX_ERROR)}
                continue
            loop = tick_loop(job.avail, gap, job.duration, job.deadline, job.overhead,
                             mode=mode, spot_prices=job.spot_prices, od_price=job.od_price)
            try:
                self.views[i] = next(loop)
            except (TraceEnded, ValueError) as exc:  # an empty or unusable trace
                self.results[i] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            self.loops[i] = loop
            key = tuple(map(id, job.avail))
            if key not in shared_bits:
                shared_bits[key] = spot_bits(job.avail)
            self.bits[i] = shared_bits[key]
            self.regions[i] = len(job.avail)

    def run(self) -> None:
        # per stream: the jobs still running, and those gone since its last message (jobs
        # that could not be simulated at all are gone from the start)
        a, b = ([i for i in s if self.loops[i] is not None] for s in streams(self.started))
        ga, gb = ([i for i in s if self.loops[i] is None] for s in streams(self.started))
        if a:
            self.send(0, a, ga)
        if b:
            self.send(1, b, gb)
        while a or b:
            if a:
                a, ga = self.apply(a, self.recv(a))
            if b:
                replies = self.recv(b)
                if a:  # every job's tick is answered: the first stream's next one may go
                    self.send(0, a, ga)
                b, gb = self.apply(b, replies)
                if b:
                    self.send(1, b, gb)
            elif a:
                self.send(0, a, ga)

    def send(self, stream: int, active: list[int], gone: list[int]) -> None:
        """One tick of a stream's active jobs, as the policy process sees it (jail/side.py)."""
        row: list = []
        add = row.extend
        views, bits = self.views, self.bits
        for i in active:
            t, last, current, has_spot, done, _, rem = views[i]
            seen = (18 * bits[i][t] + (0 if last is NONE else 6 if last is SPOT else 12)
                    + (0 if current is NONE else 2 if current is SPOT else 4) + has_spot)
            add((seen, done, rem))
        self.cand.send({"t": t, "s": stream, "gone": gone, "r": row}, timeout=left(self.deadline))

    def recv(self, active: list[int]) -> list:
        replies = self.cand.recv(timeout=left(self.deadline))
        if replies.__class__ is not list or len(replies) != self.width * len(active):
            raise CandidateError(f"the policy process answered a tick of {len(active)} jobs "
                                 f"with {short(replies)}")
        return replies

    def apply(self, active: list[int], replies: list) -> tuple[list[int], list[int]]:
        """Step these jobs with their decisions: the ones still running, and the ones that
        finished or failed in this tick."""
        loops, views, regions, leaderboard = self.loops, self.views, self.regions, self.leaderboard
        still, gone = [], []
        reply = iter(replies)
        rems = reply if leaderboard else repeat(None)
        for i, code, region, rem in zip(active, reply, reply, rems):
            try:
                views[i] = loops[i].send(decision(code, region, rem, regions[i], leaderboard))
                still.append(i)
                continue
            except StopIteration as stop:
                self.results[i] = stop.value
            except (JobError, TraceEnded, TypeError) as exc:
                self.results[i] = {"error": str(exc) if isinstance(exc, JobError)
                                   else f"{type(exc).__name__}: {exc}"}
            gone.append(i)
        return still, gone
