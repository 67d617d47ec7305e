#!/usr/bin/env python3
"""Pack the public multi-zone spot traces into the file the evaluator ships with.

Usage: python pack_traces.py [--shared ../../../shared/data]

Reads `spot-traces/availability/1-node/aws-02-15-2023/*.json` (skypilot-org/spot-traces,
NSDI'24 "Can't Be Late": 9 AWS zones, V100 x1, 20,158 ticks of 195 s, 1 = spot available)
and the per-tick spot prices of the published ADRS windows (`cbl-multi-windows/<zone>/<i>.json`,
100 windows of 1,107 ticks per zone, each an exact slice of the raw trace: its start is found
by matching all nine zones at once). Where windows overlap and disagree on a tick's price (a
price change placed one tick apart), the most common value wins; ticks no window covers take
the nearest covered tick's price. Writes `evaluator/traces/aws-02-15-2023.json.gz`:
`{"gap_seconds", "ticks", "zones": {zone: {"available": "0110...", "prices": [[tick, $/h], ...]}}}`
with prices as change points (the price holds from its tick to the next change).
"""
from __future__ import annotations

import argparse
import gzip
import json
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "evaluator" / "traces" / "aws-02-15-2023.json.gz"
LENGTH = 1107


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=HERE.parents[2] / "shared" / "data")
    args = ap.parse_args()
    raw_dir = args.shared / "spot-traces" / "availability" / "1-node" / "aws-02-15-2023"
    windows = args.shared / "cbl-multi-windows"
    raw = {p.stem: json.loads(p.read_text()) for p in sorted(raw_dir.glob("*.json"))}
    gap = {r["metadata"]["gap_seconds"] for r in raw.values()}
    assert gap == {195}, gap
    zones = sorted(raw)
    avail = {z: raw[z]["data"] for z in zones}
    n = len(avail[zones[0]])
    votes = {z: [Counter() for _ in range(n)] for z in zones}
    for i in range(100):
        ws = {z: json.loads((windows / z / f"{i}.json").read_text()) for z in zones}
        flipped = {z: [1 - x for x in ws[z]["data"]] for z in zones}  # windows: 1 = NOT available
        starts = [o for o in range(n - LENGTH + 1)
                  if all(avail[z][o:o + LENGTH] == flipped[z] for z in zones)]
        assert len(starts) == 1, (i, starts)
        for z in zones:
            for k, p in enumerate(ws[z]["prices"]):
                votes[z][starts[0] + k][p] += 1
    out = {"about": __doc__.splitlines()[0], "gap_seconds": 195, "ticks": n, "zones": {}}
    for z in zones:
        per_tick = [v.most_common(1)[0][0] if v else None for v in votes[z]]
        known = [k for k, p in enumerate(per_tick) if p is not None]
        for k in range(n):  # nearest covered tick
            if per_tick[k] is None:
                per_tick[k] = per_tick[min(known, key=lambda j: abs(j - k))]
        changes = [[k, p] for k, p in enumerate(per_tick) if k == 0 or p != per_tick[k - 1]]
        out["zones"][z] = {"available": "".join(map(str, avail[z])), "prices": changes}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_bytes(gzip.compress(json.dumps(out, separators=(",", ":")).encode(), mtime=0))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(zones)} zones x {n} ticks)")


if __name__ == "__main__":
    main()
