"""A run on disk: session.toml, events.jsonl (flushed per event), transcripts, logs, repo.

Nothing lives only in memory: `resume` rebuilds every view from this folder.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.config import RunConfig
from agent.events import Event, EventLog, RawEvent

FORMAT_VERSION = 1


class SessionError(RuntimeError):
    pass


class Session:
    def __init__(self, path: Path):
        self.dir = path
        self.id = path.name
        self.repo = path / "repo"
        self.worktrees = path / "worktrees"
        self.logs = path / "logs"
        self.heldout_logs = path / "heldout"
        self.transcripts = path / "transcripts"
        self.evaluator = path / "evaluator"
        self.log = EventLog(path / "events.jsonl")

    # -- creating and finding -------------------------------------------------------------
    @classmethod
    def create(cls, sessions_dir: Path, task_name: str, cfg: RunConfig,
               evaluator_dir: Path) -> Session:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(sessions_dir).resolve() / f"{stamp}-{task_name}-{secrets.token_hex(2)}"
        for sub in ("", "worktrees", "logs", "heldout", "transcripts"):
            (path / sub).mkdir(parents=True, exist_ok=sub != "")
        shutil.copytree(evaluator_dir, path / "evaluator",
                        ignore=shutil.ignore_patterns("__pycache__"))
        session = cls(path)
        session.write_config(cfg, task_name)
        return session

    @staticmethod
    def folders(sessions_dir: Path) -> list[Path]:
        """Every session folder under sessions_dir, oldest first (ids start with the time)."""
        root = Path(sessions_dir).resolve()
        return sorted(p for p in root.glob("*") if (p / "session.toml").is_file()) \
            if root.is_dir() else []

    @classmethod
    def find(cls, sessions_dir: Path, ident: str | None) -> Session:
        """A session by id, id prefix, or path; the newest one when ident is None."""
        if ident and (Path(ident) / "session.toml").is_file():
            return cls(Path(ident).resolve())
        root = Path(sessions_dir).resolve()
        found = cls.folders(root)
        if ident:
            found = [p for p in found if p.name == ident] or [
                p for p in found if p.name.startswith(ident)]
        if not found:
            raise SessionError(f"no session {ident or ''} under {root}; "
                               "`adrs-agent sessions` lists them")
        if ident and len(found) > 1:
            raise SessionError(f"{ident!r} matches {len(found)} sessions: "
                               f"{', '.join(p.name for p in found)}; give more of the id")
        return cls(found[-1])

    # -- who runs it ----------------------------------------------------------------------
    def claim(self, pid: int | None = None) -> None:
        """Mark this process (or `pid`) as the session's runner (resume refuses while it lives)."""
        (self.dir / "run.pid").write_text(str(pid or os.getpid()))

    def launch(self, argv: list[str]) -> int:
        """Start `argv` as the session's runner in the background: its own process group and
        session (closing the terminal or the viewer does not stop it), output appended to
        run.log; returns its pid, already claimed."""
        with open(self.dir / "run.log", "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.claim(proc.pid)
        return proc.pid

    def runner(self) -> int | None:
        """The pid of a live process still running this session, if any."""
        try:
            pid = int((self.dir / "run.pid").read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        if pid == os.getpid() or b"adrs-agent" not in cmdline and b"agent.cli" not in cmdline:
            return None
        return pid

    # -- config ---------------------------------------------------------------------------
    def write_config(self, cfg: RunConfig, task_name: str, **extra: Any) -> None:
        data = {"format_version": FORMAT_VERSION, "task": task_name, **extra,
                "config": cfg.model_dump(exclude_none=True)}
        tmp = self.dir / "session.toml.tmp"
        tmp.write_text(dump_toml(data))
        os.replace(tmp, self.dir / "session.toml")

    def read_config(self) -> tuple[RunConfig, dict]:
        data = tomllib.loads((self.dir / "session.toml").read_text())
        return RunConfig.model_validate(data.pop("config")), data

    # -- events ---------------------------------------------------------------------------
    def emit(self, event: Event) -> Event:
        return self.log.emit(event)

    def events(self, skip: tuple[type[Event], ...] = ()) -> Iterator[Event | RawEvent]:
        """The events in order as typed records; types in `skip` are not decoded."""
        return self.log.read(skip)

    def close(self) -> None:
        self.log.close()

    # -- transcripts ----------------------------------------------------------------------
    def transcript_path(self, episode: int) -> Path:
        return self.transcripts / f"{episode}.jsonl"


class Transcript:
    """One episode's messages, appended and flushed as they happen."""

    def __init__(self, path: Path, header: dict):
        self.path = path
        self._f = open(path, "a", encoding="utf-8")
        self.write({"format_version": FORMAT_VERSION, **header})

    def write(self, record: dict) -> None:
        self._f.write(json.dumps(record, default=str) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def dump_toml(data: dict, prefix: str = "") -> str:
    """Enough TOML for session.toml: scalars, lists of scalars, nested tables."""
    lines, tables = [], []
    for key, value in data.items():
        if value is None:
            continue
        key = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for key, value in tables:
        name = f"{prefix}{key}"
        out += f"\n[{name}]\n" + dump_toml(value, prefix=f"{name}.")
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")
