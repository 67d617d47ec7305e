"""What the watch app shows, as plain typed state built from a session folder (no textual here).

`SessionView.poll()` reads the events appended to events.jsonl since the last call and folds
them into the records below; the app only renders them. The view reads the folder and never
writes to it: steering commands go through `agent.steering.send`.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.events import (
    Budget,
    CandidateCommitted,
    CandidateRejected,
    CandidateScored,
    CandidateTested,
    EpisodeFinished,
    EpisodeStarted,
    Error,
    Evaluators,
    Event,
    EventLog,
    ModelRetry,
    RawEvent,
    SessionFinished,
    SessionResumed,
    SessionStarted,
    Steered,
    ToolCalled,
    json_lines,
)
from agent.session import Session
from agent.steering import Steering
from sandbox.git import GitError, git

RECENT = 500
"""Events kept for the log pane."""
RUNNER_TTL_S = 0.5
"""How long one look at the runner's process (in /proc) is trusted."""
QUIET = {"tool_called", "budget", "evaluated", "evaluators"}
"""Event types too frequent to list one line each."""


@dataclass
class CandidateRecord:
    commit: str
    parent: str | None
    episode: int
    island: int
    model: str
    message: str
    order: int
    """Arrival index among the session's candidates."""
    score: float | None = None
    valid: bool | None = None
    """None while the commit waits for its score."""
    stages: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    feedback: str = ""
    test_score: float | None = None
    eval_index: int | None = None
    """Position among the scored commits (the plot's x)."""


@dataclass
class RejectedRecord:
    parent: str
    episode: int
    paths: list[str]
    reason: str


@dataclass
class EpisodeRecord:
    episode: int
    island: int
    parent: str
    model: str
    steps: int = 0
    last_tool: str = ""
    tokens: int = 0
    dollars: float = 0.0
    ended: str = ""
    """Why it ended (EpisodeFinished.reason); empty while it runs."""


@dataclass
class Header:
    task: str = ""
    session_id: str = ""
    models: list[str] = field(default_factory=list)
    direction: str = "maximize"
    started: float | None = None
    finished: float | None = None
    """The SessionFinished after the last start or resume, if any."""
    budget: int = 0
    used: int = 0
    cost: float = 0.0
    max_cost: float = 0.0
    baseline: str = ""
    baseline_score: float | None = None
    best: str | None = None
    best_score: float | None = None

    def gain(self) -> tuple[float, float | None] | None:
        """The best score's gain over the baseline's (positive is better), absolute and in %."""
        if self.best_score is None or self.baseline_score is None:
            return None
        gain = self.best_score - self.baseline_score
        if self.direction == "minimize":
            gain = -gain
        pct = 100 * gain / abs(self.baseline_score) if self.baseline_score else None
        return gain, pct


