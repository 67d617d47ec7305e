"""`openai/<model>[@<base_url>]`: Chat Completions with tools, through the official SDK.

Works with any OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio): give its URL,
with the /v1 the SDK expects, after `@`. The key comes from OPENAI_API_KEY; a local server
given by URL (or by OPENAI_BASE_URL) needs none, and gets a dummy one. Streams by default
and assembles the tool calls from the deltas, so broken JSON arguments become a ToolCall with
`error` instead of an exception.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import openai

from agent.config import ProviderConfig
from agent.models import clients, pricing, sse
from agent.models.base import ModelAuthError, ToolCall, Turn, Usage
from agent.models.retry import Retrier, parse_arguments, provider_config

KEY_VAR = "OPENAI_API_KEY"
DUMMY_KEY = "not-needed"
STOP_REASONS = {"tool_calls": "tool_use", "function_call": "tool_use", "stop": "end_turn",
                "length": "max_tokens", "content_filter": "end_turn"}


class OpenAIModel:
    """One episode's conversation with an OpenAI(-compatible) chat model."""

    def __init__(self, model: str, config: ProviderConfig | None = None, *,
                 base_url: str | None = None, max_tokens: int | None = None,
                 temperature: float | None = None, reasoning_effort: str | None = None,
                 stream: bool | None = None, api_key: str | None = None,
                 on_retry: Callable[[dict], None] | None = None, **settings: Any):
        """
        Args:
            model: the model name the server knows, e.g. gpt-5 or qwen3-coder.
            config: the retry policy (see retry.py) and timeout_s (to connect, and to wait for
                each piece of the reply); ProviderConfig's defaults when None. Its max_tokens
                and thinking are Anthropic's.
            settings: ProviderConfig fields that override config's (max_retries=0, say).
            base_url: an OpenAI-compatible server, with /v1 (None: OPENAI_BASE_URL or OpenAI).
            max_tokens: output tokens per turn (None: the server's default).
            temperature: sampling temperature (None: the server's default).
            reasoning_effort: for reasoning models: minimal | low | medium | high.
            stream: stream the reply (timeouts then apply to each piece, not the whole
                reply); None: config's `stream`.
            api_key: overrides OPENAI_API_KEY.
            on_retry: called with {"model", "attempt", "error", "delay_s"} before each retry.
        """
        self.config = config = provider_config(config, settings)
        self.model = model
        self.base_url = base_url
        self.name = f"openai/{model}" + (f"@{base_url}" if base_url else "")
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.reasoning_effort = reasoning_effort
        self.stream = config.stream if stream is None else stream
        local = base_url or os.environ.get("OPENAI_BASE_URL")
        key = api_key or os.environ.get(KEY_VAR) or (DUMMY_KEY if local else None)
        if not key:
            raise ModelAuthError(f"{self.name}: no API key: set {KEY_VAR}, or give a local "
                                 "server as openai/<model>@http://host:port/v1")
        kwargs: dict[str, Any] = {"api_key": key, "max_retries": 0, "timeout": config.timeout_s}
        if base_url:
            kwargs["base_url"] = base_url
        self.client = clients.shared("openai", kwargs, openai.OpenAI)  # one for the run
        self.retrier = Retrier(self.name, KEY_VAR, (openai.APIStatusError,),
                               (openai.APIConnectionError,), config, on_retry=on_retry)

    # -- neutral -> Chat Completions ---------------------------------------------------------
    def request(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict:
        """The JSON body of a POST /chat/completions for this conversation."""
        out: list[dict[str, Any]] = []
        for m in messages:
            role = m["role"]
            if role in ("system", "user"):
                out.append({"role": role, "content": m["content"]})
            elif role == "assistant":
                msg: dict[str, Any] = {"role": "assistant", "content": m.get("content") or None}
                calls = m.get("tool_calls") or []
                if calls:
                    msg["tool_calls"] = [
                        {"id": c["id"], "type": "function",
                         "function": {"name": c["name"], "arguments": json.dumps(
                             c["arguments"] if isinstance(c.get("arguments"), dict) else {})}}
                        for c in calls]
                elif msg["content"] is None:
                    msg["content"] = ""
                out.append(msg)
            elif role == "tool":
                text = m["content"] or "(no output)"
                out.append({"role": "tool", "tool_call_id": m["tool_call_id"],
                            "content": f"Error: {text}" if m.get("is_error") else text})
            else:
                raise ValueError(f"unknown message role {role!r}")
        kwargs: dict[str, Any] = {"model": self.model, "messages": out}
        if tools:
            kwargs["tools"] = [{"type": "function", "function": {
                "name": t["name"], "description": t["description"],
                "parameters": t["input_schema"]}} for t in tools]
        if self.max_tokens:
            # OpenAI's own API wants max_completion_tokens; compatible servers know max_tokens
            kwargs["max_tokens" if self.base_url else "max_completion_tokens"] = self.max_tokens
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.reasoning_effort:
            kwargs["reasoning_effort"] = self.reasoning_effort
        if self.stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
        return kwargs

    # -- the call ----------------------------------------------------------------------------
    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Turn:
        kwargs = self.request(messages, tools)
        return self.retrier.run(lambda: self._call(kwargs))

    def _call(self, kwargs: dict[str, Any]) -> Turn:
        # the SDK's documented raw request: its client, auth, base URL and errors, without
        # its per-request transform of every message and a typed object per chunk, which
        # cost several times the HTTP round trip itself (bench/llm_turn.py)
        if not self.stream:
            r = self.client.post("/chat/completions", content=_json(kwargs), cast_to=object)
            choice = (r.get("choices") or [{}])[0]
            message = choice.get("message") or {}
            calls = [(c.get("id") or f"call_{i}", c["function"]["name"],
                      c["function"].get("arguments") or "")
                     for i, c in enumerate(message.get("tool_calls") or [])]
            return self._turn(message.get("content") or "", calls,
                              choice.get("finish_reason") or "", r.get("usage"))
        text: list[str] = []
        calls_by_index: dict[int, list] = {}
        finish, usage = "", None
        stream = self.client.post("/chat/completions", content=_json(kwargs), cast_to=object,
                                  stream=True, stream_cls=_Stream)
        with stream:
            for chunk in stream:
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        text.append(delta["content"])
                    for tc in delta.get("tool_calls") or ():
                        entry = calls_by_index.setdefault(tc.get("index", 0), ["", "", []])
                        if tc.get("id"):
                            entry[0] = tc["id"]
                        fn = tc.get("function") or {}
                        if fn.get("name"):
                            entry[1] += fn["name"]
                        if fn.get("arguments"):
                            entry[2].append(fn["arguments"])
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
        calls = [(cid or f"call_{i}", name, "".join(parts))
                 for i, (cid, name, parts) in sorted(calls_by_index.items())]
        return self._turn("".join(text), calls, finish, usage)

    def _turn(self, text: str, raw_calls: list[tuple[str, str, str]], finish: str,
              raw_usage: dict[str, Any] | None) -> Turn:
        cut = finish == "length"
        calls = []
        for cid, name, raw in raw_calls:
            args, error = parse_arguments(raw, cut)
            calls.append(ToolCall(cid, name, args, error))
        usage = Usage()
        if raw_usage:  # prompt_tokens counts the cached ones too; Usage.input_tokens does not
            cached = int((raw_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
            usage = Usage(input_tokens=max(0, int(raw_usage.get("prompt_tokens") or 0) - cached),
                          output_tokens=int(raw_usage.get("completion_tokens") or 0),
                          cache_read_tokens=cached)
        usage.cost_usd = pricing.cost(self.model, usage) if not self.base_url else \
            _local_cost(self.model, usage)
        stop = STOP_REASONS.get(finish, "tool_use" if calls else "end_turn")
        return Turn(text, calls, usage, stop)


class _Stream(openai.Stream[object]):
    """The SDK's stream with our leaner event decoder (agent/models/sse.py), reading the rest
    of the body after `data: [DONE]` (the chunked terminator): the sync SDK stops there and
    closes the response, which drops an HTTP/1.1 connection instead of giving it back to the
    pool, so every turn paid a new connection (its async stream drains; this does the same)."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._decoder = sse.Decoder()

    def _iter_events(self):
        events = super()._iter_events()
        for event in events:
            if event.data.startswith("[DONE]"):
                for _ in events:
                    pass
            yield event


def _local_cost(model: str, usage: Usage) -> float:
    """A model on a server of one's own costs nothing unless the pricing table says so."""
    return pricing.cost(model, usage) if pricing.price(model) else 0.0


def _json(body: dict[str, Any]) -> bytes:
    """The request body, serialized once here (the SDK would deep-copy it, then serialize)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
