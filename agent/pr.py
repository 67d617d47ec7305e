"""`adrs-agent pr SESSION CANDIDATE`: a candidate as a pull request to the task's own repository.

The branch `adrs/<session>/<sha>` is built in the task's source repository (its `repo/` folder
when that is a git repo; the session repo, whose origin is the task's git URL, when the task
names one) from objects only: no checkout, no index, the user's work tree untouched. It starts
at the commit whose tree is the session's baseline and holds only the candidate's changes to
editable paths (one squashed commit, or the lineage's commits with `keep_history`). The body
(what changed and why, scores with the held-out interval, metrics, diff stat, cost, the command
that re-evaluates it) and a `git format-patch` series are written to `sessions/<id>/pr/<sha>/`
before anything leaves the machine; then the branch is pushed with GitPython and the pull
request opened, or updated when one is open for the branch, with PyGithub.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import git as gitpython
from git.index.fun import write_tree_from_cache
from git.index.typ import BaseIndexEntry
from git.remote import PushInfo
from gitdb.base import IStream

from agent.events import EpisodeFinished, Evaluated, SessionFinished, SessionStarted, ToolCalled
from agent.report import said
from agent.review import Review, ReviewError, Row, resolve, review
from agent.session import Session
from agent.task import Task, TaskError
from sandbox.git import is_git_source, matches
from sandbox.notes import read_note

SHORT = 10
"""Hex digits of a commit in branch and folder names (as `solve` prints them)."""
TOP_METRICS = 8
SCOPE_FIX = "set GITHUB_TOKEN with repo scope"
DEFAULT_API = "https://api.github.com"


class PrError(RuntimeError):
    """A pull request that cannot be made; the message is one line that says what to do."""


@dataclass
class PrOptions:
    session_dir: Path
    candidate: str
    """A commit sha prefix, `best`, or a rank from `review` (1 = best)."""
    remote: str | None = None
    """The remote to push to (default: origin of the task's repository)."""
    base: str | None = None
    """The branch to merge into (default: the task's ref when it is a branch, else the
    GitHub repository's default branch)."""
    github: str | None = None
    """owner/repo on GitHub (default: read from the remote's URL)."""
    github_url: str | None = None
    """API root of a GitHub Enterprise server (PyGithub's base_url)."""
    keep_history: bool = False
    dry_run: bool = False
    top: int = 0
    """How many top candidates review also scores on the held-out stage (the candidate and the
    baseline always are)."""


@dataclass
class PrOutcome:
    branch: str | None
    """The branch made in the task's repository (None when that is not a git repo)."""
    body_path: Path
    patches: list[Path]
    url: str | None = None
    updated: bool = False
    """Whether an open pull request for the branch was updated rather than created."""
    repo: Path | None = None
    """The repository the branch is in."""


@dataclass
class Step:
    """One commit of the lineage, from the baseline (excluded) to the candidate."""

    commit: str
    message: str
    episode: int | None
    model: str
    editable: bool = True
    """Whether it changes an editable path (those that do not are left out of the branch)."""


@dataclass
class Facts:
    """Everything the body says, gathered from the session (kept apart so it renders alone)."""

    task: str
    task_dir: str
    session: str
    session_repo: Path
    review: Review
    row: Row
    steps: list[Step]
    summaries: dict[int, str]
    """The lineage's episodes' finish summaries."""
    models: list[str]
    episodes: int
    cost_usd: float
    lineage_cost_usd: float
    diffstat: str
    notes: list[str] = field(default_factory=list)
    """Where the branch is based, when that is not plain."""


def open_pr(opts: PrOptions, say: Callable[[str], None]) -> PrOutcome:
    """Build the branch, write the body and patches, and (unless a dry run) push and open or
    update the pull request. Raises PrError with what to do."""
    session = _session(Path(opts.session_dir))
    started, finished, episodes = _events(session)
    task = _task(started)
    commit = _candidate(session, opts.candidate, started.baseline)
    rev, row = _reviewed(session, commit, opts.top)

    with gitpython.Repo(session.repo) as srepo, _target(task, srepo, started.baseline) as target:
        steps = _lineage(srepo, started.baseline, commit, episodes, task.editable)
        head = _build(srepo, target.repo, target.base, started.baseline, commit, steps,
                      task.editable, opts.keep_history)
        lineage_episodes = {s.episode for s in steps if s.episode is not None}
        facts = Facts(
            task=task.name, task_dir=started.task_dir, session=session.id,
            session_repo=session.repo, review=rev, row=row, steps=steps,
            summaries={e: episodes[e].summary for e in sorted(lineage_episodes) if e in episodes},
            models=list(started.models), episodes=len(episodes),
            cost_usd=finished.cost_usd if finished else sum(e.cost_usd for e in episodes.values()),
            lineage_cost_usd=sum(episodes[e].cost_usd for e in lineage_episodes if e in episodes),
            diffstat=target.repo.git.diff("--stat", "--no-color", target.base.hexsha, head.hexsha).strip("\n"),
            notes=target.notes)
        title, body = render_title(facts), render_body(facts)
        if not opts.keep_history:  # the one commit carries the summary as its message
            head = _commit(target.repo, head.tree.hexsha, f"{title}\n\n{render_message(facts)}",
                           target.base, head)

        short = commit[:SHORT]
        out = session.dir / "pr" / short
        out.mkdir(parents=True, exist_ok=True)
        body_path = out / "body.md"
        body_path.write_text(f"# {title}\n\n{body}")
        for old in out.glob("*.patch"):
            old.unlink()
        target.repo.git.format_patch("--quiet", "-o", str(out), f"{target.base.hexsha}..{head.hexsha}")
        outcome = PrOutcome(branch=None, body_path=body_path, patches=sorted(out.glob("*.patch")),
                            repo=target.path if target.branch else None)
        if target.branch:
            outcome.branch = f"adrs/{session.id}/{short}"
            target.repo.create_head(outcome.branch, head, force=True)
            say(f"branch {outcome.branch} in {target.path}")
        say(f"body: {body_path}")
        say(f"{len(outcome.patches)} patch(es) in {out}")
        if not target.branch:
            say(f"dry run: the task's repo {task.source} is not a git repository, so there is no "
                "branch and nothing to push to; apply the patches by hand, or make it a git repo "
                "with a remote and run pr again")
        elif opts.dry_run:
            say("dry run: nothing pushed")
        elif not target.repo.remotes and opts.remote is None:
            say(f"dry run: {target.path} has no remote; add one (`git -C {target.path} remote "
                "add origin URL`) and run pr again to push")
        else:
            _publish(opts, target.repo, outcome.branch, title, body, body_path, task, outcome, say)
        return outcome


# -- the session, the task, the candidate ----------------------------------------------------------
def _session(path: Path) -> Session:
    if not (path / "session.toml").is_file():
        raise PrError(f"no session at {path}; `adrs-agent sessions` lists them")
    return Session(path.resolve())


def _events(session: Session) -> tuple[SessionStarted, SessionFinished | None, dict[int, EpisodeFinished]]:
    started, finished, episodes = None, None, {}
    for ev in session.events(skip=(ToolCalled, Evaluated)):
        if isinstance(ev, SessionStarted) and started is None:
            started = ev
        elif isinstance(ev, SessionFinished):
            finished = ev
        elif isinstance(ev, EpisodeFinished):
            episodes[ev.episode] = ev
    if started is None:
        raise PrError(f"session {session.id} never started (no session_started in its events); "
                      "run `adrs-agent resume` or pick another session")
    return started, finished, episodes


def _task(started: SessionStarted) -> Task:
    try:
        return Task.load(Path(started.task_dir))
    except TaskError as e:
        first = str(e).splitlines()[-1].lstrip("- ")
        raise PrError(f"the session's task {started.task_dir} no longer loads: {first}") from None


def _candidate(session: Session, which: str, baseline: str) -> str:
    try:
        commit = resolve(session, which)
    except ReviewError as e:
        raise PrError(f"candidate {e}") from None
    if commit == baseline:
        raise PrError(f"candidate {which} is the baseline: it changes nothing; pick another "
                      "(`adrs-agent review`)")
    note = read_note(session.repo, commit) or {}
    if not note.get("candidate", {}).get("valid"):
        raise PrError(f"candidate {which} ({commit[:SHORT]}) is invalid or unscored; an invalid "
                      "candidate cannot be a PR: pick another (`adrs-agent review`)")
    return commit


def _reviewed(session: Session, commit: str, top: int) -> tuple[Review, Row]:
    """The review with the candidate in it (its held-out score run now if not yet)."""
    try:
        rev = review(session, top=top, include=(commit,))
    except ReviewError as e:
        raise PrError(str(e)) from None
    row = next((r for r in rev.rows if r.commit == commit), None)
    if row is None or row.score is None:
        raise PrError(f"candidate {commit[:SHORT]} is invalid on {rev.ranking_stage}; "
                      "an invalid candidate cannot be a PR: pick another (`adrs-agent review`)")
    if rev.test_stage and row.test is None:
        raise PrError(f"candidate {commit[:SHORT]} fails the held-out stage {rev.test_stage!r} "
                      f"(logs in {session.heldout_logs}); pick another (`adrs-agent review`)")
    return rev, row


def _lineage(srepo: gitpython.Repo, baseline: str, commit: str,
             episodes: dict[int, EpisodeFinished], globs: list[str]) -> list[Step]:
    steps = []
    previous = _editable(_files(srepo.commit(baseline)), globs)
    for c in srepo.iter_commits(f"{baseline}..{commit}", first_parent=True, reverse=True):
        now = _editable(_files(c), globs)
        changes, previous = bool(_changes(previous, now)), now
        note = read_note(Path(srepo.working_tree_dir), c.hexsha) or {}
        cand = note.get("candidate", {})
        episode = cand.get("episode")
        if episode is None:  # a commit scored by nobody: name its episode by the events
            episode = next((e for e, ev in episodes.items() if c.hexsha in ev.commits), None)
        steps.append(Step(commit=c.hexsha, message=_agent_message(str(c.message)), episode=episode,
                          model=cand.get("model") or (episodes[episode].model
                                                      if episode in episodes else ""),
                          editable=changes))
    return steps


_TRAILER = re.compile(r"^adrs-[\w-]+: .*$", re.MULTILINE)


def _agent_message(message: str) -> str:
    """A commit's message as the agent wrote it (without the harness's `adrs-episode: N` line)."""
    return _TRAILER.sub("", message).strip()


# -- where the branch goes ------------------------------------------------------------------------
@dataclass
class Target:
    repo: gitpython.Repo
    """Where the commits are built."""
    base: gitpython.Commit
    """The commit they start from."""
    branch: bool
    """Whether a branch is made there (not when the task's repo is a plain folder)."""
    notes: list[str] = field(default_factory=list)
    """Why `base` is not the task's ref, if it is not."""

    @property
    def path(self) -> Path:
        return Path(self.repo.working_tree_dir or self.repo.git_dir)

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.repo.close()  # GitPython keeps `git cat-file` processes per repo until closed


def _target(task: Task, srepo: gitpython.Repo, baseline: str) -> Target:
    source = Path(task.source)
    tree = srepo.commit(baseline).tree.hexsha
    if source.is_dir() and (source / ".git").exists():
        repo = gitpython.Repo(source)
        base, notes = _base(repo, task.ref, baseline, tree)
        return Target(repo, base, branch=True, notes=notes)
    if is_git_source(task.source):  # a URL: the session repo is its clone, origin points at it
        return Target(srepo, srepo.commit(baseline), branch=True)
    return Target(srepo, srepo.commit(baseline), branch=False)  # commits with no ref: patches only


def _base(repo: gitpython.Repo, ref: str | None, baseline: str, tree: str
          ) -> tuple[gitpython.Commit, list[str]]:
    """The commit of the task repo to build on: the task's ref when its tree is the session's
    baseline; else the commit that has that tree (the repo moved on); else the ref, said so."""
    name = ref or "HEAD"
    try:
        at_ref = repo.commit(name)
    except (gitpython.BadName, ValueError):
        raise PrError(f"{name} is not a commit of {repo.working_tree_dir}; fix [repo] ref in "
                      "task.toml") from None
    if at_ref.tree.hexsha == tree:
        return at_ref, []
    try:
        same = repo.commit(baseline)
    except (gitpython.BadName, ValueError):
        same = next((c for c in repo.iter_commits("--all") if c.tree.hexsha == tree), None)
    if same is not None and same.tree.hexsha == tree:
        return same, [f"{repo.working_tree_dir} moved on since the session started: the branch "
                      f"starts at {same.hexsha[:SHORT]} (the session's baseline), not at {name} "
                      f"({at_ref.hexsha[:SHORT]})"]
    return at_ref, [f"no commit of {repo.working_tree_dir} has the session's baseline tree: the "
                    f"branch starts at {name} ({at_ref.hexsha[:SHORT]}); check that the change "
                    "still fits it"]


# -- building commits from objects ----------------------------------------------------------------
Entry = tuple[int, bytes]  # (mode, binsha)


def _files(commit: gitpython.Commit) -> dict[str, Entry]:
    return {item.path: (item.mode, item.binsha) for item in commit.tree.traverse()
            if item.type != "tree"}


def _editable(files: dict[str, Entry], globs: list[str]) -> dict[str, Entry]:
    return {p: e for p, e in files.items() if matches(p, globs)}


def _changes(before: dict[str, Entry], after: dict[str, Entry]) -> dict[str, Entry | None]:
    return {p: after.get(p) for p in sorted(before.keys() | after.keys()) if before.get(p) != after.get(p)}


def _write_tree(repo: gitpython.Repo, files: dict[str, Entry]) -> str:
    entries = [BaseIndexEntry((mode, binsha, 0, path)) for path, (mode, binsha) in sorted(files.items())]
    binsha, _ = write_tree_from_cache(entries, repo.odb, slice(0, len(entries)))
    return binsha.hex()


def _copy_blobs(src: gitpython.Repo, dst: gitpython.Repo, changes: dict[str, Entry | None]) -> None:
    if src.git_dir == dst.git_dir:
        return
    for entry in changes.values():
        if entry is not None and entry[0] != 0o160000 and not dst.odb.has_object(entry[1]):
            data = src.odb.stream(entry[1]).read()
            dst.odb.store(IStream(b"blob", len(data), BytesIO(data)))


def _commit(repo: gitpython.Repo, tree: str, message: str, parent: gitpython.Commit,
            like: gitpython.Commit) -> gitpython.Commit:
    """A commit with the author, committer and dates of `like` (so building again gives the
    same sha, and pushing again changes nothing)."""
    def when(seconds: int, offset: int) -> str:
        sign = "-" if offset > 0 else "+"  # GitPython's offsets are seconds west of UTC
        return f"{seconds} {sign}{abs(offset) // 3600:02d}{abs(offset) // 60 % 60:02d}"
    return gitpython.Commit.create_from_tree(
        repo, tree, message, parent_commits=[parent], head=False,
        author=like.author, committer=like.committer,
        author_date=when(like.authored_date, like.author_tz_offset),
        commit_date=when(like.committed_date, like.committer_tz_offset))


def _build(srepo: gitpython.Repo, repo: gitpython.Repo, base: gitpython.Commit, baseline: str,
           commit: str, steps: list[Step], globs: list[str], keep_history: bool) -> gitpython.Commit:
    """The branch's head: base plus the editable changes of each lineage commit, one commit
    each (commits that change no editable path are left out)."""
    files, head = _files(base), base
    previous = _editable(_files(srepo.commit(baseline)), globs)
    for step in [s for s in steps if s.editable] if keep_history else [Step(commit, "", None, "")]:
        c = srepo.commit(step.commit)
        now = _editable(_files(c), globs)
        changes = _changes(previous, now)
        previous = now
        if not changes:
            continue
        _copy_blobs(srepo, repo, changes)
        for path, entry in changes.items():
            if entry is None:
                files.pop(path, None)
            else:
                files[path] = entry
        head = _commit(repo, _write_tree(repo, files), step.message or str(c.message), head, c)
    if head == base:
        raise PrError(f"candidate {commit[:SHORT]} changes no editable path ({', '.join(globs)}) "
                      "of the baseline: there is nothing to propose")
    return head


# -- pushing and the pull request -----------------------------------------------------------------
def _publish(opts: PrOptions, repo: gitpython.Repo, branch: str, title: str, body: str,
             body_path: Path, task: Task, outcome: PrOutcome, say: Callable[[str], None]) -> None:
    """Check the remote, the token and the GitHub repository, then push, then open the pull
    request (or update the open one for this branch)."""
    where = repo.working_tree_dir or repo.git_dir
    name = opts.remote or "origin"
    if name not in [r.name for r in repo.remotes]:
        others = ", ".join(r.name for r in repo.remotes)
        raise PrError(f"no remote {name!r} in {where} (it has {others}); pass --remote NAME or "
                      f"add it with `git -C {where} remote add {name} URL`")
    remote = repo.remote(name)
    ghrepo = _github_repo(opts, remote, body_path)
    base = opts.base or (task.ref if task.ref and _is_branch(repo, name, task.ref)
                         else ghrepo.default_branch)
    _push(remote, branch, body_path)
    say(f"pushed {branch} to {name} ({remote.url})")

    owner = ghrepo.full_name.split("/")[0]
    head_owner = (github_name(remote.url) or ghrepo.full_name).split("/")[0]  # a fork's owner
    head = branch if head_owner.lower() == owner.lower() else f"{head_owner}:{branch}"
    try:
        existing = next(iter(ghrepo.get_pulls(state="open", head=f"{head_owner}:{branch}")), None)
        if existing is not None:
            existing.edit(title=title, body=body)
            outcome.url, outcome.updated = existing.html_url, True
        else:
            outcome.url = ghrepo.create_pull(base=base, head=head, title=title, body=body).html_url
    except _http_errors() as e:
        raise _refused(e, "opening the pull request", ghrepo.full_name, opts, body_path) from None
    say(f"pull request {'updated' if outcome.updated else 'opened'}: {outcome.url}")


def _github_repo(opts: PrOptions, remote: gitpython.Remote, body_path: Path):
    """The GitHub repository to open the pull request on, read with the token (so that a token
    GitHub refuses stops us before anything is pushed)."""
    from github import Auth, Github

    token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
    if not token:
        raise PrError(f"no GitHub token: {SCOPE_FIX} (or GH_TOKEN), or use --dry-run; the body is "
                      f"at {body_path}")
    name = opts.github or github_name(remote.url)
    if not name:
        raise PrError(f"cannot tell the GitHub repository from remote {remote.name} ({remote.url}); "
                      "pass --github OWNER/REPO")
    gh = Github(auth=Auth.Token(token), base_url=(opts.github_url or DEFAULT_API).rstrip("/"))
    try:
        ghrepo = gh.get_repo(name)
    except _http_errors() as e:
        raise _refused(e, f"reading {name}", name, opts, body_path) from None
    permissions = ghrepo.raw_data.get("permissions")
    if isinstance(permissions, dict) and permissions.get("push") is False:
        raise PrError(f"the token cannot push to {name}: {SCOPE_FIX}")
    return ghrepo


def _http_errors() -> tuple[type[Exception], ...]:
    import requests
    from github import GithubException
    return GithubException, requests.RequestException


def _refused(e: Exception, doing: str, name: str, opts: PrOptions, body_path: Path) -> PrError:
    """What to do about GitHub's answer `e` (or its silence), in one line."""
    from github import BadCredentialsException, GithubException, UnknownObjectException

    status = getattr(e, "status", None)
    if isinstance(e, BadCredentialsException) or status in (401, 403):
        return PrError(f"GitHub refused the token ({status}) {doing}: {SCOPE_FIX}; the body is "
                       f"at {body_path}")
    if isinstance(e, UnknownObjectException):
        return PrError(f"GitHub has no repository {name} this token can see: check --github, "
                       f"or {SCOPE_FIX}")
    if isinstance(e, GithubException):
        data = e.data if isinstance(e.data, dict) else {"message": e.data}
        errors = f" {data['errors']}" if data.get("errors") else ""
        return PrError(f"GitHub answered {status} {doing}: {data.get('message')}{errors}; the "
                       f"body is at {body_path}")
    return PrError(f"cannot reach GitHub at {opts.github_url or DEFAULT_API} {doing} "
                   f"({type(e).__name__}); check --github-url; the body is at {body_path}")


def _push(remote: gitpython.Remote, branch: str, body_path: Path) -> None:
    """Push the branch (forced: it is ours, and rebuilt the same from the same candidate)."""
    progress = gitpython.RemoteProgress()
    log = logging.getLogger("git.remote")  # it warns about the lines we put in the error
    level, log.level = log.level, logging.CRITICAL
    try:
        infos = remote.push(f"refs/heads/{branch}:refs/heads/{branch}", force=True, progress=progress)
        error = infos.error
    except gitpython.GitCommandError as e:
        infos, error = [], e
    finally:
        log.setLevel(level)
    failed = PushInfo.ERROR | PushInfo.REJECTED | PushInfo.REMOTE_REJECTED | PushInfo.REMOTE_FAILURE
    bad = [i.summary.strip() for i in infos if i.flags & failed]
    if bad or error or not infos:
        said = [line for line in progress.other_lines if line.startswith("remote:")]
        stderr = re.sub(r"^\s*stderr:\s*'?|'?\s*$", "", str(getattr(error, "stderr", "") or ""))
        reason = " ".join(" ".join([*bad, *said] or [stderr or "nothing was pushed"]).split())[:300]
        raise PrError(f"push of {branch} to {remote.name} ({remote.url}) was rejected: {reason}; the "
                      f"body stays at {body_path}: fix the remote, or push the branch yourself and "
                      "run pr again")


def _is_branch(repo: gitpython.Repo, remote: str, name: str) -> bool:
    return name in repo.heads or any(ref.path == f"refs/remotes/{remote}/{name}" for ref in repo.references)


_URL = re.compile(r"^(?:https?|ssh|git)://(?:[^@/]+@)?[^/]+/(?P<path>.+?)(?:\.git)?/*$")
_SCP = re.compile(r"^(?:[^@/:]+@)?[^/:]+:(?P<path>[^/].*?)(?:\.git)?/*$")


def github_name(url: str) -> str | None:
    """owner/repo of a remote URL (https, ssh:// and scp-like git@host:owner/repo forms), or
    None for a local path."""
    m = _URL.match(url) or (None if url.startswith(("/", ".", "file:")) else _SCP.match(url))
    parts = m.group("path").split("/") if m else []
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


# -- the body -------------------------------------------------------------------------------------
def _num(x: float | None) -> str:
    return "invalid" if x is None else f"{x:.6g}"


def _gain(cand: float | None, base: float | None, sign: float) -> str:
    if cand is None or base is None:
        return ""
    gain = sign * (cand - base)
    rel = f" ({gain / abs(base):+.2%})" if base else ""
    return f"{gain:+.6g}{rel}"


def _interval(row: Row) -> str:
    return "no per-instance scores" if row.interval is None else f"mean paired gain {said(row.interval)} instances"


def _headline(facts: Facts) -> tuple[str, float | None, float | None]:
    rev, row = facts.review, facts.row
    if rev.test_stage:
        return rev.test_stage, rev.baseline.test, row.test
    return rev.ranking_stage, rev.baseline.score, row.score


def render_title(facts: Facts) -> str:
    stage, before, after = _headline(facts)
    messages = [s.message for s in facts.steps if s.editable and s.message] or [facts.row.message]
    first = (messages[-1].splitlines() or [""])[0]
    title = f"{facts.task}: {stage} {_num(before)} -> {_num(after)}: {first}"
    return title if len(title) <= 100 else title[:99] + "…"


def _changed(facts: Facts) -> list[str]:
    seen, out = set(), []
    for step in facts.steps:
        if step.editable and step.message and step.message not in seen:
            seen.add(step.message)
            who = f"episode {step.episode}, {step.model}" if step.episode is not None else step.model
            out.append(f"- `{step.commit[:SHORT]}` ({who}): {step.message.splitlines()[0]}"
                       + "".join(f"\n  {line}" for line in step.message.splitlines()[1:] if line.strip()))
    return out


def _summaries(facts: Facts) -> list[str]:
    seen, out = set(), []
    for episode, summary in facts.summaries.items():
        if summary and summary not in seen:
            seen.add(summary)
            out.append(f"- episode {episode}: {summary}")
    return out


def _moved(base: dict, cand: dict) -> list[tuple[str, float, float, float]]:
    """(metric, baseline, candidate, relative change) of numeric metrics that moved, most first."""
    out = []
    for key in sorted(base.keys() & cand.keys()):
        b, c = base[key], cand[key]
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (b, c)) or b == c:
            continue
        out.append((key, float(b), float(c), (c - b) / abs(b) if b else math.inf))
    return sorted(out, key=lambda m: -abs(m[3]))[:TOP_METRICS]


