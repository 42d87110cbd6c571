"""Playwright (sync API) driving Debian's Chromium against pytest-django's live_server.

No browser is downloaded: Playwright launches /usr/bin/chromium (`apt-get install chromium`).
When it is missing the browser tests are skipped with that reason — except with
SENDORA_REQUIRE_BROWSER=1 (set by .ci/run), where a missing browser fails them: CI never skips them silently.
"""
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"

# Playwright's sync API keeps an asyncio loop in the test's thread; the test's own ORM calls
# (fixtures, assertions) are still plain synchronous code, so Django's async guard must not refuse them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _skip_reason() -> str | None:
    chromium = os.environ.get("CHROMIUM_PATH", CHROMIUM)
    if not (os.path.exists(chromium) or shutil.which("chromium")):
        return f"Chromium not found at {chromium} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements.txt)"
    return None


def skip_or_fail_without_browser() -> None:
    """Skip when no browser is available — or fail, when SENDORA_REQUIRE_BROWSER=1 (CI)."""
    reason = _skip_reason()
    if reason and os.environ.get("SENDORA_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required here (SENDORA_REQUIRE_BROWSER=1): {reason}", pytrace=False)
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    skip_or_fail_without_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
                                     headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def shot(request):
    """shot(page, "step-name") saves test-artifacts/browser/<test>-<nn>-<step>.png (full page)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    counter = {"n": 0}

    def take(page, name: str) -> Path:
        counter["n"] += 1
        path = ARTIFACTS / f"{request.node.name}-{counter['n']:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
