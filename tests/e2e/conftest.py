"""Browser journeys in headless Chromium (Debian's `chromium` package) driven by Playwright.

Skipped where no Chromium is installed; CI sets REQUIRE_BROWSER=1 to make that a failure.
Set E2E_SCREENSHOTS=/some/dir to keep a screenshot of each step.
"""

import os
import shutil
import textwrap
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


# Accessibility: axe-core (tests/e2e/vendor/axe-core, test-only, never served) run on the
# pages the journeys visit. page.evaluate() runs through the DevTools protocol, which the
# page's Content-Security-Policy does not govern, so no journey needs bypass_csp and the CSP
# journey sees the site exactly as a visitor does.
AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
A11Y_WIDTHS = (1280, 390)
_AXE_RUN = """async () => {
  // Not into frames: the only ones are third-party video players (the <iframe> element itself,
  // its title for one, is still checked here).
  const results = await axe.run(document, {resultTypes: ["violations"], iframes: false});
  return results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({id: v.id, impact: v.impact, help: v.help, url: v.helpUrl,
                  nodes: v.nodes.map((n) => ({target: n.target.join(" >> "), summary: n.failureSummary}))}));
}"""


def axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE_SOURCE)
    return page.evaluate(_AXE_RUN)


def check_a11y(page, name: str, *, widths: tuple[int, ...] = A11Y_WIDTHS) -> None:
    """Fail on any serious or critical axe-core violation on the current page at each width
    (desktop and a 390 px phone by default), listing rule, help and the failing elements; then
    give the page its own size back. The Django admin's own change lists and forms are not
    checked (not the site's markup); every page the site writes is."""
    size = page.viewport_size
    problems = []
    try:
        for width in widths:
            if size["width"] != width:
                page.set_viewport_size({"width": width, "height": size["height"]})
                page.wait_for_timeout(100)  # media queries and resize handlers settle
            for violation in axe_violations(page):
                problems.append(
                    f"  [{width}px] {violation['id']} ({violation['impact']}): {violation['help']} <{violation['url']}>"
                )
                for node in violation["nodes"][:10]:
                    problems.append(f"      {node['target']}\n" + textwrap.indent(node["summary"], " " * 8))
                if len(violation["nodes"]) > 10:
                    problems.append(f"      ... and {len(violation['nodes']) - 10} more")
    finally:
        if page.viewport_size != size:
            page.set_viewport_size(size)
    assert not problems, f"accessibility violations on {name} ({page.url}):\n" + "\n".join(problems)
