"""Hostile candidates against tasks/cloudcast, scored the way a run scores them.

search.py runs in a jail (bwrap or docker) that is handed the region graph and the
broadcasts over a pipe; only node names come back, and the evaluator checks and prices every
path on its own copy of the graph. So: forged result lines go nowhere, patching its own
process reaches no pricing code, the evaluator's files (simulator, instance seeds, the
published data) can be neither read nor rewritten, and costs or fields the candidate claims
are ignored. Each attacker scores no better than the baseline.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fixtures.hostile import (
    FORGERS,
    SHARED_DATA,
    TASKS,
    UNJAILED,
    Baselines,
    assert_sides_apart,
    bwrap_stages_and_docker_quick,
    evaluate,
    folder_digest,
    leaderboard_data,
    not_above,
    patching,
    probing,
    run_first,
    worktree,
)

pytest.importorskip("networkx", reason="tasks/cloudcast needs networkx")

TASK = "cloudcast"
EVAL_DIR = TASKS / TASK / "evaluator"
DATA = SHARED_DATA / TASK
SEARCH = "cloudcast/search.py"
SEED_SRC = (TASKS / TASK / "repo" / SEARCH).read_text()
STAGES = ["quick", "full", "test", "leaderboard"]


def seed_with(extra: str = "", first: str = "") -> str:
    """The baseline search.py, with ``first`` run before its own code (after its __future__
    import) and ``extra`` after it."""
    return run_first(first, SEED_SRC) + "\n" + extra


def first_search_raises(message: str) -> str:
    """search_algorithm that raises ``message`` (an f-string) on its first call only."""
    return f'''
_seed_search = search_algorithm
_calls = []

def search_algorithm(src, dsts, G, num_partitions):
    _calls.append(src)
    if len(_calls) == 1:
        raise RuntimeError(f"{message}")
    return _seed_search(src, dsts, G, num_partitions)
'''


# What a candidate can reach of the evaluator (the fixture's probe, told cloudcast's files and
# modules), then an attempt to rewrite every simulate.py it found so that, after the first
# three calls (the quick stage's references), every topology costs a tenth of its price.
TAMPER = r'''
_CHEAP = """
_sim = simulate
_priced = [0]

def simulate(*args, **kwargs):
    out = _sim(*args, **kwargs)
    _priced[0] += 1
    if _priced[0] <= 3:
        return out
    return Outcome(out.cost / 10, out.egress_cost / 10, out.vm_cost / 10, out.time_s, out.n_edges, out.n_nodes)
