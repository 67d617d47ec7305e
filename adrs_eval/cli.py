"""An evaluator's command line: the standard arguments, and an entry that always reports.

    from adrs_eval import result
    from adrs_eval.cli import Args, parser, run

    def evaluate(args: Args) -> dict:
        ...
        return result(score, metrics=..., feedback=...)

    if __name__ == "__main__":
        ap = parser(__doc__, time_limit_s=100.0)
        ap.add_argument("--case-timeout-s", type=float, default=10.0)  # the task's own
        sys.exit(run(evaluate, parser=ap, expected=(ValueError,)))

`run` parses the arguments, calls the task's function and emits exactly one result line,
whatever the function does: an exception becomes an invalid result that names it (one of
`expected`, an error the task anticipates, becomes `invalid(str(exc))`), and so does a
return value that is not a JSON object. It lives apart from `adrs_eval/__init__.py`
because the jailed side imports that package on every candidate start, and needs none of this.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from adrs_eval import emit, invalid, tb_tail

DATA_ENV = "ADRS_DATA"


@dataclass(frozen=True)
class Args:
    """The standard evaluator arguments, parsed; `extra` holds the ones a task added."""

    stage: str
    candidate: Path  # the candidate worktree, resolved
    data: Path | None  # --data, else $ADRS_DATA; None when neither names a folder
    time_limit_s: float | None  # --time-limit-s, else the task's default given to parser()
    extra: argparse.Namespace = field(default_factory=argparse.Namespace)


_STANDARD = ("stage", "candidate", "data", "time_limit_s")


def parser(description: str | None = None, *,
           time_limit_s: float | None = None) -> argparse.ArgumentParser:
    """The standard arguments; a task adds its own to the parser it gets back."""
    ap = argparse.ArgumentParser(description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", required=True)
    ap.add_argument("--candidate", required=True, help="the candidate worktree")
    # The harness always passes --data when the command names {data}, empty when the user gave
    # none, so an empty value means "no data" (and falls back to ADRS_DATA, as the harness
    # sets it too).
    ap.add_argument("--data", default="", help="a data folder (read-only), if the task has one")
    # --time-limit is the older spelling some task tests still use.
    ap.add_argument("--time-limit-s", "--time-limit", dest="time_limit_s", type=float,
                    default=time_limit_s, help="the stage's time budget in seconds")
    return ap


def parse_args(argv: Sequence[str] | None = None,
               ap: argparse.ArgumentParser | None = None) -> Args:
    ns = (ap or parser()).parse_args(argv)
    data = ns.data or os.environ.get(DATA_ENV, "")
    extra = argparse.Namespace(**{k: v for k, v in vars(ns).items() if k not in _STANDARD})
    return Args(stage=ns.stage, candidate=Path(ns.candidate).resolve(),
                data=Path(data) if data else None, time_limit_s=ns.time_limit_s, extra=extra)


def run(evaluate: Callable[[Args], object], argv: Sequence[str] | None = None, *,
        parser: argparse.ArgumentParser | None = None,
        expected: tuple[type[BaseException], ...] = ()) -> int:
    """Parse, evaluate, emit one result; 0 once it is emitted.

    A command line that does not parse is argparse's usual exit 2 with its usage on stderr:
    that is the task's command being wrong, not a result about the candidate.
    """
    args = parse_args(argv, parser)
    emit(_checked(lambda: evaluate(args), expected))
    return 0


def _checked(call: Callable[[], object], expected: tuple[type[BaseException], ...]) -> dict:
    try:
        out = call()
    except KeyboardInterrupt:
        raise
    except expected as exc:
        return invalid(str(exc))
    # Everything else too (SystemExit from a library included): the harness reads one line,
    # and an evaluator bug shown with its traceback is found faster than a missing result.
    except BaseException as exc:  # noqa: BLE001
        return invalid(f"evaluator error {type(exc).__name__}: {exc}\n{tb_tail(exc)}")
    if not isinstance(out, dict):
        return invalid(f"evaluator error: the task's evaluate returned {type(out).__name__}, "
                       "not a result object")
    try:
        json.dumps(out)
    except (TypeError, ValueError) as exc:
        return invalid(f"evaluator error: the result is not JSON ({exc})")
    return out
