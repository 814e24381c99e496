"""The dashboard in real Chromium against a real server filled with demo traffic.

One server with demo data is shared by the module; each test signs in its own browser
context. Screenshots of every page go to test-output/screenshots/.
"""

from __future__ import annotations

import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect
from tests.browser.conftest import ROOT
from tests.support.server import BROWSER_UA, ServerProcess, running_server

from sightline.demo import generate_traffic, send_traffic

pytestmark = pytest.mark.browser

SCREENSHOTS = ROOT / "test-output" / "screenshots"
EMAIL = "owner@dashboard.test"
PASSWORD = "correct horse battery staple"
DOMAIN = "shop.dashboard.test"
HOSTILE = "<img src=x onerror=alert(1)>"
#: What a figure shows until it is loaded (an en dash).
PENDING = "\u2013"


@pytest.fixture(scope="module")
def server(browser: Browser) -> Iterator[ServerProcess]:
    """A server with two weeks of demo traffic, a site and an admin who can sign in."""
    with (
        tempfile.TemporaryDirectory(prefix="sightline-dashboard-") as directory,
        running_server(Path(directory), rate_limit_per_minute=0) as srv,
    ):
        site = srv.add_site(DOMAIN, origins=["*"])
        srv.cli("user", "add", EMAIL, "--role", "admin", "--password-stdin", stdin=PASSWORD)
        now = int(time.time() * 1000)
        requests = list(
            generate_traffic(days=14, visitors=120, seed=5, now_ms=now, site_domain=DOMAIN)
        )
        summary = send_traffic(srv.url, site["siteKey"], requests, concurrency=4)
        srv.wait_for_events(summary.queued)
        srv.settings_site = site  # type: ignore[attr-defined]
        yield srv


def site_of(server: ServerProcess) -> dict[str, Any]:
    site: dict[str, Any] = server.settings_site  # type: ignore[attr-defined]
    return site


