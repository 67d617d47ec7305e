#!/usr/bin/env python3
"""Regenerate ``regions.csv`` (the shipped region graph) from the public profiles.

Usage: python build_regions.py /path/to/cloudcast-data   (a folder holding profiles/cost.csv
and profiles/throughput.csv, e.g. ../../../../shared/data/cloudcast)

Keeps only what the published evaluator reads: the (src_region, dst_region, throughput_sent)
columns of throughput.csv, in row order, joined with cost.csv's $/GB. Values are copied as
text, so the graph built from regions.csv equals the one built from the two profiles.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import graph


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    rows = graph.read_profiles(Path(argv[0]))
    out = Path(__file__).resolve().parent / graph.REGIONS_FILE
    with out.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["src", "dst", "cost", "throughput_sent"])
        w.writerows(rows)
    print(f"wrote {out} ({len(rows)} edges)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
