"""The event catalogue: records, the one write path, the one reader, README's table, and
resume's replay over sessions recorded by a real run."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import pytest

from agent import events as ev
from agent.config import RunConfig
from agent.events import (
    CandidateCommitted,
    CandidateScored,
    CandidateTested,
    EventLog,
    Migrated,
    RawEvent,
    Repaired,
    SessionStarted,
)
from agent.resume import replay
from agent.session import Session
from agent.solve import Solver
from agent.task import Task
from fixtures.helpers import call, policy, toy_task, turn, write_script
from sandbox.notes import noted_commits

README = Path(__file__).resolve().parents[1] / "README.md"


def sample(cls: type[ev.Event]) -> ev.Event:
    """An instance with a value of the right type in every field."""
    values = {}
    for f in dataclasses.fields(cls):
        if f.name == "t":
            continue
        hint = str(typing.get_type_hints(cls)[f.name])
        values[f.name] = (
            [] if "list" in hint else {} if "dict" in hint else "x" if "str" in hint
            else True if "bool" in hint else 1.5 if "float" in hint else 3)
    return cls(**values)


def test_every_record_round_trips_through_the_log(tmp_path):
    log = EventLog(tmp_path / "events.jsonl")
    heard = []
    log.listeners.append(heard.append)
    written = [log.emit(sample(cls)) for cls in ev.REGISTRY.values()]
    log.close()
    read = list(log.read())
    assert read == written == heard
    assert all(e.t > 0 for e in read)
    lines = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [x["type"] for x in lines] == list(ev.REGISTRY)
    assert {x["v"] for x in lines} == {ev.VERSION}


def test_the_reader_keeps_what_it_cannot_type(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([
        json.dumps({"t": 1, "type": "from_the_future", "x": 1}),
        json.dumps({"t": 2, "type": "candidate_committed", "commit": "c"}),  # fields missing
        json.dumps({"t": 3, "type": "candidate_scored", "commit": "c", "parent": None,
                    "episode": 0, "stage": "test", "score": 2.0, "valid": True,
                    "heldout": True}),  # how version 1 wrote a held-out score
        json.dumps({"t": 4, "type": "repaired", "removed_locks": ["a.lock"], "new": "kept out"}),
        '{"t": 5, "type": "budget", "episo',  # cut by a kill
    ]) + "\n")
    got = list(EventLog(path).read())
    assert got[0] == RawEvent({"t": 1, "type": "from_the_future", "x": 1})
    assert isinstance(got[1], RawEvent) and got[1].type == "candidate_committed"
    assert got[2] == CandidateTested(t=3, commit="c", parent=None, episode=0, stage="test",
                                     score=2.0, valid=True)
    assert got[3] == Repaired(t=4, removed_locks=["a.lock"])
    assert len(got) == 4
    skipped = list(EventLog(path).read(skip=(Repaired,)))
    assert not any(isinstance(e, Repaired) for e in skipped) and len(skipped) == 3


def test_a_type_is_registered_once():
    with pytest.raises(ValueError, match="twice"):
        ev.event("migrated", "again")(Migrated)


def test_readme_table_is_the_registry():
    assert ev.markdown_table() in README.read_text(), (
        "README's event table differs from agent/events.py; paste the output of "
        "`python -c 'from agent import events; print(events.markdown_table())'`")


def record(tmp_path: Path, budget: int = 3) -> Session:
    """A real run of the toy task with a scripted model: two episodes of commits."""
    task = Task.load(toy_task(tmp_path))
    script = write_script(tmp_path / "s.jsonl", [
        turn(call("write_file", path="pkg/policy.py", content=policy("{episode}.{turn}")),
             call("commit", message="e{episode} t{turn}")),
        turn(call("finish", summary="done"))])
    cfg = RunConfig(task_dir=str(task.dir), models=[f"scripted:{script}"], budget=budget,
                    max_episodes=budget, sandbox="process")
    session = Session.create(tmp_path / "sessions", task.name, cfg, task.evaluator.cwd)
    solver = Solver(session, task, cfg)
    solver.start()
    solver.run()
    session.close()
    return session


def test_replay_of_a_recorded_session(tmp_path):
    session = record(tmp_path)
    repo_notes = noted_commits(session.repo)
    state = replay(session.events(), repo_notes)
    started = next(e for e in session.events() if isinstance(e, SessionStarted))
    assert state.baseline == started.baseline
    assert state.committed == 3 and state.episodes_started == 3
    assert [e.commit for e in state.scored][0] == started.baseline
    assert len(state.scored) == 4 and not state.unscored and not state.unnoted
    assert started.baseline in state.tested and len(state.tested) <= 2  # the best and the baseline
    assert len(state.evaluated) >= 4
    assert state.usage.cost_usd == 0

    # a kill between a commit and its score, and before the note of the one before
    lines = (session.dir / "events.jsonl").read_text().splitlines()
    kinds = [json.loads(x)["type"] for x in lines]
    cut = len(kinds) - kinds[::-1].index("candidate_committed")
    events = [ev.parse(json.loads(x)) for x in lines[:cut]]
    last = events[-1]
    assert isinstance(last, CandidateCommitted)
    scored = [e for e in events if isinstance(e, CandidateScored)]
    state = replay(events, repo_notes - {scored[-1].commit})
    assert [e.commit for e in state.unscored] == [last.commit]
    assert [e.commit for e in state.unnoted] == [scored[-1].commit]
    assert state.committed == 3 and len(state.scored) == 3
