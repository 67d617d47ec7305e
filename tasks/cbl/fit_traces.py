#!/usr/bin/env python3
"""Re-fit the single-region trace generator from the public spot traces.

Usage: python fit_traces.py [--shared ../../../shared/data] [--out repo/sky_spot/data/single_envs.json]
(the default --out also updates the evaluator's sealed copy, evaluator/sky_spot/data/)

Reads ``spot-traces/availability/1-node/aws-10-26-2022/<env>.json`` (13 days, 600 s ticks,
1 = spot obtainable) and writes per environment the lengths of its available and unavailable
spells and its available fraction (the generator in ``sky_spot/traces.py`` resamples them).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PUBLIC = HERE / "repo" / "sky_spot" / "data" / "single_envs.json"
SEALED = HERE / "evaluator" / "sky_spot" / "data" / "single_envs.json"
sys.path.insert(0, str(HERE / "repo"))
from sky_spot.traces import spells  # noqa: E402

ENVS = ["us-west-2a_k80_1", "us-west-2a_k80_8", "us-west-2a_v100_1", "us-west-2a_v100_8",
        "us-west-2b_k80_1", "us-west-2b_k80_8", "us-west-2b_v100_1", "us-west-2b_v100_8"]


def fit(shared: Path) -> dict:
    raw_dir = shared / "spot-traces" / "availability" / "1-node" / "aws-10-26-2022"
    params = {"gap_seconds": None, "source": str(raw_dir.relative_to(shared.parent)), "zones": {}}
    for e in ENVS:
        d = json.loads((raw_dir / f"{e}.json").read_text())
        params["gap_seconds"] = d["metadata"]["gap_seconds"]
        avail = [bool(x) for x in d["data"]]
        up, down = spells(avail)
        params["zones"][e] = {"up_spells": up, "down_spells": down,
                              "up_fraction": sum(avail) / len(avail), "price_levels": []}
    return params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=HERE.parents[2] / "shared" / "data")
    ap.add_argument("--out", type=Path, default=PUBLIC)
    args = ap.parse_args()
    if not (args.shared / "spot-traces").is_dir():
        sys.exit(f"no public traces at {args.shared}/spot-traces; the committed parameters stay as they are")
    params = fit(args.shared)
    text = json.dumps(params, separators=(",", ":")) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    if args.out == PUBLIC:  # the evaluator's sealed copy of sky_spot generates from the same
        SEALED.write_text(text)
        print(f"wrote {SEALED}")
    for e, p in params["zones"].items():
        print(f"{e}: available {p['up_fraction']:.3f}, {len(p['up_spells'])} up / {len(p['down_spells'])} down spells")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
