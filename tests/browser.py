"""Headless Chromium for the HTML reports: Debian's ``chromium`` driven by Playwright's Python client.

Playwright's own browser download (``playwright install``) is never used: ``make setup`` installs
the distribution's ``chromium`` and this launches it by path. Also a tool for the README's
screenshot::

    .venv/bin/python -m tests.browser report.html docs/report.png --click 0
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ARGS = [
    "--headless",
    "--no-sandbox",  # needed as root; the pages are our own files
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The system Chromium (``$RCSTAT_CHROMIUM`` overrides), or ``None``."""
    for candidate in (os.environ.get("RCSTAT_CHROMIUM"), "chromium", "chromium-browser"):
        found = candidate and shutil.which(candidate)
        if found:
            return found
    return None


def unavailable() -> str | None:
    """Why no browser test can run here, or ``None`` when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return (
            "the Python package playwright is not installed (make setup installs it: pip install -e '.[dev]')"
        )
    if chromium_path() is None:
        return "no chromium executable (make setup installs Debian's: apt-get install chromium)"
    return None


@contextmanager
def browser_context(javascript: bool = True, width: int = 1280, height: int = 800) -> Iterator:
    """A fresh, offline-minded Chromium profile; yields a Playwright ``BrowserContext``."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="rcstat-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=chromium_path(),
            args=ARGS,
            headless=True,
            java_script_enabled=javascript,
            viewport={"width": width, "height": height},
        )
        try:
            yield context
        finally:
            context.close()


def screenshot(page_path: Path, png: Path, click: int | None = None, width: int = 1280) -> None:
    """Open ``page_path``, click response sentence ``click`` (if given), save the page as ``png``."""
    with browser_context(width=width, height=600) as context:
        page = context.new_page()
        page.goto(Path(page_path).resolve().as_uri())
        if click is not None:
            page.locator(f'.sent[data-index="{click}"]').click()
        page.screenshot(path=str(png), full_page=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Screenshot an rcstat HTML report in headless Chromium.")
    parser.add_argument("page", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--click", type=int, help="response sentence to click first")
    parser.add_argument("--width", type=int, default=1280)
    options = parser.parse_args()
    if reason := unavailable():
        parser.exit(2, f"cannot take a screenshot: {reason}\n")
    screenshot(options.page, options.png, options.click, options.width)
    print(options.png)
