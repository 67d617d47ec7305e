"""The episode loop with the scripted model, real tools and a real worktree folder."""

import json

from agent.episode import Hooks, run_episode
from agent.models.scripted import ScriptedModel
from agent.session import Transcript
from tests.fixtures.workspace import RecordingWorkspace
from tools.base import ToolContext, ToolResult


def make_ctx(tmp_path):
    wt = tmp_path / "wt"
    (wt / "pkg").mkdir(parents=True)
    (wt / "pkg" / "policy.py").write_text("A = 1.0\n")
    commits = []
    space = RecordingWorkspace(
        evaluate_report=lambda stage: ToolResult(f"stage {stage or 'full'}\nscore: 1.0\nvalid: true"),
        commit_report=lambda message: commits.append(message) or ToolResult(f"committed ({message})"))
    ctx = ToolContext(worktree=wt, editable=["pkg/**/*.py"], stages=["quick", "full"],
                      log_dir=tmp_path / "logs", workspace=space)
    return ctx, commits


def script(tmp_path, turns):
    path = tmp_path / "script.jsonl"
    path.write_text("\n".join(json.dumps(t) for t in turns))
    return ScriptedModel(path)


def run(tmp_path, turns, max_steps=10):
    ctx, commits = make_ctx(tmp_path)
    transcript = Transcript(tmp_path / "t.jsonl", {"episode": 0})
    calls = []
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "go"}]
    result = run_episode(script(tmp_path, turns), ctx, messages, max_steps=max_steps, wall_s=60,
                         context_chars=100_000, transcript=transcript,
                         hooks=Hooks(on_tool=lambda c, r: calls.append((c.name, r))))
    transcript.close()
    lines = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    return result, ctx, commits, calls, messages, lines


def test_edit_commit_finish(tmp_path):
    turns = [
        {"tool_calls": [{"name": "read_file", "arguments": {"path": "pkg/policy.py"}}]},
        {"tool_calls": [{"name": "edit", "arguments": {
            "path": "pkg/policy.py", "old_str": "A = 1.0", "new_str": "A = 2.0"}}]},
        {"tool_calls": [{"name": "run_evaluator", "arguments": {}},
                        {"name": "commit", "arguments": {"message": "A to 2"}}]},
        {"tool_calls": [{"name": "finish", "arguments": {"summary": "raised A"}}]},
    ]
    result, ctx, commits, calls, messages, lines = run(tmp_path, turns)
    assert result.reason == "finished" and result.summary == "raised A" and result.steps == 4
    assert (ctx.worktree / "pkg" / "policy.py").read_text() == "A = 2.0\n"
    assert commits == ["A to 2"]
    assert [c for c, _ in calls] == ["read_file", "edit", "run_evaluator", "commit", "finish"]
    tool_msgs = [m for m in messages if m["role"] == "tool"]
    assert "score: 1.0" in tool_msgs[2]["content"]
    assert lines[0]["format_version"] == 1
    assert sum(1 for x in lines if x.get("message", {}).get("role") == "tool") == 5


def test_agent_mistakes_come_back_as_error_results(tmp_path):
    turns = [
        {"tool_calls": [{"name": "no_such_tool", "arguments": {}}]},
        {"tool_calls": [{"name": "edit", "arguments": {
            "path": "pkg/policy.py", "old_str": "A = 1.0", "new_str": "A = (("}}]},
        {"tool_calls": [{"name": "write_file", "arguments": {"path": "evaluate.py", "content": "x"}}]},
    ]
    result, ctx, commits, calls, messages, _ = run(tmp_path, turns)
    errors = [r for _, r in calls if r.is_error]
    assert len(errors) == 3
    assert "unknown tool" in errors[0].text
    assert (ctx.worktree / "pkg" / "policy.py").read_text() == "A = 1.0\n"  # broken edit refused
    assert not (ctx.worktree / "evaluate.py").exists()
    assert result.reason == "finished"  # the exhausted script finishes


def test_step_limit_and_idle_turns_end_the_episode(tmp_path):
    many = [{"tool_calls": [{"name": "list_files", "arguments": {}}]}] * 20
    result, *_ = run(tmp_path, many, max_steps=5)
    assert result.reason == "max_steps" and result.steps == 5

    idle = [{"text": "thinking"}] * 5
    result, _, _, calls, messages, _ = run(tmp_path / "idle", idle)
    assert result.reason == "idle" and calls == []
    assert any("without calling a tool" in m["content"] for m in messages if m["role"] == "user")


def test_only_the_latest_results_keep_their_data(tmp_path):
    listing = {"tool_calls": [{"name": "list_files", "arguments": {}}]}
    result, _, _, _, messages, lines = run(tmp_path, [listing, listing], max_steps=2)
    assert result.reason == "max_steps"
    listings = [m for m in messages if m["role"] == "tool" and m["name"] == "list_files"]
    assert len(listings) == 2
    assert "data" not in listings[0]  # dropped once the next turn's results came
    assert listings[1]["data"]["editable"] == ["pkg/policy.py"]
    assert not any("data" in line.get("message", {}) for line in lines)  # never in transcripts
