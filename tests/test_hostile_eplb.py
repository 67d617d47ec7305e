"""Hostile candidates against tasks/eplb, scored the way a run scores them.

The policy runs in a jail (bwrap or docker) that is handed one window's load per call; the
evaluator times each call from outside, loads the reply arrays with allow_pickle=False and
checks them in full. So: forged result lines go nowhere, patching its own process (clocks,
numpy) loosens no check, the load window a mapping is scored on stays out of sight, and
lying arrays or hand-written replies are rejected. Each attacker scores no better than the
baseline.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.hostile import (
    BWRAP,
    FORGERS,
    TASKS,
    UNJAILED,
    Baselines,
    assert_sides_apart,
    bwrap_stages_and_docker_quick,
    evaluate,
    patching,
    probing,
    run_first,
    worktree,
)

pytest.importorskip("torch", reason="tasks/eplb needs torch")

TASK = "eplb"
EVAL_DIR = TASKS / TASK / "evaluator"
POLICY = "eplb/policy.py"
SEED_SRC = (TASKS / TASK / "repo" / POLICY).read_text()
STAGES = ["quick", "full", "test", "leaderboard"]


def wrap_seed(extra: str, first: str = "") -> str:
    """The seed policy with its rebalance_experts renamed to _seed and ``extra`` after it;
    ``first`` runs before the seed's own code (after its __future__ import)."""
    src = run_first(first, SEED_SRC)
    return src.replace("def rebalance_experts(", "def _seed(") + "\n" + extra


KNOWN = [str(EVAL_DIR), str(EVAL_DIR / "workload.py"), str(EVAL_DIR / "evaluate.py")]


def probe(scan: bool = True) -> str:
    """What a candidate can reach of the evaluator (the fixture's probe, told eplb's files and
    modules), at import: in _FOUND."""
    return probing(secrets={"evaluate.py", "workload.py"}, known=KNOWN,
                   modules=("evaluate", "workload"), scan=scan)


# Regenerate every stage's traces with the evaluator's own generator and seeds, wherever it
# was found, and plan each window on the NEXT one (hindsight: the window it is scored on).
HINDSIGHT = r'''
import torch as _torch

def _next_windows(found):
    for workload in _named(found, "workload.py"):
        _sys.path.insert(0, _os.path.dirname(workload))
        import evaluate as ev
        table = {}
        for stage in ("quick", "full", "test"):
            for spec in ev.STAGES[stage].traces:
                wins = ev.generate_windows(spec)
                for i in range(len(wins) - 1):
                    table[wins[i].tobytes()] = wins[i + 1]
        return table
    return {}

_NEXT = _next_windows(_FOUND)

def rebalance_experts(weight, num_replicas, num_groups, num_nodes, num_gpus):
    if not _NEXT and REPORT:
        raise RuntimeError(f"PROBE found={_FOUND!r}")
    nxt = _NEXT.get(weight.numpy().tobytes())
    if nxt is not None:
        weight = _torch.from_numpy(nxt)
    return _seed(weight, num_replicas, num_groups, num_nodes, num_gpus)
'''

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


baseline = Baselines(TASK)  # its balancedness does not depend on the backend


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
''', first=FORGERS)


@pytest.mark.parametrize("backend, stage", bwrap_stages_and_docker_quick(STAGES),
                         indirect=["backend"])
def test_forged_result_lines_do_not_count_on_any_stage(tmp_path, backend, stage):
    res = evaluate(TASK, attacker(tmp_path, FORGER), stage, backend)
    assert res.score is not None and res.score < 100.0
    assert baseline.no_better(res, stage, tmp_path, backend)


def test_patching_its_own_process_finds_no_scoring_code(tmp_path, backend):
    src = wrap_seed(patching(
        modules=("evaluate", "workload"),
        names=("validate", "balancedness", "leaderboard_score", "evaluate", "Worker")) + r'''
def rebalance_experts(*args):
    raise RuntimeError(f"PATCHED={PATCHED!r}")
''')
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert "PATCHED=[]" in res.feedback
    assert baseline.no_better(res, "quick", tmp_path, backend)


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
    src = wrap_seed(probe() + "REPORT = True\n" + HINDSIGHT)
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert "PROBE found=[]" in res.feedback
    assert baseline.no_better(res, "quick", tmp_path, backend)


def test_the_hindsight_attack_is_real_without_a_jail(tmp_path):
    # The same attacker unjailed (the `process` backend) regenerates the next window and
    # beats the baseline: only the jail makes the test above hold.
    src = wrap_seed(probe(scan=False) + "REPORT = False\n" + HINDSIGHT)
    res = evaluate(TASK, attacker(tmp_path, src), "quick", UNJAILED)
    assert res.valid, res.feedback
    assert res.score > baseline("quick", tmp_path, BWRAP).score + 2.0


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


def test_neither_side_imports_the_other_sides_code():
    assert_sides_apart(TASK, worktree_modules={"eplb"}, side_imports={
        "__future__", "adrs_eval", "io", "json", "numpy", "pickle", "struct", "torch"},
        scripts=("worker.py",))
