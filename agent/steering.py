"""Steering a live run: the TUI appends commands to `sessions/<id>/control.jsonl`; the runner
reads the new lines between episodes, obeys them and records each as a `steered` event, so that
resume replays them. The file is the only thing the viewer writes.

A command is one JSON line: `{"command": ..., "text": ..., "commit": ..., "episode": ...,
"amount": ...}` (only `command` is required). Lines the runner cannot use are skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agent.events import Steered, json_lines

CONTROL_FILE = "control.jsonl"
COMMANDS = {
    "pause": "start no new episode (running ones go on) until resumed",
    "resume": "start episodes again",
    "note": "add the researcher's note `text` to the prompts of later episodes",
    "pin": "make candidate `commit` the parent of every later episode, until unpinned",
    "unpin": "choose parents by the search again",
    "stop_episode": "end episode `episode` after its current turn",
    "budget": "raise the candidate budget by `amount`",
    "stop": "stop the run cleanly: no new episode, running ones end after their turn",
}
MAX_NOTE_CHARS = 2000


@dataclass
class Command:
    command: str
    text: str = ""
    commit: str = ""
    episode: int | None = None
    amount: int = 0

    def problem(self) -> str | None:
        """Why the runner cannot obey this command, or None."""
        if self.command not in COMMANDS:
            return f"unknown command {self.command!r}"
        if not isinstance(self.text, str) or not isinstance(self.commit, str):
            return "text and commit must be strings"
        if self.command == "note" and not self.text.strip():
            return "a note needs text"
        if self.command == "pin" and not self.commit:
            return "pin needs a commit"
        if self.command == "stop_episode" and not isinstance(self.episode, int):
            return "stop_episode needs an episode number"
        if self.command == "budget" and not (isinstance(self.amount, int) and self.amount > 0):
            return "budget needs a positive amount"
        return None


def send(session_dir: Path, command: Command) -> None:
    """Append one command for the runner (one write of one line, so concurrent senders do not
    interleave)."""
    problem = command.problem()
    if problem:
        raise ValueError(problem)
    defaults = asdict(Command(command.command))
    line = json.dumps({k: v for k, v in asdict(command).items() if k == "command" or v != defaults[k]})
    fd = os.open(Path(session_dir) / CONTROL_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def receive(session_dir: Path, offset: int) -> list[tuple[Command, int]]:
    """The commands on the whole new lines after `offset`, each with the offset where its line
    ends; lines the runner cannot use are passed over."""
    found = []
    fields = asdict(Command(""))
    for data, end in json_lines(Path(session_dir) / CONTROL_FILE, offset)[0]:
        try:
            command = Command(**{k: data[k] for k in fields if k in data})
        except TypeError:
            continue
        if command.problem() is None:
            found.append((command, end))
    return found


@dataclass
class Steering:
    """What the researcher's commands so far amount to; the runner's and the viewer's view."""

    paused: bool = False
    notes: list[str] = field(default_factory=list)
    pinned: str | None = None
    stop_episodes: set[int] = field(default_factory=set)
    extra_budget: int = 0
    stop: bool = False
    offset: int = 0
    """How far into control.jsonl the runner has read."""

    def apply(self, e: Steered) -> None:
        match e.command:
            case "pause" | "resume":
                self.paused = e.command == "pause"
            case "note":
                self.notes.append(e.text[:MAX_NOTE_CHARS])
            case "pin":
                self.pinned = e.commit
            case "unpin":
                self.pinned = None
            case "stop_episode":
                self.stop_episodes.add(int(e.episode or 0))
            case "budget":
                self.extra_budget += e.amount
            case "stop":
                self.stop = True
        self.offset = max(self.offset, e.offset)

    @classmethod
    def replayed(cls, events: Iterable[Steered]) -> Steering:
        """The steering a resumed run starts with: a stop and stopped episodes belong to the
        run that obeyed them; pauses, notes, pins and budget carry over."""
        steering = cls()
        for e in events:
            steering.apply(e)
        steering.stop, steering.stop_episodes = False, set()
        return steering


def steered(command: Command, offset: int) -> Steered:
    return Steered(command=command.command, text=command.text[:MAX_NOTE_CHARS],
                   commit=command.commit, episode=command.episode, amount=command.amount,
                   offset=offset)
