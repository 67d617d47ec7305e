"""The candidates' git notes (refs/notes/adrs in the session repo): each one's scores, JSON.

ONE writer per repo: concurrent `git notes add` drops notes. The writer makes a note's
objects itself, loose, as the Scanner makes commits (a `git notes add` process cost 5-6 ms a
candidate): the blob, the notes tree with a one-level fan-out (`ab/cdef...`; git reads any
fan-out), the notes commit, and the ref, moved under git's ref lock only if it still names
the commit the writer built on. What it cannot do in-process it leaves to `git notes add`:
a packed ref, packed notes objects or a packed commit (after a `git gc`), a ref moved by
someone else, a notes tree holding anything but notes.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from pathlib import Path

from sandbox.git import (
    GitError,
    git,
    loose_entries,
    update_ref,
    write_commit,
    write_object,
    write_tree_object,
)

NOTES_REF = "adrs"
REF = f"refs/notes/{NOTES_REF}"
BATCH_S = 0.25
MESSAGE = "Notes added by 'git notes add'\n"  # what git writes, for a familiar `git log`
_SHA = re.compile(r"[0-9a-f]{40}")


class NotesWriter:
    """The one writer of refs/notes/adrs for a repo: every note goes through its lock."""

    def __init__(self, repo: Path):
        self.repo = Path(repo)
        self._lock = threading.Lock()
        self._head = ""  # the notes commit that _fans and _trees describe
        self._fans: dict[str, dict[str, str]] | None = None  # "ab" -> {"cdef...": blob}
        self._trees: dict[str, str] = {}  # "ab" -> the sha of that subtree

    def write(self, commit: str, data: dict) -> None:
        self.write_many([(commit, data)])

    def write_many(self, notes: list[tuple[str, dict]]) -> None:
        """Add or replace notes, in one notes commit where it can; the first error of those
        git had to add is raised once every note has been tried."""
        texts = {commit: json.dumps(data, sort_keys=True, indent=1) + "\n"
                 for commit, data in notes}
        with self._lock:
            error = None
            for commit in self._write_loose(texts):
                try:
                    git(["notes", "--ref", NOTES_REF, "add", "-f", "-F", "-", commit],
                        cwd=self.repo, input=texts[commit])
                except GitError as e:
                    error = error or e
            if error is not None:
                raise error

    def _write_loose(self, texts: dict[str, str]) -> list[str]:
        """Write what it can as one notes commit; returns the commits left to git."""
        gitdir = self.repo / ".git"
        objects = gitdir / "objects"
        mine = [c for c in texts if _SHA.fullmatch(c) and (objects / c[:2] / c[2:]).is_file()]
        rest = [c for c in texts if c not in mine]  # git checks a packed (or no) commit
        if not mine:
            return rest
        head = _read_ref(gitdir)
        if head is None or (self._fans is None or head != self._head) and \
                not self._load(objects, head):
            self._fans = None
            return list(texts)
        touched = set()
        for commit in mine:
            fan = self._fans.setdefault(commit[:2], {})
            fan[commit[2:]] = write_object(objects, b"blob", texts[commit].encode())
            touched.add(commit[:2])
        for prefix in touched:
            self._trees[prefix] = _notes_tree(objects, self._fans[prefix])
        root = write_tree_object(objects, {p: (b"40000", t) for p, t in self._trees.items()})
        new = write_commit(objects, root, head, MESSAGE)
        try:
            moved = update_ref(gitdir / REF, new, expect=head)
        except FileExistsError:  # another writer (a git process) holds the lock
            moved = False
        if not moved:
            self._fans = None  # moved by someone else, or about to be: read again next time
            return list(texts)
        self._head = new
        return rest

    def _load(self, objects: Path, head: str) -> bool:
        """Read the notes at head into _fans and _trees; False when git has to do it."""
        self._fans, self._trees, self._head = None, {}, head
        if not head:
            self._fans = {}
            return True
        entries = loose_entries(objects, head)
        if entries is None:
            return False
        fans: dict[str, dict[str, str]] = {}
        for path, (mode, blob) in entries.items():
            name = path.replace("/", "")
            if mode != b"100644" or not _SHA.fullmatch(name):
                return False  # something else in the notes tree: let git keep it
            fans.setdefault(name[:2], {})[name[2:]] = blob
        self._trees = {prefix: _notes_tree(objects, fan) for prefix, fan in fans.items()}
        self._fans = fans
        return True


def _notes_tree(objects: Path, fan: dict[str, str]) -> str:
    return write_tree_object(objects, {name: (b"100644", blob) for name, blob in fan.items()})


def _read_ref(gitdir: Path) -> str | None:
    """The notes commit ("" when there are no notes yet), or None when the ref is packed
    or unreadable."""
    try:
        sha = (gitdir / REF).read_text().strip()
    except FileNotFoundError:
        try:
            packed = (gitdir / "packed-refs").read_text()
        except FileNotFoundError:
            return ""
        return None if f" {REF}\n" in packed else ""
    except OSError:
        return None
    return sha if _SHA.fullmatch(sha) else None


class NotesQueue:
    """Notes written in the background by ONE thread, off the candidates' critical path, in
    batches: a note waits up to BATCH_S for others to share its notes commit (a killed run's
    last notes are written again from its events on resume). `flush()` writes what is queued
    and waits for it; an error in the writer surfaces there."""

    def __init__(self, repo: Path):
        self._writer = NotesWriter(repo)
        self._queue: queue.Queue[tuple[str, dict] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="notes-writer", daemon=True)
        self._thread.start()

    def put(self, commit: str, data: dict) -> None:
        self._queue.put((commit, data))

    def flush(self) -> None:
        self._queue.put(None)  # the writer does not wait out the batch
        self._queue.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _drain(self) -> None:
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + BATCH_S
            while batch[-1] is not None:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                notes = [item for item in batch if item is not None]
                if notes:
                    self._writer.write_many(notes)
            except (GitError, OSError) as e:  # kept for flush(); the writer goes on
                self._error = e
            finally:
                for _ in batch:
                    self._queue.task_done()


def read_note(repo: Path, commit: str) -> dict | None:
    out = git(["notes", "--ref", NOTES_REF, "show", commit], cwd=repo, check=False)
    return json.loads(out) if out.strip() else None


def noted_commits(repo: Path) -> set[str]:
    out = git(["notes", "--ref", NOTES_REF, "list"], cwd=repo, check=False)
    return {line.split()[1] for line in out.splitlines() if line.strip()}
