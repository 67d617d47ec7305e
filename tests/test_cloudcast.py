"""End-to-end tests for tasks/cloudcast: the sealed evaluator run as a real subprocess.

Every known loophole of the published Cloudcast evaluator has a candidate written out here
that exploits it; each scores no better than the baseline (100) or fails.
"""
from __future__ import annotations

import csv
import math
import statistics
import subprocess
import sys

import pytest

from tests.fixtures.tasks import SHARED, TaskFolder

FOLDER = TaskFolder("cloudcast", "cloudcast/search.py", dedent=True)
TASK, EVAL_DIR, REPO = FOLDER.root, FOLDER.evaluator, FOLDER.repo
DATA = SHARED / "data" / "cloudcast"
run_eval, make_candidate, with_constants = FOLDER.run_eval, FOLDER.candidate, FOLDER.with_constants

pytest.importorskip("networkx", reason="the cloudcast task needs networkx (its graph is an nx.DiGraph)")


# The published baseline routing, used by candidates that cheat on top of it.
CHEAPEST = """
import networkx as nx
from broadcast import BroadCastTopology

def cheapest(src, dst, G):
    h = G.copy()
    h.remove_edges_from(list(h.in_edges(src)))
    return nx.dijkstra_path(h, src, dst, weight="cost")
"""


@pytest.fixture(scope="module")
def quick_baseline(tmp_path_factory) -> dict:
    return run_eval(make_candidate(tmp_path_factory.mktemp("cc"), "baseline"), "quick")


def test_task_check_passes():
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "tasks", "check", str(TASK)],
                          capture_output=True, text=True, timeout=120)
    if "No module named agent.cli" in proc.stderr:
        pytest.skip("agent.cli is not importable here")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok: task 'cloudcast'" in proc.stdout


def test_baseline_quick_scores_100(quick_baseline):
    r = quick_baseline
    assert r["valid"] is True
    assert r["score"] == pytest.approx(100.0)
    assert r["metrics"]["n_failed"] == 0
    assert r["metrics"]["total_cost_usd"] == pytest.approx(r["metrics"]["reference_total_cost_usd"])
    # intra_aws is a published configuration; its baseline cost is part of the published $1045.86.
    assert r["metrics"]["cost_usd_intra_aws"] == pytest.approx(165.024, abs=1e-3)


def test_tuned_constant_beats_baseline_on_full_and_test(tmp_path):
    wt = make_candidate(tmp_path, "tuned", with_constants(REUSE_COST_FACTOR=0.5))
    full = run_eval(wt, "full")
    test = run_eval(wt, "test")
    assert full["valid"] and test["valid"]
    assert full["score"] > 120.0
    assert test["score"] > 120.0
    assert full["metrics"]["total_cost_usd"] < full["metrics"]["reference_total_cost_usd"]


def test_instances_are_broadcasts_whose_mean_is_the_score(tmp_path, quick_baseline):
    """`review` pairs per-broadcast scores across candidates: the same names for every
    candidate, each 100 x reference cost / its cost, their mean the stage's score."""
    base = run_eval(make_candidate(tmp_path, "base"), "test")
    tuned = run_eval(make_candidate(tmp_path, "tuned", with_constants(REUSE_COST_FACTOR=0.5)), "test")
    assert len(base["instances"]) == 12 and "inter_s7003" in base["instances"]
    assert list(quick_baseline["instances"]) == ["intra_aws", "inter_s1", "intra_gcp_s1"]
    assert tuned["instances"].keys() == base["instances"].keys()
    assert base["instances"] == pytest.approx(dict.fromkeys(base["instances"], 100.0))
    assert max(tuned["instances"].values()) > 100.0
    for r in (base, tuned, quick_baseline):
        assert r["valid"] and all(math.isfinite(v) for v in r["instances"].values())
        assert r["score"] == pytest.approx(statistics.fmean(r["instances"].values()), abs=1e-9)


def test_held_out_instances_differ_from_full():
    sys.path.insert(0, str(EVAL_DIR))
    try:
        import graph
        import instances
    finally:
        sys.path.remove(str(EVAL_DIR))
    table = graph.edge_table(graph.read_regions())
    regions = sorted({u for u, _ in table})
    assert len(regions) == 71 and len(table) == 71 * 70
    full = instances.stage_instances("full", regions)
    test = instances.stage_instances("test", regions)
    assert len(test) == 12
    full_keys = {(i.src, i.dsts) for i in full}
    assert not any((i.src, i.dsts) in full_keys for i in test)
    assert not {i.name for i in full} & {i.name for i in test}
    # Deterministic: the same seeds give the same instances.
    assert [(i.src, i.dsts) for i in instances.stage_instances("test", regions)] == [(i.src, i.dsts) for i in test]


