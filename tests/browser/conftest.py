"""Real-browser tests: Debian's Chromium, driven by Playwright, against a real server (uvicorn in a subprocess)
on the suite's migrated database (SQLite, or PostgreSQL with TEST_DATABASE_URL).

The demo site is opened on http://localhost:<port> and the banner talks to http://127.0.0.1:<port>: two
origins, so every journey goes through CORS (PRIVACY_CORS_ORIGINS lists only the localhost one). A failing
test leaves a screenshot of each of its pages in tests/browser/artifacts/."""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import Inbox, free_port, live_server

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
HERE = Path(__file__).parent
ARTIFACTS = HERE / "artifacts"

# vanilla-cookieconsent hides itself from bots, and an automated browser says it is one (navigator.webdriver).
# The journeys are a person's, so the page sees an ordinary browser.
NOT_A_BOT = "Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => false});"
# When the banner appears, in milliseconds since the navigation started (the library marks <html>).
BANNER_CLOCK = """
new MutationObserver((_, observer) => {
  if (document.documentElement && document.documentElement.classList.contains("show--consent")) {
    window.__bannerShownAt = performance.now();
    observer.disconnect();
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["class"]});
"""


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return (f"Chromium is not installed at {CHROMIUM}: `apt-get install -y chromium` (.ci/run installs it), "
                "or set CHROMIUM to its path")
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed: pip install -c constraints.txt -e '.[test]'"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without Chromium the browser tests are skipped, saying why; but not in CI, which installs it: there they
    fail instead (see the `server` fixture), so that they cannot silently stop running."""
    reason = None if os.environ.get("CI") else _missing()
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


# --- what the journeys measure, printed at the end of the run --------------------------------------------------

MEASURED: dict[str, Any] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if MEASURED:
        terminalreporter.section("cookie banner")
        for name, value in MEASURED.items():
            terminalreporter.write_line(f"{name}: {value}")
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "banner-metrics.json").write_text(json.dumps(MEASURED, indent=2) + "\n")


# --- a real server, and a mailbox for the login codes it sends --------------------------------------------------


@dataclass
class Server:
    port: int
    inbox: Inbox
    log: Path

    @property
    def api(self) -> str:
        """The service, as the banner's data-api names it."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def site(self) -> str:
        """The demo site's origin: listed in PRIVACY_CORS_ORIGINS, and not the API's."""
        return f"http://localhost:{self.port}"

    def demo(self, lang: str = "sv") -> str:
        return f"{self.site}/demo/site?lang={lang}"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from aiosmtpd.controller import Controller

    if reason := _missing():
        pytest.fail(reason) if os.environ.get("CI") else pytest.skip(reason)
    inbox, smtp_port = Inbox(), free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    port, folder = free_port(), tmp_path_factory.mktemp("browser-server")
    try:
        with live_server(
            folder,
            port,
            PRIVACY_CORS_ORIGINS=f"http://localhost:{port}",
            PRIVACY_MAIL_BACKEND="smtp",
            PRIVACY_SMTP_HOST="127.0.0.1",
            PRIVACY_SMTP_PORT=str(smtp_port),
            PRIVACY_SMTP_STARTTLS="false",
            # Every journey comes from 127.0.0.1: the per-address limit is not what is tested here.
            PRIVACY_VISITOR_CONSENT_RATE_LIMIT="100000/minute",
        ) as running:
            yield Server(port=port, inbox=inbox, log=running.log)
    finally:
        smtp.stop()


@pytest.fixture(scope="session")
async def api(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    """The service, called directly (as the test, not as the browser)."""
    async with httpx.AsyncClient(base_url=server.api, timeout=30) as client:
        yield client


# --- the browser ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def browser(server: Server) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        await chromium.close()


NewContext = Callable[..., Awaitable[Any]]


@pytest.fixture
async def new_context(browser: Any, request: pytest.FixtureRequest) -> AsyncIterator[NewContext]:
    """Fresh browser profiles (cookies, cache) for one test; screenshots of their pages if the test fails."""
    contexts: list[Any] = []
    problems: list[str] = []

    async def make(**options: Any) -> Any:
        options.setdefault("viewport", {"width": 1280, "height": 800})
        context = await browser.new_context(**options)
        await context.add_init_script(NOT_A_BOT)
        await context.add_init_script(BANNER_CLOCK)
        context.on("page", lambda page: page.on("pageerror", lambda error: problems.append(str(error))))
        contexts.append(context)
        return context

    yield make
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
        for i, context in enumerate(contexts):
            for j, page in enumerate(context.pages):
                await page.screenshot(path=str(ARTIFACTS / f"{name}-{i}-{j}.png"), full_page=True)
        if problems:
            print("page errors:", *problems, sep="\n  ")
    for context in contexts:
        await context.close()


@pytest.fixture
async def page(new_context: NewContext) -> Any:
    context = await new_context()
    return await context.new_page()
