"""sandbox.notes on real repositories: the in-process writer beside git's own notes, its
hand-overs to `git notes add`, and one writer's notes from many threads."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from sandbox.git import GitError, init_repo
from sandbox.notes import REF, NotesQueue, NotesWriter, noted_commits, read_note


def sh(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=True,
                          env=env).stdout


@pytest.fixture
def repo(tmp_path) -> Path:
    src = tmp_path / "source"
    src.mkdir()
    (src / "policy.py").write_text("A = 1\n")
    repo = tmp_path / "repo"
    init_repo(repo, str(src))
    return repo


def commits(repo: Path, n: int) -> list[str]:
    """n distinct commits on a side chain (commit-tree: no checkout)."""
    tree = sh(["git", "rev-parse", "HEAD^{tree}"], repo).strip()
    parent = sh(["git", "rev-parse", "HEAD"], repo).strip()
    out = []
    for i in range(n):
        parent = sh(["git", "commit-tree", tree, "-p", parent, "-m", f"c{i}"], repo).strip()
        out.append(parent)
    sh(["git", "update-ref", "refs/heads/side", parent], repo)
    return out


def note_paths(repo: Path) -> list[str]:
    return sh(["git", "ls-tree", "-r", "--name-only", REF], repo).split()


def fsck(repo: Path) -> None:
    sh(["git", "fsck", "--strict", "--no-dangling"], repo)


def test_notes_made_in_process_are_git_notes(repo):
    """The writer's own objects: git lists and shows every note, fsck finds them sound, the
    notes commits chain, and the tree has the writer's fan-out (git's own would be flat
    under 256 notes, so a `git notes add` did not write them)."""
    shas = commits(repo, 5)
    w = NotesWriter(repo)
    for i, sha in enumerate(shas):
        w.write(sha, {"i": i, "text": "é\n\"quoted\""})
    w.write(shas[0], {"i": 99})  # overwritten, not added
    assert noted_commits(repo) == set(shas)
    assert read_note(repo, shas[0]) == {"i": 99}
    assert read_note(repo, shas[3]) == {"i": 3, "text": "é\n\"quoted\""}
    assert sorted(p.replace("/", "") for p in note_paths(repo)) == sorted(shas)
    assert all(p[2] == "/" for p in note_paths(repo))
    assert sh(["git", "rev-list", "--count", REF], repo).strip() == "6"
    assert sh(["git", "log", "-1", "--format=%an %s", REF], repo).strip() == \
        "adrs-agent Notes added by 'git notes add'"
    fsck(repo)


def test_notes_from_git_and_from_the_writer_mix(repo):
    """Notes git wrote (flat) are kept and overwritten in place; a note git adds after the
    writer's is not lost by the writer's next one (it built on an older notes commit)."""
    a, b, c, d = commits(repo, 4)
    sh(["git", "notes", "--ref", "adrs", "add", "-m", '{"by": "git"}', a], repo)
    sh(["git", "notes", "--ref", "adrs", "add", "-m", '{"by": "git"}', b], repo)
    w = NotesWriter(repo)
    w.write(b, {"by": "writer"})
    w.write(c, {"by": "writer"})
    sh(["git", "notes", "--ref", "adrs", "add", "-f", "-m", '{"by": "git again"}', c], repo)
    w.write(d, {"by": "writer"})
    assert read_note(repo, a) == {"by": "git"}
    assert read_note(repo, b) == {"by": "writer"}
    assert read_note(repo, c) == {"by": "git again"}
    assert read_note(repo, d) == {"by": "writer"}
    assert sorted(p.replace("/", "") for p in note_paths(repo)) == sorted([a, b, c, d])
    fsck(repo)


@pytest.mark.parametrize("how", ["packed ref", "packed objects"])
def test_packed_notes_are_left_to_git(repo, how):
    """After `git pack-refs` or a repack the writer cannot read the notes loose: git adds
    the note, and nothing written before is lost."""
    shas = commits(repo, 3)
    w = NotesWriter(repo)
    w.write(shas[0], {"n": 0})
    if how == "packed ref":
        sh(["git", "pack-refs", "--all"], repo)
        assert not (repo / ".git" / REF).exists()
    else:
        sh(["git", "repack", "-adq"], repo)
        sh(["git", "prune-packed"], repo)
    w.write(shas[1], {"n": 1})
    NotesWriter(repo).write(shas[2], {"n": 2})  # a fresh writer (a resumed run)
    assert {s: read_note(repo, s) for s in shas} == {s: {"n": i} for i, s in enumerate(shas)}
    fsck(repo)


def test_a_foreign_file_in_the_notes_tree_is_kept(repo):
    """A notes tree holding something that is not a note (git allows it) goes to git, which
    keeps it."""
    (sha,) = commits(repo, 1)
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo, input="x\n",
                          capture_output=True, text=True, check=True).stdout.strip()
    tree = subprocess.run(["git", "mktree"], cwd=repo, input=f"100644 blob {blob}\tREADME\n",
                          capture_output=True, text=True, check=True).stdout.strip()
    first = sh(["git", "commit-tree", tree, "-m", "foreign"], repo).strip()
    sh(["git", "update-ref", REF, first], repo)
    NotesWriter(repo).write(sha, {"ok": True})
    assert read_note(repo, sha) == {"ok": True}
    assert "README" in note_paths(repo)


def test_a_held_ref_lock_is_not_overridden(repo):
    """Someone else holds the notes ref's lock: the writer does not write past it (git then
    refuses, and says so), and writes once it is released."""
    a, b = commits(repo, 2)
    w = NotesWriter(repo)
    w.write(a, {"n": 0})
    lock = repo / ".git" / (REF + ".lock")
    lock.write_text("")
    with pytest.raises(GitError, match="lock"):
        w.write(b, {"n": 1})
    assert read_note(repo, b) is None and read_note(repo, a) == {"n": 0}
    lock.unlink()
    w.write(b, {"n": 1})
    assert read_note(repo, b) == {"n": 1}


def test_one_writer_many_threads(repo):
    shas = commits(repo, 300)
    writer = NotesWriter(repo)
    errors: list[BaseException] = []

    def worker(t: int):
        try:
            for j in range(50):
                i = t * 50 + j
                writer.write(shas[i], {"i": i, "score": i / 10, "thread": t})
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert noted_commits(repo) == set(shas)
    for i, sha in enumerate(shas):
        assert read_note(repo, sha) == {"i": i, "score": i / 10, "thread": i // 50}
    fsck(repo)


def test_queue_writes_in_order_and_reports_errors(repo):
    (a,) = commits(repo, 1)
    q = NotesQueue(repo)
    assert read_note(repo, a) is None and noted_commits(repo) == set()
    q.put(a, {"v": 1})
    q.put(a, {"v": 2})
    q.flush()
    assert read_note(repo, a) == {"v": 2}
    q.put("no-such-commit", {"v": 3})  # git refuses it
    with pytest.raises(GitError):
        q.flush()
    q.put(a, {"v": 4})  # the writer goes on
    q.flush()
    assert read_note(repo, a) == {"v": 4}


def test_queued_notes_share_notes_commits(repo):
    """Notes queued together are written together: 60 notes, a few notes commits."""
    shas = commits(repo, 60)
    q = NotesQueue(repo)
    for i, sha in enumerate(shas):
        q.put(sha, {"i": i})
    q.put(shas[0], {"i": "last"})
    q.flush()
    assert {s: read_note(repo, s) for s in shas} == \
        {s: {"i": "last" if i == 0 else i} for i, s in enumerate(shas)}
    assert int(sh(["git", "rev-list", "--count", REF], repo)) < 10
    fsck(repo)
