#!/usr/bin/env python3
"""Re-fit the trace generator's parameters from the public spot traces.

Usage: python fit_traces.py [--shared ../../../shared/data] [--out repo/sky_spot/data/multi_zones.json]
(the default --out also updates the evaluator's sealed copy, evaluator/sky_spot/data/)

Reads ``spot-traces/availability/1-node/aws-02-15-2023/<zone>.json`` (45 days, 195 s ticks,
1 = spot obtainable) and the ``prices`` of ``cbl-multi-windows/<zone>/*.json``, and writes
per zone: the lengths of available/unavailable spells (outside region-wide outages), the
available fraction, and the windows' first-tick spot prices; per cloud region (zones sharing a
prefix such as us-east-1): the lengths of spells where every zone was out at once.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PUBLIC = HERE / "repo" / "sky_spot" / "data" / "multi_zones.json"
SEALED = HERE / "evaluator" / "sky_spot" / "data" / "multi_zones.json"
sys.path.insert(0, str(HERE / "repo"))
from sky_spot.traces import spells  # noqa: E402

ZONES = ["us-east-1a_v100_1", "us-east-1c_v100_1", "us-east-1d_v100_1", "us-east-1f_v100_1",
         "us-east-2a_v100_1", "us-east-2b_v100_1", "us-west-2a_v100_1", "us-west-2b_v100_1",
         "us-west-2c_v100_1"]


def region_of(zone: str) -> str:
    return zone.split("_")[0][:-1]  # us-east-1a_v100_1 -> us-east-1


def fit(shared: Path) -> dict:
    raw_dir = shared / "spot-traces" / "availability" / "1-node" / "aws-02-15-2023"
    win_dir = shared / "cbl-multi-windows"
    raw = {}
    gap = None
    for z in ZONES:
        d = json.loads((raw_dir / f"{z}.json").read_text())
        gap = d["metadata"]["gap_seconds"]
        raw[z] = [bool(x) for x in d["data"]]
    length = min(len(v) for v in raw.values())
    params = {"gap_seconds": gap, "source": str(raw_dir.relative_to(shared.parent)),
              "zones": {}, "regions": {}}
    by_region: dict[str, list[str]] = {}
    for z in ZONES:
        by_region.setdefault(region_of(z), []).append(z)
    for region, zs in by_region.items():
        outage = [not any(raw[z][t] for z in zs) for t in range(length)]
        out_sp, clear_sp = spells(outage)  # "up" spells of the outage indicator are outages
        params["regions"][region] = {
            "zones": zs, "outage_spells": out_sp, "clear_spells": clear_sp,
            "outage_fraction": sum(outage) / length}
        for z in zs:
            cond = [raw[z][t] for t in range(length) if not outage[t]]
            up, down = spells(cond)
            levels = []
            if win_dir.is_dir():
                for f in sorted((win_dir / z).glob("*.json"), key=lambda p: int(p.stem)):
                    levels.append(round(json.loads(f.read_text())["prices"][0], 4))
            params["zones"][z] = {"region": region, "up_spells": up, "down_spells": down,
                                  "up_fraction": sum(cond) / max(1, len(cond)),
                                  "raw_up_fraction": sum(raw[z][:length]) / length,
                                  "price_levels": levels}
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
    for z, p in params["zones"].items():
        print(f"{z}: available {p['raw_up_fraction']:.3f}, {len(p['up_spells'])} up / "
              f"{len(p['down_spells'])} down spells")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
