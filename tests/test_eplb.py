"""tasks/eplb: the sealed evaluator run as a real subprocess, plus its validator on real seed outputs.

Every loophole of the published evaluator (see the task README) has a test here.
"""
from __future__ import annotations

import importlib.util
import json
import math
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.tasks import TaskFolder

torch = pytest.importorskip("torch", reason="tasks/eplb needs torch (pip install torch==2.13.0)")

FOLDER = TaskFolder("eplb", "eplb/policy.py")
TASK, EVAL_DIR, REPO = FOLDER.root, FOLDER.evaluator, FOLDER.repo
run_eval, make_candidate = FOLDER.run_eval, FOLDER.candidate


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


# The evaluator imports its sibling "workload"; load both without leaving either in sys.modules.
sys.path.insert(0, str(EVAL_DIR))
try:
    ev = _load("eplb_evaluate", EVAL_DIR / "evaluate.py")
    wl = sys.modules["workload"]
finally:
    sys.path.remove(str(EVAL_DIR))
    sys.modules.pop("workload", None)
policy = _load("eplb_policy_seed", REPO / "eplb" / "policy.py")


SEED_SRC = (REPO / "eplb" / "policy.py").read_text()


def wrap_seed(extra: str) -> str:
    """The seed policy, with its rebalance_experts renamed and wrapped by ``extra``."""
    return SEED_SRC.replace("def rebalance_experts(", "def _seed_rebalance(") + "\n" + extra


def log2phy_from(phy2log: np.ndarray, experts: int) -> tuple[np.ndarray, np.ndarray]:
    layers, slots = phy2log.shape
    logcnt = np.stack([np.bincount(r, minlength=experts) for r in phy2log])
    out = np.full((layers, experts, slots - experts + 1), -1, dtype=np.int64)
    for layer in range(layers):
        fill = np.zeros(experts, dtype=np.int64)
        for s, e in enumerate(phy2log[layer]):
            out[layer, e, fill[e]] = s
            fill[e] += 1
    return out, logcnt


@pytest.fixture(scope="module")
def seed_case():
    wins = wl.generate_windows(wl.TraceSpec("u", 5, 4, 2))
    p, l2p, c = policy.rebalance_experts(torch.from_numpy(wins[0]), 288, 8, 4, 32)
    return p.numpy(), l2p.numpy(), c.numpy(), wins[1]


def check(out, nxt):
    return ev.validate([np.asarray(a) for a in out], nxt.shape[0], nxt.shape[1], nxt)


# ---------------------------------------------------------------- task + baseline

def test_task_loads_with_leaderboard_stage():
    from agent.task import Task

    task = Task.load(TASK)
    assert task.evaluator.stages == ["quick", "full"]
    assert task.evaluator.test_stage == "test"
    assert task.evaluator.extra_stages == ["leaderboard"]
    assert task.evaluator.memory_mb >= 4096


def test_seed_output_is_valid_and_defaults_are_the_published_algorithm(seed_case):
    p, l2p, c, nxt = seed_case
    check((p, l2p, c), nxt)
    assert policy.LOAD_EXPONENT == 1.0 and policy.LOAD_FLOOR == 0.0
    assert policy.HIERARCHY_MIN_GROUPS_PER_NODE == 1
    # hierarchical: every replica of an expert stays on the node of its group (groups -> nodes)
    node_of_slot = np.arange(288) // 72
    for layer in range(p.shape[0]):
        for e in range(256):
            assert len(set(node_of_slot[p[layer] == e])) == 1


def test_balancedness_is_ratio_of_sums():
    phy2log = np.tile(np.arange(288) % 256, (2, 1))
    _, logcnt = log2phy_from(phy2log, 256)
    load = np.ones((2, 256), dtype=np.int64)
    load[1] *= 3
    gpu, _ = ev.balancedness(phy2log, logcnt, load)
    slot = load[np.arange(2)[:, None], phy2log] / logcnt[np.arange(2)[:, None], phy2log]
    g = slot.reshape(2, 32, 9).sum(-1)
    assert gpu == pytest.approx(g.mean(1).sum() / g.max(1).sum())
    assert gpu < 1.0


def test_baseline_quick_matches_in_process_computation(tmp_path):
    res = run_eval(make_candidate(tmp_path, "base"))
    assert res["valid"], res["feedback"]
    wins = wl.generate_windows(ev.STAGES["quick"].traces[0])
    bals = []
    for i in range(len(wins) - 1):
        out = policy.rebalance_experts(torch.from_numpy(wins[i]), 288, 8, 4, 32)
        p, c = check([t.numpy() for t in out], wins[i + 1])
        bals.append(ev.balancedness(p, c, wins[i + 1])[0])
    assert res["metrics"]["bal_gpu"] == pytest.approx(np.mean(bals), abs=1e-6)
    m = res["metrics"]
    assert m["published_score"] == pytest.approx(
        m["balancedness_score"] + m["speed_score"] - m["slow_penalty"], abs=1e-3)
    assert res["score"] == pytest.approx(100 * m["bal_gpu"], abs=1e-3)  # search stages: no timing
    assert m["n_windows"] == 3 and 0.5 < m["bal_gpu"] < 1.0
    assert res["instances"] == pytest.approx({f"q11#{i}": 100 * b for i, b in enumerate(bals)})