# --------------------------------------------------------------------------- loopholes


def test_fabricated_edge_data_is_ignored(tmp_path, quick_baseline):
    """Published loophole: the simulator trusted the cost/throughput in the returned edge dicts.
    Here every hop claims cost 0 and 1e6 Gbps, on the direct src -> dst edge."""
    wt = make_candidate(tmp_path, "fake_dicts", CHEAPEST + """
def search_algorithm(src, dsts, G, num_partitions):
    topo = BroadCastTopology(src, dsts, num_partitions)
    for dst in dsts:
        for p in range(num_partitions):
            topo.set_dst_partition_paths(dst, p, [[src, dst, {"cost": 0.0, "throughput": 1e6}]])
    return topo
""")
    r = run_eval(wt, "quick")
    assert r["valid"] is True
    assert r["score"] <= quick_baseline["score"] + 1e-9
    # Priced at the real direct-edge costs, not at 0.
    assert r["metrics"]["total_cost_usd"] > 100.0


def test_fake_edge_data_on_baseline_paths_and_mutated_graph_score_exactly_baseline(tmp_path, quick_baseline):
    """Published loopholes: the simulator trusted the returned edge dicts, and G is passed by
    reference. Route like the baseline, then zero every cost in G and return made-up dicts."""
    wt = make_candidate(tmp_path, "fake_dicts_mutate", CHEAPEST + """
def search_algorithm(src, dsts, G, num_partitions):
    paths = {dst: cheapest(src, dst, G) for dst in dsts}
    for u, v, d in G.edges(data=True):
        d["cost"] = 0.0
        d["throughput"] = 1e6
    topo = BroadCastTopology(src, dsts, num_partitions)
    for dst, path in paths.items():
        hops = [[a, b, {"cost": 0, "throughput": 1e9}] for a, b in zip(path, path[1:])]
        for p in range(num_partitions):
            topo.set_dst_partition_paths(dst, p, hops)
    return topo
""")
    r = run_eval(wt, "quick")
    assert r["valid"] is True
    assert r["score"] == pytest.approx(quick_baseline["score"])
    assert r["metrics"]["total_cost_usd"] == pytest.approx(quick_baseline["metrics"]["total_cost_usd"])


# Quick has one source per provider (aws, azure, gcp), so one candidate can try a different
# exploit on each instance; every instance must fail, each with its own reason.

def test_made_up_nodes_hub_trick_and_fake_strings_are_rejected(tmp_path):
    """aws: relay through a region that does not exist. azure: LEVI's hub trick, src -> hub
    listed only under the first destination, the others starting at the hub (their transfer
    time never counted that edge). gcp: node names that compare equal to anything."""
    wt = make_candidate(tmp_path, "fake_nodes", CHEAPEST + """
class Anything(str):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = str.__hash__

def search_algorithm(src, dsts, G, num_partitions):
    topo = BroadCastTopology(src, dsts, num_partitions)
    hub = dsts[0]
    for dst in dsts:
        if src.startswith("aws"):
            hops = [[src, "free:relay", {"cost": 0}], ["free:relay", dst, {"cost": 0}]]
        elif src.startswith("azure"):
            hops = [[src, hub, G[src][hub]]] if dst == hub else [[hub, dst, G[hub][dst]]]
        else:
            hops = [[Anything(src), Anything(dst), {}]]
        for p in range(num_partitions):
            topo.set_dst_partition_paths(dst, p, hops)
    return topo
""")
    r = run_eval(wt, "quick")
    assert r["score"] == 0.0 and r["valid"] is False
    assert r["metrics"]["n_failed"] == r["metrics"]["n_instances"] == 3
    errors = r["artifacts"]["errors"]
    assert "free:relay is not an edge of the region graph" in errors
    assert "not contiguous from the source" in errors
    assert "must be a region name string" in errors


