"""README's screenshots of the watcher, made by Textual's own `save_screenshot` on the demo
session of the tests (fixed timestamps and shas, so they change only when the app does).

    TZ=UTC python docs/screenshots.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from agent.tui import WatchApp  # noqa: E402
from fixtures.session import demo_session  # noqa: E402

VIEWS = {"tui-main.svg": None, "tui-score.svg": "score", "tui-episodes.svg": "episodes-tab"}
"""Screenshot file -> the tab shown (None: the first, the selected candidate)."""


async def shoot(session: Path, name: str, tab: str | None) -> None:
    app = WatchApp(session)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.pause()
        if tab:
            app.tabs.active = tab
        if tab == "episodes-tab":  # the episode whose transcript the demo session holds
            await pilot.pause()
            app.table.focus()
            app.table.move_cursor(row=app.table.get_row_index("2"))
        await pilot.pause(0.3)
        app.save_screenshot(filename=name, path=str(HERE))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        session = demo_session(Path(tmp))
        for name, tab in VIEWS.items():
            asyncio.run(shoot(session, name, tab))
            print(HERE / name)


if __name__ == "__main__":
    main()
