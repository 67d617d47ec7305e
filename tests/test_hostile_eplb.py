"""Hostile candidates against tasks/eplb, scored the way a run scores them.

The policy runs in a jail (bwrap or docker) that is handed one window's load per call; the
evaluator times each call from outside, loads the reply arrays with allow_pickle=False and
checks them in full. So: forged result lines go nowhere, patching its own process (clocks,
numpy) loosens no check, the load window a mapping is scored on stays out of sight, and
lying arrays or hand-written replies are rejected. Each attacker scores no better than the
baseline.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from fixtures.hostile import FORGE_AT_EXIT, FORGE_VIA_PARENT, TASKS, evaluate, not_above, worktree

pytest.importorskip("torch", reason="tasks/eplb needs torch")

TASK = "eplb"
EVAL_DIR = TASKS / TASK / "evaluator"
CANDIDATE_MODULES = {"eplb"}  # the worktree's modules
SIDE = "worker.py"
SIDE_IMPORTS = {"__future__", "adrs_eval", "io", "json", "numpy", "pickle", "struct", "torch"}
POLICY = "eplb/policy.py"
SEED_SRC = (TASKS / TASK / "repo" / POLICY).read_text()
STAGES = ["quick", "full", "test", "leaderboard"]


def wrap_seed(extra: str, first: str = "") -> str:
    """The seed policy with its rebalance_experts renamed to _seed and ``extra`` after it;
    ``first`` runs before the seed's own code (after its __future__ import)."""
    future = "from __future__ import annotations\n"
    assert future in SEED_SRC
    src = SEED_SRC.replace(future, future + first, 1)
    return src.replace("def rebalance_experts(", "def _seed(") + "\n" + extra


# What a candidate can reach of the evaluator: the known folder, every evaluator/ folder on
# the file system (the system's read-only trees left out: they are the host's own), other
# processes' arguments, environment and working folders.
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
        if {"evaluate.py", "workload.py"} & set(names):
            found.append(f"/proc/{pid}/cwd")
    return found
'''

# Regenerate every stage's traces with the evaluator's own generator and seeds, wherever it
# was found, and plan each window on the NEXT one (hindsight: the window it is scored on).
HINDSIGHT = r'''
import torch as _torch

def _next_windows(found):
    folders = [p for p in found if _os.path.isdir(p)]
    folders += [_os.path.dirname(p) for p in found if p.endswith("workload.py")]
    for folder in folders:
        if not _os.path.isfile(_os.path.join(folder, "workload.py")):
            continue
        _sys.path.insert(0, folder)
        import evaluate as ev
        table = {}
        for stage in ("quick", "full", "test"):
            for spec in ev.STAGES[stage].traces:
                wins = ev.generate_windows(spec)
                for i in range(len(wins) - 1):
                    table[wins[i].tobytes()] = wins[i + 1]
        return table
    return {}

_FOUND = _probe(KNOWN)
_NEXT = _next_windows(_FOUND)

def rebalance_experts(weight, num_replicas, num_groups, num_nodes, num_gpus):
    if not _NEXT and REPORT:
        raise RuntimeError(f"PROBE found={_FOUND!r}")
    nxt = _NEXT.get(weight.numpy().tobytes())
    if nxt is not None:
        weight = _torch.from_numpy(nxt)
    return _seed(weight, num_replicas, num_groups, num_nodes, num_gpus)
'''

KNOWN = [str(EVAL_DIR), str(EVAL_DIR / "workload.py"), str(EVAL_DIR / "evaluate.py")]

# The published loophole's mapping (all replicas of a hot expert on one slot, logcnt that
# disagrees with phy2log): valid only to a checker that can be fooled.
EXPLOIT = r'''
def _exploit(weight, num_replicas):
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


class Jail:
    """A backend by name, for runs outside the `backend` fixture (`process`: no jail at all,
    to show what the same attacker does unjailed)."""

    def __init__(self, name: str):
        self.name = name

    def config(self, spec):
        return spec.jail(self.name)


_baselines: dict[str, object] = {}


def baseline(stage: str, tmp_path: Path, backend):
    """The baseline's result on a stage (its balancedness does not depend on the backend)."""
    if stage not in _baselines:
        wt = worktree(TASK, tmp_path, {}, name=f"baseline-{stage}")
        _baselines[stage] = evaluate(TASK, wt, stage, backend)
        assert _baselines[stage].valid, _baselines[stage].feedback
    return _baselines[stage]


def no_better(res, stage: str, tmp_path: Path, backend) -> bool:
    """not_above the baseline; an invalid result needs no baseline run to say so."""
    return not res.valid or not_above(res, baseline(stage, tmp_path, backend))


def attacker(tmp_path: Path, src: str, name: str = "wt") -> Path:
    return worktree(TASK, tmp_path, {POLICY: src}, name=name)


# A forger that is also slower than the seed on the leaderboard (the only stage whose score
# has a timing term), so timing noise cannot lift it above the baseline there either.
FORGER = wrap_seed('''
import time

def rebalance_experts(weight, *args):
    if weight.shape[0] == 58:
        time.sleep(0.05)
    return _seed(weight, *args)
''', first=FORGE_VIA_PARENT + FORGE_AT_EXIT)


@pytest.mark.parametrize("backend, stage", [("bwrap", s) for s in STAGES] + [("docker", "quick")],
                         indirect=["backend"])