"""

_WROTE = []
for _target in _named(_FOUND, "simulate.py"):
    try:
        with open(_target, "a") as fh:
            fh.write(_CHEAP)
        _WROTE.append(_target)
    except OSError:
        pass
'''

KNOWN = [str(EVAL_DIR), str(EVAL_DIR / "simulate.py"), str(EVAL_DIR / "instances.py"),
         str(EVAL_DIR / "regions.csv"), str(DATA)]


def probe(known: list[str] = KNOWN, scan: bool = True) -> str:
    """The probe and the tampering, at import: _FOUND and _WROTE say what they reached."""
    return probing(secrets={"evaluate.py", "simulate.py", "instances.py"}, known=known,
                   modules=("simulate", "graph", "instances", "evaluate"), scan=scan) + TAMPER


def data_for(stage: str) -> Path | None:
    return leaderboard_data(stage, DATA, needs=DATA)


baseline = Baselines(TASK, data_for)


def attacker(tmp_path: Path, src: str, name: str = "wt") -> Path:
    return worktree(TASK, tmp_path, {SEARCH: src}, name=name)


@pytest.mark.parametrize("backend, stage", bwrap_stages_and_docker_quick(STAGES),
                         indirect=["backend"])
def test_forged_result_lines_do_not_count_on_any_stage(tmp_path, backend, stage):
    src = seed_with(first=FORGERS)
    res = evaluate(TASK, attacker(tmp_path, src), stage, backend, data=data_for(stage))
    assert res.score is not None and res.score < 1e9
    assert not_above(res, baseline(stage, tmp_path, backend))


def test_patching_its_own_process_reaches_no_pricing_code(tmp_path, backend):
    src = seed_with(patching(
        modules=("simulate", "graph", "instances", "evaluate"),
        names=("simulate", "check_paths", "reference_paths", "leaderboard_score", "evaluate"),
        value="lambda *a, **k: 1e9") + first_search_raises("PATCHED={PATCHED!r}"))
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert "PATCHED=[]" in res.feedback
    assert res.metrics["n_failed"] == 1
    assert not_above(res, baseline("quick", tmp_path, backend))


def test_the_evaluators_files_can_be_neither_read_nor_rewritten(tmp_path, backend):
    before = folder_digest(EVAL_DIR)
    src = seed_with(probe() + first_search_raises("PROBE found={_FOUND!r} wrote={_WROTE!r}"))
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert "PROBE found=[] wrote=[]" in res.feedback, res.feedback
    assert folder_digest(EVAL_DIR) == before
    assert not_above(res, baseline("quick", tmp_path, backend))


def test_the_tampering_attack_is_real_without_a_jail(tmp_path):
    # Unjailed (the `process` backend), the same attacker rewrites a copy of the evaluator's
    # simulator, so that the NEXT evaluation of the plain baseline scores far above 100.
    task = tmp_path / "task"
    shutil.copytree(TASKS / TASK, task, ignore=shutil.ignore_patterns("__pycache__"))
    src = seed_with(probe(known=[str(task / "evaluator")], scan=False))
    evaluate(task, worktree(task, tmp_path, {SEARCH: src}, name="attacker"), "quick", UNJAILED)
    res = evaluate(task, worktree(task, tmp_path, {}, name="seed"), "quick", UNJAILED)
    assert res.valid and res.score > 500.0


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_costs_and_fields_the_candidate_claims_are_ignored(tmp_path, backend):
    # Take over the side's sending: every record becomes the dearest two-hop route through a
    # relay (two egress charges) for every partition, claiming cost 0, a score, and times that are not
    # times. G's costs are zeroed too. Only the node names count, priced on the evaluator's
    # own graph: dearer than the baseline.
    src = seed_with(r'''
from adrs_eval.side import Channel

_direct = []
_send = Channel.send

def _claim(self, obj):
    if isinstance(obj, dict) and "paths" in obj:
        obj = {"paths": _direct.pop(0), "cost": 0.0, "egress_cost": 0.0, "score": 1e9,
               "search_s": "fast", "import_s": -5}
    _send(self, obj)

Channel.send = _claim
_seed_search = search_algorithm

def search_algorithm(src, dsts, G, num_partitions):
    relay, used = {}, {src, *dsts}
    for d in dsts:  # the dearest two-hop route, a relay of its own per destination
        relay[d] = max((n for n in G.nodes if n not in used),
                       key=lambda n: G[src][n]["cost"] + G[n][d]["cost"])
        used.add(relay[d])
    _direct.append({d: {str(p): [[src, relay[d], {"cost": 0.0}], [relay[d], d, {"cost": 0.0}]]
                        for p in range(num_partitions)} for d in dsts})
    for u, v, d in G.edges(data=True):
        d["cost"] = 0.0
    return _seed_search(src, dsts, G, num_partitions)
''')
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert res.valid, res.feedback
    base = baseline("quick", tmp_path, backend)
    assert res.metrics["total_cost_usd"] > base.metrics["total_cost_usd"]
    assert not_above(res, base) and res.score < base.score


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_topologies_that_lie_about_their_paths_are_read_as_plain_names(tmp_path, backend):
    # A topology whose paths mapping answers every lookup with the one-hop route, built from
    # node names that equal any string and hops that claim to be free.
    src = seed_with(r'''
class Anything(str):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = str.__hash__

class Paths(dict):
    """Empty, yet every partition has a path."""
    def __init__(self, src, dst):
        super().__init__()
        self.hops = [[Anything(src), Anything(dst), {"cost": 0.0, "throughput": 1e9}]]
    def get(self, key, default=None):
        return self.hops
    def __getitem__(self, key):
        return self.hops

class Topology:
    def __init__(self, src, dsts):
        self.paths = {d: Paths(src, d) for d in dsts}

def search_algorithm(src, dsts, G, num_partitions):
    return Topology(src, dsts)
''')
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert not res.valid and res.score == 0.0
    assert "must be a region name string" in res.artifacts.get("errors", "")


def test_neither_side_imports_the_other_sides_code():
    assert_sides_apart(TASK, worktree_modules={"cloudcast", "broadcast"},
                       side_imports={"__future__", "adrs_eval", "networkx", "time"},
                       scripts=("runner.py",))
