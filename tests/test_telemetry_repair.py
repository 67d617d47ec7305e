"""tasks/telemetry-repair: the sealed evaluator run as a real subprocess on temp candidates.

Each loophole of the published evaluator has a test with the exploiting candidate: reading
the leaked ground-truth keys, returning the input unchanged (beat the human reference),
claiming every status is 'up', blanket confidence 1.0, leaving interfaces out of the output
(published: skipped), out-of-range values, reseeding the shared `random`, raising on hard
snapshots, and memorising the fixed instances.
"""
from __future__ import annotations

import json
import math
import statistics
import sys

import pytest

from tests.fixtures.tasks import SHARED, TaskFolder

FOLDER = TaskFolder("telemetry-repair", "repair.py")
TASK, EVAL_DIR, REPO = FOLDER.root, FOLDER.evaluator, FOLDER.repo
run_eval, candidate, baseline_with = FOLDER.run_eval, FOLDER.candidate, FOLDER.with_constants
DATA = SHARED / "data" / "telemetry-repair"
DOCUMENTED_KEYS = {"interface_status", "rx_rate", "tx_rate", "connected_to", "local_router", "remote_router"}

IDENTITY = '''
def run_repair(telemetry, topology):
    return {i: {"rx_rate": (d["rx_rate"], d["rx_rate"], 1.0), "tx_rate": (d["tx_rate"], d["tx_rate"], 1.0),
                "interface_status": (d["interface_status"], d["interface_status"], 1.0),
                "connected_to": d["connected_to"], "local_router": d["local_router"],
                "remote_router": d["remote_router"]} for i, d in telemetry.items()}
'''

# The published seed: rates (0, 0, 1.0) (it scores 0.051 on the published evaluator).
PUBLISHED_SEED = '''
def repair_network_telemetry(telemetry, topology):
    return {i: {"rx_rate": (d["rx_rate"], 0.0, 1.0), "tx_rate": (d["tx_rate"], 0.0, 1.0),
                "interface_status": (d["interface_status"], d["interface_status"], 1.0),
                "connected_to": d["connected_to"], "local_router": d["local_router"],
                "remote_router": d["remote_router"]} for i, d in telemetry.items()}

def run_repair(telemetry, topology):
    return repair_network_telemetry(telemetry, topology)
'''

# A published-style program (peer averaging, written against the published API only).
PUBLISHED_STYLE = '''
from typing import Dict, Any, Tuple, List

def repair_network_telemetry(telemetry: Dict[str, Dict[str, Any]],
                             topology: Dict[str, List[str]]) -> Dict[str, Dict[str, Tuple]]:
    result = {}
    for if_id, data in telemetry.items():
        peer_id = data.get('connected_to')
        peer = telemetry[peer_id] if peer_id in telemetry else None
        out = {}
        for field, peer_field in (('rx_rate', 'tx_rate'), ('tx_rate', 'rx_rate')):
            mine = data[field]
            if peer is None:
                out[field] = (mine, mine, 0.6)
                continue
            theirs = peer[peer_field]
            gap = abs(mine - theirs) / max(mine, theirs, 1.0)
            if gap < 0.05:
                out[field] = (mine, (mine + theirs) / 2, 0.95)
            elif mine < 1.0 or theirs < 1.0:
                out[field] = (mine, max(mine, theirs), 0.8)
            else:
                out[field] = (mine, theirs, 0.5)
        out['interface_status'] = (data['interface_status'], data['interface_status'], 0.9)
        out['connected_to'] = data['connected_to']
        out['local_router'] = data['local_router']
        out['remote_router'] = data['remote_router']
        result[if_id] = out
    return result

def run_repair(telemetry, topology):
    return repair_network_telemetry(telemetry, topology)
'''


@pytest.fixture(scope="module")
def network_mod():
    sys.path.insert(0, str(EVAL_DIR))
    try:
        import network
        yield network
    finally:
        sys.path.remove(str(EVAL_DIR))


@pytest.fixture(scope="module")
def base_quick(tmp_path_factory) -> dict:
    return run_eval(candidate(tmp_path_factory.mktemp("tr"), "base"), "quick")


