"""Git plumbing for the program database: session repo, worktrees, commits (the notes that
hold the scores: sandbox/notes.py).

Candidate commits carry the session's own identity (a user's machine may have none).

An agent controls everything inside its worktree, `.git` included: it can replace it with a
repository whose config runs a command (`core.fsmonitor`, hooks, filters). So the harness
never lets git find a repository there: every git command on a worktree names the git dir the
harness made for it (`Worktree.gitdir`, inside the session repo) and the work tree explicitly,
runs with hooks and fsmonitor off, and nothing here reads the worktree's `.git` file.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
import stat
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

IDENTITY = {
    "GIT_AUTHOR_NAME": "adrs-agent", "GIT_AUTHOR_EMAIL": "adrs-agent@localhost",
    "GIT_COMMITTER_NAME": "adrs-agent", "GIT_COMMITTER_EMAIL": "adrs-agent@localhost",
}
# no hooks, and no gc/maintenance process spawned after each commit (that alone was 6 ms)
_GIT = ("git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "gc.auto=0",
        "-c", "maintenance.auto=false")
_ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")}, **IDENTITY,
        "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
# what git itself refuses as a path component (verify_path with core.protectNTFS/HFS)
_BAD_COMPONENT = re.compile(r"^(\.git[. ]*|git~\d+|\.\.?|)$", re.IGNORECASE)


class GitError(RuntimeError):
    pass


def git(args: list[str], cwd: str | Path, *, input: str | None = None, check: bool = True) -> str:
    proc = subprocess.run([*_GIT, *args], cwd=cwd, input=input, capture_output=True, text=True,
                          env=_ENV)
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args)} (in {cwd}) failed: {proc.stderr.strip()}")
    return proc.stdout


@functools.lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern:
    """`**/` = zero or more folders, `**` = anything, `*` and `?` stay within one folder."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matches(rel: str, globs: list[str]) -> bool:
    """Whether a repo-relative posix path matches a glob; `**/` also matches no folder."""
    return any(_glob_regex(pattern).match(rel) for pattern in globs)


def is_git_source(source: str) -> bool:
    return "://" in source or source.endswith(".git") or source.startswith("git@") or (
        Path(source).is_dir() and (Path(source) / ".git").exists())


def init_repo(repo: Path, source: str, ref: str | None = None) -> str:
    """Make the session repo from a folder (its baseline commit) or a git repo (cloned)."""
    if is_git_source(source):
        git(["clone", "--quiet", source, str(repo)], cwd=repo.parent)
        if ref:
            git(["checkout", "--quiet", "-B", "baseline", ref], cwd=repo)
        else:
            git(["checkout", "--quiet", "-B", "baseline"], cwd=repo)
    else:
        shutil.copytree(source, repo, ignore=shutil.ignore_patterns(".git", "__pycache__"))
        git(["init", "--quiet", "--initial-branch=baseline"], cwd=repo)
        git(["add", "-A"], cwd=repo)
        git(["commit", "--quiet", "--allow-empty", "-m", "baseline"], cwd=repo)
    for key, value in (("user.name", "adrs-agent"), ("user.email", "adrs-agent@localhost"),
                       ("gc.auto", "0"), ("core.autocrlf", "false")):
        git(["config", key, value], cwd=repo)
    return head(repo)


def head(repo: Path) -> str:
    """The commit at HEAD of a repo, read from git's files where that is plain (no process)."""
    gitdir = repo / ".git"
    return Worktree(repo, gitdir, gitdir).head()


class Worktree:
    """A linked worktree and the git dir the harness keeps for it. The agent may rewrite
    anything under `path`; `gitdir` and `common` are in the session repo, out of its reach."""

    def __init__(self, path: Path, gitdir: Path, common: Path):
        self.path, self.gitdir, self.common = path, gitdir, common

    def git(self, args: list[str], *, input: str | None = None, check: bool = True) -> str:
        return git(["--git-dir", str(self.gitdir), "--work-tree", str(self.path), *args],
                   cwd=self.path, input=input, check=check)

    def head(self) -> str:
        try:
            ref = (self.gitdir / "HEAD").read_text().strip()
            sha = (self.common / ref[5:]).read_text().strip() if ref.startswith("ref: ") else ref
        except OSError:  # a packed ref
            sha = ""
        return sha if re.fullmatch(r"[0-9a-f]{40}", sha) else self.git(["rev-parse", "HEAD"]).strip()

    def branch_ref(self) -> str | None:
        """refs/heads/... when HEAD is a branch with a loose ref file (the Scanner's fast path)."""
        ref = (self.gitdir / "HEAD").read_text().strip()
        if ref.startswith("ref: refs/heads/") and (self.common / ref[5:]).is_file():
            return ref[5:]
        return None


