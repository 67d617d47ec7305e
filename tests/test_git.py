"""sandbox.git on real repositories: init, worktrees, snapshots, restore, commits, notes, globs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sandbox import git
from sandbox.git import (
    add_detached_worktree,
    add_worktree,
    changed_paths,
    content_hash,
    init_repo,
    matches,
    remove_worktree,
    restore,
)


def snapshot(wt: git.Worktree) -> dict[str, str]:
    """The worktree as the episode loop sees it: {path: blob sha}, ignored files left out."""
    return git.Scanner(wt, {}).scan()

EDITABLE = ["pkg/**/*.py"]


def sh(args: list[str], cwd: Path, env: dict | None = None) -> str:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=True,
                          env=env).stdout


def git_env(**extra) -> dict:
    return {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", **extra}


@pytest.fixture
def toy_source(tmp_path) -> Path:
    src = tmp_path / "source"
    (src / "pkg" / "sub").mkdir(parents=True)
    (src / "pkg" / "policy.py").write_text("def policy():\n    return 1\n")
    (src / "pkg" / "sub" / "util.py").write_text("X = 1\n")
    (src / "config.txt").write_text("fixed\n")
    (src / "pkg" / "__pycache__").mkdir()
    (src / "pkg" / "__pycache__" / "junk.pyc").write_bytes(b"\0")
    return src


@pytest.fixture
def session_repo(tmp_path, toy_source) -> tuple[Path, str]:
    repo = tmp_path / "session" / "repo"
    repo.parent.mkdir()
    base = init_repo(repo, str(toy_source))
    return repo, base


def test_init_repo_from_folder(session_repo):
    repo, base = session_repo
    assert len(base) == 40
    assert sh(["git", "rev-list", "--count", "HEAD"], repo).strip() == "1"
    files = sh(["git", "ls-tree", "-r", "--name-only", "HEAD"], repo).split()
    assert sorted(files) == ["config.txt", "pkg/policy.py", "pkg/sub/util.py"]
    assert sh(["git", "branch", "--show-current"], repo).strip() == "baseline"
    assert sh(["git", "status", "--porcelain"], repo).strip() == ""
    assert sh(["git", "config", "user.name"], repo).strip() == "adrs-agent"


def test_init_repo_from_git_repo_clones(tmp_path, toy_source):
    env = git_env()
    sh(["git", "init", "-q", "-b", "main"], toy_source, env)
    sh(["git", "add", "-A"], toy_source, env)
    sh(["git", "commit", "-q", "-m", "first"], toy_source, env)
    (toy_source / "config.txt").write_text("second\n")
    sh(["git", "commit", "-q", "-am", "second"], toy_source, env)
    upstream_head = sh(["git", "rev-parse", "HEAD"], toy_source).strip()
    first = sh(["git", "rev-parse", "HEAD~1"], toy_source).strip()

    repo = tmp_path / "s1" / "repo"
    repo.parent.mkdir()
    assert init_repo(repo, str(toy_source)) == upstream_head
    assert sh(["git", "remote", "get-url", "origin"], repo).strip() == str(toy_source)
    assert sh(["git", "branch", "--show-current"], repo).strip() == "baseline"
    assert (repo / "config.txt").read_text() == "second\n"

    repo2 = tmp_path / "s2" / "repo"
    repo2.parent.mkdir()
    assert init_repo(repo2, str(toy_source), ref=first) == first
    assert (repo2 / "config.txt").read_text() == "fixed\n"


def test_worktree_add_and_remove(tmp_path, session_repo):
    repo, base = session_repo
    wt = tmp_path / "wt1"
    wt = add_worktree(repo, wt, "ep-1", base)
    assert (wt.path / "pkg" / "policy.py").is_file()
    assert wt.head() == base
    assert sh(["git", "branch", "--show-current"], wt.path).strip() == "ep-1"
    assert str(wt.path) in sh(["git", "worktree", "list"], repo)

    det = tmp_path / "det"
    det = add_detached_worktree(repo, det, base)
    assert det.head() == base
    assert sh(["git", "branch", "--show-current"], det.path).strip() == ""

    remove_worktree(repo, wt)
    remove_worktree(repo, det)
    assert not wt.path.exists() and not det.path.exists()
    listing = sh(["git", "worktree", "list"], repo)
    assert str(wt.path) not in listing and str(det.path) not in listing


def test_snapshot_and_changed_paths(tmp_path, session_repo):
    repo, base = session_repo
    wt = tmp_path / "wt"
    wt = add_worktree(repo, wt, "ep", base)
    before = snapshot(wt)
    assert set(before) == {"config.txt", "pkg/policy.py", "pkg/sub/util.py"}
    assert changed_paths(before, snapshot(wt)) == []

    (wt.path / "pkg" / "policy.py").write_text("def policy():\n    return 2\n")
    (wt.path / "pkg" / "new.py").write_text("N = 1\n")
    (wt.path / "pkg" / "sub" / "util.py").unlink()
    after = snapshot(wt)
    assert changed_paths(before, after) == ["pkg/new.py", "pkg/policy.py", "pkg/sub/util.py"]
    assert "pkg/sub/util.py" not in after
    assert after["config.txt"] == before["config.txt"]


def test_restore_puts_back_non_editable_and_deletes_new(tmp_path, session_repo):
    repo, base = session_repo
    wt = tmp_path / "wt"
    wt = add_worktree(repo, wt, "ep", base)
    before = snapshot(wt)
    (wt.path / "config.txt").write_text("tampered\n")
    (wt.path / "evil.sh").write_text("rm -rf /\n")
    (wt.path / "pkg" / "policy.py").write_text("def policy():\n    return 3\n")  # editable: kept
    after = snapshot(wt)
    outside = [p for p in changed_paths(before, after) if not matches(p, EDITABLE)]
    assert outside == ["config.txt", "evil.sh"]
    restore(wt, outside, base)
    assert (wt.path / "config.txt").read_text() == "fixed\n"
    assert not (wt.path / "evil.sh").exists()
    assert "return 3" in (wt.path / "pkg" / "policy.py").read_text()
    final = snapshot(wt)
    assert changed_paths(before, final) == ["pkg/policy.py"]


def test_restore_deleted_non_editable_file(tmp_path, session_repo):
    repo, base = session_repo
    wt = tmp_path / "wt"
    wt = add_worktree(repo, wt, "ep", base)
    before = snapshot(wt)
    (wt.path / "config.txt").unlink()
    snapshot(wt)
    restore(wt, ["config.txt"], base)
    assert (wt.path / "config.txt").read_text() == "fixed\n"
    assert changed_paths(before, snapshot(wt)) == []


def test_content_hash(tmp_path, session_repo):
    repo, base = session_repo
    a, b = tmp_path / "a", tmp_path / "b"
    a = add_worktree(repo, a, "a", base)
    b = add_worktree(repo, b, "b", base)
    for wt in (a, b):
        (wt.path / "pkg" / "policy.py").write_text("def policy():\n    return 42\n")
    ha, hb = content_hash(snapshot(a), EDITABLE), content_hash(snapshot(b), EDITABLE)
    assert ha == hb

    (b.path / "config.txt").write_text("only a non-editable change\n")
    assert content_hash(snapshot(b), EDITABLE) == ha

    (b.path / "pkg" / "sub" / "util.py").write_text("X = 2\n")
    assert content_hash(snapshot(b), EDITABLE) != ha

    (a.path / "pkg" / "extra.py").write_text("")
    assert content_hash(snapshot(a), EDITABLE) != ha  # a new editable file changes it


def test_commit_author_is_adrs_agent_without_home_identity(tmp_path, session_repo, monkeypatch):
    repo, base = session_repo
    home = tmp_path / "empty-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(var, raising=False)
    wt = tmp_path / "wt"
    wt = add_worktree(repo, wt, "ep", base)
    (wt.path / "pkg" / "policy.py").write_text("def policy():\n    return 5\n")
    scanner = git.Scanner(wt, git.files_at(repo, base))
    sha = scanner.commit_all(scanner.scan(), "candidate 1")
    assert sha != base and len(sha) == 40
    # a plain git in the identity-less environment reads the commit
    out = subprocess.run(["git", "log", "-1", "--format=%an%n%ae%n%cn%n%s", sha], cwd=wt.path,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["adrs-agent", "adrs-agent@localhost", "adrs-agent", "candidate 1"]
    assert sh(["git", "rev-parse", f"{sha}~1"], wt.path).strip() == base
    assert git.files_at(repo, sha)["pkg/policy.py"] == snapshot(wt)["pkg/policy.py"]


@pytest.mark.parametrize("path,expected", [
    ("pkg/a.py", True),
    ("pkg/x/a.py", True),
    ("pkg/x/y/a.py", True),
    ("other/a.py", False),
    ("pkg/a.txt", False),
    ("a.py", False),
    ("pkgx/a.py", False),
])
def test_matches_double_star(path, expected):
    assert matches(path, ["pkg/**/*.py"]) is expected


def test_matches_several_globs():
    assert matches("README.md", ["pkg/**/*.py", "README.md"])
    assert not matches("README.txt", ["pkg/**/*.py", "README.md"])
    assert matches("a.py", ["**/*.py"])
    assert matches("x/y/a.py", ["**/*.py"])
    assert not matches("a.py", [])


def test_matches_single_star_stays_in_its_folder():
    assert matches("pkg/a.py", ["pkg/*.py"])
    assert not matches("pkg/sub/a.py", ["pkg/*.py"])


def test_scanner_agrees_with_git_and_commits_in_one_go(tmp_path):
    """The process-free scan gives git's own blob shas; ignored files stay out; commit_all
    commits edits, deletions and new files."""
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "a.py").write_text("A = 1\n")
    (src / "pkg" / "b.py").write_text("B = 2\n")
    (src / ".gitignore").write_text("*.log\n")
    repo = tmp_path / "repo"
    base = git.init_repo(repo, str(src))
    wt = tmp_path / "wt"
    wt = git.add_worktree(repo, wt, "adrs/0/1", base)
    scanner = git.Scanner(wt, git.files_at(repo, base))
    assert scanner.scan() == git.files_at(repo, base)

    (wt.path / "pkg" / "a.py").write_text("A = 10\n")
    (wt.path / "pkg" / "b.py").unlink()
    (wt.path / "pkg" / "c.py").write_text("C = 3\n")
    (wt.path / "run.log").write_text("ignored\n")
    (wt.path / "link").symlink_to("pkg/a.py")
    files = scanner.scan()
    assert "run.log" not in files and "pkg/b.py" not in files
    sha = scanner.commit_all(files, "edit")
    assert sha == wt.head()
    assert git.files_at(repo, sha) == files
    assert git.changed_paths(git.files_at(repo, base), files) == [
        "link", "pkg/a.py", "pkg/b.py", "pkg/c.py"]

    (wt.path / "pkg" / "a.py").write_text("A = 11\n")
    (wt.path / "pkg" / "deep" / "x").mkdir(parents=True)
    (wt.path / "pkg" / "deep" / "x" / "run.sh").write_text("#!/bin/sh\n")
    (wt.path / "pkg" / "deep" / "x" / "run.sh").chmod(0o755)
    (wt.path / "pkg-a.py").write_text("sorts between pkg and pkg/\n")
    files = scanner.scan()
    sha2 = scanner.commit_all(files, "again")
    assert git.files_at(repo, sha2) == files and sha2 != sha
    # the hand-written objects are what git itself would write, and the repo is sound
    scanner.sync_index()
    git.git(["add", "-A"], cwd=wt.path)
    assert git.git(["write-tree"], cwd=wt.path).strip() == git.git(
        ["rev-parse", f"{sha2}^{{tree}}"], cwd=wt.path).strip()
    assert git.git(["status", "--porcelain"], cwd=wt.path).strip() == ""
    git.git(["fsck", "--strict", "--no-dangling"], cwd=repo)
    mode = git.git(["ls-tree", "-r", sha2, "pkg/deep/x/run.sh"], cwd=repo).split()[0]
    assert mode == "100755"
    log = git.git(["log", "--format=%an <%ae>|%s|%P", "-2", sha2], cwd=repo).splitlines()
    assert log[0] == f"adrs-agent <adrs-agent@localhost>|again|{sha}"


# -- an agent owns its worktree, `.git` included ------------------------------------------------

def _hostile_dotgit(wt: Path, marker: Path) -> None:
    """Replace the worktree's `.git` file with a repository whose config runs a command on
    every git invocation that reads it (fsmonitor, hooks, a pager, an alias)."""
    (wt / ".git").unlink()
    subprocess.run(["git", "init", "-q", str(wt)], check=True, capture_output=True)
    cmd = f"touch {marker}; false"
    for key, value in (("core.fsmonitor", cmd), ("core.hooksPath", str(wt / "hooks")),
                       ("core.pager", cmd), ("core.editor", cmd)):
        subprocess.run(["git", "config", "-f", str(wt / ".git" / "config"), key, value],
                       check=True)
    (wt / "hooks").mkdir(exist_ok=True)
    for hook in ("pre-commit", "post-checkout", "post-index-change", "reference-transaction"):
        (wt / "hooks" / hook).write_text(f"#!/bin/sh\n{cmd}\n")
        (wt / "hooks" / hook).chmod(0o755)
    (wt / ".git" / "HEAD").write_text("ref: refs/heads/evil\n")


def test_a_hostile_dot_git_in_the_worktree_never_runs(tmp_path, session_repo):
    repo, base = session_repo
    wt = add_worktree(repo, tmp_path / "wt", "ep", base)
    marker = tmp_path / "pwned"
    _hostile_dotgit(wt.path, marker)
    (wt.path / "pkg" / "policy.py").write_text("def policy():\n    return 9\n")
    (wt.path / "new_file.txt").write_text("new paths make the scanner ask git check-ignore\n")
    (wt.path / "config.txt").write_text("tampered\n")
    scanner = git.Scanner(wt, git.files_at(repo, base))
    files = scanner.scan()
    assert "new_file.txt" in files and not any(p.startswith(".git/") for p in files)
    restore(wt, ["config.txt", "new_file.txt"], base)  # git checkout / rm in the worktree
    scanner.index_stale = True
    scanner.sync_index()
    sha = scanner.commit_all(scanner.scan(), "candidate")
    assert wt.head() == sha  # the harness's own git dir moved, not the agent's fake one
    assert git.files_at(repo, sha)["pkg/policy.py"] == files["pkg/policy.py"]
    remove_worktree(repo, wt)
    assert not marker.exists(), "a command from the agent's .git config ran in the harness"
    assert not wt.path.exists()
    assert str(wt.path) not in sh(["git", "worktree", "list"], repo)


def test_a_dot_git_file_pointing_elsewhere_is_not_followed(tmp_path, session_repo):
    """The Scanner writes objects and moves a ref: the agent must not choose where."""
    repo, base = session_repo
    wt = add_worktree(repo, tmp_path / "wt", "ep", base)
    decoy = tmp_path / "decoy"
    (decoy / "refs" / "heads").mkdir(parents=True)
    (decoy / "HEAD").write_text("ref: refs/heads/x\n")
    (decoy / "refs" / "heads" / "x").write_text(base + "\n")
    (wt.path / ".git").write_text(f"gitdir: {decoy}\n")
    (wt.path / "pkg" / "policy.py").write_text("def policy():\n    return 7\n")
    scanner = git.Scanner(wt, git.files_at(repo, base))
    sha = scanner.commit_all(scanner.scan(), "candidate")
    assert (decoy / "refs" / "heads" / "x").read_text().strip() == base
    assert not (decoy / "objects").exists()
    assert sh(["git", "rev-parse", "refs/heads/ep"], repo).strip() == sha


@pytest.mark.parametrize("path", ["sub/.git/evil.py", ".git/config", "a/.GIT/x", "x/../y",
                                  "a/git~1/b", ".git. /z"])
def test_bad_path_names_what_git_refuses(path):
    assert git.bad_path(path)


@pytest.mark.parametrize("path", ["pkg/policy.py", ".gitignore", ".github/workflow.yml",
                                  "a/.gitkeep", "gitfoo/x"])
def test_bad_path_accepts_ordinary_paths(path):
    assert git.bad_path(path) is None


def test_escaping_link(tmp_path):
    (tmp_path / "pkg").mkdir()
    for name, target in (("abs", "/etc/passwd"), ("up", "../../x"), ("pkg/up", "../../y"),
                         ("pkg/in", "../pkg/z"), ("ok", "pkg/in")):
        (tmp_path / name).symlink_to(target)
    assert git.escaping_link(tmp_path, "abs") and git.escaping_link(tmp_path, "up")
    assert git.escaping_link(tmp_path, "pkg/up")
    assert git.escaping_link(tmp_path, "pkg/in") is None
    assert git.escaping_link(tmp_path, "ok") is None
    assert git.escaping_link(tmp_path, "pkg") is None  # not a link


# -- the worktree pool -----------------------------------------------------------------------
def _on_disk(root: Path) -> set[str]:
    """Every path under root (links not followed), the top `.git` left out."""
    found = set()
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if rel != ".git" and not rel.startswith(".git/"):
            found.add(rel)
    return found


def test_a_reused_worktree_starts_clean_at_its_parent(tmp_path, session_repo):
    """Whatever an episode leaves in its worktree (edits, new and ignored files, a nested
    repository, links out, a hostile `.git`, a file turned folder) is gone when the pool
    hands the worktree to the next episode, on its new branch at its parent."""
    repo, base = session_repo
    pool = git.WorktreePool(repo, tmp_path / "worktrees")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me\n")
    marker = tmp_path / "pwned"
    with pool.checkout(base, "adrs/0/0") as wt:
        first, clean = wt.path, _on_disk(wt.path)
        (wt.path / "pkg" / "policy.py").write_text("def policy():\n    return 666\n")
        scanner = git.Scanner(wt, git.files_at(repo, base))
        committed = scanner.commit_all(scanner.scan(), "a candidate")
        (wt.path / "config.txt").write_text("tampered\n")
        (wt.path / "pkg" / "evil.py").write_text("EVIL = 1\n")
        (wt.path / "pkg" / "__pycache__" / "policy.cpython-311.pyc").parent.mkdir()
        (wt.path / "pkg" / "__pycache__" / "policy.cpython-311.pyc").write_bytes(b"\0evil")
        (wt.path / "pkg" / "sub" / "util.py").unlink()
        (wt.path / "pkg" / "sub" / "util.py").mkdir()
        (wt.path / "pkg" / "sub" / "util.py" / "inside.py").write_text("X = 666\n")
        (wt.path / "out").symlink_to(outside)
        (wt.path / "nested").mkdir()
        sh(["git", "init", "-q"], wt.path / "nested")
        _hostile_dotgit(wt.path, marker)
    with pool.checkout(base, "adrs/1/1") as wt:
        assert wt.path == first  # reused, not made anew
        assert _on_disk(wt.path) == clean
        assert (wt.path / "pkg" / "policy.py").read_text() == "def policy():\n    return 1\n"
        assert git.Scanner(wt, git.files_at(repo, base)).scan() == git.files_at(repo, base)
        assert wt.head() == base
        assert wt.git(["symbolic-ref", "HEAD"]).strip() == "refs/heads/adrs/1/1"
        assert wt.git(["status", "--porcelain", "--ignored"]).strip() == ""
        # a `.git` that is a link to a file holding the right pointer is still not kept
        pointer = (wt.path / ".git").read_text()
        (outside / "pointer").write_text(pointer)
        (wt.path / ".git").unlink()
        (wt.path / ".git").symlink_to(outside / "pointer")
    with pool.checkout(base, "adrs/2/2") as wt:
        dot_git = wt.path / ".git"
        assert not dot_git.is_symlink() and dot_git.read_text() == f"gitdir: {wt.gitdir}\n"
        assert (outside / "pointer").read_text() == pointer
    assert (outside / "precious.txt").read_text() == "keep me\n"
    assert not marker.exists(), "a command from the agent's .git config ran in the harness"
    # the candidate stays on its branch; a released worktree holds no branch
    assert sh(["git", "rev-parse", "adrs/0/0"], repo).strip() == committed
    sh(["git", "branch", "-D", "adrs/1/1", "adrs/2/2"], repo)
    pool.close()
    assert list((tmp_path / "worktrees").iterdir()) == []
    assert sh(["git", "worktree", "list", "--porcelain"], repo).count("worktree ") == 1


def test_a_reset_breaks_hard_links_to_files_outside(tmp_path, session_repo):
    """A tracked file left as a second name of a file outside the worktree, with the very
    bytes of its blob, is made anew by the reset: writing it later (in place, as the agent's
    write tool does) never reaches the file outside."""
    repo, base = session_repo
    pool = git.WorktreePool(repo, tmp_path / "worktrees")
    with pool.checkout(base, "adrs/0/0") as wt:
        policy = wt.path / "pkg" / "policy.py"
        outside = tmp_path / "precious.py"
        outside.write_bytes(policy.read_bytes())
        policy.unlink()
        os.link(outside, policy)
        assert policy.stat().st_nlink == 2
    with pool.checkout(base, "adrs/1/1") as wt:
        policy = wt.path / "pkg" / "policy.py"
        assert policy.stat().st_nlink == 1
        git.overwrite(policy, b"X = 666\n")
    assert outside.read_text() == "def policy():\n    return 1\n"
    pool.close()


def commit_deeper_exec_and_link(repo: Path, base: str, path: Path, x: str) -> str:
    """A commit on base adding a deeper folder's file (text x), an executable and a link."""
    with git.worktree(repo, path, base, branch=path.name) as wt:
        (wt.path / "pkg" / "deep" / "er").mkdir(parents=True)
        (wt.path / "pkg" / "deep" / "er" / "x.py").write_text(x)
        (wt.path / "pkg" / "run.sh").write_text("#!/bin/sh\n")
        (wt.path / "pkg" / "run.sh").chmod(0o755)
        (wt.path / "pkg" / "link.py").symlink_to("policy.py")
        scanner = git.Scanner(wt, git.files_at(repo, base))
        return scanner.commit_all(scanner.scan(), "c")