def render_message(facts: Facts) -> str:
    """The squashed commit's message body: what changed, the scores, where it came from."""
    rev, row = facts.review, facts.row
    scores = [f"{s} {_num(rev.baseline.stages.get(s))} -> {_num(row.stages.get(s))}"
              for s in row.stages]
    if rev.test_stage:
        scores.append(f"{rev.test_stage} (held-out) {_num(rev.baseline.test)} -> {_num(row.test)}")
    return "\n".join([*(line.replace("`", "") for line in _changed(facts)), "",
                      "Scores (baseline -> candidate): " + "; ".join(scores), "",
                      f"adrs-agent session {facts.session}, candidate {row.commit}"]) + "\n"


def render_body(facts: Facts) -> str:
    """The pull request's body, in markdown."""
    rev, row, base = facts.review, facts.row, facts.review.baseline
    sign = -1.0 if rev.direction == "minimize" else 1.0
    lines = [f"Candidate `{row.commit[:SHORT]}` of adrs-agent session `{facts.session}` on task "
             f"`{facts.task}` (rank {row.rank} of the session by {rev.ranking_stage}; score "
             f"{rev.direction}d).", ""]
    lines += ["## What changed and why", ""]
    lines += _changed(facts) or ["- (no commit messages)"]
    summaries = _summaries(facts)
    if summaries:
        lines += ["", "Episode summaries:", "", *summaries]
    lines += ["", "## Scores", "", "| stage | baseline | candidate | gain (+ is better) |",
              "|---|---|---|---|"]
    for stage in dict.fromkeys([*base.stages, *row.stages]):
        lines.append(f"| {stage} | {_num(base.stages.get(stage))} | {_num(row.stages.get(stage))} "
                     f"| {_gain(row.stages.get(stage), base.stages.get(stage), sign)} |")
    if rev.test_stage:
        lines.append(f"| {rev.test_stage} (held-out) | {_num(base.test)} | {_num(row.test)} "
                     f"| {_gain(row.test, base.test, sign)} |")
        lines += ["", f"Held-out {rev.test_stage}: {_interval(row)}."]
    else:
        lines += ["", "The task has no held-out stage."]
    if row.flags:
        lines += ["", "Review flags:", "", *(f"- {flag}" for flag in row.flags)]
    held = bool(row.test_metrics and base.test_metrics)
    moved = _moved(base.test_metrics, row.test_metrics) if held else _moved(base.metrics, row.metrics)
    if moved:
        stage = rev.test_stage if held else rev.ranking_stage
        lines += ["", f"## Metrics that moved most ({stage})", "",
                  "| metric | baseline | candidate | change |", "|---|---|---|---|"]
        lines += [f"| {k} | {b:.6g} | {c:.6g} | {'new from 0' if math.isinf(r) else f'{r:+.2%}'} |"
                  for k, b, c, r in moved]
    lines += ["", "## Diff", "", "```", facts.diffstat or "(no changes)", "```"]
    lines += [f"- {note}" for note in facts.notes]
    episodes = sorted({s.episode for s in facts.steps if s.episode is not None})
    lines += ["", "## Run", "",
              f"- models: {', '.join(facts.models)}; lineage: "
              f"{', '.join(sorted({s.model for s in facts.steps if s.model})) or 'none'}",
              f"- episodes: {facts.episodes} in the session; the lineage's: "
              f"{', '.join(map(str, episodes)) or 'none'} ({len(facts.steps)} commit(s))",
              f"- cost: ${facts.cost_usd:.4f} for the session, ${facts.lineage_cost_usd:.4f} for "
              "the lineage's episodes"]
    cmd = ["adrs-agent", "tasks", "eval", facts.task_dir, "--stage"]
    at = f"{facts.session_repo}@{row.commit}"
    lines += ["", "## Re-evaluate", "", "```bash"]
    for stage in dict.fromkeys(s for s in (rev.test_stage, rev.ranking_stage) if s):
        lines.append(shlex.join([*cmd, stage, "--candidate", at]))
    lines += ["```", ""]
    return "\n".join(lines)