# `git worktree add/remove/prune` share .git/worktrees: one at a time per process
_WORKTREES = threading.Lock()


def _linked(repo: Path, path: Path) -> Worktree:
    """The Worktree git just made at path (its `.git` file is read now, before any agent runs)."""
    pointer = (path / ".git").read_text()
    gitdir = Path(pointer.split(":", 1)[1].strip())
    if not gitdir.is_absolute():
        gitdir = (path / gitdir).resolve()
    return Worktree(path, gitdir, (repo / ".git").resolve())


def add_worktree(repo: Path, path: Path, branch: str, start: str) -> Worktree:
    with _WORKTREES:
        git(["worktree", "add", "--quiet", "-B", branch, str(path), start], cwd=repo)
        return _linked(repo, path)


def add_detached_worktree(repo: Path, path: Path, commit: str) -> Worktree:
    with _WORKTREES:
        git(["worktree", "add", "--quiet", "--detach", str(path), commit], cwd=repo)
        return _linked(repo, path)


def remove_worktree(repo: Path, path: Path | Worktree) -> None:
    """Delete the folder, then let git forget it. No git command runs inside the folder
    (`git worktree remove` would read what the agent left there)."""
    path = path.path if isinstance(path, Worktree) else path
    with _WORKTREES:
        shutil.rmtree(path, ignore_errors=True)
        git(["worktree", "prune"], cwd=repo, check=False)


@contextlib.contextmanager
def worktree(repo: Path, path: Path, commit: str, branch: str | None = None) -> Iterator[Worktree]:
    """A worktree at commit for the duration of a block: on a new branch when one is named,
    else detached."""
    wt = add_worktree(repo, path, branch, commit) if branch else add_detached_worktree(repo, path, commit)
    try:
        yield wt
    finally:
        remove_worktree(repo, wt)


class WorktreePool:
    """Episode worktrees kept for the run and reused: taking one resets a free worktree to
    the parent on the new branch instead of `git worktree add` and `remove` (five git
    processes). The reset runs no process when the blobs it writes are loose (the harness
    writes its commits loose): every file the parent does not have is deleted, the parent's
    blobs are written where the worktree differs, and HEAD and the branch ref are written;
    when a blob is packed (or a submodule is in the tree), one `git checkout -f -B` finishes.
    The index is left as it was (the Scanner reads none of it and rebuilds it when git needs
    it).

    A reset starts from nothing the agent left: the pointer file `.git` is rewritten, tracked
    files are forced back to the parent's, everything else (untracked, ignored, nested repos,
    symlinks) is deleted without following links; if any of it fails the worktree is thrown
    away and a new one made. Pooled worktrees are added locked, so that a `git worktree prune`
    run for another worktree keeps them even when an agent deleted its `.git` file; a killed
    run's are unlocked and removed by `repair` like any other."""

    def __init__(self, repo: Path, root: Path):
        self.repo, self.root = repo, root
        self._free: list[Worktree] = []
        self._made = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def checkout(self, commit: str, branch: str) -> Iterator[Worktree]:
        """A clean worktree at commit on a new branch (reset if it exists), for a block; at
        the end its HEAD is detached, so that the branch can be deleted."""
        with self._lock:
            wt = self._free.pop() if self._free else None
        if wt is not None:
            try:
                self._reset(wt, commit, branch)
            except (GitError, OSError):  # something the agent left that we cannot clean
                self._discard(wt)
                wt = None
        if wt is None:
            with self._lock:
                path, self._made = self.root / f"w{self._made}", self._made + 1
            with _WORKTREES:
                git(["worktree", "add", "--quiet", "--lock", "-B", branch, str(path), commit],
                    cwd=self.repo)
                wt = _linked(self.repo, path)
        try:
            yield wt
        finally:
            try:  # detach, as `git checkout --detach` would, without a process
                overwrite(wt.gitdir / "HEAD", f"{wt.head()}\n".encode())
            except (GitError, OSError):
                self._discard(wt)
            else:
                with self._lock:
                    self._free.append(wt)

    def _reset(self, wt: Worktree, commit: str, branch: str) -> None:
        dot_git, pointer = wt.path / ".git", f"gitdir: {wt.gitdir}\n".encode()
        try:
            st = os.lstat(dot_git)
        except FileNotFoundError:
            st = None
        if not (st and stat.S_ISREG(st.st_mode) and st.st_size == len(pointer)
                and dot_git.read_bytes() == pointer):  # the agent's work: the harness's back
            if st and stat.S_ISDIR(st.st_mode):
                shutil.rmtree(dot_git)
            dot_git.unlink(missing_ok=True)
            dot_git.write_bytes(pointer)
        # untracked things first, links to folders included: git then writes only into
        # real folders of the worktree
        entries = entries_at(self.repo, commit)
        folders = {"/".join(parts[:i]) for parts in (p.split("/") for p in entries)
                   for i in range(1, len(parts))}
        _delete_all_but(wt.path, set(entries), folders)
        if not _write_files(wt.path, wt.common / "objects", entries):
            wt.git(["checkout", "--quiet", "--force", "--no-recurse-submodules", "-B", branch,
                    commit])
            return
        update_ref(wt.common / "refs" / "heads" / branch, commit)
        overwrite(wt.gitdir / "HEAD", f"ref: refs/heads/{branch}\n".encode())

    def _discard(self, wt: Worktree) -> None:
        (wt.gitdir / "locked").unlink(missing_ok=True)
        remove_worktree(self.repo, wt)

    def close(self) -> None:
        """Remove the free worktrees (at the end of the run)."""
        with self._lock:
            free, self._free = self._free, []
        for wt in free:
            self._discard(wt)