def _tree_on_disk(root: Path) -> dict[str, tuple[str, object]]:
    """{path: (kind, content or link target)} of a worktree, exec bit in the kind."""
    found: dict[str, tuple[str, object]] = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            continue
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_file():
            found[rel] = ("exec" if path.stat().st_mode & 0o100 else "file", path.read_bytes())
    return found


@pytest.mark.parametrize("packed", [False, True], ids=["loose, no git process", "packed, git"])
def test_a_reset_to_another_parent_writes_what_git_checks_out(tmp_path, session_repo, packed):
    """Resetting a used worktree to another commit (an executable, a link, a deeper folder)
    leaves exactly what `git worktree add` of that commit has, whatever the agent put in
    the tracked files' places: a link out in place of a file (the file outside is not
    written through), an exec bit flipped, a regular file where a link was."""
    repo, base = session_repo
    target = commit_deeper_exec_and_link(repo, base, tmp_path / "maker", "X = 2\n")
    with git.worktree(repo, tmp_path / "oracle", target) as wt:
        expected = _tree_on_disk(wt.path)
    if packed:
        sh(["git", "gc", "-q"], repo)
        assert git.loose_entries(repo / ".git" / "objects", target) is None
    else:
        assert git.loose_entries(repo / ".git" / "objects", target) is not None
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me\n")
    pool = git.WorktreePool(repo, tmp_path / "worktrees")
    with pool.checkout(target, "adrs/0/0") as wt:
        assert _tree_on_disk(wt.path) == expected
        (wt.path / "pkg" / "policy.py").unlink()
        (wt.path / "pkg" / "policy.py").symlink_to(outside)
        (wt.path / "pkg" / "run.sh").chmod(0o644)
        (wt.path / "pkg" / "link.py").unlink()
        (wt.path / "pkg" / "link.py").write_text("not a link\n")
        (wt.path / "pkg" / "deep").rename(wt.path / "pkg" / "moved")
        (wt.path / "config.txt").write_text("def policy():\n    return 1\n")  # same size
    with pool.checkout(target, "adrs/1/1") as wt:
        assert _tree_on_disk(wt.path) == expected
        assert wt.head() == target
        assert wt.git(["symbolic-ref", "HEAD"]).strip() == "refs/heads/adrs/1/1"
        assert git.Scanner(wt, git.files_at(repo, target)).scan() == git.files_at(repo, target)
    with pool.checkout(base, "adrs/2/2") as wt:  # and back, dropping what base lacks
        assert wt.head() == base and "pkg/run.sh" not in _tree_on_disk(wt.path)
        assert git.Scanner(wt, git.files_at(repo, base)).scan() == git.files_at(repo, base)
    assert outside.read_text() == "keep me\n"
    assert sh(["git", "rev-parse", "adrs/1/1"], repo).strip() == target
    pool.close()


