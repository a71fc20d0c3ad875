"""Browser journeys in headless Chromium (Debian's `chromium` package) driven by Playwright.

Skipped where no Chromium is installed; CI sets REQUIRE_BROWSER=1 to make that a failure.
Set E2E_SCREENSHOTS=/some/dir to keep a screenshot of each step.
"""

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

# Playwright's sync API runs an event loop in this thread; the live server's ORM
# calls happen in its own thread, but the test's own ORM calls need this flag.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def browser():
    executable = _chromium()
    if not executable:
        skip_or_fail("no Chromium found (apt-get install chromium)", required_by="REQUIRE_BROWSER")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed", required_by="REQUIRE_BROWSER")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def close_context(context) -> None:
    """Leave every page first, so the reading beacon (sent on pagehide) reaches the live server
    while the test's database is still shared with it, then close."""
    for open_page in context.pages:
        open_page.goto("about:blank")
    if context.pages:
        context.pages[0].wait_for_timeout(300)
    context.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    close_context(context)


@pytest.fixture
def shot():
    folder = os.environ.get("E2E_SCREENSHOTS")

    def take(page, name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    return take