def _delete_all_but(root: Path, keep: set[str], dirs: set[str]) -> None:
    """Delete everything under root but the files in keep (and the folders holding them) and
    the top `.git`; links are deleted, never followed. Raises OSError where it cannot."""
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = prefix + entry.name
                if rel == ".git" or rel in keep:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if rel in dirs:
                        stack.append((Path(entry.path), rel + "/"))
                    else:
                        shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)


def _write_files(root: Path, objects: Path, entries: dict[str, tuple[bytes, str]]) -> bool:
    """Make each file under root hold its blob (entries: path -> (mode, blob sha)), after
    `_delete_all_but` left only real folders on the way. A file already right (same blob
    hash and mode, one name) is not touched; a link or folder in a file's place is replaced,
    never followed; a changed file is deleted and made anew (on ext4 a rename over it would
    wait for its blocks). False when a blob is not loose or an entry is a submodule (git has
    to do it)."""
    for rel, (mode, sha) in entries.items():
        if mode == b"160000":
            return False
        target = root / rel
        try:
            st = os.lstat(target)  # one look, never through a link
        except FileNotFoundError:
            st = None
        kind = stat.S_IFMT(st.st_mode) if st else None
        if kind == stat.S_IFLNK:
            if mode == b"120000" and _blob_sha(os.fsencode(os.readlink(target))) == sha:
                continue
            target.unlink()
        elif kind == stat.S_IFDIR:
            shutil.rmtree(target)
        elif kind == stat.S_IFREG and mode != b"120000" and _kept(target, st, mode, sha):
            continue
        obj = read_loose(objects, sha)
        if obj is None or obj[0] != b"blob":
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)  # a new file, not a rename over the old one (ext4)
        if mode == b"120000":
            os.symlink(os.fsdecode(obj[1]), target)
        else:
            executable = mode == b"100755"
            with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                              0o755 if executable else 0o644), "wb") as f:
                f.write(obj[1])
    return True


def _kept(path: Path, st: os.stat_result, mode: bytes, sha: str) -> bool:
    """Whether a regular file (st: its lstat) already is the blob: its exec bit, its bytes,
    and no other name for it (a hard link, which a later write in place would write through)."""
    return bool(st.st_mode & 0o100) == (mode == b"100755") and st.st_nlink == 1 and \
        _blob_sha(path.read_bytes()) == sha


