"""Evaluator stages on tiny real evaluator scripts: parsing, failures, cascade, cache."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from sandbox.evaluate import CascadeResult, EvalCache, EvaluatorSpec, StageResult, passes, run_cascade, run_stage

PY = sys.executable


@pytest.fixture(autouse=True)
def process_isolation(monkeypatch):
    """These evaluators count their stages in files of their own folder, which the bwrap
    sandbox makes read-only; isolation itself is tested in test_sandbox_run.py."""
    monkeypatch.setenv("ADRS_ISOLATION", "process")


def make_spec(tmp_path: Path, body: str, **kw) -> EvaluatorSpec:
    ev = tmp_path / "evaluator"
    ev.mkdir(exist_ok=True)
    (ev / "evaluate.py").write_text(body)
    kw.setdefault("stages", ["quick", "full"])
    kw.setdefault("timeout_s", 60)
    kw.setdefault("memory_mb", 2048)
    return EvaluatorSpec(command=["python", "evaluate.py", "{stage}", "{worktree}"],
                         cwd=ev, **kw)


@pytest.fixture
def worktree(tmp_path):
    wt = tmp_path / "wt"
    wt.mkdir()
    (wt / "policy.txt").write_text("0.7")
    return wt


def stage(spec, wt, name="quick", **kw) -> StageResult:
    return run_stage(spec, wt, name, python=PY, **kw)


def test_good_json_last_line(tmp_path, worktree):
    spec = make_spec(tmp_path, """\
import json
print("warming up")
print(json.dumps({"score": 0.75, "valid": True, "metrics": {"n": 3},
                  "feedback": "ok so far", "artifacts": {"plot": "p.png"}}))
""")
    r = stage(spec, worktree)
    assert r.valid is True
    assert r.stage == "quick"
    assert r.score == 0.75
    assert r.metrics == {"n": 3}
    assert r.feedback == "ok so far"
    assert r.artifacts == {"plot": "p.png"}
    assert r.error == ""
    assert r.log_tail == ""
    assert StageResult.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_valid_false_reported(tmp_path, worktree):
    spec = make_spec(tmp_path, 'print(\'{"score": 1.0, "valid": false, "feedback": "wrong"}\')\n')
    r = stage(spec, worktree)
    assert r.valid is False
    assert r.score == 1.0
    assert r.feedback == "wrong"


def test_garbage_last_line(tmp_path, worktree):
    spec = make_spec(tmp_path, 'print(\'{"score": 1}\')\nprint("all done, score was great")\n')
    r = stage(spec, worktree)
    assert r.valid is False
    assert r.score is None
    assert "JSON" in r.error
    assert "all done, score was great" in r.log_tail
    assert "all done" in r.feedback


def test_json_array_last_line_is_invalid(tmp_path, worktree):
    spec = make_spec(tmp_path, "print('[1, 2]')\n")
    r = stage(spec, worktree)
    assert r.valid is False
    assert "JSON" in r.error


def test_crash(tmp_path, worktree):
    spec = make_spec(tmp_path, 'print("starting")\nraise RuntimeError("evaluator blew up")\n')
    r = stage(spec, worktree)
    assert r.valid is False
    assert r.score is None
    assert "crashed" in r.error
    assert "exit code 1" in r.error
    assert "evaluator blew up" in r.log_tail
    assert "starting" in r.log_tail


def test_timeout(tmp_path, worktree):
    spec = make_spec(tmp_path, "import time\nprint('working', flush=True)\ntime.sleep(60)\n",
                     timeout_s=1)
    r = stage(spec, worktree)
    assert r.valid is False
    assert r.score is None
    assert "timed out" in r.error
    assert "faster" in r.feedback


def test_crash_after_json_line_is_invalid(tmp_path, worktree):
    spec = make_spec(tmp_path, """\
