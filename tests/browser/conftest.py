"""The web client in a real browser: Debian's chromium driven by Playwright (async API) against a
real ``wanglai serve`` process (tests/e2e's ``Server``: a free port, a fresh data directory).

- ``browser``: one headless chromium for the session (Playwright never downloads a browser here:
  ``/usr/bin/chromium``, installed by ``make browser``; ``WANGLAI_CHROMIUM`` overrides the path).
- ``web``: per test, ``await web.page_for("alice")`` opens a new browser context (its own
  storage, so its own login) and page. Any console error or uncaught page error fails the test,
  unless the test allowed it (``web.allow_console(pattern)``, e.g. while the server is down).
  Every page is screenshotted at the end of the test into ``test-results/screenshots/``
  (``...-FAILED.png`` when the test failed); ``web.shot(page, "label")`` takes one on demand.
- ``login(page, server, phone)``: logs in through the UI per the DOM contract, reading the code
  from the data directory's ``sms.log``.

The tests use only the DOM contract (``data-test`` attributes, see docs) and visible text.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    Playwright,
    async_playwright,
    expect,
)

from tests.conftest import REPO_ROOT
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Server, Users

# The e2e suite's fixtures: a real `wanglai serve` on a fresh data dir (SQLite, or PostgreSQL
# with WANGLAI_E2E_DB=postgres).
e2e_database_url = e2e.e2e_database_url
server = e2e.server

CHROMIUM = os.environ.get("WANGLAI_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO_ROOT / "test-results" / "screenshots"
TIMEOUT_MS = 10_000
"""Playwright's default wait for any action or expectation."""
expect.set_options(timeout=TIMEOUT_MS)

LOGIN_TIMEOUT_S = 10.0


def _chromium_or_skip() -> str:
    if shutil.which(CHROMIUM) or Path(CHROMIUM).is_file():
        return CHROMIUM
    message = f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def playwright_driver() -> AsyncIterator[Playwright]:
    async with async_playwright() as p:
        yield p


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(playwright_driver: Playwright) -> AsyncIterator[Browser]:
    executable = _chromium_or_skip()
    launched = await playwright_driver.chromium.launch(
        executable_path=executable,
        headless=True,
        args=[
            "--no-sandbox",
            "--headless=new",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            # a microphone for voice messages: a fake device, permission granted without asking
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
        ],
    )
    try:
        yield launched
    finally:
        await launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def users(server: Server) -> AsyncIterator[Users]:
    """SDK clients (other devices, or other people) against the same server."""
    pool = Users(server)
    try:
        yield pool
    finally:
        await pool.close()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120]


class Web:
    """The pages of one test, one browser context each, and what they logged."""

    def __init__(self, browser: Browser, server: Server, test_name: str) -> None:
        self.browser = browser
        self.server = server
        self.test_name = _slug(test_name)
        self.contexts: list[BrowserContext] = []
        self.pages: dict[str, Page] = {}
        self.errors: list[str] = []
        self._allowed: list[re.Pattern[str]] = []
        for old in SCREENSHOTS.glob(f"{self.test_name}-*.png"):  # from an earlier run
            old.unlink(missing_ok=True)

    async def page_for(self, user: str) -> Page:
        """A fresh browser context (its own cookies and storage) with one page, on the app."""
        assert user not in self.pages, f"a page for {user} is already open"
        context = await self.browser.new_context(
            base_url=self.server.base_url, viewport={"width": 1280, "height": 800}
        )
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = await context.new_page()
        page.on("console", lambda message: self._console(user, message))
        page.on("pageerror", lambda error: self._page_error(user, error))
        self.pages[user] = page
        return page

    def allow_console(self, pattern: str) -> None:
        """Console errors matching ``pattern`` (a regex) no longer fail the test."""
        self._allowed.append(re.compile(pattern))

    def _console(self, user: str, message: ConsoleMessage) -> None:
        if message.type == "error":
            self._record(f"[{user}] console error: {message.text} ({message.location})")

    def _page_error(self, user: str, error: Error) -> None:
        self._record(f"[{user}] uncaught {error.name}: {error.message}\n{error.stack}")

    def _record(self, line: str) -> None:
        if not any(p.search(line) for p in self._allowed):
            self.errors.append(line)

    def check_console(self) -> None:
        """Fail now if any page has logged an error so far."""
        assert not self.errors, "errors in the browser:\n" + "\n".join(self.errors)

    async def shot(self, page: Page, label: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.test_name}-{_slug(label)}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path

    async def close(self, failed: bool) -> None:
        for user, page in self.pages.items():
            with contextlib.suppress(Error):
                await self.shot(page, f"{user}-FAILED" if failed else user)
        for context in self.contexts:
            with contextlib.suppress(Error):
                await context.close()


FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Remember a failed test body, for the ``-FAILED`` screenshots."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" and report.failed:
        item.stash[FAILED] = True


@pytest_asyncio.fixture(loop_scope="session")
async def web(
    browser: Browser, server: Server, request: pytest.FixtureRequest
) -> AsyncIterator[Web]:
    pages = Web(browser, server, request.node.name)
    try:
        yield pages
    finally:
        failed = request.node.stash.get(FAILED, False)
        await pages.close(failed=failed)
    if failed:  # shown with the failure (captured output) rather than as a second error
        print("errors in the browser:", *pages.errors, sep="\n")
    else:
        pages.check_console()


def _codes_sent(server: Server, phone: str) -> int:
    """How many codes ``sms.log`` holds for ``phone`` (its lines name the number: ``to=+86…``)."""
    sms = server.data_dir / "sms.log"
    text = sms.read_text(encoding="utf-8") if sms.exists() else ""
    return sum(1 for line in text.splitlines() if f"to={phone} " in line)


async def code_from_sms_log(server: Server, phone: str, sent_before: int = 0) -> str:
    """The newest code for ``phone`` once ``sms.log`` holds more than ``sent_before`` for it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LOGIN_TIMEOUT_S
    while _codes_sent(server, phone) <= sent_before:
        assert loop.time() < deadline, f"no new login code in sms.log for {phone}"
        await asyncio.sleep(0.05)
    return server.code_for(phone)


async def login(page: Page, server: Server, phone: str) -> None:
    """Log in through the login screen: phone, send code, the code from sms.log, sign in."""
    if not page.url.startswith(server.base_url):
        await page.goto("/")
    login_screen = page.locator("[data-test=login]")
    await expect(login_screen).to_be_visible()
    sent_before = _codes_sent(server, phone)
    await page.locator("input[data-test=phone]").fill(phone)
    await page.locator("button[data-test=send-code]").click()
    code = await code_from_sms_log(server, phone, sent_before)
    await page.locator("input[data-test=code]").fill(code)
    await page.locator("button[data-test=sign-in]").click()
    await expect(page.locator("[data-test=app]")).to_be_visible()
    await expect(page.locator("[data-test=connection]")).to_have_attribute("data-state", "online")
