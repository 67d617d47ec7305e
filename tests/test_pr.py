"""`adrs-agent pr`: a candidate of a real finished run as a branch, a body, patches and a pull
request.

The toy task's repo/ is made a git repository with a bare repository as its origin; a real
`solve` (tuner model) runs on it once for the module. Pushes go to real bare repositories; the
pull request goes through PyGithub to a loopback server on 127.0.0.1 that speaks the part of
GitHub's REST API PyGithub uses and records every request.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from agent.events import CandidateScored
from agent.pr import Facts, PrError, PrOptions, Step, github_name, open_pr, render_body, render_title
from agent.review import Interval, Review, Row, Taxonomy
from agent.session import Session
from fixtures.helpers import git, note, solve, toy_task
from sandbox.git import files_at, matches
from sandbox.notes import NotesWriter

EDITABLE = ["pkg/**/*.py"]
TOKEN = "ghp-loopback-token"
slow = pytest.mark.slow


# -- a real finished session whose task repo is a git repo with a bare origin ----------------------
def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=researcher", "-c", "user.email=r@example.org", "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD").strip()


def bare(path: Path, source: Path) -> Path:
    """A bare repository holding source's main branch."""
    git(path.parent, "init", "-q", "--bare", "-b", "main", str(path))
    git(source, "push", "-q", str(path), "main")
    return path


def refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


class Run:
    def __init__(self, root: Path):
        self.task = toy_task(root)
        self.repo = self.task / "repo"
        git(self.repo, "init", "-q", "-b", "main")
        commit_all(self.repo, "toy baseline")
        self.origin = bare(root / "origin.git", self.repo)
        git(self.repo, "remote", "add", "origin", str(self.origin))
        _, self.dir = solve(self.task, "tuner", root / "sessions", 6, "--workers", "1")
        self.session = Session(self.dir)
        self.sessions_repo = self.dir / "repo"
        self.baseline = json.loads((self.dir / "events.jsonl").read_text().splitlines()[0])["baseline"]

    def scored(self) -> list[dict]:
        return [json.loads(line) for line in (self.dir / "events.jsonl").read_text().splitlines()
                if '"candidate_scored"' in line]

    def best(self) -> str:
        valid = [e for e in self.scored() if e["valid"] and e["commit"] != self.baseline]
        return max(valid, key=lambda e: e["score"])["commit"]

    def hand_commit(self, parent: str, path: str, text: str, message: str, branch: str) -> str:
        """A commit made by hand in the session repo (a worktree at parent, one file changed)."""
        wt = self.dir / "worktrees" / branch.replace("/", "-")
        git(self.sessions_repo, "worktree", "add", "-q", "-b", branch, str(wt), parent)
        (wt / path).write_text(text)
        sha = commit_all(wt, message)
        git(self.sessions_repo, "worktree", "remove", "--force", str(wt))
        return sha

    def record(self, commit: str, like: str, valid: bool = True, test: dict | None = None) -> None:
        """Score a hand-made commit as the solver would have: a note and a candidate_scored event
        (copied from `like`'s, as if the evaluator said the same)."""
        data = note(self.sessions_repo, like)
        data.pop("test", None)
        parent = git(self.sessions_repo, "rev-parse", f"{commit}^").strip()
        cand = {**data["candidate"], "commit": commit, "parent": parent,
                "message": git(self.sessions_repo, "log", "-1", "--format=%B", commit).strip()}
        if not valid:
            cand.update(valid=False, score=None)
            data["stages"] = [{**data["stages"][0], "valid": False, "score": None,
                               "feedback": "importing pkg.policy failed: SyntaxError"}]
        data["candidate"] = cand
        if test is not None:
            data["test"] = test
        NotesWriter(self.sessions_repo).write(commit, data)
        self.session.emit(CandidateScored(commit=commit, parent=parent, episode=cand["episode"],
                                          stage=data["stages"][-1]["stage"], score=cand["score"],
                                          valid=valid, candidate=cand, stages=data["stages"]))
        self.session.close()

    def expected_tree(self, candidate: str) -> dict[str, str]:
        """The baseline's files with the candidate's editable ones: what the branch must hold."""
        files = {p: b for p, b in files_at(self.sessions_repo, self.baseline).items()
                 if not matches(p, EDITABLE)}
        files.update({p: b for p, b in files_at(self.sessions_repo, candidate).items()
                      if matches(p, EDITABLE)})
        return files

    def pr(self, candidate: str, **options: object) -> tuple[object, list[str]]:
        said: list[str] = []
        outcome = open_pr(PrOptions(session_dir=self.dir, candidate=candidate, **options), said.append)
        return outcome, said


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    return Run(tmp_path_factory.mktemp("pr"))


