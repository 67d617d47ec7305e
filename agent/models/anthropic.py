"""`anthropic/<model>`: the Messages API with tools, through the official SDK.

Always streams (the SDK refuses non-streaming calls with a large max_tokens) and assembles
the reply from the raw events, `input_json_delta` included, so a tool call whose arguments
are not valid JSON becomes a ToolCall with `error` instead of an exception. The stable prefix
(tool schemas, system prompt, first user message) and the growing conversation carry
`cache_control` breakpoints. The SDK's own environment (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL,
...) is left to the SDK.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic

from agent.config import ProviderConfig
from agent.models import clients, pricing, sse
from agent.models.base import ModelAuthError, ToolCall, Turn, Usage
from agent.models.retry import Retrier, parse_arguments, provider_config

KEY_VAR = "ANTHROPIC_API_KEY"
EPHEMERAL = {"type": "ephemeral"}
STOP_REASONS = {"tool_use": "tool_use", "end_turn": "end_turn", "max_tokens": "max_tokens",
                "stop_sequence": "end_turn", "pause_turn": "end_turn", "refusal": "end_turn",
                "model_context_window_exceeded": "max_tokens"}
DELTA_FIELDS = {"text_delta": "text", "input_json_delta": "partial_json",
                "thinking_delta": "thinking", "signature_delta": "signature"}


class AnthropicModel:
    """One episode's conversation with a Claude model."""

    def __init__(self, model: str, config: ProviderConfig | None = None, *,
                 temperature: float | None = None, cache: bool = True,
                 api_key: str | None = None, base_url: str | None = None,
                 on_retry: Callable[[dict], None] | None = None, **settings: Any):
        """
        Args:
            model: the API model name, e.g. claude-sonnet-4-5.
            config: max_tokens (thinking included), thinking (a token budget, 0: off, or
                "adaptive"), the retry policy (see retry.py) and timeout_s (to connect, and
                to wait for each piece of the stream); ProviderConfig's defaults when None.
            settings: ProviderConfig fields that override config's (max_retries=0, say).
            temperature: sampling temperature (None: the API's default; not with thinking).
            cache: put cache_control breakpoints on the stable prefix and the conversation.
            api_key, base_url: override the SDK's environment (ANTHROPIC_API_KEY/BASE_URL).
            on_retry: called with {"model", "attempt", "error", "delay_s"} before each retry.
        """
        self.config = config = provider_config(config, settings)
        self.model = model
        self.name = f"anthropic/{model}"
        self.max_tokens = config.max_tokens
        self.thinking = config.thinking
        self.temperature = temperature
        self.cache = cache
        if isinstance(self.thinking, int) and self.thinking and self.max_tokens <= self.thinking:
            self.max_tokens = self.thinking + 4096  # the API wants room to answer after thinking
        kwargs: dict[str, Any] = {"max_retries": 0, "timeout": config.timeout_s}
        if api_key is not None:
            kwargs["api_key"] = api_key
        if base_url is not None:
            kwargs["base_url"] = base_url
        try:
            self.client = clients.shared("anthropic", kwargs, anthropic.Anthropic)  # one per run
        except anthropic.CredentialsError as e:  # a profile or token file that cannot be read
            raise ModelAuthError(f"{self.name}: no usable Anthropic credentials: set {KEY_VAR}. "
                                 f"The SDK said: {e}") from e
        self.retrier = Retrier(self.name, KEY_VAR, (anthropic.APIStatusError,),
                               (anthropic.APIConnectionError,), config, on_retry=on_retry)
        # thinking blocks must go back with the tool calls they led to; the neutral messages
        # do not carry them, so this episode's model keeps them by first tool-call id
        self._thinking: dict[str, list[dict[str, Any]]] = {}

    # -- neutral -> Messages API -------------------------------------------------------------
    def request(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict:
        """The JSON body of a POST /v1/messages for this conversation."""
        system: list[dict[str, Any]] = []
        out: list[dict[str, Any]] = []

        def add(role: str, blocks: list[dict[str, Any]]) -> None:
            if out and out[-1]["role"] == role:
                out[-1]["content"].extend(blocks)  # the API wants user/assistant alternating
            else:
                out.append({"role": role, "content": blocks})

        for m in messages:
            role = m["role"]
            if role == "system":
                system.append({"type": "text", "text": m["content"]})
            elif role == "user":
                add("user", [{"type": "text", "text": m["content"] or "(empty)"}])
            elif role == "tool":
                add("user", [{"type": "tool_result", "tool_use_id": m["tool_call_id"],
                              "content": m["content"] or "(no output)",
                              "is_error": bool(m.get("is_error"))}])
            elif role == "assistant":
                calls = m.get("tool_calls") or []
                blocks = list(self._thinking.get(calls[0]["id"], [])) if calls else []
                if m.get("content"):
                    blocks.append({"type": "text", "text": m["content"]})
                for c in calls:
                    args = c.get("arguments")
                    blocks.append({"type": "tool_use", "id": c["id"], "name": c["name"],
                                   "input": args if isinstance(args, dict) else {}})
                add("assistant", blocks or [{"type": "text", "text": "(no reply)"}])
            else:
                raise ValueError(f"unknown message role {role!r}")
        schemas = [{"name": t["name"], "description": t["description"],
                    "input_schema": t["input_schema"]} for t in tools]
        if self.cache:
            if schemas:
                schemas[-1]["cache_control"] = EPHEMERAL
            if system:
                system[-1]["cache_control"] = EPHEMERAL
            users = [i for i, m in enumerate(out) if m["role"] == "user"]
            for i in {users[0], users[-1]} if users else ():  # prefix, and the conversation
                out[i]["content"][-1]["cache_control"] = EPHEMERAL
        kwargs: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens,
                                  "messages": out, "stream": True}
        if system:
            kwargs["system"] = system
        if schemas:
            kwargs["tools"] = schemas
        if self.thinking == "adaptive":
            kwargs["thinking"] = {"type": "adaptive"}
        elif self.thinking:
            kwargs["thinking"] = {"type": "enabled", "budget_tokens": int(self.thinking)}
        elif self.temperature is not None:
            kwargs["temperature"] = self.temperature
        return kwargs

    # -- the call ----------------------------------------------------------------------------
    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Turn:
        kwargs = self.request(messages, tools)
        return self.retrier.run(lambda: self._stream(kwargs))

    def _stream(self, kwargs: dict[str, Any]) -> Turn:
        try:
            # the SDK's documented raw request: its client, auth, base URL and errors, but the
            # events come back as plain dicts; building a typed object per event cost more
            # than the rest of a turn (bench/llm_turn.py)
            stream = self.client.post("/v1/messages", content=_json(kwargs), cast_to=object,
                                      stream=True, stream_cls=_Stream)
        except (TypeError, anthropic.CredentialsError) as e:  # no credentials found at all
            if isinstance(e, TypeError) and "authentication" not in str(e).lower():
                raise
            raise ModelAuthError(f"{self.name}: no Anthropic credentials: set {KEY_VAR} "
                                 f"(or ANTHROPIC_AUTH_TOKEN). The SDK said: {e}") from e
        blocks: dict[int, dict[str, Any]] = {}
        usage: dict[str, int] = {}
        stop = ""
        with stream:
            for event in stream:
                kind = event.get("type")
                if kind == "content_block_delta":
                    d = event["delta"]
                    part = DELTA_FIELDS.get(d.get("type"))
                    if part and event["index"] in blocks:
                        blocks[event["index"]]["parts"].append((part, d.get(part) or ""))
                elif kind == "content_block_start":
                    blocks[event["index"]] = {"block": event["content_block"], "parts": []}
                elif kind == "message_start":
                    usage.update(_usage(event["message"].get("usage")))
                elif kind == "message_delta":
                    stop = (event.get("delta") or {}).get("stop_reason") or stop
                    usage.update(_usage(event.get("usage")))
        return self._turn(blocks, usage, stop)

    def _turn(self, blocks: dict[int, dict[str, Any]], raw_usage: dict[str, int],
              stop: str) -> Turn:
        texts: list[str] = []
        calls: list[ToolCall] = []
        thinking: list[dict[str, Any]] = []
        cut = stop == "max_tokens"
        for _, entry in sorted(blocks.items()):
            block, parts = entry["block"], entry["parts"]
            joined = {key: "".join(v for k, v in parts if k == key)
                      for key in ("text", "partial_json", "thinking", "signature")}
            if block["type"] == "text":
                texts.append(block.get("text", "") + joined["text"])
            elif block["type"] == "tool_use":
                raw = joined["partial_json"] or (json.dumps(block["input"])
                                                 if block.get("input") else "")
                args, error = parse_arguments(raw, cut)
                calls.append(ToolCall(block["id"], block["name"], args, error))
            elif block["type"] == "thinking":
                thinking.append({"type": "thinking",
                                 "thinking": block.get("thinking", "") + joined["thinking"],
                                 "signature": block.get("signature", "") + joined["signature"]})
            elif block["type"] == "redacted_thinking":
                thinking.append({"type": "redacted_thinking", "data": block.get("data", "")})
        if calls and thinking:
            self._thinking[calls[0].id] = thinking
        usage = Usage(input_tokens=raw_usage.get("input_tokens", 0),
                      output_tokens=raw_usage.get("output_tokens", 0),
                      cache_read_tokens=raw_usage.get("cache_read_input_tokens", 0),
                      cache_write_tokens=raw_usage.get("cache_creation_input_tokens", 0))
        usage.cost_usd = pricing.cost(self.model, usage)
        stop_reason = STOP_REASONS.get(stop, "tool_use" if calls else "end_turn")
        return Turn("\n\n".join(t for t in texts if t), calls, usage, stop_reason)


def _usage(u: dict[str, Any] | None) -> dict[str, int]:
    """The token counts a usage object carries (message_delta repeats them, cumulative)."""
    keys = ("input_tokens", "output_tokens", "cache_read_input_tokens",
            "cache_creation_input_tokens")
    return {k: int(u[k]) for k in keys if u and u.get(k) is not None}


def _json(body: dict[str, Any]) -> bytes:
    """The request body, serialized once here (the SDK would deep-copy it, then serialize)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class _Stream(anthropic.Stream[object]):
    """The SDK's stream with our leaner event decoder (agent/models/sse.py)."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._decoder = sse.Decoder()
