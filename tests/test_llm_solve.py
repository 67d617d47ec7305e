"""Whole `adrs-agent solve` runs on an LLM provider: the real CLI in a subprocess, the real
SDK, a loopback server playing the model. Its scripted replies read the policy, edit a
constant, run the evaluator, commit and finish; the commit must come out scored."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.models import pricing
from agent.models.base import Usage
from fakes import broken_call, call, cut, drop, error_event, reply, status
from fakes.anthropic_server import FakeAnthropic
from fakes.openai_server import FakeOpenAI
from fixtures.helpers import REPO_ROOT, cli_env, events, git, of_type, only_session, run_cli, scored

TASK = REPO_ROOT / "tasks" / "bin-packing"
POLICY = "binpack/policy.py"
OLD = "SMALL_GAP_PENALTY = 0.0"
NEW = "SMALL_GAP_PENALTY = 1.0"
TOKENS = dict(input=2000, output=150, cache_read=6000, cache_write=1000)


def script():
    return [
        reply("Let me read the policy.", call("read_file", path=POLICY), **TOKENS),
        reply("Penalise small gaps.", call("edit", path=POLICY, old_str=OLD, new_str=NEW),
              **TOKENS),
        reply("", call("run_evaluator", stage="quick"), **TOKENS),
        reply("", call("commit", message="penalise small leftover gaps"), **TOKENS),
        reply("Done.", call("finish", summary="SMALL_GAP_PENALTY 0 -> 1"), **TOKENS),
    ]


def solve(model: str, sessions: Path, env: dict[str, str]) -> Path:
    run_cli("solve", str(TASK), "--model", model, "--budget", "1", "--no-test", "--no-tui",
            "--sessions-dir", str(sessions), env=env, timeout=600)
    return only_session(sessions)


def check_run(session: Path, server, tool_result_text, turns: int = 5) -> dict:
    evs = events(session)
    baseline = of_type(evs, "session_started")[0]["baseline"]
    committed = of_type(evs, "candidate_committed")
    assert len(committed) == 1
    mine = [e for e in scored(evs) if e["commit"] != baseline]
    assert [e["commit"] for e in mine] == [committed[0]["commit"]]
    assert mine[0]["valid"] is True and mine[0]["score"] is not None
    assert NEW in git(session / "repo", "show", f"{committed[0]['commit']}:{POLICY}")
    finished = of_type(evs, "episode_finished")
    assert finished[0]["reason"] == "finished"
    # every scripted reply was asked for, and the tool results went back to the model
    assert server.left == 0 and len(server.requests) == turns
    sent = [tool_result_text(r["body"]) for r in server.requests]
    assert OLD in sent[-4]  # read_file's window
    assert "committed" in sent[-1]  # the commit's score report
    return finished[0]


def anthropic_results(body: dict) -> str:
    return "\n".join(b["content"] for m in body["messages"] if m["role"] == "user"
                     for b in m["content"] if b["type"] == "tool_result")


def openai_results(body: dict) -> str:
    return "\n".join(m["content"] for m in body["messages"] if m["role"] == "tool")


def test_solve_with_anthropic(tmp_path):
    with FakeAnthropic(script()) as server:
        env = cli_env(ANTHROPIC_BASE_URL=server.url, ANTHROPIC_API_KEY="test")
        env.pop("ANTHROPIC_AUTH_TOKEN", None)
        session = solve("anthropic/claude-sonnet-4-5", tmp_path / "sessions", env)
    finished = check_run(session, server, anthropic_results)
    assert {r["headers"]["authorization"] if "authorization" in r["headers"]
            else r["headers"]["x-api-key"] for r in server.requests} <= {"test", "Bearer test"}
    assert all(r["body"]["model"] == "claude-sonnet-4-5" for r in server.requests)
    # the tokens the server reported, in dollars, in the episode's event
    one = Usage(TOKENS["input"], TOKENS["output"], TOKENS["cache_read"], TOKENS["cache_write"])
    usage = finished["usage"]
    assert usage["input_tokens"] == 5 * TOKENS["input"]
    assert usage["cache_read_tokens"] == 5 * TOKENS["cache_read"]
    assert usage["cost_usd"] == pytest.approx(5 * pricing.cost("claude-sonnet-4-5", one))


def test_solve_with_openai_compatible_server(tmp_path):
    with FakeOpenAI(script()) as server:
        env = cli_env()
        for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            env.pop(var, None)
        session = solve(f"openai/gpt-x@{server.url}", tmp_path / "sessions", env)
    finished = check_run(session, server, openai_results)
    assert all(r["headers"]["authorization"] == "Bearer not-needed" for r in server.requests)
    assert all(r["body"]["model"] == "gpt-x" for r in server.requests)
    usage = finished["usage"]
    assert usage["input_tokens"] == 5 * TOKENS["input"]
    assert usage["cache_read_tokens"] == 5 * TOKENS["cache_read"]
    assert usage["cost_usd"] == 0.0  # a model of one's own, not in the price table


def test_solve_survives_provider_faults(tmp_path):
    """429 with retry-after, 529, a dropped connection, a stream cut short, an overloaded
    event mid-stream, and a tool call with broken JSON: the run goes on to its candidate."""
    faults = [status(429, retry_after=0.05), status(529), drop(), cut(), error_event()]
    bad = reply("", broken_call("read_file", '{"path": "binpack/pol'), **TOKENS)
    turns = [bad, *script()]
    played = [turns[0]] + [x for fault, turn in zip(faults, turns[1:]) for x in (fault, turn)]
    with FakeAnthropic(played) as server:  # one fault before each turn after the first
        env = cli_env(ANTHROPIC_BASE_URL=server.url, ANTHROPIC_API_KEY="test")
        env.pop("ANTHROPIC_AUTH_TOKEN", None)
        session = solve("anthropic/claude-sonnet-4-6", tmp_path / "sessions", env)
    check_run(session, server, anthropic_results, turns=len(faults) + 6)
    # the broken call went back to the model as an error result, not as a crash
    after_bad = server.requests[2]["body"]["messages"][-1]["content"]
    assert after_bad[0]["type"] == "tool_result" and after_bad[0]["is_error"] is True
