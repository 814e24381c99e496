"""Errors (deduplicated, capped), web vitals, slow pages, heartbeat and idle."""

from __future__ import annotations

import pytest
from tests.browser.conftest import TrackedSite, Visitor

pytestmark = pytest.mark.browser

ERRORS = """
<script>
  // thrown while the page loads, before the tracker's optional features have arrived
  setTimeout(() => { throw new Error('early failure') })
  function fail(message) { setTimeout(() => { throw new TypeError(message) }) }
</script>
<button id=same onclick="fail('same every time')">same</button>
<button id=many onclick="for (let i = 0; i < 8; i++) fail('distinct ' + i)">many</button>
<button id=reject onclick="Promise.reject(new Error('rejected'))">reject</button>
<button id=plain onclick="Promise.reject('a plain string')">plain</button>
"""


def test_errors_and_unhandled_rejections_are_captured_once_each_and_capped(
    site: TrackedSite, visitor: Visitor
) -> None:
    visitor.page.goto(site.page("errors", ERRORS, max_errors=6))
    for _ in range(3):
        visitor.page.click("#same")
    visitor.page.click("#reject")
    visitor.page.click("#plain")
    visitor.page.click("#many")
    visitor.page.wait_for_timeout(300)
    visitor.page.evaluate("sightline.getTracker().flush()")
    site.wait(6, "event_type = 'js_error'")
    errors = site.properties("js_error")
    assert len(errors) == 6  # maxErrors
    messages = [e["message"] for e in errors]
    assert messages[:5] == [
        "Uncaught Error: early failure",
        "Uncaught TypeError: same every time",
        "rejected",
        "a plain string",
        "Uncaught TypeError: distinct 0",
    ]
    early, same, rejected, plain = errors[:4]
    assert early["source"] == site.url("errors") and early["line"] > 0
    assert same["stack"].startswith("TypeError: same every time\n    at ")
    assert rejected["kind"] == "unhandledrejection" and "Error: rejected" in rejected["stack"]
    assert plain["kind"] == "unhandledrejection"


VITALS = """
<h1 id=hero style="font-size: 64px">A large headline paints the largest contentful paint</h1>
<div id=slot></div>
<button id=slow onclick="const end = performance.now() + 250; while (performance.now() < end);"
  style="margin-top: 20px">slow</button>
<p style="height: 2000px">text</p>
<script>
  setTimeout(() => {
    // a banner pushed in above the content: a layout shift
    const banner = document.createElement('div')
    banner.style.height = '150px'
    banner.textContent = 'banner'
    document.body.insertBefore(banner, document.body.firstChild)
  }, 300)
</script>
"""


def test_web_vitals_are_measured_and_sent_when_the_page_is_left(
    site: TrackedSite, visitor: Visitor
) -> None:
    visitor.page.goto(site.page("vitals", VITALS))
    visitor.page.wait_for_timeout(600)
    visitor.page.click("#slow")
    visitor.page.wait_for_timeout(200)
    visitor.page.goto(site.web.origin + "/blank")
    site.wait(1, "event_type = 'web_vitals'")
    (vitals,) = site.properties("web_vitals")
    assert set(vitals) == {"ttfb", "fcp", "lcp", "cls", "inp"}
    assert 0 <= vitals["ttfb"] <= vitals["fcp"] <= vitals["lcp"]
    assert vitals["cls"] > 0.01
    assert vitals["inp"] >= 250


def test_slow_pages_are_reported(site: TrackedSite, visitor: Visitor) -> None:
    visitor.page.goto(site.page("slow", "<p>slow</p>", delay=0.6, slow_page_threshold=400))
    visitor.wait_emitted("slow_page")
    visitor.page.goto(site.page("fast", "<p>fast</p>", slow_page_threshold=400))
    visitor.wait_emitted("page_view", 2)
    visitor.page.wait_for_timeout(300)
    visitor.page.evaluate("sightline.getTracker().flush()")
    site.wait(1, "event_type = 'slow_page'")
    (slow,) = site.properties("slow_page")
    assert slow["loadTime"] >= 600 and slow["threshold"] == 400 and slow["ttfb"] >= 600
    assert site.rows("page_path", "event_type = 'slow_page'") == [(f"{site.prefix}/slow",)]


def test_heartbeats_while_active_and_idle_periods(site: TrackedSite, visitor: Visitor) -> None:
    visitor.page.goto(
        site.page("idle", "<p>read me</p>", heartbeat_interval=1000, idle_timeout=2500)
    )
    visitor.wait_emitted("heartbeat")
    visitor.wait_emitted("idle_start")  # no input for 2.5 s
    beats = visitor.types().count("heartbeat")
    visitor.page.wait_for_timeout(2200)
    assert visitor.types().count("heartbeat") == beats  # none while idle
    visitor.page.mouse.move(100, 100)
    visitor.page.mouse.move(200, 150)
    visitor.wait_emitted("idle_end")
    visitor.wait_emitted("heartbeat", beats + 1)
    visitor.page.evaluate("sightline.getTracker().flush()")
    site.wait(1, "event_type = 'idle_end'")
    (idle,) = site.properties("idle_end")
    assert idle["idleTime"] >= 4500
