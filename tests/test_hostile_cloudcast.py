"""Hostile candidates against tasks/cloudcast, scored the way a run scores them.

search.py runs in a jail (bwrap or docker) that is handed the region graph and the
broadcasts over a pipe; only node names come back, and the evaluator checks and prices every
path on its own copy of the graph. So: forged result lines go nowhere, patching its own
process reaches no pricing code, the evaluator's files (simulator, instance seeds, the
published data) can be neither read nor rewritten, and costs or fields the candidate claims
are ignored. Each attacker scores no better than the baseline.
"""
from __future__ import annotations

import ast
import hashlib
import shutil
from pathlib import Path

import pytest

from fixtures.hostile import FORGE_AT_EXIT, FORGE_VIA_PARENT, TASKS, evaluate, not_above, worktree

pytest.importorskip("networkx", reason="tasks/cloudcast needs networkx")

TASK = "cloudcast"
EVAL_DIR = TASKS / TASK / "evaluator"
CANDIDATE_MODULES = {"cloudcast", "broadcast"}  # the worktree's modules
SIDE = "runner.py"
SIDE_IMPORTS = {"__future__", "adrs_eval", "networkx", "time"}
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / TASK
SEARCH = "cloudcast/search.py"
SEED_SRC = (TASKS / TASK / "repo" / SEARCH).read_text()
STAGES = ["quick", "full", "test", "leaderboard"]


def seed_with(extra: str = "", first: str = "") -> str:
    """The baseline search.py, with ``first`` run before its own code (after its __future__
    import) and ``extra`` after it."""
    future = "from __future__ import annotations\n"
    assert future in SEED_SRC
    return SEED_SRC.replace(future, future + first, 1) + "\n" + extra


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


# What a candidate can reach of the evaluator: the known paths, every evaluator/ folder on
# the file system (the system's read-only trees left out: they are the host's own), other
# processes' arguments, environment and working folders. It then tries to rewrite every
# simulate.py it found so that, after the first three calls (the quick stage's references),
# every topology costs a tenth of its price.
PROBE = r'''
import os as _os
import sys as _sys

def _probe(known, scan=True):
    found = [p for p in known if _os.path.exists(p)]
    if not scan:  # only the known paths
        return found
    system = {"/proc", "/sys", "/dev", "/usr", _sys.prefix, _sys.base_prefix}
    for root, dirs, files in _os.walk("/"):
        dirs[:] = [d for d in dirs if _os.path.join(root, d) not in system]
        if _os.path.basename(root) == "evaluator":
            found += [_os.path.join(root, f) for f in files]
    for pid in [p for p in _os.listdir("/proc") if p.isdigit()]:
        for what in ("cmdline", "environ"):
            try:
                text = open(f"/proc/{pid}/{what}", "rb").read()
            except OSError:
                continue
            if any(w in text for w in (b"evaluate.py", b"--stage", b"ADRS_RESULT", b"ADRS_DATA")):
                found.append(f"/proc/{pid}/{what}")
        try:
            names = _os.listdir(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if {"evaluate.py", "simulate.py", "instances.py"} & set(names):
            found.append(f"/proc/{pid}/cwd")
    return found

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

def _tamper(found):
    wrote = []
    for p in found:
        target = _os.path.join(p, "simulate.py") if _os.path.isdir(p) else p
        if not target.endswith("simulate.py"):
            continue
        try:
            with open(target, "a") as fh:
                fh.write(_CHEAP)
            wrote.append(target)
        except OSError:
            pass
    return wrote

_FOUND = _probe(KNOWN)
_WROTE = _tamper(_FOUND)
'''

KNOWN = [str(EVAL_DIR), str(EVAL_DIR / "simulate.py"), str(EVAL_DIR / "instances.py"),
         str(EVAL_DIR / "regions.csv"), str(DATA)]


def folder_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()


class Jail:
    """A backend by name, for runs outside the `backend` fixture (`process`: no jail at all,
    to show what the same attacker does unjailed)."""

    def __init__(self, name: str):
        self.name = name

    def config(self, spec):
        return spec.jail(self.name)


_baselines: dict[str, object] = {}


