"""Prefix-hit metric and output validation for the LLM-SQL task.

The published metric (`evaluate_df_prefix_hit_cnt`) walks the rows in output order, inserts each
serialized row into a character trie and counts the longest common prefix of the row with any
earlier row. The longest common prefix of a string with any member of a set is reached at one of
its two lexicographic neighbours in that set, so the same numbers come from one sort and a
doubly linked list: visit the rows from last to first; at row i the list holds exactly rows
0..i, so i's neighbours in the list are its nearest earlier rows in sorted order; then unlink i.
O(n log n) comparisons plus one binary-searched LCP per neighbour, instead of a Python trie.
"""
from __future__ import annotations

import itertools
import math
from collections import defaultdict


def cell_str(value) -> str:
    """The string a cell contributes to its row: str(value), with NaN/None as ""."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    try:
        # pandas.NA / NaT
        if value != value:  # noqa: PLR0124 - NaN-like test
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def lcp(a: str, b: str) -> int:
    """Length of the longest common prefix of a and b (binary search on C-level slices)."""
    n = min(len(a), len(b))
    if n == 0 or a[0] != b[0]:
        return 0
    if a[:n] == b[:n]:
        return n
    lo, hi = 1, n  # a[:lo] == b[:lo], a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def prefix_hits(rows: list[str]) -> tuple[int, int]:
    """(sum of hits, sum of lengths): hit_i = longest common prefix of rows[i] with any rows[j], j < i."""
    n = len(rows)
    total = sum(len(s) for s in rows)
    if n < 2:
        return 0, total
    order = sorted(range(n), key=rows.__getitem__)
    rank = [0] * n
    for r, i in enumerate(order):
        rank[i] = r
    prv = list(range(-1, n - 1))
    nxt = list(range(1, n + 1))
    nxt[-1] = -1
    hits = 0
    for i in range(n - 1, 0, -1):
        r = rank[i]
        s = rows[i]
        p, q = prv[r], nxt[r]
        best = 0
        if p >= 0:
            best = lcp(s, rows[order[p]])
        if q >= 0 and best < len(s):
            best = max(best, lcp(s, rows[order[q]]))
        hits += best
        if p >= 0:
            nxt[p] = q
        if q >= 0:
            prv[q] = p
    return hits, total


def hit_rate(rows: list[str]) -> float:
    hits, total = prefix_hits(rows)
    return hits / total if total else 0.0


class Reference:
    """The private input table as fields: what every output row must be a permutation of."""

    def __init__(self, columns: list[str], cells: list[list[str]], merges: list[list[str]]):
        index = {c: k for k, c in enumerate(columns)}
        for group in merges:
            missing = [c for c in group if c not in index]
            if missing:
                raise ValueError(f"merge spec names unknown columns {missing}")
        merged = {c for g in merges for c in g}
        plain = [index[c] for c in columns if c not in merged]
        groups = [[index[c] for c in g] for g in merges]
        self.n_rows = len(cells)
        self.n_fields = len(plain) + len(groups)
        # Identity order with merges applied (as the published anchor): plain columns in input
        # order, then each merged group concatenated in spec order.
        self.identity_rows = []
        # forms: sorted field tuple -> list of row classes that accept it; counts per class.
        self.forms: dict[tuple, list[int]] = defaultdict(list)
        self.class_count: list[int] = []
        class_of: dict[tuple, int] = {}
        for row in cells:
            base = [row[k] for k in plain]
            gvals = [[row[k] for k in g] for g in groups]
            self.identity_rows.append("".join(base) + "".join("".join(v) for v in gvals))
            key = (tuple(sorted(base)), tuple(tuple(v) for v in gvals))
            cid = class_of.get(key)
            if cid is None:
                cid = len(self.class_count)
                class_of[key] = cid
                self.class_count.append(0)
                options = [sorted({"".join(p) for p in itertools.permutations(v)}) for v in gvals]
                for combo in itertools.product(*options):
                    form = tuple(sorted(base + list(combo)))
                    self.forms[form].append(cid)
            self.class_count[cid] += 1

    def check(self, out_rows: list[list[str]]) -> str | None:
        """None when out_rows is a row permutation with per-row field permutations, else why not."""
        if len(out_rows) != self.n_rows:
            return (f"the output has {len(out_rows)} rows, the input {self.n_rows}: "
                    "rows must be a permutation of the input rows")
        left = list(self.class_count)
        for i, row in enumerate(out_rows):
            if len(row) != self.n_fields:
                return (f"output row {i} has {len(row)} fields; expected {self.n_fields} "
                        f"(the input's columns with each col_merge group concatenated into one field)")
            cands = self.forms.get(tuple(sorted(row)))
            if not cands:
                return (f"output row {i} is not a field permutation of any input row "
                        f"(a value was changed, dropped, added, or a merge group was not concatenated whole): "
                        f"{_short(row)}")
            for cid in cands:
                if left[cid] > 0:
                    left[cid] -= 1
                    break
            else:
                return f"output row {i} duplicates an input row more often than the input holds it: {_short(row)}"
        return None


def _short(row: list[str], width: int = 160) -> str:
    text = repr(row)
    return text if len(text) <= width else text[:width] + "...]"
