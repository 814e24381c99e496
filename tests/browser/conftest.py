"""Browser tests: Debian's Chromium, driven by Playwright, runs the real tracker on pages of
a test site (its own origin) and sends to a real Sightline server.

Headless Chromium is browser automation, which Sightline drops as a bot; the server here
runs with ``bot_filter=False`` (one test checks that the filter does drop it).
"""

from __future__ import annotations

import html
import itertools
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, sync_playwright
from tests.browser.testsite import TestSite
from tests.conftest import skip_or_fail
from tests.support.server import ServerProcess, running_server

LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-output" / "browser"
COLLECT_PATH = "/api/v1/analytics/collect"
_sites = itertools.count(1)


def chromium_path() -> str | None:
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        skip_or_fail("Debian's chromium is not installed (apt-get install -y chromium)")
        return
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def sightline() -> Iterator[ServerProcess]:
    # Its own directory rather than pytest's numbered ones, which a concurrent pytest run
    # may prune while this session's server still uses them.
    with (
        tempfile.TemporaryDirectory(prefix="sightline-browser-") as directory,
        running_server(Path(directory), rate_limit_per_minute=0, bot_filter=False) as server,
    ):
        yield server


@pytest.fixture(scope="session")
def web(sightline: ServerProcess) -> Iterator[TestSite]:
    with TestSite(sightline.url) as site:
        yield site


@dataclass
class TrackedSite:
    """One Sightline site (its own key) whose pages live under a path prefix of the test site."""

    server: ServerProcess
    web: TestSite
    id: str
    key: str
    prefix: str

    def page(
        self,
        name: str,
        body: str = "",
        *,
        head: str = "",
        title: str = "",
        script: str | None = None,
        src: str | None = None,
        delay: float = 0.0,
        spa: bool = False,
        **attrs: Any,
    ) -> str:
        """Register a page with the tracker's <script> tag; returns its URL.

        ``attrs`` become data-* attributes (``batch_size=5`` -> ``data-batch-size="5"``);
        ``debug`` is on unless given, so the test sees every emitted event. ``script`` replaces
        the tag (``""``: no tracker); ``src`` is where the tracker is loaded from (default:
        Sightline itself).
        """
        attrs.setdefault("debug", True)
        if script is None:
            tags = {"site-key": self.key} | {k.replace("_", "-"): v for k, v in attrs.items()}
            rendered = " ".join(
                f'data-{k}="{html.escape(str(v).lower() if isinstance(v, bool) else str(v))}"'
                for k, v in tags.items()
            )
            src = src or f"{self.server.url}/sdk/v1/sightline.js"
            script = f'<script src="{src}" {rendered}></script>'
        document = (
            f"<!doctype html><html><head><meta charset=utf-8>"
            f"<title>{html.escape(title or name)}</title>{head}{script}</head>"
            f"<body>{body}</body></html>"
        )
        return self.web.add(f"{self.prefix}/{name}", document, delay=delay, spa=spa)

    def url(self, name: str) -> str:
        return f"{self.web.origin}{self.prefix}/{name}"

    def rows(self, columns: str = "event_type", where: str = "true") -> list[tuple[Any, ...]]:
        return self.server.query(
            f"SELECT {columns} FROM events WHERE site_id = '{self.id}' AND ({where}) ORDER BY ts"
        )

    def types(self, where: str = "true") -> list[str]:
        return [row[0] for row in self.rows("event_type", where)]

    def properties(self, event_type: str) -> list[dict[str, Any]]:
        """The stored properties of each event of a type, without the automation marker."""
        rows = self.rows("properties", f"event_type = '{event_type}'")
        found = [json.loads(p) if isinstance(p, str) else p for (p,) in rows]
        for properties in found:
            assert properties.pop("$webdriver") is True
        return found

    def count(self, where: str = "true") -> int:
        return self.server.count_events(f"site_id = '{self.id}' AND ({where})")

    def wait(self, n: int, where: str = "true", timeout: float = 15.0) -> int:
        return self.server.wait_for_events(n, timeout, where=f"site_id = '{self.id}' AND ({where})")


