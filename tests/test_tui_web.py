"""`adrs-agent watch --web`: the same app served by textual-serve, loaded in headless Chromium
(Debian's `chromium`, driven by Playwright); the page must show the app, not a blank terminal."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from fixtures.helpers import CLI, REPO_ROOT, cli_env
from fixtures.session import demo_session

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DEADLINE_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("watch --web never listened")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")
def test_the_browser_shows_the_app(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright (the dev extra)")
    session = demo_session(tmp_path / "sessions")
    port = free_port()
    server = subprocess.Popen([*CLI, "watch", str(session), "--web", "--port", str(port)],
                              cwd=REPO_ROOT, env=cli_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port, server)
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_content("<body style='background:#000'></body>")
            blank = page.screenshot()  # what a page that shows nothing looks like
            page.goto(f"http://127.0.0.1:{port}/")  # the app starts in a process of its own
            # textual.js marks the body once the app's first bytes reached the terminal
            page.wait_for_selector("body.-first-byte", timeout=DEADLINE_S * 1000)
            shot = tmp_path / "web.png"
            deadline = time.monotonic() + DEADLINE_S
            while time.monotonic() < deadline:
                page.screenshot(path=str(shot))
                if colours(shot) > 3 * colours_of(blank, tmp_path):
                    break
                time.sleep(0.5)
            browser.close()
    finally:
        server.terminate()
        out = server.communicate(timeout=30)[0]
    assert "127.0.0.1" in out
    assert colours(shot) > 3 * colours_of(blank, tmp_path), "the page never showed the app"


def colours(png: Path) -> int:
    """How many distinct colours a screenshot has: a blank terminal has a handful; the app's
    header, tree, tables and highlighted diff have many."""
    from PIL import Image

    return len(Image.open(png).convert("RGB").getcolors(maxcolors=1 << 20) or [])


def colours_of(data: bytes, tmp_path: Path) -> int:
    path = tmp_path / "blank.png"
    path.write_bytes(data)
    return colours(path)
