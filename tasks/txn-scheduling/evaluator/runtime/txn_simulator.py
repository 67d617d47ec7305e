"""Conflict-aware transaction simulator (the published TXN scheduling semantics).

A workload is a JSON object {"txn0": "w-17 r-5 * ...", ...}: ``r-K``/``w-K`` read or write
key K, ``*`` is an operation on no key that still takes one time slot. Each transaction is
stored as a list of ``(op, key, position, txn_length)`` tuples (position is 1-based and
counts ``*`` slots; keys stay strings).

``get_opt_seq_cost(seq)`` places the transactions of ``seq`` one after another: each
operation occupies one time unit at its position, a transaction is shifted later until
every conflicting lock on a key it touches has been released (write-write and read-write
conflict, read-read is shared), and the makespan grows by how far the transaction's end
exceeds the current makespan. It works on prefixes too.
"""

from __future__ import annotations

import json


class Workload:
    """A batch of transactions; attribute names follow the published simulator."""

    def __init__(self, workload_json: str, debug: bool = False, verify: bool = False):
        self.workload = list(json.loads(workload_json).values())
        self.debug = debug
        self.verify = verify
        self.txns: list[list[tuple[str, str, int, int]]] = []
        for text in self.workload:
            ops = text.split(" ")
            parsed = []
            for pos, op in enumerate(ops, start=1):
                if op == "*":
                    continue
                kind, sep, key = op.partition("-")
                if not sep or kind not in ("r", "w") or not key or "-" in key:
                    raise ValueError(f"bad operation {op!r} in transaction {text!r}")
                parsed.append((kind, key, pos, len(ops)))
            self.txns.append(parsed)
        self.num_txns = len(self.txns)

    # Lock table per key: a list of (op, start, end, txn_index) kept in time order
    # (a new entry goes after every entry that starts at or before it).
    @staticmethod
    def insert_key_map(key, key_map, op_type, key_start, key_end, txn_id):
        locks = key_map[key]
        i = len(locks)
        while i > 0 and locks[i - 1][1] > key_start:
            i -= 1
        locks.insert(i, (op_type, key_start, key_end, txn_id))

    @staticmethod
    def find_earliest_read(key, key_map, txn_id):
        """First slot a read may take: right after the latest write lock, or 0."""
        locks = key_map[key]
        if locks[-1][3] == txn_id:
            return locks[-1][1]
        for op_type, _start, end, _tid in reversed(locks):
            if op_type != "r":
                return end + 1
        return 0

    def get_opt_seq_cost(self, txn_seq) -> int:
        """Makespan of placing the transactions of ``txn_seq`` in that order."""
        key_map: dict[str, list] = {}
        total_cost = 0
        for txn_id, t in enumerate(txn_seq):
            txn = self.txns[t]
            txn_start = 1
            txn_len = 0
            for op_type, key, pos, length in txn:
                locks = key_map.get(key)
                if locks is not None:
                    if locks[-1][0] == "w" or op_type == "w":
                        key_start = locks[-1][2] + 1
                    else:
                        key_start = self.find_earliest_read(key, key_map, txn_id)
                    txn_start = max(txn_start, key_start - pos + 1)
                txn_len = length
            txn_end = txn_start + txn_len - 1
            if txn_end > total_cost:
                total_cost = txn_end
            for op_type, key, pos, _length in txn:
                slot = txn_start + pos - 1
                if key in key_map:
                    self.insert_key_map(key, key_map, op_type, slot, slot, txn_id)
                else:
                    key_map[key] = [(op_type, slot, slot, txn_id)]
        return total_cost
