"""The evaluator kit's command line: the standard arguments, and one result line whatever the
task's evaluate function does (run as a real evaluator subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from adrs_eval import invalid, result
from adrs_eval.cli import parse_args, parser

ROOT = Path(__file__).resolve().parents[1]


def test_standard_arguments_parse_into_a_typed_record(tmp_path, monkeypatch):
    monkeypatch.delenv("ADRS_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    args = parse_args(["--stage", "quick", "--candidate", "wt", "--data", "d",
                       "--time-limit-s", "12.5"])
    assert (args.stage, args.candidate, args.data, args.time_limit_s) == (
        "quick", tmp_path / "wt", Path("d"), 12.5)
    assert args.candidate.is_absolute()


def test_empty_data_falls_back_to_the_environment_then_to_none(monkeypatch):
    monkeypatch.setenv("ADRS_DATA", "/published")
    assert parse_args(["--stage", "s", "--candidate", "c", "--data", ""]).data == Path("/published")
    monkeypatch.setenv("ADRS_DATA", "")
    assert parse_args(["--stage", "s", "--candidate", "c", "--data", ""]).data is None
    assert parse_args(["--stage", "s", "--candidate", "c"]).data is None


def test_time_limit_has_the_tasks_default_and_the_old_spelling():
    ap = parser(time_limit_s=60.0)
    assert parse_args(["--stage", "s", "--candidate", "c"], ap).time_limit_s == 60.0
    assert parse_args(["--stage", "s", "--candidate", "c", "--time-limit", "5"], ap).time_limit_s == 5.0
    assert parse_args(["--stage", "s", "--candidate", "c"]).time_limit_s is None


def test_a_tasks_own_arguments_arrive_in_extra():
    ap = parser()
    ap.add_argument("--case-timeout-s", type=float, default=10.0)
    args = parse_args(["--stage", "s", "--candidate", "c", "--case-timeout-s", "3"], ap)
    assert args.extra.case_timeout_s == 3.0
    assert not hasattr(args.extra, "stage")


def test_stage_and_candidate_are_required(capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(["--candidate", "c"])
    assert exc.value.code == 2 and "--stage" in capsys.readouterr().err


def test_result_and_invalid_have_the_harness_shape():
    assert result(3, metrics={"m": 1}, feedback="ok") == {
        "score": 3.0, "valid": True, "metrics": {"m": 1}, "feedback": "ok", "artifacts": {}}
    assert result(1.0, instances={"a": 0.5})["instances"] == {"a": 0.5}
    bad = invalid("why")
    assert bad["valid"] is False and bad["score"] == 0.0 and bad["feedback"] == "INVALID: why"


def run_evaluator(tmp_path: Path, body: str, *args: str, expected: str = "()"):
    """An evaluator whose evaluate function is `body`, run with the kit's entry."""
    script = tmp_path / "evaluate.py"
    script.write_text(textwrap.dedent(body) + textwrap.dedent(f"""
        if __name__ == "__main__":
            import sys
            from adrs_eval.cli import run
            sys.exit(run(evaluate, expected={expected}))
        """))
    result_file = tmp_path / "result.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ADRS_RESULT": str(result_file), "ADRS_DATA": ""}
    proc = subprocess.run([sys.executable, str(script), "--stage", "quick", "--candidate",
                           str(tmp_path), *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    return proc, result_file


def one_result(proc: subprocess.CompletedProcess, result_file: Path) -> dict:
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    assert json.loads(result_file.read_text()) == json.loads(lines[0])
    return json.loads(lines[0])


def test_a_crashing_evaluate_still_emits_exactly_one_invalid_line(tmp_path):
    proc, out = run_evaluator(tmp_path, """
        def evaluate(args):
            raise RuntimeError("boom in " + args.stage)
        """)
    r = one_result(proc, out)
    assert r["valid"] is False and r["score"] == 0.0
    assert r["feedback"].startswith("INVALID: evaluator error RuntimeError: boom in quick\n")
    assert ", in evaluate" in r["feedback"]  # the traceback's tail says where


def test_an_expected_error_is_the_results_own_message(tmp_path):
    proc, out = run_evaluator(tmp_path, """
        def evaluate(args):
            raise ValueError("unknown stage 'quick'")
        """, expected="(ValueError,)")
    assert one_result(proc, out)["feedback"] == "INVALID: unknown stage 'quick'"


@pytest.mark.parametrize("returned, why", [("None", "returned NoneType"),
                                           ("{'score': 1.0, 'metrics': {1, 2}}", "not JSON")])
def test_a_result_that_is_not_a_json_object_is_an_evaluator_error(tmp_path, returned, why):
    proc, out = run_evaluator(tmp_path, f"""
        def evaluate(args):
            return {returned}
        """)
    r = one_result(proc, out)
    assert r["valid"] is False and why in r["feedback"]


def test_exit_from_inside_evaluate_still_emits_one_line(tmp_path):
    proc, out = run_evaluator(tmp_path, """
        import sys
        def evaluate(args):
            sys.exit(3)
        """)
    assert "evaluator error SystemExit" in one_result(proc, out)["feedback"]


def test_a_valid_result_is_emitted_as_returned(tmp_path):
    proc, out = run_evaluator(tmp_path, """
        from adrs_eval import result
        def evaluate(args):
            print("the task's own chatter goes to stderr", file=__import__("sys").stderr)
            return result(2.5, metrics={"limit": args.time_limit_s}, feedback=str(args.data))
        """, "--time-limit", "7")
    r = one_result(proc, out)
    assert r == {"score": 2.5, "valid": True, "metrics": {"limit": 7.0}, "feedback": "None",
                 "artifacts": {}}
