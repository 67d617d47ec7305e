"""The per-candidate path of a run on an LLM: the run's episodes share one SDK client and its
connections (agent/models/clients.py), and reuse pooled worktrees that start clean at their
parent whatever the previous episode left there (sandbox.git.WorktreePool)."""

from __future__ import annotations

import pytest

from agent.config import RunConfig
from agent.models import clients, make_model
from agent.session import Session
from agent.solve import Solver
from agent.task import Task
from fakes import call, reply
from fakes.openai_server import FakeOpenAI
from fixtures.helpers import policy, toy_task


@pytest.fixture(autouse=True)
def no_openai_env(monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(var, raising=False)


def run(tmp_path, server, budget: int, workers: int = 1, **cfg) -> Session:
    task = toy_task(tmp_path)
    config = RunConfig(task_dir=str(task), models=[f"openai/m@{server.url}"], budget=budget,
                       workers=workers, test_at_end=False, seed=0, **cfg)
    session = Session.create(tmp_path / "sessions", "toy", config, task / "evaluator")
    solver = Solver(session, Task.load(task), config)
    solver.start()
    solver.run()
    session.close()
    return session


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.slow
def test_a_runs_episodes_share_one_client_and_its_connections(tmp_path, workers):
    episodes = 6
    script = [reply("", call("write_file", path="pkg/policy.py", content=policy(f"{i}.5")),
                    call("commit", message=f"a = {i}.5"), call("finish", summary="done"))
              for i in range(episodes)]
    before = clients.count()
    with FakeOpenAI(script) as server:
        session = run(tmp_path, server, episodes, workers)
    assert len(server.requests) == episodes and server.left == 0
    assert clients.count() == before + 1
    # a streamed reply read to its end gives the connection back for the next episode
    assert server.connections <= workers
    assert list(session.worktrees.iterdir()) == []  # the pool is emptied at the end


def test_what_an_episode_left_in_its_worktree_does_not_reach_the_next(tmp_path):
    """Episode 0 rewrites the policy and never commits; episode 1 gets the same (pooled)
    worktree and must read the parent's policy, not the leftover."""
    script = [reply("", call("write_file", path="pkg/policy.py", content=policy("666.0")),
                    call("write_file", path="pkg/left_over.py", content="X = 1\n"),
                    call("finish", summary="left junk")),
              reply("", call("read_file", path="pkg/policy.py"),
                    call("list_files", path="pkg")),
              reply("", call("finish", summary="read it"))]
    with FakeOpenAI(script) as server:
        run(tmp_path, server, budget=1, max_episodes=2)
    seen = "\n".join(m["content"] for m in server.requests[-1]["body"]["messages"]
                     if m["role"] == "tool")
    assert "666" not in seen and "left_over" not in seen
    assert "A = 3.0" in seen


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_make_model_shares_a_client_per_provider_settings(monkeypatch, provider):
    cfg = RunConfig(task_dir=".")
    monkeypatch.setenv(f"{provider.upper()}_API_KEY", "key-1")
    monkeypatch.setenv(f"{provider.upper()}_BASE_URL", "http://127.0.0.1:9/v1")
    a, b = (make_model(f"{provider}/m", cfg, n) for n in range(2))
    assert a is not b and a.client is b.client  # a fresh model, the run's client
    monkeypatch.setenv(f"{provider.upper()}_API_KEY", "key-2")
    assert make_model(f"{provider}/m", cfg, 2).client is not a.client