def _blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def bad_path(rel: str) -> str | None:
    """Why git would refuse rel as a path in a tree (a `.git` component, `..`), or None."""
    for part in rel.split("/"):
        if _BAD_COMPONENT.match(part):
            return f"{rel!r}: git refuses the path component {part!r}"
    return None


def escaping_link(worktree: Path, rel: str) -> str | None:
    """Why the symlink at rel points outside the worktree (absolute, or up past its root), or
    None for a link that stays inside (or no link)."""
    link = worktree / rel
    if not link.is_symlink():
        return None
    target = os.readlink(link)
    if os.path.isabs(target):
        return f"{rel} is a symlink to the absolute path {target!r}"
    depth = 0
    for part in (rel.split("/")[:-1] + target.split("/")):
        depth += -1 if part == ".." else 0 if part in ("", ".") else 1
        if depth < 0:
            return f"{rel} is a symlink leading out of the worktree ({target!r})"
    return None


def clear_stale_locks(repo: Path) -> list[str]:
    """Remove the lock files a killed git left behind. Only call it when no other process
    works on this repo (resume, after checking the old run is gone)."""
    gitdir = repo / ".git"
    removed = []
    for path in list(gitdir.rglob("*.lock")) + list(gitdir.glob("worktrees/*/locked")):
        path.unlink(missing_ok=True)
        removed.append(str(path.relative_to(gitdir)))
    return removed


def repair(repo: Path, worktrees: Path) -> list[str]:
    """After a kill: remove the lock files git left behind (returned) and every worktree."""
    stale = clear_stale_locks(repo)
    git(["worktree", "prune"], cwd=repo, check=False)
    for path in worktrees.glob("*"):
        remove_worktree(repo, path)
    return stale


class Scanner:
    """One episode's worktree as {path: blob sha}, without starting git: files are re-hashed
    only when their size or mtime changed, and git is asked only whether new paths are
    ignored. `commit_all` writes the blobs, trees and commit as loose objects itself and moves
    the branch (about 1 ms, where `git commit` costs 10); the worktree's index is brought up
    to date only when someone needs it (`sync_index`)."""

    def __init__(self, wt: Worktree, files: dict[str, str]):
        self.wt = wt
        self.worktree = wt.path
        self.tracked = dict(files)  # the last commit's files
        self._stat: dict[str, tuple[int, int, str, bytes]] = {}  # size, mtime, blob, mode
        self._ignored: set[str] = set()
        self.index_stale = True  # a pooled worktree's index is the one of an earlier episode
        self._ref = wt.branch_ref()

    def scan(self) -> dict[str, str]:
        found: dict[str, str] = {}
        new: list[str] = []
        stack = [self.worktree]
        objects = self.wt.common / "objects"
        while stack:
            for entry in os.scandir(stack.pop()):
                if entry.name == ".git" and entry.path == str(self.worktree / ".git"):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                    continue
                rel = Path(entry.path).relative_to(self.worktree).as_posix()
                if rel in self._ignored:
                    continue
                st = entry.stat(follow_symlinks=False)
                cached = self._stat.get(rel)
                if cached and cached[:2] == (st.st_size, st.st_mtime_ns):
                    found[rel] = cached[2]
                    continue
                link = entry.is_symlink()
                if not link and not entry.is_file(follow_symlinks=False):
                    continue  # a fifo, socket or device: git stores none of them
                data = os.readlink(entry.path).encode() if link else Path(entry.path).read_bytes()
                blob = _blob_sha(data)
                if blob != self.tracked.get(rel):
                    write_object(objects, b"blob", data)
                mode = b"120000" if link else b"100755" if st.st_mode & 0o100 else b"100644"
                self._stat[rel] = (st.st_size, st.st_mtime_ns, blob, mode)
                found[rel] = blob
                if rel not in self.tracked:
                    new.append(rel)
        if new:
            out = self.wt.git(["check-ignore", "--no-index", "--stdin", "-z"], input="\0".join(new) + "\0",
                              check=False)
            for rel in out.split("\0"):
                if rel:
                    self._ignored.add(rel)
                    found.pop(rel, None)
        return found

    def commit_all(self, files: dict[str, str], message: str) -> str:
        """Commit the worktree as scanned (`files`, from `scan`) on the episode's branch."""
        if self._ref is None:  # detached, or a packed ref: let git do it
            self.index_stale = True
            self.sync_index()
            self.wt.git(["add", "-A"])
            self.wt.git(["commit", "--quiet", "--no-verify", "-m", message])
            self.tracked = dict(files)
            return self.wt.head()
        objects = self.wt.common / "objects"
        tree = _write_tree(objects, {p: (self._stat[p][3], b) for p, b in files.items()})
        sha = write_commit(objects, tree, self.wt.head(), message)
        update_ref(self.wt.common / self._ref, sha)
        self.tracked = dict(files)
        self.index_stale = True
        return sha

    def sync_index(self) -> None:
        """Make the index match HEAD again (for git commands run on the worktree)."""
        if self.index_stale:
            self.wt.git(["read-tree", "HEAD"])
            self.wt.git(["update-index", "-q", "--refresh"], check=False)
            self.index_stale = False


