"""Output of untrusted processes, captured with a bound: the head and the tail are kept, the
middle is counted and dropped as it arrives, so a command printing gigabytes costs the harness
a few megabytes at most."""

from __future__ import annotations

import os
import select
import threading
import time

HEAD_BYTES = 256 * 1024
TAIL_BYTES = 768 * 1024


class Bounded:
    """The first `head` and the last `tail` bytes written to it, and how many were dropped."""

    def __init__(self, head: int = HEAD_BYTES, tail: int = TAIL_BYTES):
        self.head_limit, self.tail_limit = head, tail
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0
        self.total = 0
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            self.total += len(data)
            room = self.head_limit - len(self.head)
            if room > 0:
                self.head += data[:room]
                data = data[room:]
            if not data:
                return
            self.tail += data
            extra = len(self.tail) - self.tail_limit
            if extra > 0:
                del self.tail[:extra]
                self.dropped += extra

    def text(self) -> str:
        with self._lock:
            cut = (f"\n[... {self.dropped} bytes of output dropped ...]\n".encode()
                   if self.dropped else b"")
            return bytes(self.head + cut + self.tail).decode("utf-8", errors="replace")

    def last(self, n: int) -> str:
        return self.text()[-n:]


def drain(fds: dict[int, Bounded], deadline: float | None, exited: int | None = None) -> bool:
    """Read every fd into its buffer until all reach end of file, or until `exited` (a pidfd)
    says the process is gone and what it wrote is read (children it left behind may hold the
    pipes open: the caller kills them). False if the deadline came first. The fds are left
    open; the caller closes them."""
    open_fds = dict(fds)
    done = False
    while open_fds:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        if done:
            wait = 0.0
        elif wait == 0.0:
            return False
        watch = list(open_fds) + ([exited] if exited is not None and not done else [])
        ready, _, _ = select.select(watch, [], [], wait)
        if not ready:
            return done
        for fd in ready:
            if fd == exited:
                done = True
                continue
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            if chunk:
                open_fds[fd].write(chunk)
            else:
                del open_fds[fd]
    return True


def drain_in_thread(fd: int, sink: Bounded) -> threading.Thread:
    """Keep reading fd into sink in the background until end of file (so the writer never
    blocks on a full pipe)."""

    def pump() -> None:
        while True:
            # select first: a FIFO nobody has opened for writing yet reads as end of file
            select.select([fd], [], [])
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not chunk:
                return
            sink.write(chunk)

    thread = threading.Thread(target=pump, name=f"drain-{fd}", daemon=True)
    thread.start()
    return thread