def data_for(stage: str) -> Path | None:
    if stage != "leaderboard":
        return None
    if not DATA.is_dir():
        pytest.skip("needs ../shared/data/cloudcast")
    return DATA


def baseline(stage: str, tmp_path: Path, backend):
    if stage not in _baselines:
        wt = worktree(TASK, tmp_path, {}, name=f"baseline-{stage}")
        _baselines[stage] = evaluate(TASK, wt, stage, backend, data=data_for(stage))
        assert _baselines[stage].valid, _baselines[stage].feedback
    return _baselines[stage]


def attacker(tmp_path: Path, src: str, name: str = "wt") -> Path:
    return worktree(TASK, tmp_path, {SEARCH: src}, name=name)


@pytest.mark.parametrize("backend, stage", [("bwrap", s) for s in STAGES] + [("docker", "quick")],
                         indirect=["backend"])
def test_forged_result_lines_do_not_count_on_any_stage(tmp_path, backend, stage):
    src = seed_with(first=FORGE_VIA_PARENT + FORGE_AT_EXIT)
    res = evaluate(TASK, attacker(tmp_path, src), stage, backend, data=data_for(stage))
    assert res.score is not None and res.score < 1e9
    assert not_above(res, baseline(stage, tmp_path, backend))


def test_patching_its_own_process_reaches_no_pricing_code(tmp_path, backend):
    src = seed_with(r'''
import sys
PATCHED = []
for mod in [sys.modules.get(n) for n in ("__main__", "simulate", "graph", "instances", "evaluate")]:
    for name in ("simulate", "check_paths", "reference_paths", "leaderboard_score", "evaluate"):
        if mod is not None and hasattr(mod, name):
            setattr(mod, name, lambda *a, **k: 1e9)
            PATCHED.append(f"{mod.__name__}.{name}")
for name in ("simulate", "graph", "instances", "evaluate"):
    try:
        __import__(name)
        PATCHED.append("imported " + name)
    except ImportError:
        pass
''' + first_search_raises("PATCHED={PATCHED!r}"))
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert "PATCHED=[]" in res.feedback
    assert res.metrics["n_failed"] == 1
    assert not_above(res, baseline("quick", tmp_path, backend))


def test_the_evaluators_files_can_be_neither_read_nor_rewritten(tmp_path, backend):
    before = folder_digest(EVAL_DIR)
    src = seed_with(PROBE.replace("KNOWN", repr(KNOWN))
                    + first_search_raises("PROBE found={_FOUND!r} wrote={_WROTE!r}"))
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert "PROBE found=[] wrote=[]" in res.feedback, res.feedback
    assert folder_digest(EVAL_DIR) == before
    assert not_above(res, baseline("quick", tmp_path, backend))


def test_the_tampering_attack_is_real_without_a_jail(tmp_path):
    # Unjailed (the `process` backend), the same attacker rewrites a copy of the evaluator's
    # simulator, so that the NEXT evaluation of the plain baseline scores far above 100.
    task = tmp_path / "task"
    shutil.copytree(TASKS / TASK, task, ignore=shutil.ignore_patterns("__pycache__"))
    known = [str(task / "evaluator")]
    src = seed_with(PROBE.replace("_probe(KNOWN)", "_probe(KNOWN, scan=False)")
                    .replace("KNOWN", repr(known)))
    evaluate(task, worktree(task, tmp_path, {SEARCH: src}, name="attacker"), "quick", Jail("process"))
    res = evaluate(task, worktree(task, tmp_path, {}, name="seed"), "quick", Jail("process"))
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


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


def test_neither_side_imports_the_other_sides_code():
    """The evaluator imports nothing of the worktree; the candidate side (whose folder the
    candidate can read) is alone in its folder and imports nothing of the evaluator's."""
    for module in EVAL_DIR.glob("*.py"):
        assert not imported_modules(module) & CANDIDATE_MODULES, module.name
    jail = EVAL_DIR / "jail"
    assert sorted(p.name for p in jail.iterdir() if p.name != "__pycache__") == [SIDE]
    assert imported_modules(jail / SIDE) <= SIDE_IMPORTS
