"""AnthropicModel through the real SDK against a loopback Messages API: conversion both ways,
streaming assembly, caching breakpoints, usage and dollars, and every fault."""

from __future__ import annotations

import logging
import os

import pytest

import tools
from agent.config import ProviderConfig, RunConfig
from agent.models import make_model, pricing
from agent.models.anthropic import AnthropicModel
from agent.models.base import ModelAuthError, ModelError, Usage
from fakes import broken_call, call, cut, drop, error_event, hang, reply, status
from fakes.anthropic_server import FakeAnthropic

SYSTEM = {"role": "system", "content": "You are a systems researcher."}
USER = {"role": "user", "content": "Improve the bin-packing policy."}


@pytest.fixture
def server():
    srv = FakeAnthropic().start()
    yield srv
    srv.stop()


FAST = ProviderConfig(max_retries=3, base_delay_s=0.001, max_delay_s=0.01, timeout_s=5.0)


def model(srv: FakeAnthropic, **kw) -> AnthropicModel:
    """A model on the fake server; keyword arguments override FAST's settings."""
    return AnthropicModel("claude-sonnet-4-6", FAST, **{"api_key": "test", "base_url": srv.url, **kw})


def conversation(first_turn) -> list[dict]:
    """system, user, the model's first turn, and two tool results (one an error)."""
    calls = first_turn.tool_calls
    return [SYSTEM, USER, first_turn.as_message(),
            {"role": "tool", "tool_call_id": calls[0].id, "name": calls[0].name,
             "content": "1: import numpy", "is_error": False},
            {"role": "tool", "tool_call_id": calls[1].id, "name": calls[1].name,
             "content": "no such file", "is_error": True}]


# -- replies -> Turn ---------------------------------------------------------------------------
def test_stream_assembles_text_and_tool_calls(server):
    server.add(reply("Let me look at the policy first.",
                     call("read_file", path="binpack/policy.py", start=1),
                     call("search", pattern="SMALL_GAP")))
    turn = model(server).complete([SYSTEM, USER], tools.schemas())
    assert turn.text == "Let me look at the policy first."
    assert [(c.name, c.arguments, c.error) for c in turn.tool_calls] == [
        ("read_file", {"path": "binpack/policy.py", "start": 1}, ""),
        ("search", {"pattern": "SMALL_GAP"}, "")]
    assert turn.tool_calls[0].id != turn.tool_calls[1].id
    assert turn.stop_reason == "tool_use"
    assert server.requests[0]["body"]["stream"] is True


def test_broken_tool_json_becomes_a_call_error(server):
    server.add(reply("", broken_call("edit", '{"path": "binpack/policy.py", "old": "x'),
                     call("finish", summary="done")))
    turn = model(server).complete([SYSTEM, USER], tools.schemas())
    bad, good = turn.tool_calls
    assert bad.name == "edit" and bad.arguments == {}
    assert bad.error.startswith("arguments were not valid JSON")
    assert good.arguments == {"summary": "done"} and good.error == ""


def test_json_that_is_not_an_object_is_an_error(server):
    server.add(reply("", broken_call("read_file", '["binpack/policy.py"]')))
    turn = model(server).complete([SYSTEM, USER], tools.schemas())
    assert "must be a JSON object" in turn.tool_calls[0].error


def test_max_tokens_is_told_apart_from_a_format_error(server):
    server.add(reply("I will now write", stop="max_tokens"),
               reply("", broken_call("write_file", '{"path": "binpack/policy.py", "con'),
                     stop="max_tokens"))
    m = model(server)
    assert m.complete([SYSTEM, USER], []).stop_reason == "max_tokens"
    turn = m.complete([SYSTEM, USER], [])
    assert turn.stop_reason == "max_tokens"
    assert "cut off by the output token limit" in turn.tool_calls[0].error


def test_end_turn_without_tools(server):
    server.add(reply("All done."))
    turn = model(server).complete([SYSTEM, USER], tools.schemas())
    assert (turn.text, turn.tool_calls, turn.stop_reason) == ("All done.", [], "end_turn")


