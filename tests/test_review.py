"""`adrs-agent review` on sessions made by real runs: the ranking, held-out scores run once and
cached in the git notes, the paired bootstrap interval over per-instance scores, the flags, and
the failure taxonomy; with a task of our own whose held-out instances a candidate can overfit."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from agent.review import ReviewError, interval, resolve
from agent.session import Session
from fixtures.helpers import call, events, of_type, run_cli, solve, toy_task, turn, write_script

pytestmark = pytest.mark.slow

# A task of our own: policy.py sets A; the score of an instance x is -(A - x)^2, the stage's
# score their mean. The search stages see x in 1..4, the held-out stage x in 6..9: A = 2.5 wins
# `full` and loses `test` on every instance. The evaluator reads A as text (no candidate code
# runs), and prints one "fit-evaluator-call" line per run, which lands in the stage's log.
FIT_EVALUATOR = textwrap.dedent('''
    import argparse, json, re
    from pathlib import Path
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage"); ap.add_argument("--candidate")
    args = ap.parse_args()
    print("fit-evaluator-call", args.stage, flush=True)
    text = (Path(args.candidate) / "pkg" / "policy.py").read_text()
    found = re.search(r"^A = (-?[0-9.]+)$", text, re.M)
    if not found:
        print(json.dumps({"score": 0, "valid": False, "feedback": "SyntaxError: no number A in policy.py"}))
        raise SystemExit(0)
    a = float(found.group(1))
    xs = {"quick": [1], "full": [1, 2, 3, 4], "test": [6, 7, 8, 9]}[args.stage]
    inst = {f"x{x}": -(a - x) ** 2 for x in xs}
    print(json.dumps({"score": sum(inst.values()) / len(inst), "valid": True, "metrics": {"a": a},
                      "feedback": f"A={a}", "instances": inst}))
''')


def fit_task(tmp_path: Path) -> Path:
    task = toy_task(tmp_path, name="fit")
    (task / "evaluator" / "evaluate.py").write_text(FIT_EVALUATOR)
    shutil.rmtree(task / "evaluator" / "jail")
    (task / "repo" / "pkg" / "policy.py").write_text("A = 5.0\n")
    return task


@pytest.fixture(scope="module")
def fit_session(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("fit")
    task = fit_task(tmp)
    script = write_script(tmp / "s.jsonl", [
        turn(call("write_file", path="pkg/policy.py", content="A = 2.5\n"), call("commit", message="A=2.5")),
        turn(call("write_file", path="pkg/policy.py", content="A = 5.5\n"), call("commit", message="A=5.5")),
        turn(call("write_file", path="pkg/policy.py", content="A = 2.5\n"), call("commit", message="again")),
        turn(call("write_file", path="pkg/policy.py", content="A = 'x'\n"), call("commit", message="bad")),
    ])
    _, session = solve(task, script, tmp / "sessions", 4, "--workers", "1", "--no-test")
    return session


def heldout_logs(session: Path) -> dict[str, tuple[int, str]]:
    return {str(p): (p.stat().st_mtime_ns, p.read_text()) for p in (session / "heldout").glob("*/*.log")}


def test_review_ranks_pairs_flags_and_counts_then_runs_nothing_the_second_time(fit_session, tmp_path):
    sessions = str(fit_session.parent)
    out = run_cli("review", fit_session.name, "--sessions-dir", sessions, "--json").stdout
    got = json.loads(out)
    evs = events(fit_session)
    scored = {e["commit"]: e for e in of_type(evs, "candidate_scored")}
    baseline = of_type(evs, "session_started")[0]["baseline"]
    assert got["ranking_stage"] == "full" and got["test_stage"] == "test" and got["instances"] is True

    base = got["baseline"]
    assert base["commit"] == baseline and base["score"] == pytest.approx(-7.5)
    assert base["test"] == pytest.approx(-7.5)
    rows = got["rows"]
    assert [r["rank"] for r in rows] == [1, 2, 3]  # the three valid candidates; the invalid one is not ranked
    assert [scored[r["commit"]]["candidate"]["message"] for r in rows[:2]] == ["A=2.5", "again"]
    top = rows[0]
    assert top["score"] == pytest.approx(-1.25) and top["gain"] == pytest.approx(6.25)
    assert top["test"] == pytest.approx(-26.25) and top["test_gain"] == pytest.approx(-18.75)
    iv = top["interval"]
    assert (iv["won"], iv["lost"], iv["n"]) == (0, 4, 4)
    assert iv["mean"] == pytest.approx(-18.75) and iv["low"] <= iv["mean"] <= iv["high"] < 0
    assert [f.split(":")[0] for f in top["flags"]] == ["overfitting", "fragile", "suspicious"]
    worse = rows[2]
    assert worse["gain"] == pytest.approx(-2.75) and "overfitting" not in " ".join(worse["flags"])

    tax = got["taxonomy"]
    assert tax["candidates"] == 4
    assert tax["invalid"] == {"syntax/import": 0.25}
    assert tax["duplicates"] == 0.25  # "again" has the tree of "A=2.5"
    assert tax["stagnation"] == 3
    assert tax["convergence"] == 1.0 and tax["convergence_root"] == rows[0]["commit"]
    assert tax["improvements"] == 1

    # the held-out results live in the notes; a second review runs no evaluator
    logs = heldout_logs(fit_session)
    assert len(logs) == 4 and all(text.count("fit-evaluator-call test") == 1 for _, text in logs.values())
    tested = len(of_type(events(fit_session), "candidate_tested"))
    md = tmp_path / "review.md"
    again = run_cli("review", fit_session.name, "--sessions-dir", sessions, "--md", str(md))
    assert heldout_logs(fit_session) == logs
    assert len(of_type(events(fit_session), "candidate_tested")) == tested
    assert "overfitting" in again.stdout and "syntax/import 25.0%" in again.stdout
    text = md.read_text()
    assert "| 1 | `" in text and "won 0 / lost 4 of 4" in text and "![score over time](review-score.svg)" in text
    assert (tmp_path / "review-score.svg").read_text().lstrip().startswith("<?xml")


def test_candidates_are_named_by_sha_best_or_rank(fit_session):
    session = Session(fit_session)
    evs = events(fit_session)
    first = next(e for e in of_type(evs, "candidate_scored") if e["candidate"]["message"] == "A=2.5")["commit"]
    invalid = next(e for e in of_type(evs, "candidate_scored") if not e["valid"])["commit"]
    assert resolve(session, "best") == resolve(session, "1") == first
    assert resolve(session, first[:8]) == first
    for bad in ("9", "zzzz99", invalid[:10]):
        with pytest.raises(ReviewError):
            resolve(session, bad)


def test_review_says_in_one_line_what_is_wrong(tmp_path):
    proc = run_cli("review", "nope", "--sessions-dir", str(tmp_path), check=False)
    assert proc.returncode == 2 and "no session" in proc.stdout and "Traceback" not in proc.stderr
    proc = run_cli("review", "--sessions-dir", str(tmp_path), "--md", str(tmp_path / "no" / "r.md"), check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stdout


def test_a_task_without_instances_says_so(tmp_path):
    task = toy_task(tmp_path)
    script = write_script(tmp_path / "s.jsonl", [
        turn(call("write_file", path="pkg/policy.py", content="A = 6.0\nB = 1.5\n"), call("commit", message="closer"))])
    _, session = solve(task, script, tmp_path / "sessions", 1, "--no-test")
    out = run_cli("review", session.name, "--sessions-dir", str(session.parent)).stdout
    assert "reports no per-instance scores" in out
    got = json.loads(run_cli("review", session.name, "--sessions-dir", str(session.parent), "--json").stdout)
    assert got["rows"][0]["interval"] is None and got["rows"][0]["test_gain"] == pytest.approx(17 - 1.25)


def test_the_bootstrap_interval_pairs_instances_by_name():
    base = {f"i{k}": 0.0 for k in range(50)}
    cand = {f"i{k}": (1.0 if k % 5 else -1.0) for k in range(50)}
    cand["unpaired"] = 100.0
    iv = interval(cand, base, sign=1.0)
    assert (iv.n, iv.won, iv.lost, iv.tied) == (50, 40, 10, 0)
    assert iv.mean == pytest.approx(0.6) and 0.3 < iv.low < 0.6 < iv.high < 0.9
    assert interval(cand, base, sign=-1.0).mean == pytest.approx(-0.6)  # minimizing: lower is better
    assert interval({"a": 1.0}, {"b": 1.0}, 1.0) is None
    assert interval(cand, base, 1.0) == iv  # seeded: the same every time
    assert np.isfinite([iv.low, iv.high]).all()