def test_pooled_worktrees_left_by_a_kill_are_repaired(tmp_path, session_repo):
    """A killed run never closes its pool: `repair` (resume) removes its locked worktrees,
    and git forgets them."""
    repo, base = session_repo
    root = tmp_path / "worktrees"
    pool = git.WorktreePool(repo, root)
    with pool.checkout(base, "adrs/0/0"), pool.checkout(base, "adrs/1/1") as wt:
        (wt.path / ".git").unlink()  # an agent's doing: prune must not forget it meanwhile
        remove_worktree(repo, add_worktree(repo, tmp_path / "other", "x", base))
        assert sh(["git", "worktree", "list"], repo).count("locked") == 2
    git.repair(repo, root)
    assert list(root.iterdir()) == []
    assert sh(["git", "worktree", "list", "--porcelain"], repo).count("worktree ") == 1
    again = git.WorktreePool(repo, root)  # the resumed run's
    with again.checkout(base, "adrs/2/2") as wt:
        assert wt.head() == base
    again.close()


def test_files_from_loose_objects_agree_with_ls_tree(tmp_path, session_repo):
    repo, base = session_repo
    sha = commit_deeper_exec_and_link(repo, base, tmp_path / "wt", "X = 1\n")
    listed = git._ls_tree(repo, sha)
    loose = git.loose_entries(repo / ".git" / "objects", sha)
    assert {path: blob for path, (_, blob) in loose.items()} == listed
    assert git.files_at(repo, sha) == listed and "pkg/deep/er/x.py" in listed
    sh(["git", "gc", "-q"], repo)  # packed: no loose reading, git answers
    assert git.loose_entries(repo / ".git" / "objects", base) is None
    assert git.files_at(repo, "HEAD") == git._ls_tree(repo, base)


def test_prompt_diffs_made_without_git_say_what_git_says(tmp_path, session_repo):
    from agent.prompts import Diffs

    repo, base = session_repo
    with git.worktree(repo, tmp_path / "wt", base, branch="ep") as wt:
        (wt.path / "pkg" / "policy.py").write_text("def policy():\n    return 2\n")
        (wt.path / "config.txt").unlink()
        (wt.path / "pkg" / "new.py").write_text("N = 1")  # no newline at the end
        scanner = git.Scanner(wt, git.files_at(repo, base))
        sha = scanner.commit_all(scanner.scan(), "c")
    ours = Diffs(repo)._diff(base, sha)
    theirs = git.git(["diff", "--no-color", "-U1", base, sha, "--"], cwd=repo)

    def body(text: str) -> list[str]:  # git adds the function context to @@ lines
        return [line.split(" @@")[0] if line.startswith("@@") else line.removesuffix(" 100644")
                for line in text.splitlines()]

    assert body(ours) == body(theirs)
    assert Diffs(repo)(base, base) == "(same code as your starting point)"