import os, signal
print('{"score": 1000000.0, "valid": true}', flush=True)
os.kill(os.getpid(), signal.SIGKILL)
""")
    r = stage(spec, worktree)
    assert r.valid is False
    assert "crashed" in r.error


@pytest.mark.parametrize("score", ["NaN", "Infinity", '"0.9"', "null", "true"])
def test_bad_score_is_invalid(tmp_path, worktree, score):
    spec = make_spec(tmp_path, f"print('{{\"score\": {score}, \"valid\": true}}')\n")
    r = stage(spec, worktree)
    assert r.valid is False
    assert r.score is None
    assert "score" in r.error


def test_placeholders_and_env(tmp_path, worktree):
    data = tmp_path / "data"
    data.mkdir()
    ev = tmp_path / "evaluator"
    ev.mkdir()
    (ev / "evaluate.py").write_text("""\
import json, os, sys
print(json.dumps({"score": 1.0, "metrics": {"argv": sys.argv[1:], "exe": sys.executable,
    "env_stage": os.environ["ADRS_STAGE"], "env_data": os.environ["ADRS_DATA"]}}))
""")
    spec = EvaluatorSpec(command=["python3", "evaluate.py", "--stage", "{stage}",
                                  "--candidate", "{worktree}", "--data", "{data}",
                                  "--py={python}"],
                         cwd=ev, stages=["quick"], timeout_s=60, memory_mb=2048)
    r = stage(spec, worktree, "full", data=data)
    assert r.valid, r.log_tail
    m = r.metrics
    assert m["argv"] == ["--stage", "full", "--candidate", str(worktree), "--data", str(data),
                         f"--py={PY}"]
    assert m["env_stage"] == "full"
    assert m["env_data"] == str(data)
    assert Path(m["exe"]).resolve() == Path(PY).resolve()  # leading python -> our interpreter


def test_no_data_gives_empty_adrs_data(tmp_path, worktree):
    spec = make_spec(tmp_path, """\
import json, os
print(json.dumps({"score": 0.0, "metrics": {"d": os.environ.get("ADRS_DATA")}}))
""")
    r = stage(spec, worktree)
    assert r.metrics == {"d": ""}


def test_log_file_written(tmp_path, worktree):
    spec = make_spec(tmp_path, """\
import sys
print("to stdout")
print("to stderr", file=sys.stderr)
print('{"score": 2.5}')
""")
    log = tmp_path / "logs" / "deep" / "quick.log"
    r = stage(spec, worktree, log_path=log)
    assert r.score == 2.5
    assert r.log == str(log)
    text = log.read_text()
    assert "to stdout" in text
    assert "to stderr" in text
    assert "evaluate.py" in text.splitlines()[0]


CASCADE_EVAL = """\
import json, os, sys
stage, wt = sys.argv[1], sys.argv[2]
with open(os.path.join(wt, "ran.txt"), "a") as f:
    f.write(stage + "\\n")