@pytest.fixture(scope="module")
def identity_quick(tmp_path_factory) -> dict:
    return run_eval(candidate(tmp_path_factory.mktemp("tr"), "identity", IDENTITY), "quick")


def test_generated_counters_are_consistent(network_mod):
    snaps = network_mod.make_stage(2, 40)
    assert [s.bug_type for s in snaps[:4]] == list(network_mod.BUG_TYPES)
    assert sum(len(s.corrupted) for s in snaps) > 40
    assert any(s.status_faults for s in snaps)
    downs = 0
    for s in snaps:
        assert len(s.telemetry) == 42 and set(s.topology) == set(network_mod.ROUTERS)
        for r, ids in s.topology.items():  # flow conservation holds exactly on the truth
            rx = sum(s.truth[i]["rx_rate"] for i in ids)
            tx = sum(s.truth[i]["tx_rate"] for i in ids)
            assert abs(rx - tx) < 1e-6 * max(rx, 1.0), r
        for i, d in s.telemetry.items():
            assert set(d) == DOCUMENTED_KEYS
            peer = d["connected_to"]
            if peer is not None:  # link symmetry on the truth
                assert s.truth[i]["tx_rate"] == pytest.approx(s.truth[peer]["rx_rate"])
            if s.truth[i]["interface_status"] == "down":
                downs += 1
                assert s.truth[i]["rx_rate"] == 0.0 and s.truth[i]["tx_rate"] == 0.0
    assert downs >= 2
    assert network_mod.make_stage(2, 3)[1].telemetry == snaps[1].telemetry  # deterministic


def test_baseline_beats_returning_the_input(base_quick, identity_quick):
    assert base_quick["valid"], base_quick["feedback"]
    assert identity_quick["valid"], identity_quick["feedback"]
    # the evaluator's own identity figure is what an identity candidate really scores
    assert identity_quick["score"] == pytest.approx(base_quick["metrics"]["identity_combined"], abs=1e-5)
    assert base_quick["score"] > identity_quick["score"] + 0.03
    # ... while the published (unbalanced) formula ranks them the other way round
    assert identity_quick["metrics"]["published_combined"] > base_quick["metrics"]["published_combined"]
    assert base_quick["metrics"]["n_failed"] == 0 and base_quick["metrics"]["n_snapshots"] == 24


def test_ground_truth_keys_never_reach_the_candidate(tmp_path, identity_quick):
    # exploit: read the published leak (_ground_truth_rx/_tx in correlated copies), or any key
    # beyond the documented ones; raise if one is present so the evaluator reports it.
    src = IDENTITY.replace("def run_repair", "def _identity") + f'''
import os
def run_repair(telemetry, topology):
    # inside the jail only ADRS_CANDIDATE (its own files) is set: no data path, no result file
    assert not any(k.startswith("ADRS") and k != "ADRS_CANDIDATE" for k in os.environ), "data path visible"
    for d in telemetry.values():
        extra = set(d) - set({sorted(DOCUMENTED_KEYS)!r})
        if extra:
            raise RuntimeError("leaked keys " + repr(extra))
    return _identity(telemetry, topology)
'''
    cand = candidate(tmp_path, "snoop", src)
    res = run_eval(cand, "quick")
    assert res["valid"] and res["metrics"]["n_failed"] == 0, res["feedback"]
    assert res["score"] == pytest.approx(identity_quick["score"], abs=1e-9)
    if (DATA / "evaluation_data.csv").is_file():  # where the published evaluator leaked
        lb = run_eval(cand, "leaderboard", "--data", str(DATA))
        assert lb["valid"] and lb["metrics"]["n_failed"] == 0, lb["feedback"]
        assert lb["score"] == pytest.approx(lb["metrics"]["identity_published_combined"], abs=1e-5)


def test_reseeding_random_changes_nothing(tmp_path, identity_quick):
    src = "import random\nrandom.seed(12345)\n" + IDENTITY.replace(
        "def run_repair(telemetry, topology):\n", "def run_repair(telemetry, topology):\n    random.seed(7)\n")
    res = run_eval(candidate(tmp_path, "reseed", src), "quick")
    assert res["valid"], res["feedback"]
    assert res["score"] == pytest.approx(identity_quick["score"], abs=1e-12)


