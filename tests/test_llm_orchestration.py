"""The orchestrator's side of LLM runs: default model, spending cap, auth errors, model
errors that end one episode, ensembles and the bandit. Real CLI or real Solver, real SDKs
against the loopback fakes, the toy task."""

from __future__ import annotations

import random
import tomllib

from agent.config import RunConfig
from agent.models import ModelChoice, default_model
from agent.models.ensemble import Ensemble
from agent.session import Session
from agent.solve import Solver
from agent.task import Task
from fakes import call, reply, status
from fakes.anthropic_server import FakeAnthropic
from fixtures.helpers import cli_env, events, of_type, only_session, run_cli, toy_task

READ = call("read_file", path="pkg/policy.py")


def no_keys(**extra: str) -> dict[str, str]:
    env = cli_env(**extra)
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_AUTH_TOKEN",
                "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"):
        if key not in extra:
            env.pop(key, None)
    return env


def test_default_model_follows_the_keys_and_says_why(tmp_path):
    assert default_model({})[0] == "tuner"
    assert default_model({"OPENAI_API_KEY": "k"})[0].startswith("openai/")
    assert default_model({"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"})[0].startswith(
        "anthropic/")
    out = run_cli("solve", str(toy_task(tmp_path)), "--budget", "1", "--no-test",
                  "--sessions-dir", str(tmp_path / "s"), env=no_keys())
    assert "model: tuner (no ANTHROPIC_API_KEY or OPENAI_API_KEY is set" in out.stdout


def test_max_cost_stops_new_episodes_and_totals_are_recorded(tmp_path):
    # each turn costs 1M input tokens: $3 at Sonnet prices, far over a $0.01 cap
    script = [reply("look", READ, input=1_000_000, output=10)] * 3
    with FakeAnthropic(script) as server:
        env = no_keys(ANTHROPIC_BASE_URL=server.url, ANTHROPIC_API_KEY="test")
        run_cli("solve", str(toy_task(tmp_path)), "--model", "anthropic/claude-sonnet-4-5",
                "--budget", "5", "--workers", "1", "--max-cost", "0.01", "--no-test",
                "--sessions-dir", str(tmp_path / "s"), env=env)
        asked = len(server.requests)
    session = only_session(tmp_path / "s")
    evs = events(session)
    assert asked == 1  # the running episode finished its turn, and nothing more was asked
    assert of_type(evs, "episode_finished")[0]["reason"] == "stopped"
    assert len(of_type(evs, "episode_started")) == 1
    finished = of_type(evs, "session_finished")[-1]
    assert finished["reason"] == "max_cost" and finished["cost_usd"] > 0.01
    totals = tomllib.loads((session / "session.toml").read_text())["totals"]
    assert totals["input_tokens"] == 1_000_000 and totals["cost_usd"] == finished["cost_usd"]
    assert of_type(evs, "budget")[0]["cost_usd"] == finished["cost_usd"]


def test_a_refused_key_stops_the_run_and_names_the_variable(tmp_path):
    with FakeAnthropic([status(401)] * 3) as server:
        env = no_keys(ANTHROPIC_BASE_URL=server.url, ANTHROPIC_API_KEY="wrong")
        out = run_cli("solve", str(toy_task(tmp_path)), "--model", "anthropic/claude-x",
                      "--budget", "3", "--no-test", "--sessions-dir", str(tmp_path / "s"),
                      env=env, check=False)
    assert out.returncode == 2
    assert "ANTHROPIC_API_KEY" in out.stdout
    evs = events(only_session(tmp_path / "s"))
    assert of_type(evs, "error")[0]["kind"] == "auth"
    assert evs[-1]["type"] == "session_finished" and evs[-1]["reason"] == "auth_error"
    assert len(of_type(evs, "episode_started")) == 1  # no episode after the refusal


def solver(tmp_path, models, **cfg) -> Solver:
    task = Task.load(toy_task(tmp_path))
    config = RunConfig(task_dir=str(task.dir), models=models, test_at_end=False, **cfg)
    session = Session.create(tmp_path / "s", task.name, config, task.evaluator.cwd)
    return Solver(session, task, config)


def test_a_failing_provider_ends_the_episode_not_the_run(tmp_path, monkeypatch):
    # one retry per call: two 500s end the first episode; the second one finishes
    with FakeAnthropic([status(500)] * 2 + [reply("", call("finish", summary="ok"))]) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test")
        s = solver(tmp_path, ["anthropic/claude-x"], budget=2, max_episodes=2,
                   provider={"max_retries": 1, "base_delay_s": 0.01})
        s.start()
        s.run()
    evs = events(s.session.dir)
    reasons = [e["reason"] for e in of_type(evs, "episode_finished")]
    assert reasons[0] == "model_error" and "finished" in reasons[1:]
    assert of_type(evs, "error")[0]["kind"] == "model_error"
    assert of_type(evs, "model_retry")  # the retry was recorded
    assert evs[-1]["type"] == "session_finished"


def test_weights_and_the_bandit():
    rng = random.Random(0)
    mix = Ensemble([ModelChoice("a", 0.8), ModelChoice("b", 0.2)])
    picks = [mix.choose(rng) for _ in range(2000)]
    assert 0.75 < picks.count("a") / 2000 < 0.85

    bandit = Ensemble([ModelChoice("cheap", 1), ModelChoice("dear", 1)], bandit=True)
    assert {bandit.choose(rng), bandit.choose(rng)} <= {"cheap", "dear"}
    for _ in range(30):  # same improvement, cheap costs a tenth
        bandit.record("cheap", 0.01, 0.1)
        bandit.record("dear", 0.01, 1.0)
    picks = [bandit.choose(rng) for _ in range(10)]
    assert picks.count("cheap") == 10
    rebuilt = Ensemble([ModelChoice("cheap", 1), ModelChoice("dear", 1)], bandit=True)
    for _ in range(30):
        rebuilt.record("cheap", 0.01, 0.1)
        rebuilt.record("dear", 0.01, 1.0)
    assert rebuilt.arms == bandit.arms  # what resume replays from episode_finished events