def test_gapped_short_and_missing_paths_are_rejected(tmp_path):
    """aws: a gap in the middle of a path. azure: a path that stops short of its destination.
    gcp: the last destination is left out."""
    wt = make_candidate(tmp_path, "gaps", CHEAPEST + """
def search_algorithm(src, dsts, G, num_partitions):
    others = [n for n in G.nodes if n != src and n not in dsts]
    a, b = others[0], others[1]
    routed = dsts[:-1] if src.startswith("gcp") else dsts
    topo = BroadCastTopology(src, routed, num_partitions)
    for dst in routed:
        if src.startswith("aws"):
            hops = [[src, a, G[src][a]], [b, dst, G[b][dst]]]   # gap: a != b
        elif src.startswith("azure"):
            hops = [[src, a, G[src][a]]]                         # never reaches dst
        else:
            path = cheapest(src, dst, G)
            hops = [[u, v, G[u][v]] for u, v in zip(path, path[1:])]
        for p in range(num_partitions):
            topo.set_dst_partition_paths(dst, p, hops)
    return topo
""")
    r = run_eval(wt, "quick")
    assert r["score"] == 0.0 and r["valid"] is False
    errors = r["artifacts"]["errors"]
    assert "hop 1: path is not contiguous from the source" in errors
    assert "not at the destination" in errors
    assert "no paths for destination" in errors


def test_missing_partitions_fail_the_instance(tmp_path):
    """Shrink num_partitions to 1 and route only partition 0: 9 partitions are never sent."""
    wt = make_candidate(tmp_path, "one_partition", CHEAPEST + """
def search_algorithm(src, dsts, G, num_partitions):
    topo = BroadCastTopology(src, dsts, 1)
    topo.set_num_partitions(1)
    for dst in dsts:
        path = cheapest(src, dst, G)
        topo.set_dst_partition_paths(dst, 0, [[a, b, G[a][b]] for a, b in zip(path, path[1:])])
    return topo
""")
    r = run_eval(wt, "quick")
    assert r["score"] == 0.0
    assert "partition 1: no path" in r["feedback"]


def test_tampering_with_the_evaluator_and_printing_a_score_has_no_effect(tmp_path, quick_baseline):
    """The candidate finds the evaluator's modules and patches the simulator to report $0, writes
    a forged result line, and prints a forged evaluator JSON line; then it routes like the baseline."""
    wt = make_candidate(tmp_path, "tamper", CHEAPEST + """
import json, os, sys
here = os.path.dirname(os.path.abspath(sys.argv[0]))
sys.path.insert(0, here)
try:
    import simulate
    simulate.simulate = lambda *a, **k: simulate.Outcome(0.001, 0.0, 0.001, 0.0, 0, 0)
except ImportError:
    pass
main = sys.modules.get("__main__")
for name in ("simulate", "leaderboard_score"):
    if main is not None and hasattr(main, name):
        setattr(main, name, lambda *a, **k: 1e9)
print(json.dumps({"score": 1e9, "valid": True, "metrics": {}, "feedback": "", "artifacts": {}}))

def search_algorithm(src, dsts, G, num_partitions):
    topo = BroadCastTopology(src, dsts, num_partitions)
    for dst in dsts:
        path = cheapest(src, dst, G)
        for p in range(num_partitions):
            topo.set_dst_partition_paths(dst, p, [[a, b, G[a][b]] for a, b in zip(path, path[1:])])
    return topo
""")
    r = run_eval(wt, "quick")
    assert r["score"] == pytest.approx(quick_baseline["score"])
    assert r["metrics"]["total_cost_usd"] == pytest.approx(quick_baseline["metrics"]["total_cost_usd"])


def test_exception_on_one_instance_counts_zero(tmp_path, quick_baseline):
    wt = make_candidate(tmp_path, "crash_one", CHEAPEST + """
def search_algorithm(src, dsts, G, num_partitions):
    if src.startswith("gcp"):
        raise RuntimeError("boom on gcp")
    topo = BroadCastTopology(src, dsts, num_partitions)
    for dst in dsts:
        path = cheapest(src, dst, G)
        for p in range(num_partitions):
            topo.set_dst_partition_paths(dst, p, [[a, b, G[a][b]] for a, b in zip(path, path[1:])])
    return topo
""")
    r = run_eval(wt, "quick")
    n = r["metrics"]["n_instances"]
    assert r["metrics"]["n_failed"] == 1
    assert r["score"] == pytest.approx(100.0 * (n - 1) / n)
    assert "RuntimeError: boom on gcp" in r["feedback"]
    assert r["instances"]["intra_gcp_s1"] == 0.0  # the failed broadcast, in the mean as 0