GLOBAL = wrap_seed('''
def rebalance_experts(weight, num_replicas, num_groups, num_nodes, num_gpus):
    return _seed_rebalance(weight, num_replicas, 1, 1, num_gpus)  # one group: global balancing
''')


def test_instances_are_windows_whose_mean_is_the_score(tmp_path):
    """`review` pairs per-window scores across candidates: "trace#window" for every
    candidate, each 100 x that window's GPU balancedness, their mean the stage's score."""
    base = run_eval(make_candidate(tmp_path, "base"), "test")
    other = run_eval(make_candidate(tmp_path, "global", GLOBAL), "test")
    assert list(base["instances"]) == [f"t{s}#{i}" for s in (7001, 7002, 7003) for i in range(5)]
    assert other["instances"].keys() == base["instances"].keys()
    assert other["instances"] != base["instances"]
    for r in (base, other):
        assert r["valid"] and all(math.isfinite(v) and 0 < v <= 100 for v in r["instances"].values())
        assert r["score"] == pytest.approx(statistics.fmean(r["instances"].values()), abs=1e-9)


# ---------------------------------------------------------------- loopholes (validator, real seed outputs)

def test_duplicate_slots_for_a_hot_expert_are_rejected(seed_case):
    """Published: all replicas of a hot expert may point at one slot, silently deleting load."""
    p, l2p, c, nxt = seed_case
    l2p = l2p.copy()
    hot = int(np.argmax(c[0]))
    l2p[0, hot, : c[0, hot]] = l2p[0, hot, 0]
    with pytest.raises(ev.CandidateError, match="same slot twice|another expert"):
        check((p, l2p, c), nxt)


def test_log2phy_inconsistent_with_phy2log_is_rejected(seed_case):
    p, l2p, c, nxt = seed_case
    l2p = l2p.copy()
    a, b = 0, 1
    l2p[0, a, 0], l2p[0, b, 0] = l2p[0, b, 0], l2p[0, a, 0]
    with pytest.raises(ev.CandidateError, match="inconsistent"):
        check((p, l2p, c), nxt)


def test_out_of_range_ids_are_rejected(seed_case):
    """Published: -1 silently indexed the last slot; ids were never range-checked."""
    p, l2p, c, nxt = seed_case
    bad = p.copy()
    bad[0, 0] = -1
    with pytest.raises(ev.CandidateError, match="outside"):
        check((bad, l2p, c), nxt)
    bad = p.copy()
    bad[0, 0] = 256
    with pytest.raises(ev.CandidateError, match="outside"):
        check((bad, l2p, c), nxt)
    l2 = l2p.copy()
    l2[0, 0, 0] = 288
    with pytest.raises(ev.CandidateError, match="outside|inconsistent"):
        check((p, l2, c), nxt)
    l2 = l2p.copy()
    l2[0, 0, 0] = -1  # inside the replica count
    with pytest.raises(ev.CandidateError, match="outside|inconsistent|-1"):
        check((p, l2, c), nxt)


def test_logcnt_must_match_phy2log(seed_case):
    """Published: only the row sum (288) of logcnt was checked."""
    p, l2p, c, nxt = seed_case
    bad = c.copy()
    hot = int(np.argmax(bad[0]))
    bad[0, hot] -= 1
    bad[0, (hot + 1) % 256] += 1
    assert bad[0].sum() == 288
    with pytest.raises(ev.CandidateError, match="disagrees"):
        check((p, l2p, bad), nxt)


def test_slot_capacity_is_enforced(seed_case):
    """Published: 9 slots per GPU / 288 slots was not enforced beyond phy2log's width."""
    p, l2p, c, nxt = seed_case
    extra = np.concatenate([p, p[:, :9]], axis=1)  # a 33rd GPU
    with pytest.raises(ev.CandidateError, match="shape"):
        check((extra, l2p, c), nxt)
    with pytest.raises(ev.CandidateError, match="shape"):
        check((p[:-1], l2p[:-1], c[:-1]), nxt)  # a layer missing


def test_non_integer_outputs_are_rejected(seed_case):
    p, l2p, c, nxt = seed_case
    with pytest.raises(ev.CandidateError, match="integer"):
        check((p.astype(np.float32), l2p, c), nxt)
    with pytest.raises(ev.CandidateError, match="integer"):
        check((p, l2p, c.astype(bool)), nxt)


