"""A real browser for the admin pages: Debian's chromium, headless, driven by Playwright.

`make test` installs chromium (tools/install_test_deps.sh); where it is missing the browser tests
skip saying so, except in CI (CONNECTOR_CI), where they fail. Every page a test looks at can be
kept as a screenshot: in the test's own folder, or in CONNECTOR_SCREENSHOTS (the README's pictures
in docs/screenshots/ are made that way: CONNECTOR_SCREENSHOTS=docs/screenshots).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Error, Page, Response, sync_playwright

from tests import canary_plugin

#: The answers whose bodies the canary check reads: pages, form posts, the JSON they fetch.
READ_BODIES = {"document", "xhr", "fetch"}

#: Readable at the size the issue names; phone width is checked on its own.
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str:
    """Debian's chromium, or skip (fail in CI) with what to install."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    why = "chromium is not installed (make test-deps installs it as root: apt-get install chromium)"
    if os.environ.get("CONNECTOR_CI"):
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless chromium per test process."""
    path = chromium_path()
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where chromium's own sandbox cannot start.
        launched = playwright.chromium.launch(
            executable_path=path, headless=True, args=["--no-sandbox"]
        )
        new_context = launched.new_context

        def looked_at(*args: object, **kwargs: object) -> BrowserContext:
            context = new_context(*args, **kwargs)  # type: ignore[arg-type]
            context.on("response", scan_browser_answer)
            return context

        launched.new_context = looked_at  # type: ignore[method-assign]
        try:
            yield launched
        finally:
            launched.close()


def scan_browser_answer(response: Response) -> None:
    """Look for canaries in an answer the browser got (tests/canary_plugin.py)."""
    headers = [(header["name"], header["value"]) for header in response.headers_array()]
    body = None
    if response.request.resource_type in READ_BODIES and not 300 <= response.status < 400:
        try:
            body = response.body()
        except Error:  # gone with the page the browser left meanwhile
            body = None
    what = f"the browser's answer to {response.request.method} {response.url.split('?', 1)[0]}"
    canary_plugin.scan_answer(what, response.status, headers, body)


class Screens:
    """Saves a screenshot of each page a test looks at, named after what it shows."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.saved: list[Path] = []

    def save(self, page: Page, name: str) -> Path:
        """Save the whole page as `<name>.png`; return where."""
        path = self.folder / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
        page.screenshot(path=str(path), full_page=True)
        self.saved.append(path)
        return path


@pytest.fixture
def screens(tmp_path: Path) -> Screens:
    """Where this test's screenshots go (CONNECTOR_SCREENSHOTS, else the test's folder)."""
    chosen = os.environ.get("CONNECTOR_SCREENSHOTS")
    return Screens(Path(chosen) if chosen else tmp_path / "screenshots")