def test_status_term_is_not_free(identity_quick, base_quick):
    # identity claims whatever status was reported; wrong statuses are injected, so it misses
    assert identity_quick["metrics"]["status_repair"] < 0.95
    assert base_quick["metrics"]["status_repair"] > identity_quick["metrics"]["status_repair"]


def test_blanket_confidence_is_not_rewarded(tmp_path, base_quick, identity_quick):
    src = baseline_with(CONF_AGREE=1.0, CONF_FLOW=1.0, CONF_UNCHECKED=1.0)
    res = run_eval(candidate(tmp_path, "blanket", src), "quick")
    assert res["valid"], res["feedback"]
    assert res["metrics"]["calibration"] < base_quick["metrics"]["calibration"]
    assert identity_quick["metrics"]["calibration"] < 0.6


def test_leaving_interfaces_out_is_invalid(tmp_path):
    # published: interfaces missing from the output were skipped by every term
    src = baseline_with('''
_full = run_repair
def run_repair(telemetry, topology):
    out = _full(telemetry, topology)
    return {i: r for i, r in out.items() if r["rx_rate"][1] == r["rx_rate"][0] and r["tx_rate"][1] == r["tx_rate"][0]}
''')
    res = run_eval(candidate(tmp_path, "partial", src), "quick")
    assert not res["valid"] and res["score"] == 0.0
    assert "missing" in res["feedback"]
    assert "instances" not in res


@pytest.mark.parametrize("patch, words", [
    ('r["rx_rate"] = (r["rx_rate"][0], r["rx_rate"][1], 1.5)', "outside [0, 1]"),
    ('r["tx_rate"] = (r["tx_rate"][0], float("nan"), 0.9)', "nan"),
    ('r["tx_rate"] = (r["tx_rate"][0], -5.0, 0.9)', ">= 0"),
    ('r["interface_status"] = ("up", "unknown", 1.0)', "'up' or 'down'"),
    ('r["rx_rate"] = r["rx_rate"][1]', "tuple"),
])
def test_malformed_values_are_invalid(tmp_path, patch, words):
    src = baseline_with(f'''
_full = run_repair
def run_repair(telemetry, topology):
    out = _full(telemetry, topology)
    for r in out.values():
        {patch}
    return out
''')
    res = run_eval(candidate(tmp_path, "bad", src), "quick")
    assert not res["valid"] and res["score"] == 0.0
    assert words in res["feedback"], res["feedback"]


def test_raising_on_hard_snapshots_scores_zero(tmp_path, base_quick):
    # exploit: give up where many counters read zero (the hardest snapshots)
    src = baseline_with('''
_full = run_repair
def run_repair(telemetry, topology):
    if sum(1 for d in telemetry.values() if d["rx_rate"] == 0) >= 4:
        raise RuntimeError("too hard")
    return _full(telemetry, topology)
''')
    res = run_eval(candidate(tmp_path, "quitter", src), "quick")
    assert res["valid"], res["feedback"]
    assert res["metrics"]["n_failed"] > 0 and "scored 0" in res["feedback"]
    assert res["score"] < base_quick["score"]


def test_runaway_snapshot_hits_the_stage_limit(tmp_path):
    src = baseline_with('''
import time
_full = run_repair
_calls = [0]
def run_repair(telemetry, topology):
    _calls[0] += 1
    if _calls[0] == 3:
        time.sleep(3600)
    return _full(telemetry, topology)
''')
    res = run_eval(candidate(tmp_path, "runaway", src), "quick", "--time-limit-s", "3")
    assert res["valid"], res["feedback"]
    assert res["metrics"]["n_failed"] == 22 and "not reached" in res["feedback"]
    assert all(res["instances"][f"snapshot_{i}"] == 0.0 for i in range(2, 24))  # in the mean as 0


