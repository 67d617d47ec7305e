"""Candidate code in a jail of its own, spoken to over a pipe (the evaluator's side).

    from adrs_eval.candidate import Candidate, CandidateError
    with Candidate(worktree, HERE / "jail" / "side.py") as cand:
        cand.send({"items": [...]})
        reply = cand.recv(timeout=10)        # a JSON value; validate every field of it

The jail (bwrap, docker or, only when the user asked for it, a plain process) is the one the
harness chose, from ADRS_JAIL. Inside it the task's script (`entry`) runs on this Python with
the candidate's files read-only at $ADRS_CANDIDATE, the script's own folder (the candidate
reads it: put nothing secret there) and, if given, a job folder read-only at $ADRS_JOB. It
does not see this evaluator's folder, process, arguments, environment or result.

Everything the candidate sends is hostile input: replies are length-capped JSON, reads and
writes have deadlines, and its stderr is kept as a bounded tail for feedback.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time
from pathlib import Path

from sandbox.capture import Bounded, drain_in_thread
from sandbox.jail import Jail, JailConfig, JailError, Mount, Proc

KIT = Path(__file__).resolve().parent
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class CandidateError(Exception):
    """The candidate process failed to answer; the message says how, for feedback."""


class CandidateTimeout(CandidateError):
    pass


class CandidateExited(CandidateError):
    pass


class Candidate:
    def __init__(self, worktree: str | Path, entry: str | Path, args: list[str] = (), *,
                 job: str | Path | None = None, config: JailConfig | None = None,
                 env: dict[str, str] | None = None):
        self.worktree = str(Path(worktree).resolve())
        self.entry = Path(entry).resolve()
        self.args = [str(a) for a in args]
        self.job = str(Path(job).resolve()) if job else None
        self.config = config or JailConfig.from_env()
        self.env = env or {}
        self.proc: Proc | None = None
        self.stderr = Bounded(head=16 * 1024, tail=64 * 1024)
        self._buf = bytearray()
        self._drain = None

    # -- life -------------------------------------------------------------------------------------
    def start(self) -> Candidate:
        mounts = [Mount(self.worktree, "/candidate"), Mount(str(KIT), "/adrs/kit/adrs_eval"),
                  Mount(str(self.entry.parent), "/adrs/task")]
        if self.job:
            mounts.append(Mount(self.job, "/adrs/job"))
        jail = Jail(self.config, mounts, workdir="/tmp")
        env = {"ADRS_CANDIDATE": jail.path(self.worktree), **self.env}
        if self.job:
            env["ADRS_JOB"] = jail.path(self.job)
        argv = [sys.executable, "-I", jail.path(KIT / "launch.py"), jail.path(self.entry),
                *self.args]
        self.proc = jail.spawn(argv, env, stdin=True)
        os.set_blocking(self.proc.stdout, False)
        os.set_blocking(self.proc.stdin, False)
        self._poll = select.poll()
        self._poll.register(self.proc.stdout, select.POLLIN)
        self._drain = drain_in_thread(self.proc.stderr, self.stderr)
        return self

    def __enter__(self) -> Candidate:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Kill the process (and everything in its jail) and release it."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=5.0)
            self._drain.join(timeout=2.0)  # it ends at end of file; its fd is closed below
            self.proc.close()
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()

    def stderr_tail(self, n: int = 1500) -> str:
        return self.stderr.last(n)

    # -- talking ---------------------------------------------------------------------------------
    def send(self, obj, timeout: float | None = None) -> None:
        self.send_bytes(json.dumps(obj, separators=(",", ":")).encode() + b"\n", timeout)

    def send_bytes(self, data: bytes, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.proc.stdin, view):]
                continue
            except BlockingIOError:
                pass
            except BrokenPipeError:
                raise self._exited("stopped reading its input") from None
            if not select.select([], [self.proc.stdin], [], self._left(deadline))[1]:
                raise self._timeout("read its input", timeout)

    def recv(self, timeout: float | None = None):
        """The next JSON value the candidate sent."""
        line = self.read_line(timeout)
        try:
            return json.loads(line)
        except RecursionError:  # valid JSON nested past the parser's depth
            raise CandidateError("the candidate process sent a reply nested too deeply to "
                                 "read") from None
        except ValueError:
            raise CandidateError(f"the candidate process sent a line that is not JSON: "
                                 f"{line[:200]!r}") from None

    def read_line(self, timeout: float | None = None) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[:nl + 1]
                return line
            if len(self._buf) > MAX_MESSAGE_BYTES:
                raise CandidateError(f"the candidate process sent more than "
                                     f"{MAX_MESSAGE_BYTES} bytes without a line break")
            self._fill(deadline, timeout)

    def read_exact(self, n: int, timeout: float | None = None) -> bytes:
        if n > MAX_MESSAGE_BYTES:
            raise CandidateError(f"the candidate process announced {n} bytes; the limit is "
                                 f"{MAX_MESSAGE_BYTES}")
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self._buf) < n:
            self._fill(deadline, timeout)
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _fill(self, deadline: float | None, timeout: float | None) -> None:
        # select first: a docker FIFO reads as end of file until the container's shell opens
        # it, but select() waits for that
        left = self._left(deadline)
        if not self._poll.poll(None if left is None else int(left * 1000)):
            raise self._timeout("answer", timeout)
        try:
            chunk = os.read(self.proc.stdout, 1 << 20)
        except BlockingIOError:
            return
        if not chunk:
            raise self._exited("exited without answering")
        self._buf += chunk

    def _left(self, deadline: float | None) -> float | None:
        if deadline is None:
            return None
        return max(0.0, deadline - time.monotonic())

    def _timeout(self, what: str, timeout: float | None) -> CandidateTimeout:
        self.kill()
        return CandidateTimeout(f"the candidate did not {what} within {timeout:g} s")

    def _exited(self, what: str) -> CandidateExited:
        code = self.proc.wait(timeout=2.0)
        how = f"exit code {code}" if code is not None and code >= 0 else \
            f"killed by signal {-code}" if code is not None else "still running"
        if code == -9:
            how += " (out of memory, or killed at a time limit)"
        tail = self.stderr_tail()
        return CandidateExited(f"the candidate process {what} ({how})"
                               + (f"; its stderr ends:\n{tail}" if tail.strip() else ""))


def start(worktree, entry, args=(), **kwargs) -> Candidate:
    """Start a candidate process; raise CandidateError (never JailError) if it cannot start."""
    try:
        return Candidate(worktree, entry, args, **kwargs).start()
    except JailError as e:
        raise CandidateError(str(e)) from e
