"""Page views on load and on single-page-app navigation; page exits; scroll milestones."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.browser.conftest import TrackedSite, Visitor

pytestmark = pytest.mark.browser

SPA = """
<nav>
  <button id=push
    onclick="history.pushState({}, '', 'products'); document.title = 'Products'">push</button>
  <button id=replace onclick="history.replaceState({}, '', 'products?sort=price')">replace</button>
  <button id=same onclick="history.replaceState({x: 1}, '', location.href)">same URL</button>
  <button id=hash onclick="location.hash = 'reviews'">hash</button>
  <button id=back onclick="history.back()">back</button>
</nav>
"""


def test_page_views_on_load_and_on_every_kind_of_spa_navigation(
    site: TrackedSite, visitor: Visitor
) -> None:
    url = site.page("app", SPA, spa=True, title="Home")
    visitor.page.goto(url + "?utm_source=newsletter&utm_medium=email")
    visitor.wait_emitted("page_view")
    for button, views in [("push", 2), ("replace", 3), ("same", 3), ("hash", 4), ("back", 5)]:
        visitor.page.click(f"#{button}")
        visitor.page.wait_for_timeout(100)
        visitor.wait_emitted("page_view", views)
    assert visitor.types().count("page_view") == 5  # the same-URL replaceState is not a view
    visitor.page.goto("about:blank")  # leaving: page_exit, and everything is sent

    site.wait(len(visitor.emitted))
    rows = site.rows("event_type, page_url, referrer, page_title", "event_type = 'page_view'")
    prefix = site.url("app")
    assert [(url, ref) for _, url, ref, _ in rows] == [
        (f"{prefix}?utm_source=newsletter&utm_medium=email", ""),
        (f"{site.web.origin}{site.prefix}/products", rows[0][1]),
        (f"{site.web.origin}{site.prefix}/products?sort=price", rows[1][1]),
        (f"{site.web.origin}{site.prefix}/products?sort=price#reviews", rows[2][1]),
        (f"{site.web.origin}{site.prefix}/products?sort=price", rows[3][1]),
    ]
    assert rows[1][3] == "Products"  # the title the router set after pushState
    # one session; one page_exit per page left, each with the page it describes
    assert site.types().count("session_start") == 1
    exits = site.rows("page_url", "event_type = 'page_exit'")
    assert [u for (u,) in exits] == [url for _, url, _, _ in rows]
    # UTM parameters of the landing page, read by the server from its URL
    first = site.rows("utm_source, utm_medium", "event_type = 'page_view'")[0]
    assert first == ("newsletter", "email")


def test_every_event_carries_page_screen_and_viewport(
    site: TrackedSite, new_visitor: Callable[..., Visitor]
) -> None:
    visitor = new_visitor(
        viewport={"width": 900, "height": 700}, screen={"width": 1920, "height": 1080}
    )
    visitor.page.goto(site.page("context", "<p>hello</p>", title="Context page"))
    visitor.wait_emitted("page_view")
    visitor.page.evaluate("sightline.getTracker().flush()")
    site.wait(2)
    (row,) = site.rows(
        "page_path, page_title, viewport, screen_resolution, device_type, browser, event_id",
        "event_type = 'page_view'",
    )
    assert row[:4] == (f"{site.prefix}/context", "Context page", "900x700", "1920x1080")
    assert row[4] == "desktop"
    assert "Chrome" in row[5]  # parsed by the server from the User-Agent header
    assert row[6] == visitor.emitted[-1]["eventId"]
    body = visitor.sent[0]
    assert body["siteKey"] == site.key
    assert body["metadata"]["sdkVersion"] == visitor.page.evaluate("sightline.version")
    assert abs(body["metadata"]["sentAt"] - visitor.emitted[-1]["timestamp"]) < 10_000


TALL = "<div style='height: 5000px; background: linear-gradient(#fff, #ccc)'>tall</div>"
SPA_TALL = TALL + "<button id=next onclick=\"history.pushState({}, '', 'next')\">next</button>"


def scroll_through(visitor: Visitor, steps: int = 12) -> None:
    for _ in range(steps):
        visitor.page.mouse.wheel(0, 500)
        visitor.page.wait_for_timeout(40)


def test_scroll_milestones_are_sent_exactly_once_per_page(
    site: TrackedSite, visitor: Visitor
) -> None:
    visitor.page.goto(site.page("long", SPA_TALL, spa=True))
    visitor.wait_emitted("page_view")
    visitor.page.mouse.move(400, 300)
    scroll_through(visitor)
    # back up and down again: nothing new
    visitor.page.evaluate("window.scrollTo(0, 0)")
    visitor.page.wait_for_timeout(100)
    scroll_through(visitor)
    # one jump from top to bottom passes every milestone at once
    visitor.page.evaluate("window.scrollTo(0, 0)")
    visitor.page.evaluate("history.pushState({}, '', 'next')")
    visitor.wait_emitted("page_view", 2)
    visitor.page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    visitor.wait_emitted("scroll_depth", 10)
    visitor.page.wait_for_timeout(200)
    visitor.page.goto("about:blank")

    site.wait(len(visitor.emitted))
    depths = site.rows("page_path, properties->>'depth'", "event_type = 'scroll_depth'")
    # (one scroll that passes several milestones sends them in the same millisecond)
    first = sorted(int(float(d)) for path, d in depths if path.endswith("/long"))
    second = sorted(int(float(d)) for path, d in depths if path.endswith("/next"))
    assert first == [25, 50, 75, 90, 100]
    assert second == [25, 50, 75, 90, 100]
    exits = site.properties("page_exit")
    assert [e["maxDepth"] for e in exits] == [100, 100]
