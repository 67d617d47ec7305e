"""The candidate's end of the pipe, for a task's script that runs inside the jail.

    from adrs_eval.side import channel, load_candidate
    chan = channel()              # before anything prints: stdout becomes stderr
    policy = load_candidate("binpack.policy")
    for msg in chan:              # one JSON value per line from the evaluator
        chan.send(answer(msg))

The candidate shares this process, so it can read and write this pipe too: all it can do with
it is give its own answers, which the evaluator validates. It cannot see the evaluator's
process, files or result.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback

_channel = None


class Channel:
    """JSON lines in on fd 0, out on a private copy of fd 1; fd 1 itself now goes to stderr,
    so the candidate's prints cannot mix into the replies."""

    def __init__(self) -> None:
        out = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        self.input = os.fdopen(0, "rb", buffering=1 << 16)
        self.output = os.fdopen(out, "wb", buffering=1 << 16)

    def recv(self):
        """The next message, or None when the evaluator closed the pipe."""
        line = self.input.readline()
        if not line:
            return None
        return json.loads(line)

    def send(self, obj) -> None:
        self.output.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")
        self.output.flush()

    def __iter__(self):
        while True:
            msg = self.recv()
            if msg is None:
                return
            yield msg


def channel() -> Channel:
    global _channel
    if _channel is None:
        _channel = Channel()
    return _channel


def candidate_dir() -> str:
    """Where the candidate's files are (read-only) inside the jail."""
    return os.environ["ADRS_CANDIDATE"]


def load_candidate(module: str):
    """Import a module of the candidate's files (e.g. "binpack.policy")."""
    if candidate_dir() not in sys.path:
        sys.path.insert(0, candidate_dir())
    return importlib.import_module(module)


def tb_tail(exc: BaseException, lines: int = 8) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "\n".join(text.rstrip().splitlines()[-lines:])


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}\n{tb_tail(exc)}"