class TranscriptTail:
    """An episode's transcript, read on from where the last call stopped (whole lines only)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def read(self) -> list[dict[str, Any]]:
        lines, self.offset = json_lines(self.path, self.offset)
        return [record for record, _ in lines]


def is_assistant_turn(record: dict[str, Any]) -> bool:
    return "step" in record and (record.get("message") or {}).get("role") == "assistant"


class SessionView:
    def __init__(self, session_dir: Path):
        self.dir = Path(session_dir)
        self.session = Session(self.dir)
        self.log = EventLog(self.dir / "events.jsonl")
        self.offset = 0
        self.header = Header(session_id=self.dir.name)
        self.candidates: dict[str, CandidateRecord] = {}
        self.children: dict[str, list[CandidateRecord | RejectedRecord]] = {}
        """Per parent commit, its candidates and rejected attempts in arrival order."""
        self.episodes: dict[int, EpisodeRecord] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        """The last `evaluators` event's per-node counts (sandbox.pool.NodeStats as dicts)."""
        self.recent: deque[Event | RawEvent] = deque(maxlen=RECENT)
        self.steering = Steering()
        self.first_t: float | None = None
        self.last_t = 0.0
        self.scored = 0
        self.points: list[tuple[int, float]] = []
        """(evaluation index, score) of every valid scored candidate, in order."""
        self.best_so_far: list[tuple[int, float]] = []
        self.version = 0
        """Bumped by every poll that changed anything (the app redraws on a change)."""
        self._transcripts: dict[int, TranscriptTail] = {}
        self._diffs: dict[tuple[str, str], str] = {}
        self._cutoff: float | None = None
        self._cutoff_dirty = True
        self._runner: tuple[float, bool] = (-RUNNER_TTL_S, False)
        self._read_config()

    def _read_config(self) -> None:
        try:
            cfg, _ = self.session.read_config()
        except FileNotFoundError:
            return
        self.header.budget, self.header.models = cfg.budget, list(cfg.models)
        self.header.max_cost = cfg.max_cost_usd

    # -- reading ------------------------------------------------------------------------------
    def poll(self) -> list[Event | RawEvent]:
        """Fold the events appended since the last call into the state; returns them."""
        events, self.offset = self.log.tail(self.offset)
        for ev in events:
            if isinstance(ev, Event):
                self.first_t = ev.t if self.first_t is None else self.first_t
                self.last_t = ev.t
            if isinstance(ev, Event):
                self._apply(ev)
            if ev.type not in QUIET:
                self.recent.append(ev)
        for ep in self.running():
            tail = self._transcripts.setdefault(ep.episode, TranscriptTail(self.session.transcript_path(ep.episode)))
            turns = sum(is_assistant_turn(r) for r in tail.read())
            if turns:
                ep.steps += turns
                self.version += 1
        if events:
            self.version += 1
        return events

    def _apply(self, ev: Event) -> None:
        h = self.header
        match ev:
            case SessionStarted():
                h.task, h.models, h.direction = ev.task, list(ev.models), ev.direction
                h.budget, h.baseline, h.finished = ev.budget + self.steering.extra_budget, ev.baseline, None
                h.started = h.started or ev.t
            case SessionResumed():
                h.finished = None
                h.budget = ev.budget or h.budget
                self.steering.stop, self.steering.stop_episodes = False, set()
                for ep in self.running():
                    ep.ended = "interrupted"
            case SessionFinished():
                h.finished, h.cost = ev.t, ev.cost_usd
                for ep in self.running():
                    ep.ended = ev.reason
            case EpisodeStarted():
                self.episodes[ev.episode] = EpisodeRecord(ev.episode, ev.island, ev.parent, ev.model)
            case EpisodeFinished():
                if ep := self.episodes.get(ev.episode):
                    ep.ended, ep.steps = ev.reason or "finished", ev.steps
            case ToolCalled():
                if ep := self.episodes.get(ev.episode):
                    ep.last_tool = ev.tool + (" (error)" if ev.is_error else "")
            case Budget():
                h.cost = ev.cost_usd
                if ep := self.episodes.get(ev.episode):
                    usage = ev.turn_usage
                    ep.tokens += int(usage.get("input_tokens", 0) + usage.get("output_tokens", 0))
                    ep.dollars += float(usage.get("cost_usd", 0.0))
            case CandidateCommitted():
                h.used += 1
                if ev.commit not in self.candidates:
                    self._add(CandidateRecord(ev.commit, ev.parent, ev.episode, ev.island, ev.model,
                                              ev.message, len(self.candidates)))
            case CandidateRejected():
                ep = self.episodes.get(ev.episode)
                parent = ep.parent if ep else h.baseline
                self.children.setdefault(parent, []).append(
                    RejectedRecord(parent, ev.episode, list(ev.paths), ev.reason))
            case CandidateScored():
                self._scored(ev)
            case CandidateTested():
                if cand := self.candidates.get(ev.commit):
                    cand.test_score = ev.score
            case Evaluators():
                self.nodes = dict(ev.nodes)
            case Steered():
                self.steering.apply(ev)
                if ev.command == "budget":
                    h.budget += ev.amount

    def _add(self, cand: CandidateRecord) -> None:
        self.candidates[cand.commit] = cand
        if cand.parent is not None:
            self.children.setdefault(cand.parent, []).append(cand)

    def _scored(self, ev: CandidateScored) -> None:
        h, rec = self.header, ev.candidate
        cand = self.candidates.get(ev.commit)
        if cand is None:
            cand = CandidateRecord(ev.commit, ev.parent, ev.episode, int(rec.get("island", 0)),
                                   str(rec.get("model", "")), str(rec.get("message", "")), len(self.candidates))
            self._add(cand)
        cand.score, cand.valid, cand.stages = ev.score, ev.valid, list(ev.stages)
        cand.metrics, cand.feedback = dict(rec.get("metrics") or {}), str(rec.get("feedback", ""))
        cand.message = cand.message or str(rec.get("message", ""))
        cand.eval_index, self.scored = self.scored, self.scored + 1
        if ev.parent is None and ev.episode == -1:
            h.baseline, h.baseline_score = h.baseline or ev.commit, ev.score
        if not ev.valid or ev.score is None:
            return
        self._cutoff_dirty = True
        self.points.append((cand.eval_index, ev.score))
        if h.best_score is None or self.better(ev.score, h.best_score):
            h.best, h.best_score = ev.commit, ev.score
        self.best_so_far.append((cand.eval_index, h.best_score))

    # -- derived facts -------------------------------------------------------------------------
    def better(self, a: float, b: float) -> bool:
        return a < b if self.header.direction == "minimize" else a > b

    def running(self) -> list[EpisodeRecord]:
        return [ep for ep in self.episodes.values() if not ep.ended]

    def rank(self, cand: CandidateRecord) -> str:
        """best, top (the best 10% of valid candidates), normal, invalid or pending."""
        if cand.valid is None:
            return "pending"
        if not cand.valid or cand.score is None:
            return "invalid"
        if cand.commit == self.header.best:
            return "best"
        if self._cutoff_dirty:
            scores = sorted((s for _, s in self.points), reverse=self.header.direction != "minimize")
            self._cutoff = scores[max(0, math.ceil(len(scores) * 0.1) - 1)] if scores else None
            self._cutoff_dirty = False
        cutoff = self._cutoff
        return "top" if cutoff is not None and not self.better(cutoff, cand.score) else "normal"

    def best_path(self) -> list[str]:
        """The commits from the baseline down to the best candidate."""
        path, commit = [], self.header.best
        while commit and commit not in path:
            path.append(commit)
            cand = self.candidates.get(commit)
            commit = cand.parent if cand else None
        return path[::-1]

    def runner_state(self) -> str:
        if self.header.finished is not None:
            return "finished"
        if not self.runner_alive():
            return "dead"
        if self.steering.stop:
            return "stopping"
        return "paused" if self.steering.paused else "running"

    def runner_alive(self) -> bool:
        """Whether a process still runs the session (one look in /proc per RUNNER_TTL_S: the
        header asks for the state and the clock on every refresh)."""
        seen, alive = self._runner
        if time.monotonic() - seen >= RUNNER_TTL_S:
            alive = self.session.runner() is not None
            self._runner = (time.monotonic(), alive)
        return alive

    def elapsed(self) -> float:
        """From the first event to the end: the finish, now while a runner lives, or else the
        last event (a dead run's clock stopped there)."""
        if self.first_t is None:
            return 0.0
        end = self.header.finished
        if end is None:
            end = time.time() if self.runner_alive() else self.last_t
        return max(0.0, end - self.first_t)

    def diff(self, commit: str, against: str = "parent") -> str:
        """`git diff` of a commit against its parent or the baseline ("" when there is none)."""
        key = (commit, against)
        if key not in self._diffs:
            cand = self.candidates.get(commit)
            base = self.header.baseline if against == "baseline" else (cand.parent if cand else None)
            text = ""
            if base and base != commit and (self.dir / "repo").is_dir():
                try:
                    text = git(["diff", base, commit], cwd=self.dir / "repo")
                except GitError:
                    text = ""  # a commit the repo does not hold (a damaged or synthetic session)
            self._diffs[key] = text
        return self._diffs[key]

    def run_log_tail(self, lines: int = 10) -> list[str]:
        try:
            return (self.dir / "run.log").read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            return []