def test_timeout_counts_zero_and_keeps_finished_instances(tmp_path):
    wt = make_candidate(tmp_path, "slow", CHEAPEST + """
import time
CALLS = []

def search_algorithm(src, dsts, G, num_partitions):
    CALLS.append(src)
    if len(CALLS) > 1:
        time.sleep(600)
    topo = BroadCastTopology(src, dsts, num_partitions)
    for dst in dsts:
        path = cheapest(src, dst, G)
        for p in range(num_partitions):
            topo.set_dst_partition_paths(dst, p, [[a, b, G[a][b]] for a, b in zip(path, path[1:])])
    return topo
""")
    r = run_eval(wt, "quick", "--time-limit", "5")
    n = r["metrics"]["n_instances"]
    assert r["metrics"]["n_failed"] == n - 1
    assert r["score"] == pytest.approx(100.0 / n)
    assert "time limit" in r["feedback"]


def test_import_error_is_invalid(tmp_path):
    wt = make_candidate(tmp_path, "broken", "import no_such_module_xyz\n")
    r = run_eval(wt, "quick")
    assert r["valid"] is False and r["score"] == 0.0
    assert "no_such_module_xyz" in r["feedback"]
    assert "instances" not in r


def test_leaderboard_without_data_says_why(tmp_path):
    r = run_eval(make_candidate(tmp_path, "b"), "leaderboard")
    assert r["valid"] is False
    assert "--data" in r["feedback"]


# --------------------------------------------------------------------------- published data

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"published Cloudcast data not found at {DATA} "
                                "(../shared is absent in a fresh clone)")

# The published leaderboard baseline (UCB-ADRS/ADRS-Leaderboard solutions/cloudcast/baseline),
# verbatim: it imports BroadCastTopology from `broadcast` and carries a Solution class.
PUBLISHED_BASELINE = '''\
import inspect
from typing import Any, Dict
import networkx as nx

def search_algorithm(src, dsts, G, num_partitions):
    from broadcast import BroadCastTopology

    h = G.copy()
    h.remove_edges_from(list(h.in_edges(src)) + list(nx.selfloop_edges(h)))
    bc_topology = BroadCastTopology(src, dsts, num_partitions)

    for dst in dsts:
        path = nx.dijkstra_path(h, src, dst, weight="cost")
        for i in range(0, len(path) - 1):
            s, t = path[i], path[i + 1]
            for j in range(bc_topology.num_partitions):
                bc_topology.append_dst_partition_path(dst, j, [s, t, G[s][t]])

    return bc_topology


class Solution:
    def __init__(self) -> None:
        pass

    def solve(self, spec_path: str | None = None) -> Dict[str, Any]:
        imports = "import networkx as nx\\nfrom typing import List\\n\\n\\n"
        function_code = inspect.getsource(search_algorithm)
        code = imports + function_code
        return {"code": code}
'''


@needs_data
def test_shipped_graph_equals_published_profiles():
    sys.path.insert(0, str(EVAL_DIR))
    try:
        import graph
    finally:
        sys.path.remove(str(EVAL_DIR))
    assert graph.read_regions() == graph.read_profiles(DATA)
    with (DATA / "profiles" / "throughput.csv").open() as f:
        assert sum(1 for _ in csv.reader(f)) - 1 == len(graph.read_regions())


@needs_data
def test_leaderboard_reproduces_published_baseline_with_published_solution(tmp_path):
    wt = make_candidate(tmp_path, "published", PUBLISHED_BASELINE)
    r = run_eval(wt, "leaderboard", "--data", str(DATA))
    assert r["valid"] is True
    assert r["metrics"]["total_cost_usd"] == pytest.approx(1045.86, abs=0.005)
    assert r["score"] == pytest.approx(26.74, abs=0.005)
    assert r["metrics"]["n_instances"] == 5
    assert r["metrics"]["cost_usd_intra_aws"] == pytest.approx(165.024, abs=1e-3)
    # each configuration's share of the published score: they sum to it (before the clamp)
    assert sorted(r["instances"]) == ["inter_agz", "inter_gaz2", "intra_aws", "intra_azure", "intra_gcp"]
    assert sum(r["instances"].values()) == pytest.approx(r["score"], abs=1e-9)
