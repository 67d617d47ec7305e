"""Transaction scheduling policy: choose the order in which transactions are issued.

The evaluator calls ``get_best_schedule(workload, num_seqs)`` once per workload and uses
only the returned order (it recomputes the makespan itself). ``get_random_costs()`` is the
published entry point that runs the three published workloads; the `leaderboard` stage
calls it.

Baseline: the published seed, a randomized greedy. Start from a random transaction; at
every step sample NUM_SAMPLES of the remaining transactions and append the one whose
prefix makespan is lowest (with probability 1 - SAMPLE_RATE append a random one instead).
"""

import random
import time

from txn_simulator import Workload
from workloads import WORKLOAD_1, WORKLOAD_2, WORKLOAD_3

NUM_SAMPLES = 10  # candidates sampled per greedy step
SAMPLE_RATE = 1.0  # probability that a step is greedy (else a random transaction is appended)
NUM_RESTARTS = 1  # independent greedy runs; the best order is kept
SEED = 42  # random.seed used by get_random_costs (the published human_SOTA seed)


def get_greedy_cost_sampled(workload, num_samples, sample_rate):
    """One randomized greedy run: (makespan, order)."""
    start_txn = random.randint(0, workload.num_txns - 1)
    txn_seq = [start_txn]
    remaining_txns = list(range(workload.num_txns))
    remaining_txns.remove(start_txn)
    for _ in range(workload.num_txns - 1):
        min_cost = 100000
        min_txn = -1
        holdout_txns = []
        done = False
        if random.random() > sample_rate:
            idx = random.randint(0, len(remaining_txns) - 1)
            txn_seq.append(remaining_txns.pop(idx))
            continue
        for _ in range(num_samples):
            idx = 0
            if len(remaining_txns) > 1:
                idx = random.randint(0, len(remaining_txns) - 1)
            else:
                done = True
            t = remaining_txns.pop(idx)
            holdout_txns.append(t)
            cost = workload.get_opt_seq_cost(txn_seq + [t])
            if cost < min_cost:
                min_cost = cost
                min_txn = t
            if done:
                break
        txn_seq.append(min_txn)
        holdout_txns.remove(min_txn)
        remaining_txns.extend(holdout_txns)
    return workload.get_opt_seq_cost(txn_seq), txn_seq


def get_best_schedule(workload, num_seqs):
    """Return (makespan, schedule): schedule is a permutation of range(workload.num_txns)."""
    best = None
    for _ in range(max(1, NUM_RESTARTS)):
        cost, seq = get_greedy_cost_sampled(workload, NUM_SAMPLES, SAMPLE_RATE)
        if best is None or cost < best[0]:
            best = (cost, seq)
    return best


def get_random_costs():
    """Published entry point: (total makespan, [order_w1, order_w2, order_w3], seconds)."""
    random.seed(SEED)
    start_time = time.time()
    total = 0
    schedules = []
    for data in (WORKLOAD_1, WORKLOAD_2, WORKLOAD_3):
        workload = Workload(data)
        _, schedule = get_best_schedule(workload, 10)
        total += workload.get_opt_seq_cost(schedule)
        schedules.append(schedule)
    return total, schedules, time.time() - start_time


if __name__ == "__main__":
    makespan, orders, seconds = get_random_costs()
    print(f"total makespan {makespan} in {seconds:.2f}s")
