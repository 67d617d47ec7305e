"""ScriptedModel: replay, placeholders, exhaustion, malformed lines."""

from __future__ import annotations

import json

import pytest

from agent.models.base import Turn
from agent.models.scripted import ScriptedModel

SCRIPT = [
    "# a comment line, skipped",
    "",
    json.dumps({"text": "look around", "tool_calls": [{"name": "list_files", "arguments": {}}],
                "usage": {"input_tokens": 100, "output_tokens": 7}}),
    "   ",
    json.dumps({"text": "edit for episode {episode}",
                "tool_calls": [
                    {"name": "edit", "arguments": {
                        "path": "pkg/policy.py",
                        "old_str": "A = 1",
                        "new_str": "A = 1{episode}  # turn {turn} {not_a_placeholder} {}",
                        "nested": [{"deep": "e{episode}t{turn}"}, 3, None, True],
                    }},
                    {"id": "mine", "name": "run_evaluator", "arguments": {}},
                ]}),
    json.dumps({"text": "done", "tool_calls": [{"name": "finish", "arguments": {"summary": "ep {episode}"}}],
                "usage": {"input_tokens": 5, "output_tokens": 1, "cost_usd": 0.25}}),
]


def write(tmp_path, lines, name="s.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_replay_with_placeholders(tmp_path):
    path = write(tmp_path, SCRIPT)
    model = ScriptedModel(path, episode=4)
    assert model.name == "scripted"
    messages: list[dict] = [{"role": "user", "content": "go"}]

    t1 = model.complete(messages, [])
    assert isinstance(t1, Turn)
    assert t1.text == "look around"
    assert [(c.id, c.name, c.arguments) for c in t1.tool_calls] == [("call-1", "list_files", {})]
    assert (t1.usage.input_tokens, t1.usage.output_tokens) == (100, 7)
    messages.append(t1.as_message())

    t2 = model.complete(messages, [])
    assert t2.text == "edit for episode 4"
    edit, ev = t2.tool_calls
    assert edit.id == "call-2" and edit.name == "edit"
    assert edit.arguments["new_str"] == "A = 14  # turn 1 {not_a_placeholder} {}"
    assert edit.arguments["old_str"] == "A = 1"
    assert edit.arguments["nested"] == [{"deep": "e4t1"}, 3, None, True]
    assert ev.id == "mine" and ev.name == "run_evaluator"
    assert len({c.id for c in t1.tool_calls + t2.tool_calls}) == 3

    t3 = model.complete(messages, [])
    assert t3.tool_calls[0].name == "finish"
    assert t3.tool_calls[0].arguments == {"summary": "ep 4"}
    assert t3.usage.cost_usd == 0.25


def test_each_instance_replays_from_the_top(tmp_path):
    path = write(tmp_path, SCRIPT)
    a, b = ScriptedModel(path, episode=0), ScriptedModel(str(path), episode=1)
    a.complete([], [])
    ta, tb = a.complete([], []), b.complete([], [])
    assert ta.tool_calls[0].name == "edit" and ta.tool_calls[0].arguments["new_str"].startswith("A = 10 ")
    assert tb.tool_calls[0].name == "list_files"
    assert b.complete([], []).tool_calls[0].arguments["new_str"].startswith("A = 11 ")


def test_exhaustion_finishes(tmp_path):
    path = write(tmp_path, [json.dumps({"text": "hi", "tool_calls": [{"name": "list_files"}]})])
    model = ScriptedModel(path)
    first = model.complete([], [])
    assert first.tool_calls[0].arguments == {}
    for _ in range(3):
        t = model.complete([], [])
        assert [(c.name, c.arguments) for c in t.tool_calls] == [("finish", {"summary": "script exhausted"})]
    # ids stay unique
    assert model.calls_made == 4


def test_empty_script_finishes_at_once(tmp_path):
    model = ScriptedModel(write(tmp_path, ["# nothing", ""]))
    t = model.complete([], [])
    assert t.tool_calls[0].name == "finish"


@pytest.mark.parametrize("bad", [
    "{not json",
    "[1, 2]",
    json.dumps({"tool_calls": {"name": "x"}}),
    json.dumps({"tool_calls": [{"arguments": {}}]}),
    json.dumps({"tool_calls": [{"name": "edit", "arguments": "path=x"}]}),
    json.dumps({"text": 3}),
    json.dumps({"usage": {"tokens": 3}}),
    json.dumps({"tool_calls": [], "extra": 1}),
])
def test_malformed_line_names_file_and_line(tmp_path, bad):
    lines = ["# header", json.dumps({"text": "ok", "tool_calls": []}), "", bad]
    path = write(tmp_path, lines, "broken.jsonl")
    with pytest.raises(ValueError) as info:
        ScriptedModel(path)
    msg = str(info.value)
    assert "broken.jsonl" in msg and ":4:" in msg


def test_a_saved_transcript_replays(tmp_path):
    """A session transcript is itself a script: its assistant turns come back in order."""
    import json as _json

    from agent.models.scripted import ScriptedModel as _Scripted

    lines = [
        {"format_version": 1, "episode": 3, "model": "anthropic/x"},
        {"message": {"role": "system", "content": "sys"}},
        {"step": 1, "message": {"role": "assistant", "content": "look", "tool_calls": [
            {"id": "t1", "name": "read_file", "arguments": {"path": "a.py"}, "error": ""}]},
         "usage": {"input_tokens": 7, "output_tokens": 2, "cost_usd": 0.5}, "stop_reason": "tool_use"},
        {"message": {"role": "tool", "tool_call_id": "t1", "name": "read_file", "content": "x",
                     "is_error": False}},
        {"step": 2, "message": {"role": "assistant", "content": "done", "tool_calls": [
            {"id": "t2", "name": "finish", "arguments": {"summary": "ok"}}]}},
    ]
    path = tmp_path / "3.jsonl"
    path.write_text("\n".join(_json.dumps(x) for x in lines))
    model = _Scripted(path)
    first = model.complete([], [])
    assert (first.text, first.tool_calls[0].name, first.tool_calls[0].arguments) == (
        "look", "read_file", {"path": "a.py"})
    assert first.usage.input_tokens == 7 and first.usage.cost_usd == 0.5
    second = model.complete([], [])
    assert second.tool_calls[0].arguments == {"summary": "ok"}