@pytest.fixture
def site(
    browser: Browser, sightline: ServerProcess, web: TestSite, request: pytest.FixtureRequest
) -> TrackedSite:
    """A fresh Sightline site accepting the test site's origin, for one test (the browser
    comes first: without one the test is skipped before any server starts)."""
    number = next(_sites)
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    # the operation `sightline site add` sends to a running server, without a CLI process
    record = sightline.control(
        "site-add", {"domain": f"t{number}-{slug}.test", "origins": [web.origin]}
    )
    return TrackedSite(sightline, web, record["id"], record["siteKey"], f"/t{number}")


@dataclass
class Visitor:
    """One browser profile (a Playwright context) with what its trackers emitted and sent."""

    context: BrowserContext
    page: Page
    #: Every event the tracker emitted (its debug hook), in order.
    emitted: list[dict[str, Any]] = field(default_factory=list)
    #: Every request body the browser sent to a collect endpoint.
    sent: list[dict[str, Any]] = field(default_factory=list)

    def record(self, event: dict[str, Any]) -> None:
        self.emitted.append(event)

    def on_request(self, request: Request) -> None:
        if COLLECT_PATH in request.url and request.method == "POST":
            body = request.post_data
            if body:
                self.sent.append(json.loads(body))

    def types(self) -> list[str]:
        return [e["eventType"] for e in self.emitted]

    def sent_events(self) -> list[dict[str, Any]]:
        return [event for body in self.sent for event in body["events"]]

    def wait_emitted(self, event_type: str, count: int = 1, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.types().count(event_type) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{count} x {event_type} not emitted in {timeout}s; emitted {self.types()}"
                )
            self.page.wait_for_timeout(50)

    def storage(self) -> dict[str, Any]:
        """What the page's origin keeps on the device."""
        kept: dict[str, Any] = self.page.evaluate(
            "() => ({local: {...localStorage}, session: {...sessionStorage},"
            " cookie: document.cookie})"
        )
        kept["cookies"] = self.context.cookies()
        return kept


HOOK = "addEventListener('sightline:event', (e) => window.__sightlineEmitted(e.detail))"


def attach_visitor(context: BrowserContext) -> Visitor:
    """Watch a browser context: what its trackers emit (their debug hook) and send."""
    context.set_default_timeout(15_000)
    page = context.pages[0] if context.pages else context.new_page()
    visitor = Visitor(context, page)
    context.expose_function("__sightlineEmitted", visitor.record)
    context.add_init_script(HOOK)
    context.on("request", visitor.on_request)
    return visitor


@pytest.fixture
def new_visitor(
    browser: Browser, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Visitor]]:
    """Opens visitors (browser contexts); on failure their pages are saved as screenshots."""
    visitors: list[Visitor] = []

    def open_visitor(**options: Any) -> Visitor:
        visitor = attach_visitor(browser.new_context(**options))
        visitors.append(visitor)
        return visitor

    yield open_visitor
    for index, visitor in enumerate(visitors):
        save_screenshots(request, visitor.context, str(index))
        visitor.context.close()


def save_screenshots(request: pytest.FixtureRequest, context: BrowserContext, tag: str) -> None:
    """After a failed test, its pages as pictures under test-output/browser/."""
    report = getattr(request.node, "rep_call", None)
    if report is None or not report.failed:
        return
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for number, page in enumerate(context.pages):
        name = re.sub(r"[^\w.-]", "_", f"{request.node.name}-{tag}-{number}.png")
        try:
            page.screenshot(path=str(ARTIFACTS / name))
        except Exception:  # noqa: S112 - a page that cannot be captured is skipped
            continue


@pytest.fixture
def visitor(new_visitor: Callable[..., Visitor]) -> Visitor:
    return new_visitor()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