def test_forged_result_lines_do_not_count_on_any_stage(tmp_path, backend, stage):
    res = evaluate(TASK, attacker(tmp_path, FORGER), stage, backend)
    assert res.score is not None and res.score < 100.0
    assert no_better(res, stage, tmp_path, backend)


def test_patching_its_own_process_finds_no_scoring_code(tmp_path, backend):
    src = wrap_seed(r'''
import sys
PATCHED = []
for mod in [sys.modules.get(n) for n in ("__main__", "evaluate", "workload")]:
    for name in ("validate", "balancedness", "leaderboard_score", "evaluate", "Worker"):
        if mod is not None and hasattr(mod, name):
            PATCHED.append(f"{mod.__name__}.{name}")
for name in ("evaluate", "workload"):
    try:
        __import__(name)
        PATCHED.append("imported " + name)
    except ImportError:
        pass

def rebalance_experts(*args):
    raise RuntimeError(f"PATCHED={PATCHED!r}")
''')
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert "PATCHED=[]" in res.feedback
    assert no_better(res, "quick", tmp_path, backend)


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_patching_numpy_and_clocks_loosens_no_check(tmp_path, backend):
    # In the old design's worker these were the same functions the checks used only by luck
    # of being another process; here they are patched, and the loophole mapping is returned.
    src = wrap_seed("import torch\n" + EXPLOIT + r'''
import numpy as np, time
np.array_equal = lambda *a, **k: True
np.unique = lambda a, *x, **k: a
np.any = lambda *a, **k: False
np.bincount = lambda row, minlength=0: np.ones(minlength, dtype=np.int64)
time.perf_counter = time.monotonic = time.time = lambda: 0.0

def rebalance_experts(weight, num_replicas, num_groups, num_nodes, num_gpus):
    return _exploit(weight, num_replicas)
''')
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert not res.valid and res.score == 0.0
    assert "same slot twice" in res.feedback or "disagrees" in res.feedback \
        or "another expert" in res.feedback


def test_the_window_it_is_scored_on_is_out_of_reach(tmp_path, backend):
    src = wrap_seed(PROBE + f"\nKNOWN = {KNOWN!r}\nREPORT = True\n" + HINDSIGHT)
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert "PROBE found=[]" in res.feedback
    assert no_better(res, "quick", tmp_path, backend)


def test_the_hindsight_attack_is_real_without_a_jail(tmp_path):
    # The same attacker unjailed (the `process` backend) regenerates the next window and
    # beats the baseline: only the jail makes the test above hold.
    src = wrap_seed(PROBE + f"\nKNOWN = {KNOWN!r}\nREPORT = False\n"
                    + HINDSIGHT.replace("_probe(KNOWN)", "_probe(KNOWN, scan=False)"))
    res = evaluate(TASK, attacker(tmp_path, src), "quick", Jail("process"))
    assert res.valid, res.feedback
    assert res.score > baseline("quick", tmp_path, Jail("bwrap")).score + 2.0


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_arrays_that_lie_about_themselves_are_checked_as_data(tmp_path, backend):
    # An ndarray subclass claiming the right shape, dtype and equality around the loophole
    # mapping: what travels is its data, which the evaluator checks.
    src = wrap_seed("import torch\n" + EXPLOIT + r'''
import numpy as np

class Liar(np.ndarray):
    def __eq__(self, other):
        return np.ones(np.shape(other), dtype=bool)
    def __ne__(self, other):
        return np.zeros(np.shape(other), dtype=bool)

def rebalance_experts(weight, num_replicas, num_groups, num_nodes, num_gpus):
    return tuple(t.numpy().view(Liar) for t in _exploit(weight, num_replicas))
''')
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert not res.valid and res.score == 0.0


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_a_pickled_reply_is_never_unpickled(tmp_path, backend):
    # Write a reply straight to the pipe whose array is a pickle that, once loaded, would run
    # a command creating a file on the evaluator's side.
    marker = tmp_path / "unpickled-by-the-evaluator"
    src = wrap_seed(rf'''
import io, json, os
import numpy as np
from adrs_eval.side import channel

class Payload:
    def __reduce__(self):
        return (os.system, ("touch {marker}",))

def rebalance_experts(weight, *args):
    bio = io.BytesIO()
    np.save(bio, np.array([Payload()], dtype=object), allow_pickle=True)
    blob = bio.getvalue()
    out = channel().output
    out.write(json.dumps({{"status": "ok", "lengths": [len(blob)] * 3}}).encode() + b"\n" + blob * 3)
    out.flush()
    return _seed(weight, *args)
''')
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert not res.valid and res.score == 0.0
    assert "could not read a returned array" in res.feedback
    assert not marker.exists()


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_hand_written_headers_are_rejected(tmp_path, backend):
    # Lengths the evaluator must not trust: negative, beyond any limit, not numbers.
    src = wrap_seed(r'''
from adrs_eval.side import channel

def rebalance_experts(weight, *args):
    out = channel().output
    out.write(b'{"status": "ok", "lengths": [-5, 1e300, "x"]}\n')
    out.flush()
    return _seed(weight, *args)
''')
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert not res.valid and res.score == 0.0
    assert "out of bounds" in res.feedback or "malformed" in res.feedback


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