# -- neutral messages -> request ---------------------------------------------------------------
def test_request_conversion_and_cache_breakpoints(server):
    server.add(reply("reading", call("read_file", path="a.py"), call("read_file", path="b.py")),
               reply("ok"))
    m = model(server)
    schemas = tools.schemas()
    first = m.complete([SYSTEM, USER], schemas)
    m.complete(conversation(first), schemas)
    body = server.requests[1]["body"]
    assert body["model"] == "claude-sonnet-4-6" and body["max_tokens"] == 16000
    assert body["system"] == [{"type": "text", "text": SYSTEM["content"],
                               "cache_control": {"type": "ephemeral"}}]
    assert [t["name"] for t in body["tools"]] == [s["name"] for s in schemas]
    assert body["tools"][0]["input_schema"] == schemas[0]["input_schema"]
    assert [("cache_control" in t) for t in body["tools"]] == [False] * (len(schemas) - 1) + [True]
    user, assistant, results = body["messages"]
    assert user == {"role": "user", "content": [{"type": "text", "text": USER["content"],
                                                  "cache_control": {"type": "ephemeral"}}]}
    assert assistant["role"] == "assistant"
    assert assistant["content"] == [
        {"type": "text", "text": "reading"},
        {"type": "tool_use", "id": first.tool_calls[0].id, "name": "read_file",
         "input": {"path": "a.py"}},
        {"type": "tool_use", "id": first.tool_calls[1].id, "name": "read_file",
         "input": {"path": "b.py"}}]
    # consecutive tool messages -> ONE user message of tool_result blocks; the last block of
    # the conversation is a cache breakpoint too (4 in all: tools, system, first and last user)
    assert results == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": first.tool_calls[0].id,
         "content": "1: import numpy", "is_error": False},
        {"type": "tool_result", "tool_use_id": first.tool_calls[1].id,
         "content": "no such file", "is_error": True, "cache_control": {"type": "ephemeral"}}]}
    assert str(body).count("cache_control") == 4


def test_no_cache_breakpoints_when_caching_is_off(server):
    server.add(reply("ok"))
    model(server, cache=False).complete([SYSTEM, USER], tools.schemas())
    assert "cache_control" not in str(server.requests[0]["body"])


def test_user_nudge_after_a_text_turn_keeps_roles_alternating(server):
    server.add(reply("thinking aloud"), reply("ok"))
    m = model(server)
    first = m.complete([SYSTEM, USER], [])
    m.complete([SYSTEM, USER, first.as_message(), {"role": "user", "content": "use a tool"}],
               [])
    roles = [msg["role"] for msg in server.requests[1]["body"]["messages"]]
    assert roles == ["user", "assistant", "user"]


def test_extended_thinking_is_requested_and_sent_back_with_its_tool_calls(server):
    server.add(reply("", call("read_file", path="a.py"), call("read_file", path="b.py"),
                     thinking="The gap penalty looks off."),
               reply("ok"))
    m = model(server, thinking=2048, max_tokens=1000)
    first = m.complete([SYSTEM, USER], tools.schemas())
    body = server.requests[0]["body"]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] > 2048 and "temperature" not in body
    m.complete(conversation(first), tools.schemas())
    assistant = server.requests[1]["body"]["messages"][1]["content"]
    assert assistant[0] == {"type": "thinking", "thinking": "The gap penalty looks off.",
                            "signature": "sig-26"}
    assert [b["type"] for b in assistant] == ["thinking", "tool_use", "tool_use"]


# -- usage and dollars -------------------------------------------------------------------------
def test_usage_becomes_dollars(server):
    server.add(reply("hi", input=1200, output=300, cache_read=10_000, cache_write=2_000))
    turn = model(server).complete([SYSTEM, USER], [])
    assert turn.usage == Usage(1200, 300, 10_000, 2_000, turn.usage.cost_usd)
    # claude-sonnet-4-6: $3 in, $15 out, $0.30 cache read, $3.75 cache write per million
    expected = (1200 * 3 + 300 * 15 + 10_000 * 0.30 + 2_000 * 3.75) / 1e6
    assert turn.usage.cost_usd == pytest.approx(expected)


def test_unknown_model_costs_nothing_with_one_warning(server, caplog):
    server.add(reply("a"), reply("b"))
    m = AnthropicModel("claude-unheard-of-9", api_key="test", base_url=server.url)
    with caplog.at_level(logging.WARNING, logger="agent.models.pricing"):
        costs = [m.complete([USER], []).usage.cost_usd for _ in range(2)]
    assert costs == [0.0, 0.0]
    assert sum("claude-unheard-of-9" in r.message for r in caplog.records) == 1


def test_pricing_override_and_dated_names():
    try:
        assert pricing.price("claude-sonnet-4-6-20250929") == pricing.price("claude-sonnet-4-6")
        assert pricing.price("anthropic/claude-opus-4-1-20250805").input == 15.0
        pricing.load_pricing({"claude-sonnet-4-6": {"output": 20.0}, "my-local": [1, 2, 0, 0]})
        assert pricing.price("claude-sonnet-4-6") == pricing.Price(3.0, 20.0, 0.3, 3.75)
        assert pricing.cost("openai/my-local@http://h/v1", Usage(1_000_000, 1_000_000)) == 3.0
        with pytest.raises(ValueError, match="unknown keys"):
            pricing.load_pricing({"x": {"inptu": 1}})
    finally:
        pricing.reset_pricing()


