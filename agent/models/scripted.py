"""ScriptedModel: replays assistant turns from a JSONL file, for tests and dry runs.

One turn per line:

    {"text": "...", "tool_calls": [{"name": "edit", "arguments": {...}, "id": "optional"}],
     "usage": {"input_tokens": 10, "output_tokens": 5}}

Blank lines and lines starting with `#` are skipped. A saved transcript
(sessions/<id>/transcripts/<episode>.jsonl) is a script too: its assistant turns replay.
In every string inside "arguments" (recursively) and in "text", `{episode}` becomes the episode number and `{turn}` the
0-based index of the replayed turn (plain str.replace, so other braces survive). Each
instance replays the file from the top; once the script is exhausted every turn is a
`finish` call with the summary "script exhausted".
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from agent.models.base import ToolCall, Turn, Usage

_USAGE_FIELDS = {f.name for f in fields(Usage)}


def _substitute(value: Any, episode: int, turn: int) -> Any:
    if isinstance(value, str):
        return value.replace("{episode}", str(episode)).replace("{turn}", str(turn))
    if isinstance(value, list):
        return [_substitute(v, episode, turn) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, episode, turn) for k, v in value.items()}
    return value


def load_script(path: str | Path) -> list[dict[str, Any]]:
    """The validated turns of a script; ValueError naming the file and line if one is bad."""
    path = Path(path)
    turns = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue

            def bad(why: str, lineno: int = lineno) -> ValueError:
                return ValueError(f"{path}:{lineno}: malformed script line: {why}")

            try:
                obj = json.loads(stripped)
            except json.JSONDecodeError as e:
                raise bad(f"not JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                raise bad("expected a JSON object")
            if "format_version" in obj or "message" in obj:  # a line of a saved transcript
                obj = _from_transcript(obj)
                if obj is None:
                    continue
            unknown = set(obj) - {"text", "tool_calls", "usage", "stop_reason"}
            if unknown:
                raise bad(f"unknown keys {sorted(unknown)}")
            text = obj.get("text", "")
            if not isinstance(text, str):
                raise bad('"text" must be a string')
            calls = obj.get("tool_calls", [])
            if not isinstance(calls, list):
                raise bad('"tool_calls" must be a list')
            for i, call in enumerate(calls):
                if not isinstance(call, dict):
                    raise bad(f"tool_calls[{i}] must be an object")
                if not isinstance(call.get("name"), str) or not call["name"]:
                    raise bad(f'tool_calls[{i}] needs a "name" string')
                if not isinstance(call.get("arguments", {}), dict):
                    raise bad(f'tool_calls[{i}].arguments must be an object')
                if "id" in call and not isinstance(call["id"], str):
                    raise bad(f'tool_calls[{i}].id must be a string')
            usage = obj.get("usage", {})
            if not isinstance(usage, dict):
                raise bad('"usage" must be an object')
            for k, v in usage.items():
                if k not in _USAGE_FIELDS:
                    raise bad(f"unknown usage field {k!r}")
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    raise bad(f"usage.{k} must be a number")
            stop = obj.get("stop_reason")
            if stop is not None and not isinstance(stop, str):
                raise bad('"stop_reason" must be a string')
            turns.append(obj)
    return turns


def _from_transcript(record: dict[str, Any]) -> dict[str, Any] | None:
    """The assistant turn in a transcript line (transcripts/<episode>.jsonl), else None."""
    message = record.get("message")
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return None
    calls = [{k: c[k] for k in ("id", "name", "arguments") if k in c}
             for c in message.get("tool_calls") or []]
    usage = {k: v for k, v in (record.get("usage") or {}).items() if k in _USAGE_FIELDS}
    turn = {"text": message.get("content") or "", "tool_calls": calls, "usage": usage}
    if record.get("stop_reason"):
        turn["stop_reason"] = record["stop_reason"]
    return turn


class ScriptedModel:
    """Replays a JSONL script of assistant turns; one instance per episode."""

    name = "scripted"

    def __init__(self, path: str | Path, episode: int = 0):
        self.path = Path(path)
        self.episode = episode
        self.turns = load_script(self.path)
        self.position = 0
        self.calls_made = 0

    def _next_id(self) -> str:
        self.calls_made += 1
        return f"call-{self.calls_made}"

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Turn:
        if self.position >= len(self.turns):
            return Turn(
                text="script exhausted",
                tool_calls=[ToolCall(self._next_id(), "finish", {"summary": "script exhausted"})],
            )
        k = self.position
        obj = self.turns[k]
        self.position += 1
        calls = []
        for call in obj.get("tool_calls", []):
            cid = self._next_id()
            if call.get("id"):
                cid = call["id"]
            args = _substitute(call.get("arguments", {}), self.episode, k)
            calls.append(ToolCall(cid, call["name"], args))
        usage = Usage(**{k2: v for k2, v in obj.get("usage", {}).items()})
        stop = obj.get("stop_reason") or ("tool_use" if calls else "end_turn")
        return Turn(text=_substitute(obj.get("text", ""), self.episode, k), tool_calls=calls,
                    usage=usage, stop_reason=stop)
