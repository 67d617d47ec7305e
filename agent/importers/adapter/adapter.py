#!/usr/bin/env python3
"""adrs-agent's adapter around an imported evaluator (OpenEvolve, ShinkaEvolve or an ADRS
leaderboard problem), written by `adrs-agent tasks import`.

Their evaluator imports and runs the candidate's program in its own process, so here it runs
whole inside the candidate's jail (`jail/run_theirs.py`, through `adrs_eval.candidate`): it
sees their files read-only at $ADRS_JOB, a copy of the candidate, a private /tmp, no network and
no secret. What it returns comes back over the pipe and is turned into adrs-agent's result here.
The candidate shares that process, so it could forge their metrics: the jail protects the
machine, not the score (as in their own frameworks).

import.json says which of their functions each stage calls and how the score is read.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from adrs_eval import invalid, result
from adrs_eval.candidate import CandidateError, CandidateTimeout, start
from adrs_eval.cli import Args, parser, run

HERE = Path(__file__).resolve().parent
TEXT = 4000  # most characters of their text quoted in feedback


def number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def numeric(metrics: dict, prefix: str = "") -> dict:
    return {prefix + k: number(v) for k, v in metrics.items() if number(v) is not None}


def texts(d: dict) -> str:
    return "\n".join(f"{k}: {str(v)[:TEXT]}" for k, v in d.items() if isinstance(v, str) and v.strip())


def openevolve(reply: dict, rule: str) -> dict:
    metrics, artifacts = reply.get("metrics"), reply.get("artifacts") or {}
    if not isinstance(metrics, dict):
        return invalid(f"their evaluator returned {str(metrics)[:200]!r}, not a dict of metrics")
    nums = numeric(metrics)
    if rule == "combined_score" and "combined_score" in nums:
        score = nums["combined_score"]
    else:  # OpenEvolve's fallback: the mean of the numeric metrics
        values = [v for k, v in nums.items() if k != "error"]
        score = sum(values) / len(values) if values else None
    arts = {k: str(v)[:TEXT] for k, v in artifacts.items()} if isinstance(artifacts, dict) else {}
    feedback = "\n".join(t for t in (texts(metrics), texts(arts)) if t)
    error = metrics.get("error")
    if isinstance(error, str) and error.strip():
        return invalid(f"their evaluator reported an error: {error[:TEXT]}", metrics=nums, artifacts=arts)
    if score is None:
        return invalid("their evaluator returned no numeric metric", artifacts=arts)
    return result(score, metrics=nums, feedback=feedback, artifacts=arts)


def shinka(reply: dict) -> dict:
    metrics, correct = reply.get("metrics"), reply.get("correct")
    if not isinstance(metrics, dict):
        return invalid("their evaluator wrote no metrics.json (or not a JSON object) in results_dir")
    public = metrics.get("public") if isinstance(metrics.get("public"), dict) else {}
    nums = {**numeric(metrics), **numeric(public, "public.")}
    feedback = "\n".join(t for t in (str(metrics.get("text_feedback") or "")[:TEXT], texts(public)) if t)
    ok = isinstance(correct, dict) and correct.get("correct") is True
    if not ok:
        why = correct.get("error") if isinstance(correct, dict) else "no correct.json in results_dir"
        return invalid(f"incorrect: {str(why)[:TEXT]}" + (f"\n{feedback}" if feedback else ""), metrics=nums)
    score = number(metrics.get("combined_score"))
    if score is None:
        return invalid(f"metrics.json has no finite combined_score: {metrics.get('combined_score')!r}")
    return result(score, metrics=nums, feedback=feedback)


def leaderboard(reply: dict) -> dict:
    metrics = reply.get("metrics")
    if not isinstance(metrics, dict):
        return invalid(f"their evaluate returned {str(metrics)[:200]!r}, not a dict")
    nums = numeric(metrics)
    error = metrics.get("error")
    if isinstance(error, str) and error.strip():
        return invalid(f"their evaluator reported an error: {error[:TEXT]}", metrics=nums)
    score = nums.get("combined_score", nums.get("score"))
    if score is None:
        return invalid("their evaluate returned neither combined_score nor score", metrics=nums)
    return result(score, metrics=nums, feedback=texts(metrics))


def evaluate(args: Args) -> dict:
    cfg = json.loads((HERE / "import.json").read_text())
    call = cfg["stages"].get(args.stage)
    if call is None:
        return invalid(f"unknown stage {args.stage!r}; this task's stages: {sorted(cfg['stages'])}")
    job = {"format": cfg["format"], "program": cfg["program"], "call": call}
    try:
        with start(args.candidate, HERE / "jail" / "run_theirs.py", [json.dumps(job)],
                   job=HERE / "theirs") as cand:
            reply = cand.recv(timeout=cfg["timeout_s"])
    except CandidateTimeout:
        return invalid(f"their evaluator did not finish within {cfg['timeout_s']:g} s")
    except CandidateError as e:
        return invalid(f"their evaluator's process failed: {e}")
    if not isinstance(reply, dict):
        return invalid(f"their evaluator's process sent {str(reply)[:200]!r}")
    if "raised" in reply:
        return invalid(f"their evaluator raised {reply['raised'][:TEXT]}\n{reply.get('traceback', '')[-TEXT:]}")
    if cfg["format"] == "openevolve":
        return openevolve(reply, cfg["score"])
    if cfg["format"] == "shinka":
        return shinka(reply)
    return leaderboard(reply)


if __name__ == "__main__":
    sys.exit(run(evaluate, parser=parser(__doc__)))
