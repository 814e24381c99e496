"""Capture accuracy: a scripted visitor makes more than a thousand interactions across
page loads, single-page-app navigations and affiliate links that leave the site; at
least 99.9 % of the events the tracker emitted must be stored, and none twice.

What was emitted is counted by the tracker's debug hook (the `sightline:event` window
event). Its listener here writes each eventId to the site's localStorage, which survives
the page being unloaded (a Playwright binding called while a page unloads is lost).
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from tests.browser.conftest import TrackedSite, Visitor

pytestmark = pytest.mark.browser

LEDGER = """
addEventListener('sightline:event', (e) => {
  localStorage.setItem('ledger:' + e.detail.eventId, e.detail.eventType)
})
"""
BUTTONS = 40
SHOP = (
    "<style>button { width: 90px; height: 28px; margin: 2px }</style><div id=grid>"
    + "".join(
        f'<button class=tap data-track="tap" data-track-n="{i}">tap {i}</button>'
        for i in range(BUTTONS)
    )
    + "</div><div>"
    + "".join(
        f"<button class=route onclick=\"history.pushState({{}}, '', '__PREFIX__/shop/p/{i}')\">"
        f"p{i}</button>"
        for i in range(6)
    )
    + "</div>"
    + '<a id=deal data-affiliate data-product-id="deal-1" href="__PARTNER__/deal">Deal</a> '
    + '<a id=other href="__PREFIX__/other">Other page</a>'
    + "<form id=ask onsubmit='event.preventDefault()'><input id=q name=q><button id=send>Ask"
    + "</button></form><div style='height: 3000px'>more</div>"
)
OTHER = (
    "".join(f'<button class=tap data-track="tap2">o{i}</button>' for i in range(10))
    + ' <a id=back href="__PREFIX__/shop">Back to the shop</a>'
)


class Script:
    """The visitor's moves, counted."""

    def __init__(self, visitor: Visitor, site: TrackedSite) -> None:
        self.page = visitor.page
        self.site = site
        self.interactions = 0
        self.loads = 0
        self.routes = 0
        self.rng = random.Random(7)  # a repeatable visitor

    def centres(self, selector: str) -> list[tuple[float, float]]:
        boxes: list[dict[str, Any]] = self.page.evaluate(
            "(s) => [...document.querySelectorAll(s)].map((e) => e.getBoundingClientRect())"
            ".map((r) => ({x: r.x + r.width / 2, y: r.y + r.height / 2}))",
            selector,
        )
        return [(b["x"], b["y"]) for b in boxes]

    def click(self, point: tuple[float, float]) -> None:
        self.page.mouse.click(*point)
        self.interactions += 1

    def tap_around(self, selector: str, times: int) -> None:
        points = self.centres(selector)
        for _ in range(times):
            self.click(self.rng.choice(points))

    def load(self, url: str) -> None:
        self.page.goto(url)
        self.loads += 1
        self.interactions += 1

    def shop_visit(self, taps: int) -> None:
        self.tap_around(".tap", taps)
        for route in self.rng.sample(self.centres(".route"), 3):
            self.click(route)
            self.routes += 1
            self.tap_around(".tap", taps // 4)
        self.page.mouse.move(300, 300)
        for _ in range(8):
            self.page.mouse.wheel(0, 400)
            self.interactions += 1
        self.page.evaluate("window.scrollTo(0, 0)")
        self.click(self.centres("#q")[0])
        self.page.keyboard.type("walnut desk", delay=0)
        self.interactions += len("walnut desk")
        if self.rng.random() < 0.5:
            self.click(self.centres("#send")[0])


def test_at_least_999_in_1000_emitted_events_are_stored_and_none_twice(
    site: TrackedSite, visitor: Visitor
) -> None:
    partner = site.web.partner
    shop_html = SHOP.replace("__PREFIX__", site.prefix).replace("__PARTNER__", partner)
    shop = site.page("shop", shop_html, spa=True)
    site.page("other", OTHER.replace("__PREFIX__", site.prefix))
    visitor.context.add_init_script(LEDGER)
    script = Script(visitor, site)
    started = time.monotonic()

    for round_ in range(8):
        script.load(shop)
        script.shop_visit(taps=60)
        if round_ % 2 == 0:
            # an affiliate link: the visitor leaves for the partner at once
            script.click(script.centres("#deal")[0])
            visitor.page.wait_for_url(f"{partner}/deal")
        else:
            script.click(script.centres("#other")[0])
            visitor.page.wait_for_url(site.url("other"))
            script.loads += 1
            script.tap_around(".tap", 25)
            script.click(script.centres("#back")[0])
            visitor.page.wait_for_url(shop)
            script.loads += 1
            script.tap_around(".tap", 20)
    visitor.page.goto(site.web.origin + "/blank")  # the last page is left too

    ledger: dict[str, str] = visitor.page.evaluate(
        "Object.fromEntries(Object.keys(localStorage).filter((k) => k.startsWith('ledger:'))"
        ".map((k) => [k.slice(7), localStorage.getItem(k)]))"
    )
    emitted = set(ledger)
    site.wait(len(emitted), timeout=60)
    stored = dict(
        site.server.query(
            f"SELECT event_id, count(*) FROM events WHERE site_id = '{site.id}' GROUP BY 1"
        )
    )
    delivered = emitted & set(stored)
    ratio = len(delivered) / len(emitted)
    print(
        f"\n{script.interactions} interactions, {script.loads} page loads, {script.routes} SPA "
        f"navigations in {time.monotonic() - started:.1f}s: {len(emitted)} events emitted, "
        f"{len(delivered)} stored ({ratio:.4%}), missing: "
        f"{sorted(ledger[i] for i in emitted - delivered)}"
    )
    assert script.interactions >= 1000
    assert ratio >= 0.999
    assert all(count == 1 for count in stored.values())  # none twice
    assert set(stored) <= emitted  # nothing that was not emitted
    live = {e["eventId"] for e in visitor.emitted}
    assert live <= emitted
    types = set(ledger.values())
    assert {"page_view", "page_exit", "tap", "tap2", "affiliate_click", "scroll_depth"} <= types
    assert {"form_start", "form_submit", "form_abandon", "web_vitals"} <= types