def write_object(objects: Path, kind: bytes, data: bytes) -> str:
    """Store a loose git object (if new) and return its sha. It is written beside its place,
    read-only as git makes them, and renamed there."""
    raw = b"%s %d\0" % (kind, len(data)) + data
    sha = hashlib.sha1(raw).hexdigest()
    path = os.path.join(objects, sha[:2], sha[2:])
    if not os.path.exists(path):
        tmp = os.path.join(objects, sha[:2], f"tmp_obj_{os.getpid()}_{threading.get_ident()}")
        with open(_create(tmp), "wb") as f:
            f.write(zlib.compress(raw, 1))
        os.replace(tmp, path)
    return sha


def _create(path: str) -> int:
    """A new read-only file's descriptor, for writing (its folder made when missing)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        return os.open(path, flags, 0o444)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except FileExistsError:  # left by a killed writer of this pid and thread
        os.unlink(path)
    return os.open(path, flags, 0o444)


def _write_tree(objects: Path, files: dict[str, tuple[bytes, str]]) -> str:
    root: dict = {}
    for path, entry in files.items():
        *dirs, name = path.split("/")
        node = root
        for d in dirs:
            node = node.setdefault(d, {})
        node[name] = entry

    def write(node: dict) -> str:
        return write_tree_object(objects, {
            name: (b"40000", write(value)) if isinstance(value, dict) else value
            for name, value in node.items()})

    return write(root)


def write_tree_object(objects: Path, entries: dict[str, tuple[bytes, str]]) -> str:
    """One tree object of {name: (mode, sha)} in git's order (a folder sorts as if its name
    ended in "/"); returns its sha."""
    def order(item: tuple[str, tuple[bytes, str]]) -> bytes:
        return item[0].encode() + (b"/" if item[1][0] == b"40000" else b"")
    data = b"".join(b"%s %s\0" % (mode, name.encode()) + bytes.fromhex(sha)
                    for name, (mode, sha) in sorted(entries.items(), key=order))
    return write_object(objects, b"tree", data)


def write_commit(objects: Path, tree: str, parent: str | None, message: str) -> str:
    """A loose commit object by the session's identity, now; returns its sha."""
    ident = f"{IDENTITY['GIT_AUTHOR_NAME']} <{IDENTITY['GIT_AUTHOR_EMAIL']}> " \
            f"{int(time.time())} +0000"
    parents = f"parent {parent}\n" if parent else ""
    return write_object(objects, b"commit", f"tree {tree}\n{parents}author {ident}\n"
                                            f"committer {ident}\n\n{message.strip()}\n".encode())


def overwrite(path: Path, data: bytes) -> None:
    """Put data in a file (a worktree's HEAD, a file an agent writes) in place, the final
    link never followed. Not emptied first and not renamed over: on ext4 (auto_da_alloc)
    either makes the close or the rename wait for the file's blocks, 0.2-2 ms each here. A
    reader racing it may see a mix of old and new bytes (git reads such a HEAD as naming no
    branch)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    with open(fd, "wb") as f:
        f.write(data)
        f.truncate()


def update_ref(path: Path, sha: str, expect: str | None = None) -> bool:
    """Point a loose ref at sha under git's lock (FileExistsError when another writer holds
    it). With `expect`, only if the ref still names that ("" = no ref yet): False otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, f"{sha}\n".encode())
    finally:
        os.close(fd)
    if expect is not None:
        try:
            now = path.read_text().strip()
        except FileNotFoundError:
            now = ""
        if now != expect:
            lock.unlink()
            return False
    os.replace(lock, path)
    return True


