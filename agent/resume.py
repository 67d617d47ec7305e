"""Resume: what a session's events say its state was when it stopped.

`replay` is pure: events (and the set of commits that have a git note) in, a `State` out. The
solver applies the state and finishes the work a kill cut short (see `Solver.restore`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from agent.events import (
    Budget,
    CandidateCommitted,
    CandidateScored,
    CandidateTested,
    EpisodeFinished,
    EpisodeStarted,
    Evaluated,
    Event,
    RawEvent,
    SessionStarted,
    Steered,
)
from agent.models.base import Usage
from agent.steering import Steering


@dataclass
class State:
    baseline: str = ""
    episodes_started: int = 0
    scored: list[CandidateScored] = field(default_factory=list)
    """Scored commits in the order they were scored (the database is rebuilt in this order)."""
    tested: dict[str, float | None] = field(default_factory=dict)
    """Held-out scores by commit."""
    evaluated: list[Evaluated] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    episodes: list[EpisodeFinished] = field(default_factory=list)
    committed: int = 0
    """Candidates committed, which is what the budget counts."""
    unnoted: list[CandidateScored] = field(default_factory=list)
    """Scored, but the kill came before the note was written: rewrite the note."""
    unscored: list[CandidateCommitted] = field(default_factory=list)
    """Committed before the kill, never scored: score (or read back from the note)."""
    steering: Steering = field(default_factory=Steering)
    """The researcher's commands that carry over (pause, notes, pin, budget raises)."""


def replay(events: Iterable[Event | RawEvent], noted: set[str]) -> State:
    state = State()
    committed: dict[str, CandidateCommitted] = {}
    scored: dict[str, CandidateScored] = {}
    steered: list[Steered] = []
    for e in events:
        match e:
            case SessionStarted():
                state.baseline = e.baseline
            case EpisodeStarted():
                state.episodes_started = max(state.episodes_started, e.episode + 1)
            case CandidateCommitted():
                committed[e.commit] = e
            case CandidateTested():
                state.tested[e.commit] = e.score
            case CandidateScored():
                scored.setdefault(e.commit, e)
            case Evaluated():
                state.evaluated.append(e)
            case Budget():
                state.usage.add(Usage(**e.turn_usage))
            case EpisodeFinished():
                state.episodes.append(e)
            case Steered():
                steered.append(e)
    state.scored = list(scored.values())
    state.steering = Steering.replayed(steered)
    state.committed = len(committed)
    state.unnoted = [e for e in state.scored if e.commit not in noted]
    state.unscored = [e for c, e in committed.items() if c not in scored]
    return state
