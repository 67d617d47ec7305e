"""A fake OpenAI Chat Completions API: POST /v1/chat/completions, JSON or SSE (stream: true).

Streams the way the API does: a role chunk, content deltas, tool_calls deltas (the first
with id, type and name, then argument pieces by index), a chunk with finish_reason, a usage
chunk with empty choices when stream_options.include_usage is set, then `data: [DONE]`.
`prompt_tokens` counts cached tokens too (prompt_tokens_details.cached_tokens).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from fakes import FakeServer, Reply, chunks

ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_api_key", 403: "permission_denied",
               404: "not_found", 429: "rate_limit_exceeded", 500: "server_error"}


class FakeOpenAI(FakeServer):
    endpoint = "/v1/chat/completions"

    @property
    def url(self) -> str:
        """The base URL for the SDK, with /v1 (OPENAI_BASE_URL, or openai/<model>@URL)."""
        return self.root + "/v1"

    def error_body(self, status: int, message: str) -> dict:
        return {"error": {"message": f"{message} ({status})",
                          "type": ERROR_TYPES.get(status, "server_error"), "param": None,
                          "code": ERROR_TYPES.get(status)}}

    @staticmethod
    def _finish(r: Reply) -> str:
        return {"max_tokens": "length"}.get(r.stop, r.stop) or \
            ("tool_calls" if r.calls else "stop")

    @staticmethod
    def _usage(r: Reply) -> dict[str, Any]:
        prompt = r.input + r.cache_read
        return {"prompt_tokens": prompt, "completion_tokens": r.output,
                "total_tokens": prompt + r.output,
                "prompt_tokens_details": {"cached_tokens": r.cache_read}}

    def _ids(self, r: Reply) -> None:
        for c in r.calls:
            c.id = c.id or self.next_id("call_")

    def message(self, r: Reply, request: dict) -> dict:
        self._ids(r)
        msg: dict[str, Any] = {"role": "assistant", "content": r.text or None}
        if r.calls:
            msg["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": c.json_text()}}
                                 for c in r.calls]
        return {"id": self.next_id("chatcmpl-"), "object": "chat.completion",
                "created": int(time.time()), "model": request.get("model", "gpt-fake"),
                "choices": [{"index": 0, "message": msg, "finish_reason": self._finish(r)}],
                "usage": self._usage(r)}

    def stream_events(self, r: Reply, request: dict) -> Iterable[tuple[None, Any]]:
        self._ids(r)
        cid, created, model = self.next_id("chatcmpl-"), int(time.time()), \
            request.get("model", "gpt-fake")

        def chunk(delta: dict, finish: str | None = None) -> tuple[None, dict]:
            return None, {"id": cid, "object": "chat.completion.chunk", "created": created,
                          "model": model, "choices": [{"index": 0, "delta": delta,
                                                       "finish_reason": finish}]}

        yield chunk({"role": "assistant", "content": ""})
        for t in chunks(r.text, 16) if r.text else []:
            yield chunk({"content": t})
        for i, c in enumerate(r.calls):
            yield chunk({"tool_calls": [{"index": i, "id": c.id, "type": "function",
                                         "function": {"name": c.name, "arguments": ""}}]})
            for piece in chunks(c.json_text(), 7):
                yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
        yield chunk({}, self._finish(r))
        if (request.get("stream_options") or {}).get("include_usage"):
            yield None, {"id": cid, "object": "chat.completion.chunk", "created": created,
                         "model": model, "choices": [], "usage": self._usage(r)}
        yield None, "[DONE]"
