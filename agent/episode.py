"""ONE agent episode: ask the model, run the tool calls it made, append the results, repeat,
until it calls `finish` or a limit (steps, wall time, the run's stop signal) ends it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import tools
from agent.models.base import Model, ModelAuthError, ModelError, ToolCall, Turn, Usage
from agent.session import Transcript
from tools.base import ToolContext, ToolResult, clip

MAX_IDLE_TURNS = 3
MAX_MALFORMED_IN_A_ROW = 3
KEEP_RECENT_MESSAGES = 8
NUDGE = ("You replied without calling a tool. Use the tools to work on the code; commit what "
         "improves the score; call finish(summary) when you are done.")
CUT = ("Your reply was cut off by the output token limit before it finished. Make smaller "
       "steps: shorter edits, one tool call at a time.")


@dataclass
class EpisodeResult:
    reason: str  # finished | max_steps | wall_time | idle | malformed | model_error | stopped
    steps: int
    summary: str = ""
    usage: Usage = field(default_factory=Usage)
    error: str = ""


@dataclass
class Hooks:
    """How the orchestrator watches and stops an episode."""

    on_tool: Callable[[ToolCall, ToolResult], None] = lambda call, result: None
    on_turn: Callable[[Turn], None] = lambda turn: None
    should_stop: Callable[[], bool] = lambda: False


def run_episode(model: Model, ctx: ToolContext, messages: list[dict[str, Any]], *,
                max_steps: int, wall_s: float, context_chars: int, transcript: Transcript,
                hooks: Hooks) -> EpisodeResult:
    schemas = tools.schemas()
    usage, idle, malformed, start = Usage(), 0, 0, time.monotonic()
    with_data: list[dict[str, Any]] = []  # the last turn's tool messages that carry data
    for message in messages:
        transcript.write({"message": message})

    def end(reason: str, steps: int, error: str = "") -> EpisodeResult:
        return EpisodeResult(reason, steps, ctx.summary, usage, error)

    for step in range(1, max_steps + 1):
        if time.monotonic() - start > wall_s:
            return end("wall_time", step - 1)
        if hooks.should_stop():
            return end("stopped", step - 1)
        compact(messages, context_chars)
        try:
            turn = model.complete(messages, schemas)
        except ModelAuthError:
            raise
        except ModelError as e:
            return end("model_error", step - 1, str(e))
        usage.add(turn.usage)
        hooks.on_turn(turn)
        messages.append(turn.as_message())
        transcript.write({"step": step, "message": messages[-1], "usage": vars(turn.usage),
                          "stop_reason": turn.stop_reason})
        if not turn.tool_calls:
            idle += 1
            if idle >= MAX_IDLE_TURNS:
                return end("idle", step)
            messages.append({"role": "user",
                             "content": CUT if turn.stop_reason == "max_tokens" else NUDGE})
            transcript.write({"message": messages[-1]})
            continue
        idle = 0
        for message in with_data:  # a model reads the data of the latest results only
            del message["data"]
        with_data = []
        for call in turn.tool_calls:
            if call.error and turn.stop_reason == "max_tokens":  # cut, not malformed
                result = ToolResult(f"{call.error}. {CUT}", is_error=True)
            elif call.error:
                result = ToolResult(f"{call.error}. Call the tool again with a JSON object of "
                                    "arguments that matches its schema.", True, malformed=True)
            else:
                result = tools.call(ctx, call.name, call.arguments)
            malformed = malformed + 1 if result.malformed else 0
            message = {"role": "tool", "tool_call_id": call.id, "name": call.name,
                       "content": result.text, "is_error": result.is_error}
            transcript.write({"message": message})
            if result.data:  # for the built-in models; providers send only the text
                message["data"] = result.data
                with_data.append(message)
            messages.append(message)
            hooks.on_tool(call, result)
        if malformed >= MAX_MALFORMED_IN_A_ROW:
            return end("malformed", step, f"{malformed} malformed tool calls in a row")
        if ctx.finished:
            return end("finished", step)
    return end("max_steps", max_steps)


def compact(messages: list[dict[str, Any]], budget_chars: int) -> None:
    """Once the conversation outgrows the budget, shorten the oldest tool results (never the
    first prompt, never the recent ones) down to 60% of it: rarely and in big steps, since
    every change to old messages costs the provider's prompt cache from there on."""
    total = sum(len(m.get("content") or "") for m in messages)
    if total <= budget_chars:
        return
    for m in messages[2:-KEEP_RECENT_MESSAGES]:
        if total <= 0.6 * budget_chars:
            return
        if m["role"] == "tool" and len(m["content"]) > 600 and not m.get("compacted"):
            short = clip(m["content"], 400, "(an older result, shortened to save context)")
            total -= len(m["content"]) - len(short)
            m["content"], m["compacted"] = short, True
