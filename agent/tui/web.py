"""`adrs-agent watch --web`: the same app, served to a browser by textual-serve."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from textual_serve.server import Server


def serve(session_dir: Path, host: str, port: int) -> None:
    """Serve `watch` on the session until interrupted; each browser tab runs its own app."""
    command = shlex.join([sys.executable, "-m", "agent.cli", "watch", str(session_dir)])
    Server(command, host=host, port=port, title=f"adrs-agent {session_dir.name}").serve()