def short(commit: str | None) -> str:
    return (commit or "")[:8]


def fmt_score(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.6g}"


def nodes_line(nodes: dict[str, dict[str, Any]]) -> str:
    """Where the evaluations ran: per node, how many, busy seconds, lost ones, a jail problem."""
    if not nodes:
        return "evaluators: none reported yet (the runner says every 10 s while they change)"
    said = []
    for node, st in nodes.items():
        name = node if node == "local" else f"{node[:8]} ({st.get('host') or st.get('address') or '?'})"
        facts = [f"{st.get('evaluations', 0)} evaluations", f"{st.get('busy_s', 0.0):.1f} s busy"]
        if st.get("lost"):
            facts.append(f"{st['lost']} lost")
        if st.get("jail") not in (None, "", "ok"):
            facts.append(f"jail: {st['jail']}")
        said.append(f"{name}: {', '.join(facts)}")
    return "evaluators  " + ";  ".join(said)


def describe(ev: Event | RawEvent) -> tuple[str, str] | None:
    """One log line for an event and its style, or None for the noisy kinds."""
    if ev.type in QUIET:
        return None
    style = ""
    match ev:
        case SessionStarted():
            text = f"task {ev.task}, models {', '.join(ev.models)}, budget {ev.budget}, {ev.direction}"
        case SessionResumed():
            text = f"{ev.candidates} candidates, {ev.episodes} episodes restored"
        case SessionFinished():
            text = f"{ev.reason}: best {short(ev.best)} {fmt_score(ev.best_score)}, ${ev.cost_usd:.4f}"
        case EpisodeStarted():
            text = f"e{ev.episode} i{ev.island} from {short(ev.parent)} with {ev.model}"
        case EpisodeFinished():
            text = f"e{ev.episode} {ev.reason}, {ev.steps} steps, {len(ev.commits)} commits, ${ev.cost_usd:.4f}"
        case CandidateCommitted():
            text = f"{short(ev.commit)} e{ev.episode} {ev.message.splitlines()[0] if ev.message else ''}"
        case CandidateRejected():
            text, style = f"e{ev.episode} {', '.join(ev.paths)}: {ev.reason}", "dark_orange"
        case CandidateScored():
            text = f"{short(ev.commit)} e{ev.episode} {fmt_score(ev.score)}" + ("" if ev.valid else " invalid")
            style = "" if ev.valid else "red"
        case CandidateTested():
            text = f"{short(ev.commit)} held-out {ev.stage} {fmt_score(ev.score)}"
        case Error():
            text, style = f"{ev.kind}: {ev.message}" + (f" (e{ev.episode})" if ev.episode is not None else ""), "red"
        case ModelRetry():
            text = f"e{ev.episode} {ev.model} attempt {ev.attempt} in {ev.delay_s:.0f}s: {ev.error}"
            style = "yellow"
        case Steered():
            facts = [ev.text, short(ev.commit), "" if ev.episode is None else f"e{ev.episode}",
                     f"+{ev.amount}" if ev.amount else ""]
            text, style = " ".join([ev.command, *filter(None, facts)]), "cyan"
        case RawEvent():
            text = json.dumps({k: v for k, v in ev.data.items() if k not in ("t", "type", "v")})[:200]
        case _:
            text = ""
    t = ev.t if isinstance(ev, Event) else ev.data.get("t")
    stamp = time.strftime("%H:%M:%S", time.localtime(t)) if isinstance(t, (int, float)) else "--:--:--"
    return f"{stamp} {ev.type:<19} {text}", style
