"""A fake Anthropic Messages API: POST /v1/messages, JSON or SSE (stream: true).

Streams the way the API does: message_start (with input/cache usage), per block
content_block_start / content_block_delta (text_delta, thinking_delta, signature_delta,
input_json_delta in small pieces) / content_block_stop, then message_delta (stop_reason,
output usage) and message_stop, with a ping in between.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from fakes import FakeServer, Reply, chunks

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 429: "rate_limit_error",
               500: "api_error", 529: "overloaded_error"}


class FakeAnthropic(FakeServer):
    endpoint = "/v1/messages"

    @property
    def url(self) -> str:
        """The base URL for the SDK (ANTHROPIC_BASE_URL / base_url=)."""
        return self.root

    def error_body(self, status: int, message: str) -> dict:
        return {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"),
                                           "message": f"{message} ({status})"}}

    def _blocks(self, r: Reply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if r.thinking:
            blocks.append({"type": "thinking", "thinking": r.thinking, "signature": "sig-" +
                           str(len(r.thinking))})
        if r.text:
            blocks.append({"type": "text", "text": r.text})
        for c in r.calls:
            c.id = c.id or self.next_id("toolu_")
            blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "raw": c.json_text()})
        return blocks

    @staticmethod
    def _stop(r: Reply) -> str:
        return r.stop or ("tool_use" if r.calls else "end_turn")

    def _usage(self, r: Reply, output: int) -> dict[str, int]:
        return {"input_tokens": r.input, "output_tokens": output,
                "cache_read_input_tokens": r.cache_read,
                "cache_creation_input_tokens": r.cache_write}

    def message(self, r: Reply, request: dict) -> dict:
        content = []
        for b in self._blocks(r):
            if b["type"] == "tool_use":
                b = {"type": "tool_use", "id": b["id"], "name": b["name"],
                     "input": json.loads(b["raw"])}
            content.append(b)
        return {"id": self.next_id("msg_"), "type": "message", "role": "assistant",
                "model": request.get("model", "claude-fake"), "content": content,
                "stop_reason": self._stop(r), "stop_sequence": None,
                "usage": self._usage(r, r.output)}

    def stream_events(self, r: Reply, request: dict) -> Iterable[tuple[str, Any]]:
        yield "message_start", {"type": "message_start", "message": {
            "id": self.next_id("msg_"), "type": "message", "role": "assistant",
            "model": request.get("model", "claude-fake"), "content": [], "stop_reason": None,
            "stop_sequence": None, "usage": self._usage(r, 1)}}
        yield "ping", {"type": "ping"}
        for i, b in enumerate(self._blocks(r)):
            if b["type"] == "text":
                start, deltas = {"type": "text", "text": ""}, [
                    {"type": "text_delta", "text": t} for t in chunks(b["text"], 16)]
            elif b["type"] == "thinking":
                start = {"type": "thinking", "thinking": "", "signature": ""}
                deltas = [{"type": "thinking_delta", "thinking": t}
                          for t in chunks(b["thinking"], 16)]
                deltas.append({"type": "signature_delta", "signature": b["signature"]})
            else:
                start = {"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}
                deltas = [{"type": "input_json_delta", "partial_json": t}
                          for t in chunks(b["raw"], 7)]
            yield "content_block_start", {"type": "content_block_start", "index": i,
                                          "content_block": start}
            for d in deltas:
                yield "content_block_delta", {"type": "content_block_delta", "index": i,
                                              "delta": d}
            yield "content_block_stop", {"type": "content_block_stop", "index": i}
        yield "message_delta", {"type": "message_delta",
                                "delta": {"stop_reason": self._stop(r), "stop_sequence": None},
                                "usage": {"output_tokens": r.output}}
        yield "message_stop", {"type": "message_stop"}

