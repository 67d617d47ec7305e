"""OpenAIModel through the real SDK against a loopback Chat Completions API: conversion both
ways, streamed tool-call assembly, cached tokens and dollars, local servers, every fault."""

from __future__ import annotations

import json
import os

import pytest

import tools
from agent import config
from agent.config import ProviderConfig, RunConfig
from agent.models import make_model
from agent.models.base import ModelAuthError, ModelError, Usage
from agent.models.openai import OpenAIModel
from fakes import broken_call, call, cut, drop, hang, reply, status
from fakes.openai_server import FakeOpenAI

SYSTEM = {"role": "system", "content": "You are a systems researcher."}
USER = {"role": "user", "content": "Improve the bin-packing policy."}
LIVE_KEY = "" if os.environ.get("OPENAI_BASE_URL") else os.environ.get("OPENAI_API_KEY", "")


@pytest.fixture
def server():
    srv = FakeOpenAI().start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def no_openai_env(monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(var, raising=False)


FAST = ProviderConfig(max_retries=3, base_delay_s=0.001, max_delay_s=0.01, timeout_s=5.0)


def model(srv: FakeOpenAI, name: str = "gpt-5", **kw) -> OpenAIModel:
    """A model on the fake server; keyword arguments override FAST's settings."""
    return OpenAIModel(name, FAST, **{"base_url": srv.url, **kw})


# -- replies -> Turn ---------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [True, False], ids=["sse", "json"])
def test_text_and_tool_calls(server, stream):
    server.add(reply("Let me look at the policy first.",
                     call("read_file", path="binpack/policy.py", start=1),
                     call("search", pattern="SMALL_GAP")))
    turn = model(server, stream=stream).complete([SYSTEM, USER], tools.schemas())
    assert turn.text == "Let me look at the policy first."
    assert [(c.name, c.arguments, c.error) for c in turn.tool_calls] == [
        ("read_file", {"path": "binpack/policy.py", "start": 1}, ""),
        ("search", {"pattern": "SMALL_GAP"}, "")]
    assert turn.tool_calls[0].id != turn.tool_calls[1].id
    assert turn.stop_reason == "tool_use"
    body = server.requests[0]["body"]
    assert body.get("stream", False) is stream
    if stream:
        assert body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("stream", [True, False], ids=["sse", "json"])
def test_broken_tool_json_becomes_a_call_error(server, stream):
    server.add(reply("", broken_call("edit", '{"path": "binpack/policy.py", "old": '),
                     call("finish", summary="done")))
    turn = model(server, stream=stream).complete([SYSTEM, USER], tools.schemas())
    bad, good = turn.tool_calls
    assert bad.arguments == {} and bad.error.startswith("arguments were not valid JSON")
    assert good.arguments == {"summary": "done"} and good.error == ""


def test_length_is_max_tokens_and_a_cut_call_says_so(server):
    server.add(reply("I will now", stop="max_tokens"),
               reply("", broken_call("write_file", '{"path": "a.py", "cont'), stop="max_tokens"))
    m = model(server, max_tokens=50)
    assert m.complete([USER], []).stop_reason == "max_tokens"
    turn = m.complete([USER], [])
    assert turn.stop_reason == "max_tokens"
    assert "cut off by the output token limit" in turn.tool_calls[0].error
    assert server.requests[0]["body"]["max_tokens"] == 50  # a compatible server's field


def test_end_turn_without_tools(server):
    server.add(reply("All done."))
    turn = model(server).complete([SYSTEM, USER], tools.schemas())
    assert (turn.text, turn.tool_calls, turn.stop_reason) == ("All done.", [], "end_turn")


# -- neutral messages -> request ---------------------------------------------------------------
def test_request_conversion(server):
    server.add(reply("reading", call("read_file", path="a.py"), call("read_file", path="b.py")),
               reply("ok"))
    m = model(server)
    schemas = tools.schemas()
    first = m.complete([SYSTEM, USER], schemas)
    a, b = first.tool_calls
    m.complete([SYSTEM, USER, first.as_message(),
                {"role": "tool", "tool_call_id": a.id, "name": a.name, "content": "1: x = 1",
                 "is_error": False},
                {"role": "tool", "tool_call_id": b.id, "name": b.name, "content": "no such file",
                 "is_error": True},
                {"role": "user", "content": "go on"}], schemas)
    body = server.requests[1]["body"]
    assert body["model"] == "gpt-5"
    assert body["tools"][0] == {"type": "function", "function": {
        "name": schemas[0]["name"], "description": schemas[0]["description"],
        "parameters": schemas[0]["input_schema"]}}
    system, user, assistant, r1, r2, nudge = body["messages"]
    assert system == {"role": "system", "content": SYSTEM["content"]}
    assert user == {"role": "user", "content": USER["content"]}
    assert assistant["role"] == "assistant" and assistant["content"] == "reading"
    assert [(c["id"], c["type"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in assistant["tool_calls"]] == [(a.id, "function", "read_file", {"path": "a.py"}),
                                                  (b.id, "function", "read_file", {"path": "b.py"})]
    assert r1 == {"role": "tool", "tool_call_id": a.id, "content": "1: x = 1"}
    assert r2 == {"role": "tool", "tool_call_id": b.id, "content": "Error: no such file"}
    assert nudge == {"role": "user", "content": "go on"}


# -- usage and dollars -------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [True, False], ids=["sse", "json"])
def test_usage_with_cached_tokens_becomes_dollars(server, stream):
    server.add(reply("hi", input=1200, output=300, cache_read=10_000))
    turn = model(server, stream=stream).complete([USER], [])
    # the server says prompt_tokens=11200 of which cached_tokens=10000
    assert turn.usage == Usage(1200, 300, 10_000, 0, turn.usage.cost_usd)
    # gpt-5: $1.25 in, $10 out, $0.125 cached in per million
    assert turn.usage.cost_usd == pytest.approx((1200 * 1.25 + 300 * 10 + 10_000 * 0.125) / 1e6)


def test_a_local_model_is_free_and_not_warned_about(server, caplog):
    server.add(reply("hi", input=5000, output=500))
    turn = model(server, name="qwen3-coder-30b").complete([USER], [])
    assert turn.usage.input_tokens == 5000 and turn.usage.cost_usd == 0.0
    assert not [r for r in caplog.records if "qwen3" in r.getMessage()]


# -- faults ------------------------------------------------------------------------------------
FAULTS = {
    "429 retry-after": status(429, retry_after=0.01),
    "529 overloaded": status(529),
    "500": status(500),
    "502": status(502),
    "hang past the timeout": hang(3.0),
    "dropped connection": drop(),
    "stream cut short": cut(),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_fault_is_retried_then_succeeds(server, fault):
    server.add(fault, reply("recovered", call("finish", summary="ok")))
    seen = []
    m = model(server, timeout_s=0.5, on_retry=seen.append)
    turn = m.complete([SYSTEM, USER], tools.schemas())
    assert turn.text == "recovered" and turn.tool_calls[0].name == "finish"
    assert len(server.requests) == 2 and m.retrier.retries == 1
    assert seen[0]["attempt"] == 1 and seen[0]["model"] == m.name


def test_retry_after_is_honoured(server):
    server.add(status(429, retry_after=4), reply("ok"))
    m = model(server)
    waits = []
    m.retrier.sleep = waits.append
    m.complete([USER], [])
    assert waits == [4.0]


def test_retries_exhausted_raise_model_error(server):
    server.add(*[status(500)] * 3)
    with pytest.raises(ModelError, match="gave up after 3 attempts") as err:
        model(server, max_retries=2).complete([USER], [])
    assert not isinstance(err.value, ModelAuthError)
    assert len(server.requests) == 3


@pytest.mark.parametrize("code", [401, 403])
def test_auth_error_is_not_retried_and_names_the_variable(server, code):
    server.add(status(code), reply("never"))
    with pytest.raises(ModelAuthError, match="OPENAI_API_KEY"):
        model(server).complete([USER], [])
    assert len(server.requests) == 1


def test_no_key_and_no_server_is_an_auth_error():
    with pytest.raises(ModelAuthError, match="OPENAI_API_KEY"):
        OpenAIModel("gpt-5")


# -- keys, base URLs and the spec --------------------------------------------------------------
def test_local_server_needs_no_key(server):
    server.add(reply("local"))
    m = make_model(f"openai/qwen3@{server.url}", RunConfig(task_dir="."), 0)
    assert isinstance(m, OpenAIModel) and m.base_url == server.url
    assert m.complete([USER], []).text == "local"
    assert server.requests[0]["headers"]["authorization"] == "Bearer not-needed"
    assert server.requests[0]["body"]["model"] == "qwen3"


def test_set_provider_stream_false_asks_for_one_json_reply(server):
    """`--set provider.stream=false` (a server that streams badly, or a bench against a peer
    that does not stream): the request has no `stream`, and the reply still becomes a turn."""
    server.add(reply("whole", call("read_file", path="a.py")), reply("streamed"))
    cfg = config.load({"task_dir": "."}, sets=["provider.stream=false"])
    turn = make_model(f"openai/qwen3@{server.url}", cfg, 0).complete([USER], tools.schemas())
    assert turn.text == "whole" and turn.tool_calls[0].arguments == {"path": "a.py"}
    assert "stream" not in server.requests[0]["body"]
    make_model(f"openai/qwen3@{server.url}", config.load({"task_dir": "."}), 1).complete([USER], [])
    assert server.requests[1]["body"]["stream"] is True  # the default


def test_key_and_base_url_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    server.add(reply("via env"))
    m = make_model("openai/gpt-5-mini", RunConfig(task_dir="."), 0)
    assert m.name == "openai/gpt-5-mini"
    assert m.complete([USER], []).text == "via env"
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-from-env"


def test_make_model_takes_the_runs_retry_settings(server):
    server.add(status(503), status(503), reply("never"))
    cfg = RunConfig(task_dir=".", provider={"max_retries": 1, "base_delay_s": 0.001})
    m = make_model(f"openai/qwen3@{server.url}", cfg, 0)
    with pytest.raises(ModelError, match="gave up after 2 attempts"):
        m.complete([USER], [])
    assert len(server.requests) == 2
    assert "max_tokens" not in server.requests[0]["body"]  # Anthropic's setting: the server's own


@pytest.mark.live
@pytest.mark.skipif(not LIVE_KEY, reason="needs OPENAI_API_KEY (and the real API)")
def test_live_tool_call():
    m = OpenAIModel("gpt-5-mini", api_key=LIVE_KEY, max_retries=2)
    turn = m.complete([{"role": "system", "content": "Call the tool you are asked to call."},
                       {"role": "user", "content": "Read the file binpack/policy.py."}],
                      tools.schemas(["read_file"]))
    assert turn.tool_calls and turn.tool_calls[0].name == "read_file"
    assert turn.usage.input_tokens > 0 and turn.usage.cost_usd > 0