# -- a loopback GitHub ------------------------------------------------------------------------------
class FakeGitHub:
    """The part of GitHub's REST API PyGithub uses to open or update a pull request."""

    def __init__(self, owner: str = "acme", name: str = "toy", token: str = TOKEN):
        self.owner, self.name, self.token = owner, name, token
        self.requests: list[dict] = []
        self.pulls: list[dict] = []
        handler = type("Handler", (_Handler,), {"github": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def repo_json(self) -> dict:
        full = f"{self.owner}/{self.name}"
        return {"id": 1, "name": self.name, "full_name": full, "private": False,
                "owner": {"login": self.owner, "id": 2, "type": "Organization"},
                "default_branch": "main", "url": f"{self.url}/repos/{full}",
                "html_url": f"https://github.example/{full}",
                "permissions": {"admin": False, "push": True, "pull": True}}

    def answer(self, method: str, path: str, query: dict, body: dict | None) -> tuple[int, object]:
        full = f"/repos/{self.owner}/{self.name}"
        if path == full and method == "GET":
            return 200, self.repo_json()
        if path == f"{full}/pulls" and method == "GET":
            head, state = query.get("head", [""])[0], query.get("state", ["open"])[0]
            return 200, [p for p in self.pulls if p["head"]["label"] == head and p["state"] == state]
        if path == f"{full}/pulls" and method == "POST":
            if any(p["head"]["ref"] == body["head"] and p["state"] == "open" for p in self.pulls):
                return 422, {"message": "Validation Failed",
                             "errors": [{"message": "A pull request already exists"}]}
            n = len(self.pulls) + 1
            pull = {"id": 100 + n, "number": n, "state": "open", "title": body["title"],
                    "body": body["body"], "url": f"{self.url}{full}/pulls/{n}",
                    "html_url": f"https://github.example/{self.owner}/{self.name}/pull/{n}",
                    "head": {"ref": body["head"], "label": f"{self.owner}:{body['head']}"},
                    "base": {"ref": body["base"], "label": f"{self.owner}:{body['base']}"}}
            self.pulls.append(pull)
            return 201, pull
        for pull in self.pulls:
            if path == f"{full}/pulls/{pull['number']}" and method == "PATCH":
                pull.update({k: body[k] for k in ("title", "body") if k in body})
                return 200, pull
        return 404, {"message": "Not Found"}


class _Handler(BaseHTTPRequestHandler):
    github: FakeGitHub

    def _serve(self) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.github.requests.append({"method": self.command, "path": url.path, "query": parse_qs(url.query),
                                     "headers": dict(self.headers), "body": body})
        if self.headers.get("Authorization") != f"token {self.github.token}":
            status, data = 401, {"message": "Bad credentials", "status": "401"}
        else:
            status, data = self.github.answer(self.command, url.path, parse_qs(url.query), body)
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_PATCH = _serve

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def github(monkeypatch):
    server = FakeGitHub()
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    yield server
    server.close()


def fresh_remote(run: Run, name: str) -> Path:
    """A new bare repository holding main, added to the task repo as remote `name`."""
    path = bare(run.origin.parent / f"{name}.git", run.repo)
    git(run.repo, "remote", "add", name, str(path))
    return path


# -- dry run -----------------------------------------------------------------------------------------
@slow
def test_dry_run_writes_body_patches_and_branch_and_touches_no_remote(run):
    before = refs(run.origin)
    best = run.best()
    outcome, said = run.pr("best", dry_run=True)

    short = best[:10]
    assert outcome.branch == f"adrs/{run.dir.name}/{short}"
    assert outcome.url is None and outcome.repo == run.repo
    assert outcome.body_path == run.dir / "pr" / short / "body.md"
    body = outcome.body_path.read_text()
    assert "## What changed and why" in body and "no per-instance scores" in body
    assert f"adrs-agent tasks eval {run.task} --stage test --candidate {run.sessions_repo}@{best}" in body
    assert "| test (held-out) | -17.5 |" in body
    assert "adrs-episode" not in body  # the harness's trailer is not the agent's message
    assert [p.name for p in outcome.patches] == ["0001-" + p.name[5:] for p in outcome.patches]
    assert len(outcome.patches) == 1 and outcome.patches[0].parent == run.dir / "pr" / short
    patch = outcome.patches[0].read_text()
    assert "pkg/policy.py" in patch and "README.md" not in patch
    # the branch is in the task repo; the remote has nothing new
    assert git(run.repo, "rev-parse", "--verify", outcome.branch).strip()
    assert refs(run.origin) == before
    assert any("dry run" in line for line in said) and any(str(outcome.body_path) in s for s in said)


@slow
def test_a_repo_without_remotes_gets_a_dry_run_that_says_how_to_push(run):
    git(run.repo, "remote", "remove", "origin")
    try:
        outcome, said = run.pr("2")
    finally:
        git(run.repo, "remote", "add", "origin", str(run.origin))
    assert outcome.url is None and outcome.body_path.is_file()
    assert any("has no remote" in line and "remote add origin" in line for line in said)


@slow
def test_when_the_task_repo_moved_on_the_branch_starts_at_the_baseline(run):
    main = git(run.repo, "rev-parse", "main").strip()
    (run.repo / "README.md").write_text("The upstream moved on.\n")
    commit_all(run.repo, "upstream work")
    try:
        outcome, _ = run.pr("best", dry_run=True)
    finally:
        git(run.repo, "reset", "-q", "--hard", main)
    assert git(run.repo, "rev-parse", f"{outcome.branch}^").strip() == run.baseline == main
    assert "moved on since the session started" in outcome.body_path.read_text()


@slow
def test_a_task_repo_that_is_no_git_repo_gets_patches_only_and_says_so(tmp_path):
    task = toy_task(tmp_path)  # repo/ is a plain folder, as the shipped tasks' are
    _, session = solve(task, "tuner", tmp_path / "sessions", 3, "--workers", "1")
    said: list[str] = []
    outcome = open_pr(PrOptions(session_dir=session, candidate="best"), said.append)
    assert outcome.branch is None and outcome.url is None and outcome.body_path.is_file()
    assert any("is not a git repository" in line and "dry run" in line for line in said)
    assert len(outcome.patches) == 1
    # the patch applies to the task's folder as it is
    check = subprocess.run(["git", "apply", "--check", "-p1", str(outcome.patches[0])], cwd=task / "repo",
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


# -- push and pull request ----------------------------------------------------------------------------
@slow
def test_push_opens_a_pull_request_with_only_the_editable_changes(run, github):
    best = run.best()
    outcome, said = run.pr("best", github="acme/toy", github_url=github.url)

    branch = f"adrs/{run.dir.name}/{best[:10]}"
    assert outcome.branch == branch and not outcome.updated
    assert outcome.url == "https://github.example/acme/toy/pull/1"
    assert any(outcome.url in line for line in said)
    # the origin got the branch: one commit on the task's main whose tree is the baseline plus
    # the candidate's editable changes
    main = git(run.origin, "rev-parse", "main").strip()
    assert git(run.origin, "rev-parse", f"{branch}^").strip() == main
    assert files_at(run.origin, branch) == run.expected_tree(best)
    assert git(run.origin, "log", "-1", "--format=%s", branch).startswith("toy: test -17.5 -> ")

    methods = [(r["method"], r["path"]) for r in github.requests]
    assert methods == [("GET", "/repos/acme/toy"), ("GET", "/repos/acme/toy/pulls"),
                       ("POST", "/repos/acme/toy/pulls")]
    assert all(r["headers"]["Authorization"] == f"token {TOKEN}" for r in github.requests)
    listing = github.requests[1]["query"]
    assert listing["head"] == [f"acme:{branch}"] and listing["state"] == ["open"]
    post = github.requests[2]["body"]
    assert post["head"] == branch and post["base"] == "main"
    assert post["title"].startswith("toy: test -17.5 -> ")
    assert post["body"] == github.pulls[0]["body"]
    assert "## Scores" in post["body"] and f"{run.sessions_repo}@{best}" in post["body"]
    assert post["body"] == outcome.body_path.read_text().split("\n\n", 1)[1]

    # the same candidate again: the open pull request is updated, not duplicated
    github.requests.clear()
    again, _ = run.pr("best", github="acme/toy", github_url=github.url)
    assert again.updated and again.url == outcome.url and len(github.pulls) == 1
    assert [(r["method"], r["path"]) for r in github.requests][-1] == ("PATCH", "/repos/acme/toy/pulls/1")
    assert github.requests[-1]["body"]["title"] == post["title"]


@slow
def test_keep_history_keeps_the_lineage_commits_and_their_messages(run, github):
    remote = fresh_remote(run, "history")
    best = run.best()
    outcome, _ = run.pr("best", remote="history", keep_history=True, github="acme/toy",
                        github_url=github.url)
    lineage = git(run.sessions_repo, "log", "--first-parent", "--reverse", "--format=%s",
                  f"{run.baseline}..{best}").splitlines()
    pushed = git(remote, "log", "--reverse", "--format=%s", f"main..{outcome.branch}").splitlines()
    assert pushed == lineage and len(pushed) >= 1
    assert all(line.startswith("tuner: ") for line in pushed)
    assert files_at(remote, outcome.branch) == run.expected_tree(best)
    assert len(outcome.patches) == len(lineage)


@slow
def test_non_editable_changes_of_a_candidate_stay_out(run, github):
    best = run.best()
    readme = run.hand_commit(best, "README.md", "changed by hand\n", "touch the README", "adrs/0/98")
    run.record(readme, like=best)
    remote = fresh_remote(run, "readme")
    for keep in (False, True):
        outcome, _ = run.pr(readme[:12], remote="readme", keep_history=keep, github="acme/toy",
                            github_url=github.url)
        tree = files_at(remote, outcome.branch)
        assert tree == run.expected_tree(readme) == run.expected_tree(best)
        assert tree["README.md"] == files_at(run.sessions_repo, run.baseline)["README.md"]
        assert not any("diff --git a/README.md" in p.read_text() for p in outcome.patches)
        # the README-only commit changes nothing editable: it is left out, and not described
        assert "touch the README" not in git(remote, "log", "--format=%B", f"main..{outcome.branch}")
        assert "touch the README" not in outcome.body_path.read_text()


@slow
def test_a_rejected_push_says_so_and_keeps_the_body(run, github):
    remote = fresh_remote(run, "locked")
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'branch protection: no pushes' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(PrError) as e:
        run.pr("2", remote="locked", github="acme/toy", github_url=github.url)
    message = str(e.value)
    assert "\n" not in message and "rejected" in message and "body" in message
    assert "pre-receive hook declined" in message and "branch protection: no pushes" in message
    body = Path(message.split("stays at ")[1].split(":")[0])
    assert body.is_file() and body.parent.parent == run.dir / "pr"
    assert [r["method"] for r in github.requests] == ["GET"]  # no pull request was opened


@slow
def test_a_refused_token_says_set_github_token_with_repo_scope(run, github, monkeypatch):
    remote = fresh_remote(run, "refused")
    before = refs(remote)
    monkeypatch.setenv("GITHUB_TOKEN", "expired")
    with pytest.raises(PrError, match="set GITHUB_TOKEN with repo scope") as e:
        run.pr("best", remote="refused", github="acme/toy", github_url=github.url)
    assert "\n" not in str(e.value)
    assert github.requests[0]["headers"]["Authorization"] == "token expired"
    assert refs(remote) == before  # nothing pushed with a token GitHub refuses


@slow
def test_no_token_says_which_variable_to_set(run, monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    with pytest.raises(PrError, match="no GitHub token: set GITHUB_TOKEN"):
        run.pr("best", github="acme/toy", github_url="http://127.0.0.1:9")


@slow
def test_the_github_repo_comes_from_the_remote_or_the_option(run, github):
    with pytest.raises(PrError, match="pass --github OWNER/REPO"):
        run.pr("best", github_url=github.url)  # origin is a local path: no owner/repo in it
    with pytest.raises(PrError, match="no remote 'upstream'"):
        run.pr("best", remote="upstream", github="acme/toy", github_url=github.url)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(PrError, match="cannot reach GitHub at .*check --github-url"):
        run.pr("best", github="acme/toy", github_url=closed)


# -- bad input: one line, nothing written --------------------------------------------------------------
def written(run: Run) -> tuple[set[Path], str]:
    return set((run.dir / "pr").rglob("*")) if (run.dir / "pr").exists() else set(), refs(run.repo)


@slow
def test_unknown_and_invalid_candidates_are_refused_writing_nothing(run):
    broken = run.hand_commit(run.baseline, "pkg/policy.py", "A = (\n", "break it", "adrs/0/97")
    run.record(broken, like=run.best(), valid=False)
    before = written(run)
    for which, says in (("deadbeef", "no scored candidate"), (broken[:10], "invalid"),
                        ("99", r"valid candidate\(s\) to rank"), (run.baseline[:10], "baseline")):
        with pytest.raises(PrError, match=says) as e:
            run.pr(which, dry_run=True)
        assert "\n" not in str(e.value)
    assert written(run) == before


@slow
def test_a_candidate_failing_the_held_out_stage_cannot_be_a_pr(run):
    best = run.best()
    again = run.hand_commit(best, "README.md", "again\n", "README again", "adrs/0/96")
    run.record(again, like=best, test={"stage": "test", "score": None, "valid": False,
                                       "feedback": "crashed on the held-out instances"})
    before = written(run)
    with pytest.raises(PrError, match="fails the held-out stage 'test'"):
        run.pr(again[:12], dry_run=True)
    assert written(run) == before


def test_a_missing_session_is_one_line(tmp_path):
    with pytest.raises(PrError, match="no session at") as e:
        open_pr(PrOptions(session_dir=tmp_path / "nope", candidate="best"), print)
    assert "\n" not in str(e.value) and not (tmp_path / "nope").exists()


# -- pieces ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url, name", [
    ("https://github.com/acme/toy.git", "acme/toy"),
    ("https://github.com/acme/toy", "acme/toy"),
    ("https://x-token@github.example.com/acme/toy.git/", "acme/toy"),
    ("git@github.com:acme/toy.git", "acme/toy"),
    ("ssh://git@github.com:22/acme/toy.git", "acme/toy"),
    ("/srv/git/toy.git", None),
    ("file:///srv/git/toy.git", None),
    ("../toy", None),
])
def test_github_name_reads_https_and_ssh_remotes(url, name):
    assert github_name(url) == name


def facts(interval: Interval | None, direction: str = "maximize") -> Facts:
    base = Row(0, "b" * 40, None, -1, "", "baseline", {"quick": 10.0, "full": 12.0}, 12.0, test=11.0,
               metrics={"cost": 100.0, "misses": 0.0, "same": 3.0, "name": "x"},
               test_metrics={"cost": 100.0, "misses": 0.0})
    cand = Row(1, "c" * 40, "d" * 40, 3, "m", "speed up", {"quick": 12.0, "full": 15.0}, 15.0,
               test=13.0, gain=3.0, test_gain=2.0, interval=interval, flags=["fragile: wins on 2 of 9"],
               metrics={"cost": 80.0, "misses": 2.0, "same": 3.0, "name": "y"},
               test_metrics={"cost": 90.0, "misses": 1.0})
    tax = Taxonomy(5, {}, 0.0, 1, 1.0, None, 0.5, 1, 0.5)
    rev = Review("s1", "toy", direction, "full", "test", base, [cand], tax, interval is not None)
    steps = [Step("d" * 40, "first idea\n\nbecause", 2, "anthropic/claude"),
             Step("e" * 40, "first idea\n\nbecause", 3, "anthropic/claude"),
             Step("c" * 40, "speed up", 3, "anthropic/claude")]
    return Facts(task="toy", task_dir="/t/toy", session="s1", session_repo=Path("/s/s1/repo"),
                 review=rev, row=cand, steps=steps, summaries={2: "tried A", 3: "tried A"},
                 models=["anthropic/claude", "tuner"], episodes=4, cost_usd=1.25,
                 lineage_cost_usd=0.5, diffstat=" pkg/policy.py | 2 +-")


def test_the_body_has_scores_interval_metrics_and_the_reevaluation_command():
    body = render_body(facts(Interval(1.5, 0.5, 2.5, 7, 2, 1, 10)))
    assert "mean paired gain +1.5 [+0.5, +2.5] 95% bootstrap, won 7 / lost 2 of 10 instances" in body
    assert "| full | 12 | 15 | +3 (+25.00%) |" in body
    assert "| test (held-out) | 11 | 13 | +2 (+18.18%) |" in body
    assert body.count("first idea") == 1 and body.count("tried A") == 1  # deduplicated
    assert "| misses | 0 | 1 | new from 0 |" in body and "| cost | 100 | 90 | -10.00% |" in body
    assert "fragile: wins on 2 of 9" in body and "pkg/policy.py | 2 +-" in body
    assert "$1.2500 for the session, $0.5000 for the lineage" in body
    assert "adrs-agent tasks eval /t/toy --stage test --candidate /s/s1/repo@" + "c" * 40 in body
    assert "adrs-agent tasks eval /t/toy --stage full --candidate" in body
    assert render_title(facts(None)) == "toy: test 11 -> 13: speed up"


def test_without_instances_the_body_says_so_and_minimize_gains_are_signed():
    body = render_body(facts(None, direction="minimize"))
    assert "Held-out test: no per-instance scores." in body
    assert "| full | 12 | 15 | -3 (-25.00%) |" in body


# -- the command ---------------------------------------------------------------------------------------
@slow
def test_the_command_opens_the_pull_request_and_prints_its_url(run, github):
    from fixtures.helpers import cli_env, run_cli

    remote = fresh_remote(run, "cli")
    out = run_cli("pr", run.dir.name, "best", "--sessions-dir", str(run.dir.parent), "--remote", "cli",
                  "--github", "acme/toy", "--github-url", github.url, env=cli_env(GITHUB_TOKEN=TOKEN)).stdout
    assert "https://github.example/acme/toy/pull/1" in out
    assert git(remote, "rev-parse", "--verify", f"adrs/{run.dir.name}/{run.best()[:10]}").strip()
    bad = run_cli("pr", run.dir.name, "zzzz99", "--sessions-dir", str(run.dir.parent), check=False)
    assert bad.returncode == 2 and len(bad.stdout.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
