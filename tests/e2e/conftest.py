"""The real app, launched in this process on a free port (embedded worker), and one chromium for every browser test."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from collections.abc import Iterator

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from tests.conftest import REPO, require

# `expect` waits 5 s by default: on CI's two loaded cores an upload of two pictures took longer (seen in CI), so the
# browser tests' assertions wait as long as a person would before calling the page broken.
expect.set_options(timeout=20_000)
ARTIFACTS = REPO / "test-results"
ACCOUNTS = {"alice": "wonder-land-7", "bob": "builder-42"}  # of the shared instance (shared_url)


# A browser test whose page or click timed out, or whose navigation was aborted, runs once more (pytest-rerunfailures;
# the report says "rerun"): on CI's two shared cores a page sometimes stopped answering for a minute while a job
# computed (CI stop 29), failing a test that passes alone. A wrong page (an `expect` that failed) fails at once.
TIMED_OUT = [PlaywrightTimeout, r"net::ERR_ABORTED"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.flaky(reruns=1, only_rerun=TIMED_OUT))


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def running_app(accounts: dict[str, str] | None = None) -> Iterator[str]:
    """The app on a free loopback port, with sign-in for `accounts` if any; yields its address."""
    from webapp.app import launch

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    if accounts:
        os.environ["FEWSHOT_AUTH"] = ",".join(f"{user}:{password}" for user, password in accounts.items())
    try:
        demo = launch(prevent_thread_lock=True, server_port=port, quiet=True)
    finally:
        if accounts:
            del os.environ["FEWSHOT_AUTH"]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="session")
def app_url() -> Iterator[str]:
    with running_app() as url:
        yield url


@pytest.fixture(scope="package")
def shared_url() -> Iterator[str]:
    """A shared instance with sign-in for ACCOUNTS, launched once for the browser tests' modules that use it."""
    with running_app(ACCOUNTS) as url:
        yield url


@pytest.fixture(scope="package")
def browser() -> Iterator:
    """One chromium for these tests (a launch costs seconds on a loaded CPU), each test in its own context. Closed
    when they end: while Playwright runs, `asyncio.run` in this thread fails (its event loop counts as running)."""
    executable = chromium_path()
    require(executable is not None, "chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def no_job_outlives_its_test() -> Iterator[None]:
    """A job a test left running (a wait that ran out, a Cancel that did not land) would hold its lane and the CPU
    for the tests after it, failing them too: each test's unfinished jobs are cancelled when it ends."""
    from tasks import client
    from tasks.store import get_store

    yield
    for job in get_store().active():  # the unfinished ones, from their marks: no walk over every stored record
        client.cancel(job.id)


@pytest.fixture
def page(browser, app_url, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors = request.node.page_errors = []  # reported with a failure (CI keeps its log, not the browser's)
    page.on("console", lambda message: message.type == "error" and errors.append(message.text[:300]))
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"[:300]))
    page.set_default_timeout(60_000)
    page.goto(app_url)
    page.get_by_role("tablist").first.wait_for()  # rendered: a loaded CPU takes seconds, more than `expect` waits
    yield page
    if getattr(getattr(request.node, "rep_call", None), "failed", False):
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
