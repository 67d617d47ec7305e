"""The watch app (`adrs-agent watch`): a Textual view of one session folder.

Only this package imports textual; it reads the session folder and writes control.jsonl.
"""

from __future__ import annotations

from pathlib import Path

from agent.tui.app import WatchApp


def watch(session_dir: Path) -> str | None:
    """Run the app on a session folder until the researcher leaves: "detach" (the run goes on),
    "stop" (a stop was sent) or None (the app was closed otherwise)."""
    return WatchApp(Path(session_dir)).run()


__all__ = ["WatchApp", "watch"]
