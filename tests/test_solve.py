"""End to end: `adrs-agent solve` on the toy task with scripted (and tuner) models.

Real subprocesses, real git, real files; the session folder, events.jsonl, transcripts,
notes and the evaluator's own call counter are inspected after each run.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest

from fixtures.helpers import (
    call,
    calls,
    cli_env,
    events,
    git,
    note,
    noted,
    of_type,
    policy,
    run_cli,
    scored,
    solve,
    toy_task,
    turn,
    write_script,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- commits become scored candidates in git --------------------------------------------------
def test_commits_are_scored_candidates_with_notes_and_branches(tmp_path):
    task = toy_task(tmp_path)
    script = write_script(tmp_path / "s.jsonl", [
        turn(call("write_file", path="pkg/policy.py", content=policy("{episode}.5")),
             call("commit", message="A={episode}.5")),
        turn(call("write_file", path="pkg/policy.py", content=policy("{episode}.25", "2.0")),
             call("commit", message="A={episode}.25")),
    ])
    proc, session = solve(task, script, tmp_path / "sessions", 6)
    repo = session / "repo"
    evs = events(session)

    assert evs[0]["type"] == "session_started"
    assert evs[-1]["type"] == "session_finished"
    assert evs[-1]["reason"] == "budget"
    baseline = evs[0]["baseline"]
    # the baseline is the root commit, and it is scored first
    assert git(repo, "rev-list", "--max-parents=0", "--branches").split() == [baseline]
    cands = scored(evs)
    assert cands[0]["commit"] == baseline and cands[0]["episode"] == -1
    assert cands[0]["score"] == pytest.approx(-17.0)

    committed = of_type(evs, "candidate_committed")
    assert len(committed) == 6
    by_commit = {e["commit"]: e for e in cands}
    assert len(by_commit) == 7  # baseline + 6, each scored once
    for c in committed:
        s = by_commit[c["commit"]]
        assert s["parent"] == c["parent"] and s["episode"] == c["episode"]
        assert s["stage"] == "full" and s["valid"] is True
        assert [st["stage"] for st in s["stages"]] == ["quick", "full"]
        # the score is the toy's formula on what the script wrote
        a = float(git(repo, "show", f"{c['commit']}:pkg/policy.py").split("A = ")[1].split()[0])
        b = float(git(repo, "show", f"{c['commit']}:pkg/policy.py").split("B = ")[1].split()[0])
        assert s["score"] == pytest.approx(-(a - 7) ** 2 - (b - 2) ** 2)
        # the commit's parent in git is the parent the event names
        assert git(repo, "rev-parse", f"{c['commit']}^").strip() == c["parent"]
        # its note is JSON carrying the same score
        n = note(repo, c["commit"])
        assert n["candidate"]["score"] == pytest.approx(s["score"])
        assert n["candidate"]["commit"] == c["commit"]
        assert [st["stage"] for st in n["stages"]] == ["quick", "full"]
    assert note(repo, baseline)["candidate"]["score"] == pytest.approx(-17.0)

    # the second commit of an episode descends from its first
    for ep in range(3):
        mine = [c for c in committed if c["episode"] == ep]
        assert len(mine) == 2 and mine[1]["parent"] == mine[0]["commit"]

    # one branch per episode, adrs/<island>/<episode>, pointing at its last commit
    started = of_type(evs, "episode_started")
    branches = set(git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/adrs")
                   .split())
    assert branches == {e["branch"] for e in started}
    for e in started:
        assert e["branch"] == f"adrs/{e['island']}/{e['episode']}"
        last = [c for c in committed if c["episode"] == e["episode"]][-1]["commit"]
        assert git(repo, "rev-parse", e["branch"]).strip() == last

    graph = git(repo, "log", "--graph", "--all", "--oneline", "--decorate")
    for c in committed:
        assert c["commit"][:7] in graph
    assert "adrs/0/0" in graph and "adrs/2/2" in graph
    # worktrees are gone once the run ends
    assert list((session / "worktrees").iterdir()) == []
    assert "best" in proc.stdout


# -- non-editable paths ------------------------------------------------------------------------
def test_commit_touching_non_editable_paths_is_rejected(tmp_path):
    task = toy_task(tmp_path)
    script = write_script(tmp_path / "s.jsonl", [
        turn(call("run", command="echo hacked > README.md && echo 42 > data.txt"),
             call("write_file", path="pkg/policy.py", content=policy("6.0")),
             call("commit", message="sneaky")),
        turn(call("commit", message="only the policy")),
    ])
    _, session = solve(task, script, tmp_path / "sessions", 2, "--max-episodes", "1",
                       "--no-test")
    repo = session / "repo"
    evs = events(session)

    rejected = of_type(evs, "candidate_rejected")
    assert len(rejected) == 1
    assert sorted(rejected[0]["paths"]) == ["README.md", "data.txt"]
    assert rejected[0]["episode"] == 0
    transcript = (session / "transcripts" / "0.jsonl").read_text()
    assert "commit rejected" in transcript and "README.md" in transcript

    # the retry commits only the policy; the budget was not charged for the rejection
    committed = of_type(evs, "candidate_committed")
    assert len(committed) == 1 and committed[0]["files"] == ["pkg/policy.py"]
    assert evs[-1]["candidates"] == 1
    touched = git(repo, "log", "--all", "--format=", "--name-only")
    assert "data.txt" not in touched
    base = events(session)[0]["baseline"]
    assert git(repo, "log", "--all", "--format=%H", "--", "README.md").split() == [base]
    assert git(repo, "show", f"{committed[0]['commit']}:README.md") == \
        (task / "repo" / "README.md").read_text()


# -- the evaluation cache --------------------------------------------------------------------
def test_identical_code_is_evaluated_once(tmp_path):
    task = toy_task(tmp_path)
    code = policy("5.0")
    script = write_script(tmp_path / "s.jsonl", [
        turn(call("write_file", path="pkg/policy.py", content=code),
             call("run_evaluator", stage="quick"),
             call("run_evaluator", stage="full"),
             call("commit", message="A=5 in episode {episode}")),
    ])
    _, session = solve(task, script, tmp_path / "sessions", 2, "--no-test")
    repo = session / "repo"
    evs = events(session)
    committed = of_type(evs, "candidate_committed")
    assert len(committed) == 2
    assert committed[0]["commit"] != committed[1]["commit"]
    by_commit = {e["commit"]: e for e in scored(evs)}
    s0, s1 = (by_commit[c["commit"]] for c in committed)
    assert s0["score"] == s1["score"] == pytest.approx(-5.0)
    assert s0["candidate"]["key"] == s1["candidate"]["key"]
    assert note(repo, committed[0]["commit"])["candidate"]["score"] == \
        note(repo, committed[1]["commit"])["candidate"]["score"]

    counts = Counter(calls(session))
    # run_evaluator x2 + commit, twice over two episodes: each stage ran once for this code
    assert counts[("quick", sha(code))] == 1
    assert counts[("full", sha(code))] == 1
    assert all(n == 1 for n in counts.values()), counts
    evaluated = Counter((e["key"], e["stage"]) for e in of_type(evs, "evaluated"))
    assert all(n == 1 for n in evaluated.values()), evaluated
    assert len(evaluated) == 4  # baseline and A=5, two stages each


def test_identical_commits_from_two_episodes_are_two_commits(tmp_path):
    task = toy_task(tmp_path)
    script = write_script(tmp_path / "s.jsonl", [
        turn(call("write_file", path="pkg/policy.py", content=policy("5.0")),
             call("commit", message="A=5")),
    ])
    # a fixed clock stands in for "both commits happened in the same second"
    env = cli_env(GIT_AUTHOR_DATE="2024-01-01T00:00:00Z",
                  GIT_COMMITTER_DATE="2024-01-01T00:00:00Z")
    _, session = solve(task, script, tmp_path / "sessions", 2, "--no-test", env=env)
    evs = events(session)
    committed = of_type(evs, "candidate_committed")
    assert len(committed) == 2
    assert committed[0]["parent"] == committed[1]["parent"]  # both from the baseline
    assert committed[0]["commit"] != committed[1]["commit"]
    # each episode's note is its own
    repo = session / "repo"
    for c in committed:
        assert note(repo, c["commit"])["candidate"]["episode"] == c["episode"]


# -- candidates that hang or eat memory ------------------------------------------------------
HANG = "import time\ntime.sleep(1000)\n"
HOG = "chunks = []\nwhile True:\n    chunks.append(bytearray(32 * 1024 * 1024))\n"


def test_hanging_and_memory_hungry_candidates_are_invalid_and_the_run_goes_on(tmp_path):
    task = toy_task(tmp_path, timeout_s=3, memory_mb=256)
    script = write_script(tmp_path / "s.jsonl", [
        turn(call("write_file", path="pkg/policy.py", content=policy("4.0", extra=HANG)),
             call("commit", message="hang")),
        turn(call("write_file", path="pkg/policy.py", content=policy("5.0")),
             call("commit", message="fine after hang")),
        turn(call("write_file", path="pkg/policy.py", content=policy("4.5", extra=HOG)),
             call("commit", message="hog")),
        turn(call("write_file", path="pkg/policy.py", content=policy("6.0")),
             call("commit", message="fine after hog")),
    ])
    _, session = solve(task, script, tmp_path / "sessions", 4, "--max-episodes", "1",
                       "--no-test")
    evs = events(session)
    msg = {e["commit"]: e["message"] for e in of_type(evs, "candidate_committed")}
    assert sorted(msg.values()) == sorted(["hang", "fine after hang", "hog",
                                           "fine after hog"])
    result = {msg[e["commit"]]: e for e in scored(evs) if e["commit"] in msg}

    hang = result["hang"]
    assert hang["valid"] is False and hang["score"] is None
    assert hang["stopped_at"] == "quick"
    assert "timed out" in hang["stages"][0]["error"]
    assert "timed out" in hang["candidate"]["feedback"]

    hog = result["hog"]
    assert hog["valid"] is False and hog["score"] is None
    assert hog["stopped_at"] == "quick"
    assert "MemoryError" in hog["stages"][0]["log_tail"]

    assert result["fine after hang"]["valid"] is True
    assert result["fine after hang"]["score"] == pytest.approx(-5.0)
    assert result["fine after hog"]["valid"] is True
    assert result["fine after hog"]["score"] == pytest.approx(-2.0)
    assert evs[-1]["type"] == "session_finished" and evs[-1]["best_score"] == pytest.approx(-2.0)
    # the agent was told why
    transcript = (session / "transcripts" / "0.jsonl").read_text()
    assert "timed out" in transcript and "INVALID" in transcript


# -- the scrubbed environment ----------------------------------------------------------------
ENV_DUMP = ("import json, os\nprint(json.dumps(dict(os.environ)))\n"
            "FEEDBACK = json.dumps(dict(os.environ))\n")
SECRETS = {"OPENAI_API_KEY": "sk-openai-e2e-SECRET-1111",
           "ANTHROPIC_API_KEY": "sk-ant-e2e-SECRET-2222",
           "X_TOKEN": "xtok-e2e-SECRET-3333",
           "DB_URL": "postgres://u:pw-e2e-SECRET-4444@db/x",
           "https_proxy": "http://user:pw-e2e-SECRET-5555@proxy:3128"}


def test_secrets_never_reach_candidates_logs_or_events(tmp_path):
    task = toy_task(tmp_path)
    script = write_script(tmp_path / "s.jsonl", [
        turn(call("write_file", path="pkg/policy.py", content=policy("6.0", extra=ENV_DUMP)),
             call("run_evaluator", stage="quick"),
             call("run", command="env"),
             call("commit", message="dump the environment")),
    ])
    env = cli_env(**SECRETS)
    proc, session = solve(task, script, tmp_path / "sessions", 1, env=env)
    evs = events(session)
    dumped = [e for e in scored(evs) if e["episode"] == 0]
    assert len(dumped) == 1 and dumped[0]["valid"] is True
    feedback = json.loads(dumped[0]["candidate"]["feedback"])
    # the candidate's environment is built for its jail, not inherited: no secret, no proxy
    assert set(feedback) <= {"PATH", "HOME", "TMPDIR", "LANG", "PYTHONDONTWRITEBYTECODE",
                             "PYTHONUNBUFFERED", "ADRS_CANDIDATE", "ADRS_JOB", "LC_CTYPE",
                             "PWD", "SHLVL", "_"}, sorted(feedback)
    assert "PATH" in feedback and feedback["HOME"] == "/tmp"

    everything = ""
    for path in session.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            everything += path.read_text(errors="replace")
    assert "PYTHONDONTWRITEBYTECODE" in everything  # the dump is there ...
    for name, value in SECRETS.items():
        assert value not in everything, f"{name} leaked into the session folder"
        assert value not in proc.stdout + proc.stderr
    # the run tool's `env` output is in the transcript, and it is scrubbed too
    transcript = (session / "transcripts" / "0.jsonl").read_text()
    assert "PATH=" in transcript
    assert "X_TOKEN" not in transcript


# -- one notes writer under concurrency ------------------------------------------------------
def test_every_scored_commit_has_a_note_with_four_workers(tmp_path):
    task = toy_task(tmp_path)
    script = write_script(tmp_path / "s.jsonl", [
        turn(call("write_file", path="pkg/policy.py", content=policy("{episode}.{turn}")),
             call("commit", message="e{episode} t{turn}"))
        for _ in range(3)
    ])
    _, session = solve(task, script, tmp_path / "sessions", 12, "--workers", "4")
    repo = session / "repo"
    evs = events(session)
    committed = of_type(evs, "candidate_committed")
    assert len(committed) == 12
    commits = {e["commit"] for e in scored(evs)}
    assert len(commits) == 13  # baseline + 12
    assert {c["commit"] for c in committed} <= commits
    notes = noted(repo)
    assert notes == commits
    for commit in commits:
        n = note(repo, commit)
        assert n["candidate"]["commit"] == commit
        assert isinstance(n["candidate"]["score"], float)
    best = evs[-1]["best"]
    assert "test" in note(repo, best)  # the held-out result joined the best's note
    assert len({e["episode"] for e in committed}) >= 4


def test_parallel_episode_worktrees_do_not_race(tmp_path):
    """What `--workers N` does to the session repo: episodes add and remove worktrees at once.

    The same sandbox.git calls Solver.episode makes, from 8 threads, 3 rounds. Without the
    lock around worktree add/remove/prune most rounds failed ("failed to read
    .git/worktrees/eN/commondir"), so this catches a regression most of the time.
    """
    import threading

    from sandbox import git as sgit

    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "policy.py").write_text(policy())
    repo = tmp_path / "repo"
    base = sgit.init_repo(repo, str(src))
    errors: list[str] = []

    def episode(i: int, rnd: int) -> None:
        for j in range(3):
            path = tmp_path / "worktrees" / f"e{rnd}-{i}-{j}"
            try:
                sgit.add_worktree(repo, path, f"adrs/{i}/{rnd}-{j}", base)
                sgit.remove_worktree(repo, path)
            except sgit.GitError as e:
                errors.append(str(e))

    for rnd in range(3):
        threads = [threading.Thread(target=episode, args=(i, rnd)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            break
    assert errors == []


# -- the tuner -----------------------------------------------------------------------------
def test_tuner_improves_on_the_toy_baseline(tmp_path):
    task = toy_task(tmp_path)
    _, session = solve(task, "tuner", tmp_path / "sessions", 8, "--seed", "1", "--no-test")
    evs = events(session)
    base = scored(evs)[0]
    assert base["episode"] == -1 and base["score"] == pytest.approx(-17.0)
    finished = evs[-1]
    assert finished["type"] == "session_finished"
    assert finished["best_score"] > base["score"]
    assert finished["best"] != base["commit"]
    assert 1 <= finished["candidates"] <= 8


# -- tasks eval ------------------------------------------------------------------------------
def test_tasks_eval_prints_the_baseline_and_a_candidate_folder(tmp_path):
    task = toy_task(tmp_path)
    out = json.loads(run_cli("tasks", "eval", str(task)).stdout)
    assert out["valid"] is True and out["score"] == pytest.approx(-17.0)
    assert out["metrics"] == {"a": 3.0, "b": 1.0}

    full = json.loads(run_cli("tasks", "eval", str(task), "--stage", "test").stdout)
    assert full["score"] == pytest.approx(-17.5)

    cand = tmp_path / "cand"
    (cand / "pkg").mkdir(parents=True)
    (cand / "pkg" / "__init__.py").write_text("")
    (cand / "pkg" / "policy.py").write_text(policy("7.0", "2.0"))
    out = json.loads(run_cli("tasks", "eval", str(task), "--candidate", str(cand)).stdout)
    assert out["score"] == pytest.approx(0.0) and out["metrics"] == {"a": 7.0, "b": 2.0}

    (cand / "pkg" / "policy.py").write_text("raise SystemExit(3)\n")
    bad = run_cli("tasks", "eval", str(task), "--candidate", str(cand), check=False)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["valid"] is False
