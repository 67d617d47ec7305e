"""The Model protocol and the provider-neutral message types.

Messages are plain dicts, in one neutral shape that every provider converts from:

    {"role": "system", "content": str}
    {"role": "user", "content": str}
    {"role": "assistant", "content": str, "tool_calls": [{"id", "name", "arguments"}]}
    {"role": "tool", "tool_call_id": str, "name": str, "content": str, "is_error": bool}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    error: str = ""  # set by a provider when the call was malformed (e.g. arguments not JSON)


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.cost_usd += other.cost_usd


@dataclass
class Turn:
    """One assistant reply: its text, the tool calls it asks for, and what it cost."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    stop_reason: str = "tool_use"  # tool_use | end_turn | max_tokens

    def as_message(self) -> dict[str, Any]:
        return {
            "role": "assistant",
            "content": self.text,
            "tool_calls": [asdict(c) for c in self.tool_calls],
        }


class ModelError(RuntimeError):
    """The provider failed after its retries; the episode ends, the run goes on."""


class ModelAuthError(ModelError):
    """Credentials are missing or refused; the run stops at once with this message."""


class Model(Protocol):
    """A model answers a conversation with one turn. One instance serves one episode."""

    name: str

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Turn: ...