# -- faults ------------------------------------------------------------------------------------
FAULTS = {
    "429 retry-after": status(429, retry_after=0.01),
    "529 overloaded": status(529),
    "500": status(500),
    "503": status(503),
    "hang past the timeout": hang(3.0),
    "dropped connection": drop(),
    "stream cut short": cut(),
    "overloaded event in the stream": error_event(),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_fault_is_retried_then_succeeds(server, fault):
    server.add(fault, reply("recovered", call("finish", summary="ok")))
    seen = []
    m = model(server, timeout_s=0.5, on_retry=seen.append)
    turn = m.complete([SYSTEM, USER], tools.schemas())
    assert turn.text == "recovered" and turn.tool_calls[0].name == "finish"
    assert len(server.requests) == 2 and m.retrier.retries == 1
    assert seen[0]["attempt"] == 1 and seen[0]["model"] == "anthropic/claude-sonnet-4-6"


def test_retry_after_is_honoured(server):
    server.add(status(429, retry_after=7), reply("ok"))
    m = model(server)
    waits = []
    m.retrier.sleep = waits.append
    m.complete([USER], [])
    assert waits == [7.0]


def test_backoff_grows_and_is_capped(server):
    server.add(status(500), status(500), status(500), status(500), reply("ok"))
    m = model(server, max_retries=5, base_delay_s=1.0, max_delay_s=3.0)
    waits = []
    m.retrier.sleep = waits.append
    m.complete([USER], [])
    assert len(waits) == 4
    for n, w in enumerate(waits):
        assert min(3.0, 2 ** n) * 0.5 <= w <= min(3.0, 2 ** n)


def test_retries_exhausted_raise_model_error(server):
    server.add(*[status(529)] * 3)
    with pytest.raises(ModelError, match="gave up after 3 attempts") as err:
        model(server, max_retries=2).complete([USER], [])
    assert "529" in str(err.value) and not isinstance(err.value, ModelAuthError)
    assert len(server.requests) == 3


@pytest.mark.parametrize("code", [401, 403])
def test_auth_error_is_not_retried_and_names_the_variable(server, code):
    server.add(status(code), reply("never"))
    with pytest.raises(ModelAuthError, match="ANTHROPIC_API_KEY"):
        model(server).complete([USER], [])
    assert len(server.requests) == 1


def test_bad_request_is_not_retried(server):
    server.add(status(400), reply("never"))
    with pytest.raises(ModelError, match="HTTP 400") as err:
        model(server).complete([USER], [])
    assert not isinstance(err.value, ModelAuthError)
    assert len(server.requests) == 1


def test_no_credentials_at_all_is_an_auth_error(server, monkeypatch, tmp_path):
    for var in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ModelAuthError, match="ANTHROPIC_API_KEY"):  # at once, or at the call
        AnthropicModel("claude-sonnet-4-6", base_url=server.url).complete([USER], [])
    assert server.requests == []


# -- the SDK's own environment, and the spec ---------------------------------------------------
def test_make_model_honours_anthropic_env(server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-env")
    server.add(reply("via env"))
    m = make_model("anthropic/claude-haiku-4-5", RunConfig(task_dir="."), 0)
    assert isinstance(m, AnthropicModel) and m.name == "anthropic/claude-haiku-4-5"
    assert m.complete([USER], []).text == "via env"
    headers = server.requests[0]["headers"]
    assert "sk-from-env" in headers.get("x-api-key", "") + headers.get("authorization", "")
    assert server.requests[0]["body"]["model"] == "claude-haiku-4-5"


def test_make_model_takes_the_runs_provider_settings(server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    server.add(status(500), reply("ok"))
    cfg = RunConfig(task_dir=".", provider={"max_tokens": 9000, "thinking": 2000,
                                            "max_retries": 1, "base_delay_s": 0.001})
    m = make_model("anthropic/claude-haiku-4-5", cfg, 0)
    assert m.complete([USER], []).text == "ok" and m.retrier.retries == 1
    body = server.requests[-1]["body"]
    assert body["max_tokens"] == 9000
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert m.config == cfg.provider  # the same settings, not copies of their defaults


def test_a_misspelt_setting_is_refused():
    with pytest.raises(ValueError, match="max_retires"):
        AnthropicModel("claude-sonnet-4-6", api_key="test", max_retires=2)


def test_adaptive_thinking_is_a_setting(server):
    server.add(reply("ok"))
    model(server, thinking="adaptive").complete([USER], [])
    assert server.requests[0]["body"]["thinking"] == {"type": "adaptive"}


@pytest.mark.live
@pytest.mark.skipif(not os.environ.get("ANTHROPIC_API_KEY") or
                    bool(os.environ.get("ANTHROPIC_BASE_URL")),
                    reason="needs ANTHROPIC_API_KEY (and the real API)")
def test_live_tool_call():
    m = AnthropicModel("claude-haiku-4-5", max_tokens=300, max_retries=2)
    turn = m.complete([{"role": "system", "content": "Call the tool you are asked to call."},
                       {"role": "user", "content": "Read the file binpack/policy.py."}],
                      tools.schemas(["read_file"]))
    assert turn.tool_calls and turn.tool_calls[0].name == "read_file"
    assert turn.usage.input_tokens > 0 and turn.usage.cost_usd > 0