def changed_paths(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def content_hash(files: dict[str, str], globs: list[str]) -> str:
    """Hash of the editable part of a snapshot: equal code gives an equal key."""
    h = hashlib.sha256()
    for path in sorted(files):
        if matches(path, globs):
            h.update(f"{path}\0{files[path]}\n".encode())
    return h.hexdigest()[:20]


def restore(wt: Worktree, paths: list[str], commit: str = "HEAD") -> None:
    """Put paths back as they are in commit (deleting those it does not have)."""
    if not paths:
        return
    tracked = set(git(["ls-tree", "-r", "--name-only", "-z", commit, "--", *paths],
                      cwd=wt.common).split("\0")) - {""}
    if tracked:
        wt.git(["checkout", commit, "--", *sorted(tracked)])
    for path in set(paths) - tracked:
        wt.git(["rm", "--cached", "--quiet", "--ignore-unmatch", "--", path], check=False)
        target = wt.path / path
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)


def files_at(repo: Path, commit: str) -> dict[str, str]:
    """{path: blob sha} of a commit (see `entries_at`)."""
    return {path: sha for path, (_, sha) in entries_at(repo, commit).items()}


def entries_at(repo: Path, commit: str) -> dict[str, tuple[bytes, str]]:
    """{path: (mode, blob sha)} of a commit: read from the loose objects where they all are
    (the harness writes its commits loose; no process), else from `git ls-tree`. A full
    sha's listing never changes and is kept for the next caller (the worktree pool, then the
    episode's scanner): do not change the dict returned."""
    if re.fullmatch(r"[0-9a-f]{40}", commit):
        return _entries_at(Path(repo).resolve(), commit)
    return _ls_entries(repo, commit)


@functools.lru_cache(maxsize=64)
def _entries_at(repo: Path, commit: str) -> dict[str, tuple[bytes, str]]:
    objects = repo / ".git" / "objects"
    found = loose_entries(objects, commit) if objects.is_dir() else None
    return _ls_entries(repo, commit) if found is None else found


def read_loose(objects: Path, sha: str) -> tuple[bytes, bytes] | None:
    """(kind, content) of a loose object, or None when it is not one (packed, missing)."""
    try:
        raw = zlib.decompress((objects / sha[:2] / sha[2:]).read_bytes())
    except (OSError, zlib.error):
        return None
    header, _, data = raw.partition(b"\0")
    kind, _, size = header.partition(b" ")
    return (kind, data) if size.isdigit() and int(size) == len(data) else None


def loose_entries(objects: Path, commit: str) -> dict[str, tuple[bytes, str]] | None:
    """{path: (mode, blob sha)} of a commit whose commit and tree objects are all loose,
    else None."""
    obj = read_loose(objects, commit)
    if obj is None or obj[0] != b"commit" or not obj[1].startswith(b"tree "):
        return None
    files: dict[str, tuple[bytes, str]] = {}
    stack = [(obj[1][5:45].decode(), "")]
    while stack:
        sha, prefix = stack.pop()
        tree = read_loose(objects, sha)
        if tree is None or tree[0] != b"tree":
            return None
        data, i = tree[1], 0
        while i < len(data):
            space = data.index(b" ", i)
            nul = data.index(b"\0", space)
            mode, name = data[i:space], os.fsdecode(data[space + 1:nul])
            entry = data[nul + 1:nul + 21].hex()
            i = nul + 21
            if mode == b"40000":
                stack.append((entry, f"{prefix}{name}/"))
            else:
                files[prefix + name] = (mode, entry)
    return files


def _ls_tree(repo: Path, commit: str) -> dict[str, str]:
    return {path: sha for path, (_, sha) in _ls_entries(repo, commit).items()}


def _ls_entries(repo: Path, commit: str) -> dict[str, tuple[bytes, str]]:
    out = git(["ls-tree", "-r", "-z", commit], cwd=repo)
    files = {}
    for entry in out.split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            mode, _, sha = meta.split()
            files[path] = (mode.encode(), sha)
    return files