def test_memorising_instances_does_not_carry_to_test(tmp_path, network_mod, identity_quick):
    # exploit: a lookup table of the quick stage's truths keyed by the reported counters
    table = {}
    for s in network_mod.make_stage(1, 24):
        key = "|".join(f"{i}:{s.telemetry[i]['tx_rate']:.6f}" for i in sorted(s.telemetry))
        table[key] = {i: [t["rx_rate"], t["tx_rate"], t["interface_status"]] for i, t in s.truth.items()}
    src = IDENTITY.replace("def run_repair", "def _identity") + f'''
import json
TABLE = json.loads({json.dumps(json.dumps(table))})
def run_repair(telemetry, topology):
    key = "|".join(f"{{i}}:{{telemetry[i]['tx_rate']:.6f}}" for i in sorted(telemetry))
    out = _identity(telemetry, topology)
    for i, (rx, tx, st) in TABLE.get(key, {{}}).items():
        out[i]["rx_rate"] = (0, rx, 1.0)
        out[i]["tx_rate"] = (0, tx, 1.0)
        out[i]["interface_status"] = ("up", st, 1.0)
    return out
'''
    cand = candidate(tmp_path, "memo", src)
    quick = run_eval(cand, "quick")
    assert quick["valid"] and quick["score"] > 0.99
    test = run_eval(cand, "test")
    assert test["valid"]
    assert test["score"] == pytest.approx(test["metrics"]["identity_combined"], abs=1e-5)


def test_instances_are_snapshots_whose_mean_is_the_score(tmp_path, base_quick, identity_quick):
    """`review` pairs per-snapshot scores across candidates: the same names for every
    candidate, each snapshot's combined score, their mean the stage's score."""
    base = run_eval(candidate(tmp_path, "base"), "test")
    ident = run_eval(candidate(tmp_path, "identity", IDENTITY), "test")
    assert list(base["instances"]) == [f"snapshot_{i}" for i in range(320)]
    assert ident["instances"].keys() == base["instances"].keys()
    assert identity_quick["instances"].keys() == base_quick["instances"].keys()
    assert len(base_quick["instances"]) == 24
    for r in (base, ident, base_quick, identity_quick):
        assert r["valid"] and all(math.isfinite(v) and 0 <= v <= 1 for v in r["instances"].values())
        assert r["score"] == pytest.approx(statistics.fmean(r["instances"].values()), abs=1e-9)
    assert ident["instances"] != base["instances"]


def test_tuned_constants_beat_the_baseline_on_full(tmp_path):
    base = run_eval(candidate(tmp_path, "b", None), "full")
    tuned = run_eval(candidate(tmp_path, "t", baseline_with(SYMMETRY_TOLERANCE=0.05)), "full")
    assert base["valid"] and tuned["valid"]
    assert tuned["score"] > base["score"] + 0.001


def test_published_style_solution_runs_unchanged(tmp_path, identity_quick):
    res = run_eval(candidate(tmp_path, "pub", PUBLISHED_STYLE), "quick")
    assert res["valid"] and res["metrics"]["n_failed"] == 0, res["feedback"]
    assert res["score"] > identity_quick["score"]


@pytest.mark.skipif(not (DATA / "evaluation_data.csv").is_file(),
                    reason="needs ../shared/data/telemetry-repair/evaluation_data.csv (absent in a fresh clone)")
def test_leaderboard_reproduces_the_published_numbers(tmp_path):
    ident = run_eval(candidate(tmp_path, "identity", IDENTITY), "leaderboard", "--data", str(DATA))
    seed = run_eval(candidate(tmp_path, "seed", PUBLISHED_SEED), "leaderboard", "--data", str(DATA))
    assert ident["valid"] and seed["valid"]
    assert ident["metrics"]["n_snapshots"] == 30
    assert ident["score"] == pytest.approx(0.838, abs=0.0015)  # spec table: identity 0.838
    assert seed["score"] == pytest.approx(0.051, abs=0.0015)  # spec table: seed 0.051
    # the balanced score of the same rows no longer ranks doing nothing near the top
    assert ident["metrics"]["combined"] < ident["score"] - 0.15
    # per sampled row, the published (legacy) score: their mean is the score
    assert ident["instances"].keys() == seed["instances"].keys() and len(seed["instances"]) == 30
    for r in (ident, seed):
        assert r["score"] == pytest.approx(statistics.fmean(r["instances"].values()), abs=1e-9)


def test_leaderboard_without_data_is_invalid(tmp_path):
    res = run_eval(candidate(tmp_path, "x"), "leaderboard", "--data", str(tmp_path))
    assert not res["valid"] and "evaluation_data.csv" in res["feedback"]
