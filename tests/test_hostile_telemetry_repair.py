"""Hostile candidates against tasks/telemetry-repair, scored the way a run scores them.

The candidate's repair.py runs in a jail (bwrap or docker) and only its answers come back
over a pipe, so: result lines it forges go nowhere, patching its own process reaches no
scoring code, the evaluator's generator and seeds (and the published rows with their ground
truth) are out of its sight, and lying objects or hand-written protocol messages are checked
like any other answer. Each attacker scores no better than the baseline.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.hostile import (
    BWRAP,
    FORGERS,
    SHARED_DATA,
    TASKS,
    UNJAILED,
    Baselines,
    assert_sides_apart,
    bwrap_stages_and_docker_quick,
    evaluate,
    leaderboard_data,
    not_above,
    patching,
    probing,
    worktree,
)

TASK = "telemetry-repair"
EVAL_DIR = TASKS / TASK / "evaluator"
DATA = SHARED_DATA / TASK
STAGES = ["quick", "full", "test", "leaderboard"]
BASELINE_SRC = (TASKS / TASK / "repo" / "repair.py").read_text()

KNOWN = [str(EVAL_DIR), str(EVAL_DIR / "network.py"), str(DATA / "evaluation_data.csv"),
         str(SHARED_DATA)]


def probe(scan: bool = True) -> str:
    """What a candidate can reach of the evaluator (the fixture's probe, told telemetry-repair's
    files and modules), at import: in _FOUND."""
    return probing(secrets={"evaluate.py", "network.py", "metric.py"}, known=KNOWN,
                   modules=("metric", "network", "evaluate"), scan=scan)


# Rebuild every stage's snapshots from the evaluator's own generator and seeds, wherever it
# was found, and answer each snapshot with its ground truth (it would score 1.0).
REBUILD = r'''
import json as _json
import re as _re

def _truth_table(found):
    for path in _named(found, "network.py"):
        folder = _os.path.dirname(path)
        _sys.path.insert(0, folder)
        import network
        src = open(_os.path.join(folder, "evaluate.py")).read()
        stages = eval(_re.search(r"STAGES = (\{.*?\})\n", src).group(1))
        table = {}
        for seed, n in stages.values():
            for s in network.make_stage(seed, n):
                table[_json.dumps(s.telemetry, sort_keys=True)] = s.truth
        return table
    return {}

_TABLE = _truth_table(_FOUND)
_base = run_repair

def run_repair(telemetry, topology):
    truth = _TABLE.get(_json.dumps(telemetry, sort_keys=True))
    if truth is None:
        if not _TABLE:  # nothing to cheat with: say what was found, and lose this snapshot
            _TABLE["reported"] = True
            raise RuntimeError(f"PROBE found={_FOUND!r}")
        return _base(telemetry, topology)
    return {i: {"rx_rate": (0, t["rx_rate"], 1.0), "tx_rate": (0, t["tx_rate"], 1.0),
                "interface_status": ("up", t["interface_status"], 1.0)} for i, t in truth.items()}
'''


def data_for(stage: str) -> Path | None:
    return leaderboard_data(stage, DATA, needs=DATA / "evaluation_data.csv")


baseline = Baselines(TASK, data_for)  # deterministic, so one jail backend serves all


def attacker(tmp_path: Path, src: str, name: str = "wt") -> Path:
    return worktree(TASK, tmp_path, {"repair.py": src}, name=name)


@pytest.mark.parametrize("backend, stage", bwrap_stages_and_docker_quick(STAGES),
                         indirect=["backend"])
def test_forged_result_lines_do_not_count_on_any_stage(tmp_path, backend, stage):
    wt = attacker(tmp_path, FORGERS + BASELINE_SRC)
    res = evaluate(TASK, wt, stage, backend, data=data_for(stage))
    base = baseline(stage, tmp_path, backend)
    assert res.valid, res.feedback
    assert res.score == pytest.approx(base.score, abs=1e-12)
    assert "forged" not in res.feedback
    assert not_above(res, base)


def test_patching_its_own_process_reaches_no_scoring_code(tmp_path, backend):
    # The old child could reach the evaluator's modules by path; here it patches everything a
    # scorer could live in and reports which evaluator-side names it found.
    src = BASELINE_SRC + f"\nimport sys\nsys.path.insert(0, {str(EVAL_DIR)!r})\n" + patching(
        modules=("metric", "network", "evaluate"),
        names=("score_snapshot", "score_published", "check_output", "run_candidate", "evaluate",
               "make_stage"),
        value='lambda *a, **k: {"combined": 1.0, "counter": 1.0}') + r'''
import math
math.isfinite = lambda x: True
_real = run_repair
_calls = [0]

def run_repair(telemetry, topology):
    _calls[0] += 1
    if _calls[0] == 1:
        raise RuntimeError(f"PATCHED={PATCHED!r}")
    return _real(telemetry, topology)
'''
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert res.valid, res.feedback
    assert "PATCHED=[]" in res.feedback
    assert res.metrics["n_failed"] == 1
    assert not_above(res, baseline("quick", tmp_path, backend))


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_bypassing_the_sides_checks_is_caught_by_the_evaluator(tmp_path, backend):
    # The side script's own checks are in the candidate's process: replace them with a
    # pass-through, then answer with confidences of 5 and negative rates.
    src = BASELINE_SRC + r'''
import sys
sys.modules["__main__"].to_json = lambda result, ids: {
    i: {"rx_rate": [None, -1.0, 5.0], "tx_rate": [None, 1e308, 5.0],
        "interface_status": [None, "up", 5.0]} for i in ids}
'''
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert not res.valid and res.score == 0.0
    assert "outside [0, 1]" in res.feedback


def test_the_generator_and_seeds_are_out_of_reach(tmp_path, backend):
    wt = attacker(tmp_path, BASELINE_SRC + probe() + REBUILD)
    res = evaluate(TASK, wt, "quick", backend)
    assert res.valid, res.feedback
    assert "PROBE found=[]" in res.feedback
    assert res.metrics["n_failed"] == 1
    assert not_above(res, baseline("quick", tmp_path, backend))


def test_the_ground_truth_attack_is_real_without_a_jail(tmp_path):
    # The same attacker run unjailed (the `process` backend) rebuilds the truth: the test
    # above fails only because the jail hides the evaluator.
    src = BASELINE_SRC + probe(scan=False) + REBUILD
    res = evaluate(TASK, attacker(tmp_path, src), "test", UNJAILED)
    assert res.valid, res.feedback
    assert res.score > 0.99
    assert not not_above(res, baseline("test", tmp_path, BWRAP))


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_hand_written_protocol_messages_are_checked_like_answers(tmp_path, backend):
    # Write to the pipe directly, before the side's own messages: a result line, answers for
    # a snapshot that does not exist and for a boolean index, a premature "imported" with an
    # infinite rate, then nesting too deep to parse. The evaluator stops reading there and
    # every snapshot counts 0; it does not crash.
    src = BASELINE_SRC + r'''
from adrs_eval.side import channel
_chan = channel()
_chan.output.write(b'{"score": 1e9, "valid": true}\n{"i": 999, "out": {}}\n{"i": true, "out": {}}\n')
_chan.output.write(b'{"i": 1, "out": {"x": [1e999]}, "imported": 1}\n' + b"[" * 100000 + b"\n")
_chan.output.flush()
'''
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert not_above(res, baseline("quick", tmp_path, backend))
    assert "evaluator crashed" not in res.feedback and "Traceback" not in res.feedback


@pytest.mark.parametrize("backend", ["bwrap"], indirect=True)
def test_objects_that_lie_about_themselves_are_read_as_plain_values(tmp_path, backend):
    # A status equal to both 'up' and 'down', a rate whose comparisons always pass and whose
    # float() says 0, a confidence claiming to be in range: what reaches the evaluator is the
    # plain value each converts to, scored like any answer.
    src = BASELINE_SRC + r'''
class Both(str):
    def __eq__(self, other):
        return True
    __hash__ = str.__hash__

class Rate(float):
    def __ge__(self, other):
        return True
    def __le__(self, other):
        return True
    def __float__(self):
        return 0.0

_real = run_repair

def run_repair(telemetry, topology):
    out = _real(telemetry, topology)
    for r in out.values():
        r["interface_status"] = (r["interface_status"][0], Both("maybe"), 1.0)
        r["rx_rate"] = (r["rx_rate"][0], Rate(r["rx_rate"][1]), Rate(7.5))
    return out
'''
    res = evaluate(TASK, attacker(tmp_path, src), "quick", backend)
    assert not res.valid and res.score == 0.0
    assert "'up' or 'down'" in res.feedback or "outside [0, 1]" in res.feedback


def test_neither_side_imports_the_other_sides_code():
    assert_sides_apart(TASK, worktree_modules={"repair"},
                       side_imports={"adrs_eval", "math", "numbers", "time"})