scores = json.load(open(os.path.join(wt, "scores.json")))
print(json.dumps({"score": scores[stage], "feedback": "stage " + stage}))
"""


def cascade(tmp_path: Path, wt: Path, scores: dict, **kw) -> tuple[CascadeResult, list[str]]:
    (wt / "scores.json").write_text(json.dumps(scores))
    spec = make_spec(tmp_path, CASCADE_EVAL, **kw)
    res = run_cascade(spec, lambda s: run_stage(spec, wt, s, python=PY))
    ran = (wt / "ran.txt").read_text().split()
    return res, ran


def test_cascade_all_pass_returns_last_score(tmp_path, worktree):
    res, ran = cascade(tmp_path, worktree, {"quick": 0.6, "full": 0.9},
                       stages=["quick", "full"], thresholds={"quick": 0.5})
    assert ran == ["quick", "full"]
    assert res.valid is True
    assert res.score == 0.9
    assert res.stopped_at is None
    assert [s.stage for s in res.stages] == ["quick", "full"]
    assert res.feedback == "stage full"


def test_cascade_stops_under_threshold(tmp_path, worktree):
    res, ran = cascade(tmp_path, worktree, {"quick": 0.4, "full": 0.9},
                       stages=["quick", "full"], thresholds={"quick": 0.5})
    assert ran == ["quick"]  # full never ran
    assert res.stopped_at == "quick"
    assert res.score is None
    assert len(res.stages) == 1


def test_cascade_three_stages_stops_at_middle(tmp_path, worktree):
    res, ran = cascade(tmp_path, worktree, {"a": 1.0, "b": 0.1, "c": 5.0},
                       stages=["a", "b", "c"], thresholds={"a": 0.5, "b": 0.5})
    assert ran == ["a", "b"]
    assert res.stopped_at == "b"


def test_cascade_minimize_thresholds(tmp_path, worktree):
    res, ran = cascade(tmp_path, worktree, {"quick": 12.0, "full": 3.0},
                       stages=["quick", "full"], thresholds={"quick": 10.0},
                       direction="minimize")
    assert ran == ["quick"]
    assert res.stopped_at == "quick"
    (worktree / "ran.txt").unlink()
    res, ran = cascade(tmp_path, worktree, {"quick": 8.0, "full": 3.0},
                       stages=["quick", "full"], thresholds={"quick": 10.0},
                       direction="minimize")
    assert ran == ["quick", "full"]
    assert res.score == 3.0
    assert res.valid is True


def test_cascade_stops_on_invalid_stage(tmp_path, worktree):
    (worktree / "scores.json").write_text("{}")
    spec = make_spec(tmp_path, CASCADE_EVAL, stages=["quick", "full"])  # KeyError: crash
    res = run_cascade(spec, lambda s: run_stage(spec, worktree, s, python=PY))
    assert res.valid is False
    assert res.stopped_at == "quick"
    assert (worktree / "ran.txt").read_text().split() == ["quick"]


def test_cascade_last_stage_under_threshold_keeps_score(tmp_path, worktree):
    res, ran = cascade(tmp_path, worktree, {"quick": 0.9, "full": 0.2},
                       stages=["quick", "full"], thresholds={"quick": 0.5, "full": 0.5})
    assert ran == ["quick", "full"]
    assert res.score == 0.2
    assert res.stopped_at is None


def test_passes_directions():
    mx = EvaluatorSpec(command=[], cwd=Path("."), stages=["q"], thresholds={"q": 1.0})
    mn = EvaluatorSpec(command=[], cwd=Path("."), stages=["q"], thresholds={"q": 1.0},
                       direction="minimize")
    assert passes(mx, StageResult("q", 1.0, True))
    assert not passes(mx, StageResult("q", 0.99, True))
    assert passes(mn, StageResult("q", 0.5, True))
    assert not passes(mn, StageResult("q", 1.5, True))
    assert not passes(mx, StageResult("q", 5.0, False))
    assert not passes(mx, StageResult("q", None, True))
    assert passes(mx, StageResult("other", -100.0, True))  # no threshold: any valid score


def test_eval_cache_runs_once_per_key_from_8_threads():
    cache = EvalCache()
    calls: dict[tuple[str, str], int] = {}
    calls_lock = threading.Lock()
    start = threading.Barrier(8)
    results: list[tuple[StageResult, bool]] = []

    def fn_for(key: str, stg: str):
        def fn() -> StageResult:
            with calls_lock:
                calls[(key, stg)] = calls.get((key, stg), 0) + 1
            time.sleep(0.05)  # widen the race window
            return StageResult(stg, float(len(key)), True)
        return fn

    def worker():
        start.wait()
        for key in ("k1", "k22"):
            for stg in ("quick", "full"):
                r = cache.get_or_run(key, stg, fn_for(key, stg))
                with calls_lock:
                    results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == {(k, s): 1 for k in ("k1", "k22") for s in ("quick", "full")}
    assert len(results) == 32
    assert sum(1 for _, hit in results if not hit) == 4
    assert len(cache) == 4
    assert cache.get("k22", "full").score == 3.0
    assert cache.get("nope", "full") is None


def test_eval_cache_put_get():
    cache = EvalCache()
    cache.put("abc", StageResult("quick", 1.0, True))
    r, hit = cache.get_or_run("abc", "quick", lambda: pytest.fail("should be cached"))
    assert hit is True
    assert r.score == 1.0