def send_event(server: ServerProcess, **fields: Any) -> None:
    event = {"eventId": uuid.uuid4().hex, "visitorId": "v-live", "sessionId": "s-live", **fields}
    response = httpx.post(
        server.url + "/api/v1/analytics/collect",
        json={"siteKey": site_of(server)["siteKey"], "events": [event]},
        headers={"User-Agent": BROWSER_UA},
        timeout=10,
    )
    assert response.status_code == 204, response.text


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # from the top: a full-page shot of a scrolled page draws the sticky bar mid-page
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def page(browser: Browser, server: ServerProcess) -> Iterator[Page]:
    """A signed-in dashboard page; confirms the dashboard's confirmations and fails the
    test if any other dialog (an alert) opens."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        if dialog.type == "confirm":  # the dashboard's own "are you sure?"
            dialog.accept()
            return
        dialogs.append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", on_dialog)
    tab.goto(server.url + "/")
    tab.get_by_label("E-mail").fill(EMAIL)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    expect(tab.locator("#site-switcher")).to_be_visible()
    yield tab
    context.close()
    assert dialogs == []


def kpi(page: Page, key: str) -> str:
    return page.locator(f'[data-kpi="{key}"] .kpi-value').inner_text()


def test_sign_in_shows_the_overview_with_figures_charts_and_tables(page: Page) -> None:
    expect(page.locator('[data-kpi="uniqueVisitors"] .kpi-value')).not_to_have_text(PENDING)
    assert int(kpi(page, "uniqueVisitors").replace(",", "")) > 0
    assert int(kpi(page, "pageViews").replace(",", "")) > 0
    # the change against the previous period follows the figures
    expect(page.locator('[data-kpi="pageViews"] .change')).to_have_text(re.compile(r"new|%"))
    expect(page.locator(".chart-card svg circle").first).to_be_attached()
    assert page.locator(".chart-card svg circle").count() >= 14
    for panel in ("pages", "sources", "countries", "devices", "events", "scroll", "vitals"):
        expect(page.locator(f'[data-panel="{panel}"] .rows li').first).to_be_visible()
    expect(page.locator('[data-vital="lcp"] .rating')).to_have_text(
        re.compile("Good|Needs improvement|Poor")
    )
    shot(page, "overview")


def test_clicking_a_row_filters_everything_and_the_chip_clears_it(page: Page) -> None:
    expect(page.locator('[data-kpi="uniqueVisitors"] .kpi-value')).not_to_have_text(PENDING)
    everyone = int(kpi(page, "uniqueVisitors").replace(",", ""))
    devices = page.locator('[data-panel="devices"] button.row')
    expect(devices.first).to_be_visible()
    devices.first.click()
    expect(page).to_have_url(re.compile(re.escape("filter=deviceType")))
    chip = page.locator(".chip")
    expect(chip).to_have_count(1)
    expect(page.locator('[data-kpi="uniqueVisitors"] .kpi-value')).not_to_have_text(PENDING)
    some = int(kpi(page, "uniqueVisitors").replace(",", ""))
    assert 0 < some < everyone
    shot(page, "overview-filtered")
    # the URL alone reproduces the view
    page.reload()
    expect(page.locator(".chip")).to_have_count(1)
    page.locator(".chip").click()
    expect(page.locator(".chip")).to_have_count(0)
    assert "filter=" not in page.url
    expect(page.locator('[data-kpi="uniqueVisitors"] .kpi-value')).to_have_text(f"{everyone:,}")


def test_the_dashboard_works_from_the_keyboard(page: Page) -> None:
    expect(page.locator('[data-panel="sources"] button.row').first).to_be_visible()
    # tab from the skip link through the header and the controls to the first source row
    page.locator(".skip").focus()
    for _ in range(80):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.closest('[data-panel]')?.dataset.panel")
        tag = page.evaluate("document.activeElement.className")
        if focused == "sources" and tag == "row":
            break
    else:
        pytest.fail("no source row is reachable with Tab")
    page.keyboard.press("Enter")
    expect(page.locator(".chip")).to_have_count(1)
    page.locator(".chip").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".chip")).to_have_count(0)


def test_changing_the_date_range(page: Page) -> None:
    expect(page.locator('[data-kpi="uniqueVisitors"] .kpi-value')).not_to_have_text(PENDING)
    page.get_by_label("Date range").select_option("7d")
    expect(page).to_have_url(re.compile(re.escape("period=7d")))
    expect(page.locator(".chart-card svg circle")).to_have_count(14)  # two series x 7 days
    page.get_by_label("Date range").select_option("custom")
    page.get_by_label("From", exact=True).fill("2020-01-01")
    page.get_by_label("To", exact=True).fill("2020-01-03")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(re.escape("from=2020-01-01")))
    expect(page.locator('[data-kpi="pageViews"] .kpi-value')).to_have_text("0")
    expect(page.locator(".chart-card .empty")).to_be_visible()


def test_realtime_counter_rises_within_a_second_of_an_event(
    page: Page, server: ServerProcess
) -> None:
    page.get_by_role("link", name="Realtime").click()
    expect(page.locator("#live-status")).to_have_text("Live")
    counter = page.locator('[data-live="pageViewsLastMinute"]')
    expect(counter).not_to_have_text(PENDING)
    before = int(counter.inner_text())
    send_event(server, eventType="page_view", pagePath="/live", pageTitle=HOSTILE)
    acknowledged = time.monotonic()
    expect(counter).to_have_text(str(before + 1), timeout=5000)
    elapsed = time.monotonic() - acknowledged
    assert elapsed < 1.0, f"the counter rose {elapsed:.2f}s after the event was acknowledged"
    # the hostile title is shown as text, never as markup
    item = page.locator(".stream li").first
    expect(item).to_contain_text(HOSTILE)
    assert page.locator(".stream img").count() == 0
    shot(page, "realtime")


def test_hostile_page_paths_render_as_text(page: Page, server: ServerProcess) -> None:
    send_event(server, eventType="page_view", pagePath="/" + HOSTILE, pageTitle=HOSTILE)
    server.wait_for_events(1, where="page_path LIKE '%onerror%'")
    # the hostile value in a panel row and in a filter chip (filtered to it via the URL)
    hostile_filter = "page:is:/" + HOSTILE
    page.goto(server.url + "/?" + urlencode({"period": "today", "filter": hostile_filter}))
    pages = page.locator('[data-panel="pages"]')
    expect(pages.get_by_text("/" + HOSTILE)).to_be_visible(timeout=10000)
    expect(page.locator(".chip")).to_contain_text("/" + HOSTILE)
    assert page.locator("main img").count() == 0


def test_building_a_funnel(page: Page) -> None:
    page.get_by_role("link", name="Funnels").click()
    page.get_by_label("Step 1 event").fill("page_view")
    page.get_by_label("Step 2 event").fill("product_view")
    page.get_by_label("Step 3 event").fill("affiliate_click")
    page.get_by_role("button", name="Show funnel").click()
    bars = page.locator(".funnel-bar")
    expect(bars).to_have_count(3)
    counts = [int(t.replace(",", "")) for t in page.locator(".step-visitors").all_inner_texts()]
    assert counts[0] > 0 and counts[0] >= counts[1] >= counts[2]
    assert "step=page_view" in page.url
    page.get_by_label("Name").fill("View to click")
    page.get_by_role("button", name="Save funnel").click()
    expect(page.get_by_role("link", name="View to click")).to_be_visible()
    shot(page, "funnels")


def test_exporting_a_csv(page: Page) -> None:
    page.get_by_role("link", name="Exports").click()
    with page.expect_download() as info:
        page.locator('[data-format="csv"]').click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    lines = Path(download.path()).read_text().splitlines()
    assert len(lines) > 100
    assert "eventType" in lines[0] or "event_type" in lines[0]
    shot(page, "exports")


@pytest.mark.parametrize(
    ("view", "ready"),
    [
        ("products", "table.data tbody tr"),
        ("retention", "table.retention tbody tr"),
        ("sessions", "table.data tbody tr"),
        ("settings", "#snippet"),
        ("users", "table.data tbody tr"),
        ("account", "form"),
    ],
)
def test_every_page_draws(page: Page, server: ServerProcess, view: str, ready: str) -> None:
    page.goto(f"{server.url}/{view}")
    expect(page.locator(ready).first).to_be_visible()
    expect(page.locator(".error-box")).to_have_count(0)
    shot(page, view)


def test_products_show_names_as_text(page: Page, server: ServerProcess) -> None:
    page.goto(server.url + "/products")
    first = page.locator("table.data tbody tr").first
    expect(first.locator(".product-name")).to_be_visible()
    # the demo catalogue names its products: the name is shown, the id beneath it
    name = first.locator(".product-name").inner_text()
    assert name and name != first.get_attribute("data-product")
    expect(first.locator(".product-id")).to_have_text(first.get_attribute("data-product") or "")
    send_event(
        server,
        eventType="product_view",
        pagePath="/p/hostile",
        properties={"productId": "p-hostile", "productName": HOSTILE},
    )
    server.wait_for_events(1, where="product_id = 'p-hostile'")
    page.goto(server.url + "/products?" + urlencode({"filter": "product:is:p-hostile"}))
    row = page.locator('tr[data-product="p-hostile"]')
    expect(row.locator(".product-name")).to_have_text(HOSTILE)
    assert page.locator("table.data img").count() == 0


def test_product_detail_and_dark_mode_on_a_phone(browser: Browser, server: ServerProcess) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
    tab = context.new_page()
    tab.goto(server.url + "/products")
    tab.get_by_label("E-mail").fill(EMAIL)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    first = tab.locator("table.data tbody tr a").first
    expect(first).to_be_visible()
    first.click()
    expect(tab.locator('[data-kpi="views"] .kpi-value')).not_to_have_text("0")
    assert "product=" in tab.url
    expect(tab.locator("[data-product-name]")).not_to_be_empty()
    shot(tab, "product-detail-phone-dark")
    tab.goto(server.url + "/")
    expect(tab.locator('[data-kpi="uniqueVisitors"] .kpi-value')).not_to_have_text(PENDING)
    expect(tab.locator('[data-panel="events"] .rows li').first).to_be_visible()
    expect(tab.locator('[data-panel="devices"] .rows li').first).to_be_visible()
    background = tab.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 19, 26)"
    shot(tab, "overview-phone-dark")
    context.close()


def test_security_headers_and_sign_out(page: Page, server: ServerProcess) -> None:
    response = httpx.get(server.url + "/funnels")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    # signing in from another site's page is refused (login CSRF)
    foreign = httpx.post(
        server.url + "/api/v1/auth/login",
        json={"email": EMAIL, "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert foreign.json()["error"]["code"] == "csrf_failed"
    # a change without the CSRF token is refused even with the sign-in cookie
    status = page.evaluate("fetch('/api/v1/auth/logout', {method: 'POST'}).then(r => r.status)")
    assert status == 403
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    shot(page, "login")


def test_one_visitors_journey(page: Page, server: ServerProcess) -> None:
    page.goto(server.url + "/sessions")
    first = page.locator("table.data tbody tr td a").first
    expect(first).to_be_visible()
    first.click()
    expect(page.get_by_role("heading", name="Visitor journey")).to_be_visible()
    expect(page.locator(".journey li").first).to_be_visible()
    assert "visitor=" in page.url
    shot(page, "sessions-journey")


def test_defining_starting_and_reading_an_experiment(page: Page, server: ServerProcess) -> None:
    page.get_by_role("link", name="Experiments").click()
    page.get_by_label("Key", exact=True).fill("cta-colour")
    page.get_by_label("Name", exact=True).fill("Green button")
    page.get_by_label("Variants").fill("control, green")
    page.get_by_role("button", name="Save as draft").click()
    row = page.locator('[data-experiment="cta-colour"]')
    expect(row).to_contain_text("draft")
    row.get_by_role("button", name="Start").click()
    expect(row).to_contain_text("running")
    shot(page, "experiments")
    row.get_by_role("link", name="Green button").click()
    expect(page.locator('[data-variant="control"]')).to_be_visible()
    expect(page.locator('[data-variant="green"]')).to_be_visible()
    shot(page, "experiment-results")


def test_exporting_and_erasing_a_visitor(page: Page, server: ServerProcess) -> None:
    send_event(server, eventType="page_view", pagePath="/gdpr", visitorId="v-gdpr")
    server.wait_for_events(1, where="visitor_id = 'v-gdpr'")
    page.get_by_role("link", name="Privacy tools").click()
    page.get_by_label("Id", exact=True).fill("v-gdpr")
    with page.expect_download() as info:
        page.get_by_role("button", name="Export (zip)").click()
    assert info.value.suggested_filename.endswith(".zip")
    page.get_by_role("button", name="Erase").click()
    expect(page.locator("#privacy-result table")).to_contain_text("events")
    assert server.count_events("visitor_id = 'v-gdpr'") == 0
    shot(page, "privacy")
