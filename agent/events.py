"""The event catalogue: every event a session writes to events.jsonl, as one typed record each.

One path writes them (`EventLog.emit`: a JSON line, flushed, then the listeners) and one reads
them back (`EventLog.read`: typed records; a line of a type this version does not know, or
one missing a field, comes back as `RawEvent` so that old and newer sessions still load).
The progress printer, resume, `sessions`, the TUI and review read events only through here.

On disk an event is `{"t": <unix time>, "type": <name>, "v": <VERSION>, **fields}`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

VERSION = 2
"""Bumped when a field changes meaning; lines without "v" are version 1 (before the catalogue)."""


@dataclass(kw_only=True, slots=True)
class Event:
    """An event record. Treat it as read-only; it is not frozen because resume and the TUI
    build one per line of a long session, and a frozen dataclass's __init__ made reading
    events.jsonl back 1.7x the cost of json.loads alone, a slotted one 1.3x."""

    type: ClassVar[str]
    doc: ClassVar[str]
    names: ClassVar[tuple[str, ...]]
    t: float = field(default_factory=lambda: round(time.time(), 3))
    """Unix time the event happened (when it was made, unless read back)."""

    def to_json(self) -> dict[str, Any]:
        return {"t": self.t, "type": self.type, "v": VERSION,
                **{name: getattr(self, name) for name in self.names}}


@dataclass(frozen=True)
class RawEvent:
    """A line this version has no record for (a newer type, or an older shape): kept as read."""

    data: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.data.get("type", ""))


REGISTRY: dict[str, type[Event]] = {}


def event(name: str, doc: str):
    """Register a record class as the event type `name`, described by `doc` (README's table)."""
    def register(cls: type[Event]) -> type[Event]:
        if name in REGISTRY:
            raise ValueError(f"event type {name!r} registered twice")
        cls.type, cls.doc = name, doc
        cls.names = tuple(f.name for f in dataclasses.fields(cls) if f.name != "t")
        REGISTRY[name] = cls
        return cls
    return register


# -- the session ---------------------------------------------------------------------------
@event("session_started", "a new run: its task, baseline commit, models, budget and stages")
@dataclass(kw_only=True, slots=True)
class SessionStarted(Event):
    task: str
    task_dir: str
    baseline: str
    models: list[str]
    budget: int
    direction: str
    stages: list[str]


@event("session_resumed", "a run picked up again after a stop; what replay restored")
@dataclass(kw_only=True, slots=True)
class SessionResumed(Event):
    candidates: int
    budget_used: int
    episodes: int
    budget: int = 0
    """The candidate budget from here on, researchers' raises included (0 in older sessions)."""


@event("session_finished", "the run ended: why, its best commit and score, what it cost")
@dataclass(kw_only=True, slots=True)
class SessionFinished(Event):
    reason: str
    best: str | None = None
    best_score: float | None = None
    candidates: int = 0
    episodes: int = 0
    cost_usd: float = 0.0


@event("repaired", "lock files a killed git left behind, removed on resume")
@dataclass(kw_only=True, slots=True)
class Repaired(Event):
    removed_locks: list[str]


@event("error", "an episode or the run failed (auth, model_error, malformed, ...)")
@dataclass(kw_only=True, slots=True)
class Error(Event):
    kind: str
    message: str
    episode: int | None = None


# -- episodes --------------------------------------------------------------------------------
@event("episode_started", "an agent episode began from a parent commit on its own branch")
@dataclass(kw_only=True, slots=True)
class EpisodeStarted(Event):
    episode: int
    island: int
    parent: str
    model: str
    branch: str


@event("episode_finished", "an episode ended: why, its commits, tokens and improvement")
@dataclass(kw_only=True, slots=True)
class EpisodeFinished(Event):
    episode: int
    model: str
    reason: str
    steps: int
    commits: list[str]
    summary: str
    usage: dict[str, float]
    improvement: float
    cost_usd: float


@event("tool_called", "one tool call of an agent: which tool, whether it failed, output size")
@dataclass(kw_only=True, slots=True)
class ToolCalled(Event):
    episode: int
    tool: str
    is_error: bool
    chars: int


@event("model_retry", "a provider call failed and is retried after a delay")
@dataclass(kw_only=True, slots=True)
class ModelRetry(Event):
    episode: int
    model: str
    attempt: int
    error: str
    delay_s: float


@event("budget", "one model turn's tokens and dollars, and the run's total so far")
@dataclass(kw_only=True, slots=True)
class Budget(Event):
    episode: int
    model: str
    turn_usage: dict[str, float]
    cost_usd: float


# -- candidates ----------------------------------------------------------------------------
@event("candidate_committed", "an agent committed a candidate (it counts against the budget)")
@dataclass(kw_only=True, slots=True)
class CandidateCommitted(Event):
    commit: str
    parent: str
    episode: int
    island: int
    model: str
    message: str
    files: list[str] = field(default_factory=list)
    """The paths it changed."""


@event("candidate_rejected", "a commit refused: it touched non-editable or forbidden paths")
@dataclass(kw_only=True, slots=True)
class CandidateRejected(Event):
    episode: int
    paths: list[str]
    reason: str


@event("candidate_scored", "a commit's cascade finished: its score, validity and record")
@dataclass(kw_only=True, slots=True)
class CandidateScored(Event):
    commit: str
    parent: str | None
    episode: int
    stage: str
    score: float | None
    valid: bool
    candidate: dict[str, Any]
    """The program database's record (`Candidate.to_dict()`)."""
    stages: list[dict[str, Any]]
    """Each stage run's result (`StageResult.to_dict()`)."""
    stopped_at: str | None = None


@event("candidate_tested", "the held-out stage's score of the best candidate or the baseline "
       "at the end of a run, or of a candidate `review` tested")
@dataclass(kw_only=True, slots=True)
class CandidateTested(Event):
    commit: str
    parent: str | None
    episode: int
    stage: str
    score: float | None
    valid: bool


@event("evaluated", "one stage run on one code version (what the evaluation cache holds)")
@dataclass(kw_only=True, slots=True)
class Evaluated(Event):
    key: str
    stage: str
    score: float | None
    valid: bool
    result: dict[str, Any]


@event("retried", "an evaluation lost with its node or worker (ray backend), run again elsewhere")
@dataclass(kw_only=True, slots=True)
class Retried(Event):
    stage: str
    label: str
    """The evaluation's log folder (logs/<label>/): a commit's short sha, or e<episode>-<key>
    for an agent's run_evaluator call."""
    node: str
    """The Ray node id it was lost on."""
    attempt: int
    """1 for the first rerun."""
    error: str


@event("evaluators", "per node (local, or each Ray node): evaluations run, busy seconds; "
                     "every 10 s at most while they change, and at the end of a run")
@dataclass(kw_only=True, slots=True)
class Evaluators(Event):
    nodes: dict[str, dict[str, Any]]
    """Node -> {evaluations, busy_s, lost, host, address, jail} (sandbox.pool.NodeStats)."""


@event("migrated", "islands' best candidates copied into the next island")
@dataclass(kw_only=True, slots=True)
class Migrated(Event):
    moves: list[Any]


# -- the researcher ------------------------------------------------------------------------
@event("steered", "a researcher's command from the TUI (control.jsonl), as the runner obeyed it")
@dataclass(kw_only=True, slots=True)
class Steered(Event):
    command: str
    """pause, resume, note, pin, unpin, stop_episode, budget or stop (see agent/steering.py)."""
    text: str = ""
    commit: str = ""
    episode: int | None = None
    amount: int = 0
    offset: int = 0
    """Where in control.jsonl the command's line ends: a resumed run reads on from there."""


def parse(data: dict[str, Any]) -> Event | RawEvent:
    """The typed record of one decoded line; RawEvent when this version cannot type it."""
    kind = data.get("type")
    if kind == "candidate_scored" and data.get("heldout"):  # version 1 wrote tests this way
        kind = "candidate_tested"
    cls = REGISTRY.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return RawEvent(data)
    try:
        return cls(**{k: data[k] for k in ("t", *cls.names) if k in data})
    except TypeError:  # a required field is missing: an older or damaged line
        return RawEvent(data)


def json_lines(path: Path, offset: int) -> tuple[list[tuple[dict[str, Any], int]], int]:
    """The JSON objects on the whole lines of an append-only file after byte `offset`, each
    with the offset where its line ends, and the offset after the last whole line. A line being
    written (no newline yet) waits for the next call; lines that are not objects are passed over.
    How events.jsonl, transcripts and control.jsonl are followed while they grow."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    found = []
    for raw in data.splitlines(keepends=True):
        if not raw.endswith(b"\n"):
            break
        offset += len(raw)
        try:
            decoded = json.loads(raw)
        except ValueError:
            continue
        if isinstance(decoded, dict):
            found.append((decoded, offset))
    return found, offset


class Listener(Protocol):
    def __call__(self, event: Event) -> None: ...


class EventLog:
    """events.jsonl: appended one flushed line per event, read back as typed records."""

    def __init__(self, path: Path):
        self.path = path
        self.listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._fd: int | None = None

    def emit(self, ev: Event) -> Event:
        line = (json.dumps(ev.to_json(), default=str) + "\n").encode()
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(self._fd, line)
        for listener in self.listeners:
            listener(ev)
        return ev

    def read(self, skip: tuple[type[Event], ...] = ()) -> Iterator[Event | RawEvent]:
        """The events in order; types in `skip` are passed over without being decoded."""
        if not self.path.exists():
            return
        skipped = tuple(f'"type": "{cls.type}"'.encode() for cls in skip)
        with open(self.path, "rb") as f:
            for raw in f:
                if skipped and any(s in raw[:80] for s in skipped):
                    continue
                try:
                    data = json.loads(raw)
                except ValueError:
                    continue  # a line cut by a kill in the middle of a write
                if isinstance(data, dict):
                    yield parse(data)

    def tail(self, offset: int) -> tuple[list[Event | RawEvent], int]:
        """The events whose whole lines follow byte `offset`, and the offset after the last of
        them: a viewer calls it again with that offset to follow a live run."""
        lines, end = json_lines(self.path, offset)
        return [parse(data) for data, _ in lines], end

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def markdown_table() -> str:
    """README's event table, generated from the registry (a test keeps the two equal)."""
    rows = ["| event | fields | meaning |", "|---|---|---|"]
    for name, cls in REGISTRY.items():
        rows.append(f"| `{name}` | {', '.join(cls.names)} | {cls.doc} |")
    return "\n".join(rows)
