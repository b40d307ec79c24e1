"""Headless Chromium (Debian's ``chromium`` package) driven by Playwright, for tests that look at a page.

Why Playwright with the system Chromium: its own browser download cannot run here, but ``executable_path``
points it at ``/usr/bin/chromium``. The flags keep Chromium off the network it would otherwise call at start
(background networking, component updates, sync) and run it as root without a sandbox.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser_missing_reason() -> str | None:
    """Why a browser test cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (it is in the dev extra: pip install -e '.[dev]')"
    if chromium_path() is None:
        return "no chromium on PATH (Debian: apt-get install -y chromium; scripts/install-labelstudio.sh does it)"
    return None


def label_studio_task_page(url: str, username: str, password: str, project_id: int, task_id: int,
                           wait_for_text: str, screenshot: Path, *, timeout_s: float = 120.0) -> tuple[str, str]:
    """Log in as a person would, open one task's labelling view, wait until ``wait_for_text`` is shown highlighted
    (inside ``<mark>``, so in the rendered view, not the data table's raw HTML), save a PNG of the page, and return
    the highlighted text and the page's visible text."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(timeout_s * 1000)
            page.goto(f"{url}/user/login/")
            page.fill("input[name=email]", username)
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_url(lambda address: "/user/login" not in address)
            page.goto(f"{url}/projects/{project_id}/data?task={task_id}")
            marked = page.locator("mark", has_text=wait_for_text).first
            marked.wait_for()
            page.wait_for_timeout(500)  # let the choices finish rendering beside the text
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot))
            return marked.inner_text(), page.inner_text("body")
        finally:
            browser.close()
