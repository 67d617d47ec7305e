"""Broadcast instances: the five published configurations and seeded generated ones.

An instance is one broadcast: a source region, destination regions, the data volume (GB),
the number of partitions, and per-provider ingress/egress limits (Gbps per VM; the simulator
multiplies them by num_vms). The five published configurations (ADRS cloudcast
``config/*.json``) are written out below; ``generate`` draws new source/destination sets
from the same 71-region graph.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

INGRESS = {"aws": 10, "gcp": 16, "azure": 16}
EGRESS = {"aws": 5, "gcp": 7, "azure": 16}
DATA_VOL_GB = 300
NUM_PARTITIONS = 10


@dataclass(frozen=True)
class Instance:
    name: str
    src: str
    dsts: tuple[str, ...]
    data_vol: float = DATA_VOL_GB
    num_partitions: int = NUM_PARTITIONS
    ingress: dict = field(default_factory=lambda: dict(INGRESS))
    egress: dict = field(default_factory=lambda: dict(EGRESS))

    def to_json(self) -> dict:
        return {"name": self.name, "src": self.src, "dsts": list(self.dsts),
                "num_partitions": self.num_partitions}


# The published configurations (source_node, dest_nodes); all use 300 GB, 10 partitions
# and the INGRESS/EGRESS limits above.
PUBLISHED = {
    "inter_agz": ("gcp:asia-southeast1-a", ("azure:australiaeast", "azure:eastasia", "aws:ap-southeast-2",
                                            "azure:brazilsouth", "aws:sa-east-1", "gcp:australia-southeast1-a")),
    "inter_gaz2": ("gcp:asia-southeast1-a", ("azure:australiaeast", "azure:eastasia", "aws:ap-southeast-2",
                                             "azure:brazilsouth", "aws:sa-east-1", "gcp:australia-southeast1-a",
                                             "aws:us-west-2")),
    "intra_aws": ("aws:ap-northeast-1", ("aws:me-south-1", "aws:eu-south-1", "aws:us-west-2", "aws:us-east-1",
                                         "aws:sa-east-1", "aws:ap-southeast-1")),
    "intra_azure": ("azure:australiaeast", ("azure:westeurope", "azure:westus", "azure:koreacentral",
                                            "azure:brazilsouth", "azure:uaenorth", "azure:centralindia")),
    "intra_gcp": ("gcp:us-east1-b", ("gcp:europe-west1-b", "gcp:australia-southeast1-a", "gcp:us-west4-a",
                                     "gcp:southamerica-east1-a", "gcp:asia-southeast2-a", "gcp:europe-north1-a")),
}


def published(name: str) -> Instance:
    src, dsts = PUBLISHED[name]
    return Instance(name, src, dsts)


def from_config(path: Path) -> Instance:
    """An instance from a published-format JSON config file."""
    cfg = json.loads(Path(path).read_text())
    ingress = dict(INGRESS, **cfg.get("ingress_limit", {}))
    egress = dict(EGRESS, **cfg.get("egress_limit", {}))
    return Instance(Path(path).stem, cfg["source_node"], tuple(cfg["dest_nodes"]), float(cfg["data_vol"]),
                    int(cfg["num_partitions"]), ingress, egress)


FAMILIES = ("intra_aws", "intra_azure", "intra_gcp", "inter")


def generate(family: str, seed: int, regions: list[str]) -> Instance:
    """A new broadcast on the same graph: ``intra_<provider>`` draws the source and 5-7
    destinations from one provider, ``inter`` from all three (6-8 destinations)."""
    rng = random.Random(f"cloudcast/{family}/{seed}")
    if family == "inter":
        pool = sorted(regions)
        k = rng.randint(6, 8)
    else:
        provider = family.split("_", 1)[1]
        pool = sorted(r for r in regions if r.split(":", 1)[0] == provider)
        k = rng.randint(5, 7)
    picked = rng.sample(pool, k + 1)
    return Instance(f"{family}_s{seed}", picked[0], tuple(picked[1:]))


def _gen(specs: list[tuple[str, int]], regions: list[str]) -> list[Instance]:
    return [generate(f, s, regions) for f, s in specs]


def stage_instances(stage: str, regions: list[str], data_dir: str | None = None) -> list[Instance]:
    """The instances of a stage. ``leaderboard`` reads ``data_dir/config/*.json``."""
    if stage == "quick":
        return [published("intra_aws")] + _gen([("inter", 1), ("intra_gcp", 1)], regions)
    if stage == "full":
        return [published(n) for n in sorted(PUBLISHED)] + _gen(
            [("inter", 1), ("inter", 2), ("inter", 3), ("intra_aws", 2), ("intra_azure", 2),
             ("intra_gcp", 2), ("inter", 4)], regions)
    if stage == "test":
        # Held out: seeds never used by quick/full.
        return _gen([(f, 7000 + 13 * i + j) for i in range(3) for j, f in enumerate(FAMILIES)], regions)
    if stage == "leaderboard":
        if not data_dir:
            raise ValueError("stage leaderboard needs the published data: pass --data DIR "
                             "(a folder with config/*.json and profiles/*.csv)")
        files = sorted((Path(data_dir) / "config").glob("*.json"))
        if not files:
            raise ValueError(f"stage leaderboard: no config/*.json under {data_dir}")
        return [from_config(p) for p in files]
    raise ValueError(f"unknown stage {stage!r}: expected quick, full, test or leaderboard")
