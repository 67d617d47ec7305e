"""The evaluator kit: what a task's sealed evaluator imports (standard library only).

- `emit(result)`: hand the one result object to the harness. It goes to the file named by
  ADRS_RESULT (a place no candidate process can see) and, for people running the evaluator
  by hand, to stdout as the last line.
- `result(score, ...)`, `invalid(reason)`, `tb_tail(exc)`: the usual shapes.
- `adrs_eval.cli`: the standard arguments (--stage, --candidate, --data, --time-limit-s) and
  `run(evaluate)`, which always emits exactly one result, even when the task's code raises.
- `adrs_eval.candidate.Candidate`: run candidate code in a jail of its own and talk to it
  over a pipe (evaluator side).
- `adrs_eval.side`: the other end of that pipe, for the task's script inside the jail.

The trust rule it serves: the evaluator owns every input, simulator and score; candidate code
only ever runs in the jail, and only what it sends back over the pipe reaches the evaluator,
which validates it.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

RESULT_ENV = "ADRS_RESULT"


def result(score: float, *, metrics: dict | None = None, feedback: str = "",
           artifacts: dict | None = None, instances: dict | None = None) -> dict:
    """A valid result; `instances` (per-instance scores, for paired comparisons) only if given."""
    out = {"score": float(score), "valid": True, "metrics": metrics or {}, "feedback": feedback,
           "artifacts": artifacts or {}}
    if instances is not None:
        out["instances"] = instances
    return out


def invalid(reason: str, metrics: dict | None = None, artifacts: dict | None = None) -> dict:
    return {"score": 0.0, "valid": False, "metrics": metrics or {},
            "feedback": "INVALID: " + reason, "artifacts": artifacts or {}}


def tb_tail(exc: BaseException, lines: int = 8) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "\n".join(text.rstrip().splitlines()[-lines:])


def emit(result: dict) -> None:
    """The evaluator's result: to the harness's result file, and as stdout's last line."""
    line = json.dumps(result)
    path = os.environ.get(RESULT_ENV)
    if path:
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            f.write(line)
        os.replace(tmp, path)
    sys.stdout.flush()
    print(line, flush=True)