def test_zero_replicas_only_for_experts_that_stay_idle(seed_case):
    p, _, _, nxt = seed_case
    p = p.copy()
    idle = int(np.argmin(nxt[0]))
    hot = int(np.argmax(nxt[0]))
    p[0][p[0] == idle] = hot
    l2p, c = log2phy_from(p, 256)
    assert c[0, idle] == 0
    quiet = nxt.copy()
    quiet[0, idle] = 0
    check((p, l2p, c), quiet)  # allowed (as published)
    busy = nxt.copy()
    busy[0, idle] = 5
    with pytest.raises(ev.CandidateError, match="no replica"):
        check((p, l2p, c), busy)


# ---------------------------------------------------------------- loopholes (end to end)

EXPLOIT = '''
import torch

def rebalance_experts(weight, num_replicas, num_groups, num_nodes, num_gpus):
    """Spec's exploit: every replica of a hot expert points at one slot (load counted once)."""
    layers, experts = weight.shape
    extra = num_replicas - experts
    phy2log = torch.cat([torch.arange(experts).repeat(layers, 1),
                         torch.arange(extra).repeat(layers, 1)], dim=1)
    logcnt = torch.ones(layers, experts, dtype=torch.int64)
    hot = weight.argmax(dim=1)
    logcnt[torch.arange(layers), hot] += extra
    logcnt[:, :extra] -= 1
    log2phy = torch.full((layers, experts, extra + 1), -1, dtype=torch.int64)
    log2phy[:, :, 0] = torch.arange(experts)
    for l in range(layers):
        log2phy[l, hot[l], : int(logcnt[l, hot[l]])] = int(hot[l])
    return phy2log, log2phy, logcnt
'''


def test_exploit_policy_is_invalid_end_to_end(tmp_path):
    res = run_eval(make_candidate(tmp_path, "exploit", EXPLOIT))
    assert not res["valid"]
    assert res["score"] == 0.0
    assert "INVALID" in res["feedback"]


CRASH = wrap_seed('''
import os

def rebalance_experts(*args):
    os._exit(0)  # the candidate process dies without answering
''')


def test_candidate_process_dying_is_invalid(tmp_path):
    res = run_eval(make_candidate(tmp_path, "crash", CRASH))
    assert not res["valid"]
    assert "died" in res["feedback"]
    assert "instances" not in res


HOSTILE = wrap_seed('''
import hashlib, importlib.util, json, sys, time

# 1. the evaluator's own modules (trace generator, seeds) must not be importable
for name in ("workload", "evaluate"):
    if importlib.util.find_spec(name) is not None:
        raise RuntimeError("evaluator module visible: " + name)
# 2. a fake result line on stdout, and a frozen clock, must not change the score
print(json.dumps({"score": 1000.0, "valid": True, "metrics": {}, "feedback": "", "artifacts": {}}), flush=True)
time.perf_counter = lambda: 0.0
time.time = lambda: 0.0
_CACHE = {}

def rebalance_experts(weight, *args):
    # 3. an input-keyed cache must not shortcut the timing repeats
    key = hashlib.sha1(weight.numpy().tobytes()).hexdigest()
    if key not in _CACHE:
        time.sleep(0.05)
        _CACHE[key] = _seed_rebalance(weight, *args)
    return _CACHE[key]
''')


def test_hostile_candidate_cannot_fake_score_time_or_see_the_evaluator(tmp_path):
    res = run_eval(make_candidate(tmp_path, "hostile", HOSTILE))
    assert res["valid"], res["feedback"]
    assert res["score"] < 100.0
    assert res["metrics"]["avg_time_ms"] >= 50.0  # every timed call missed the cache
    assert res["metrics"]["slow_penalty"] > 0.0


def test_leaderboard_stage_reads_published_format_from_data(tmp_path):
    wins = wl.generate_windows(wl.TraceSpec("d", 9, 2, 3, num_experts=64))
    # published layout: per-step loads; three windows of 100 steps each (spread evenly over the steps)
    history = []
    for w in wins:
        base = w // 100
        for step in range(100):
            row = base + (step < (w - base * 100))
            history.append({"logical_expert_load": row.tolist()})
    data = tmp_path / "data"
    data.mkdir()
    (data / "expert-load.json").write_text(json.dumps({"load_history": history}))
    assert np.array_equal(wl.load_expert_load_json(data / "expert-load.json"), wins)
    res = run_eval(make_candidate(tmp_path, "lb"), "leaderboard", data=data)
    assert res["valid"], res["feedback"]
    assert "published load file" in res["feedback"]
    assert res["metrics"]["n_windows"] == 2
    # the published score, timing included, is the mean of the windows' scores
    assert list(res["instances"]) == ["expert-load#0", "expert-load#1"]
    assert res["score"] == pytest.approx(statistics.fmean(res["instances"].values()), abs=1e-9)
