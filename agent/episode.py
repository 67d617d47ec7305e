"""ONE agent episode: ask the model, run the tool calls it made, append the results, repeat,
until it calls `finish` or a limit (steps, wall time) ends it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import tools
from agent.models.base import Model, ToolCall, Usage
from agent.session import Transcript
from tools.base import ToolContext, ToolResult

MAX_IDLE_TURNS = 3
NUDGE = ("You replied without calling a tool. Use the tools to work on the code; commit what "
         "improves the score; call finish(summary) when you are done.")
CUT = ("Your reply was cut off by the output token limit before it finished. Make smaller "
       "steps: shorter edits, one tool call at a time.")


@dataclass
class EpisodeResult:
    reason: str  # finished | max_steps | wall_time | idle
    steps: int
    summary: str = ""
    usage: Usage = field(default_factory=Usage)


def run_episode(model: Model, ctx: ToolContext, messages: list[dict[str, Any]], *,
                max_steps: int, wall_s: float, transcript: Transcript,
                on_tool: Callable[[ToolCall, ToolResult], None]) -> EpisodeResult:
    schemas = tools.schemas()
    usage, idle, start = Usage(), 0, time.monotonic()
    for message in messages:
        transcript.write({"message": message})
    for step in range(1, max_steps + 1):
        if time.monotonic() - start > wall_s:
            return EpisodeResult("wall_time", step - 1, ctx.summary, usage)
        turn = model.complete(messages, schemas)
        usage.add(turn.usage)
        messages.append(turn.as_message())
        transcript.write({"step": step, "message": messages[-1], "usage": vars(turn.usage),
                          "stop_reason": turn.stop_reason})
        if not turn.tool_calls:
            idle += 1
            if idle >= MAX_IDLE_TURNS:
                return EpisodeResult("idle", step, turn.text, usage)
            messages.append({"role": "user",
                             "content": CUT if turn.stop_reason == "max_tokens" else NUDGE})
            transcript.write({"message": messages[-1]})
            continue
        idle = 0
        for call in turn.tool_calls:
            result = tools.call(ctx, call.name, call.arguments)
            messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name,
                             "content": result.text, "is_error": result.is_error})
            transcript.write({"message": messages[-1]})
            on_tool(call, result)
        if ctx.finished:
            return EpisodeResult("finished", step, ctx.summary, usage)
    return EpisodeResult("max_steps", max_steps, ctx.summary, usage)
