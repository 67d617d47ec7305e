#!/usr/bin/env python3
"""Pack the public single-region spot traces into the file the evaluator ships with.

Usage: python pack_traces.py [--shared ../../../shared/data]

Reads `spot-traces/availability/1-node/aws-10-26-2022/*.json` (skypilot-org/spot-traces,
NSDI'24 "Can't Be Late": us-west-2a/2b, K80/V100, 1/8 GPUs per instance, 3,895 ticks of
600 s, 1 = spot available) and writes `evaluator/traces/aws-10-26-2022.json.gz`:
`{"gap_seconds", "ticks", "envs": {env: "0110..."}}`.
"""
from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "evaluator" / "traces" / "aws-10-26-2022.json.gz"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=HERE.parents[2] / "shared" / "data")
    args = ap.parse_args()
    raw_dir = args.shared / "spot-traces" / "availability" / "1-node" / "aws-10-26-2022"
    raw = {p.stem: json.loads(p.read_text()) for p in sorted(raw_dir.glob("*.json"))}
    assert {r["metadata"]["gap_seconds"] for r in raw.values()} == {600}
    ticks = {len(r["data"]) for r in raw.values()}
    assert len(ticks) == 1, ticks
    out = {"about": __doc__.splitlines()[0], "gap_seconds": 600, "ticks": ticks.pop(),
           "envs": {e: "".join(map(str, r["data"])) for e, r in raw.items()}}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_bytes(gzip.compress(json.dumps(out, separators=(",", ":")).encode(), mtime=0))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(raw)} environments x {out['ticks']} ticks)")


if __name__ == "__main__":
    main()
