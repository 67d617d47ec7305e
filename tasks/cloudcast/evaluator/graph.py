"""The region graph: 71 cloud regions, an edge per measured (src, dst) pair.

An edge has ``cost`` ($/GB egress) and ``throughput`` (Gbps, already x num_vms), exactly as
the published ``make_nx_graph``: throughput = num_vms * throughput_sent / 1e9, self-loops
skipped, edges in throughput.csv row order, costs joined on (src, dest).

Two sources give the same rows: the shipped ``regions.csv`` (built by build_regions.py) and
a data folder with the original ``profiles/cost.csv`` and ``profiles/throughput.csv``.
"""
from __future__ import annotations

import csv
from pathlib import Path

REGIONS_FILE = "regions.csv"
NUM_VMS = 2

Row = tuple[str, str, str, str]  # src, dst, cost text ("" if unknown), throughput_sent text


def read_profiles(data_dir: Path) -> list[Row]:
    """Rows from the two published profiles (``data_dir/profiles/*.csv``)."""
    prof = Path(data_dir) / "profiles"
    cost: dict[tuple[str, str], str] = {}
    with (prof / "cost.csv").open(newline="") as f:
        for r in csv.DictReader(f):
            cost[(r["src"], r["dest"])] = r["cost"]
    tput: dict[tuple[str, str], str] = {}  # dict keeps first insertion order, last value
    with (prof / "throughput.csv").open(newline="") as f:
        for r in csv.DictReader(f):
            if r["src_region"] == r["dst_region"]:
                continue
            tput[(r["src_region"], r["dst_region"])] = r["throughput_sent"]
    return [(s, d, cost.get((s, d), ""), t) for (s, d), t in tput.items()]


def read_regions(path: Path | None = None) -> list[Row]:
    """Rows from the shipped regions.csv."""
    path = path or Path(__file__).resolve().parent / REGIONS_FILE
    with Path(path).open(newline="") as f:
        return [(r["src"], r["dst"], r["cost"], r["throughput_sent"]) for r in csv.DictReader(f)]


def load_rows(data_dir: str | None) -> list[Row]:
    return read_profiles(Path(data_dir)) if data_dir else read_regions()


def edge_table(rows: list[Row], num_vms: int = NUM_VMS) -> dict[tuple[str, str], tuple[float, float]]:
    """{(u, v): (cost $/GB, throughput Gbps)} in row order; edges without a cost are left out."""
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for s, d, c, t in rows:
        if c == "":
            continue
        out[(s, d)] = (float(c), num_vms * float(t) / 1e9)
    return out


def to_networkx(table: dict[tuple[str, str], tuple[float, float]]):
    """A fresh nx.DiGraph with edge attributes ``cost`` and ``throughput``."""
    import networkx as nx

    g = nx.DiGraph()
    for (s, d), (c, t) in table.items():
        g.add_edge(s, d, cost=c, throughput=t)
    return g
