"""Delivery: batches, text/plain bodies, flush when the tab is hidden or closed, retries
with backoff, the offline queue, and first-party serving under a path of the site."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from tests.browser.conftest import TrackedSite, Visitor
from tests.browser.testsite import PROXY_PREFIX

pytestmark = pytest.mark.browser

NO_TIMER = {"flush_interval": 600_000, "batch_size": 500}
BUTTONS = "".join(
    f'<button id=b{i} data-track="tap" data-track-n="{i}">b{i}</button>' for i in range(12)
)
#: The page's visibility as the test sets it. Headless Chromium keeps every tab visible
#: (there is no window to switch away from), so the test plays the browser's part:
#: visibilityState reads window.__hidden and the test dispatches visibilitychange.
VISIBILITY = """
Object.defineProperty(Document.prototype, 'visibilityState', {
  configurable: true, get: () => (window.__hidden ? 'hidden' : 'visible') })
Object.defineProperty(Document.prototype, 'hidden', {
  configurable: true, get: () => !!window.__hidden })
window.__setHidden = (hidden) => {
  window.__hidden = hidden; document.dispatchEvent(new Event('visibilitychange')) }
"""


def click_all(visitor: Visitor, count: int = 12) -> None:
    for i in range(count):
        visitor.page.click(f"#b{i}")


def test_events_go_in_batches_of_text_plain_without_preflight(
    site: TrackedSite, visitor: Visitor
) -> None:
    preflights: list[str] = []
    visitor.page.on(
        "request", lambda r: r.method == "OPTIONS" and preflights.append(r.url) and None
    )
    visitor.page.goto(site.page("batches", BUTTONS, batch_size=5, flush_interval=600_000))
    with visitor.page.expect_request(lambda r: r.method == "POST") as first:
        click_all(visitor, 3)  # with session_start and page_view: a batch of 5
    assert first.value.headers["content-type"].startswith("text/plain")
    click_all(visitor)
    site.wait(2 + 3 + 12 - 2)  # all but the two that wait for the next batch
    assert [len(body["events"]) for body in visitor.sent] == [5, 5, 5]
    assert not preflights
    assert site.count() == 15


def test_hidden_tab_sends_what_is_queued_and_stops_heartbeats(
    site: TrackedSite, visitor: Visitor
) -> None:
    visitor.context.add_init_script(VISIBILITY)
    visitor.page.goto(site.page("hide", BUTTONS, heartbeat_interval=1000, **NO_TIMER))
    click_all(visitor)
    visitor.wait_emitted("heartbeat")
    assert site.count() == 0  # nothing sent yet: no timer, batch not full
    queued = len(visitor.emitted) + 1  # and the web vitals of the page, sent on hiding
    visitor.page.evaluate("__setHidden(true)")
    assert site.wait(queued) == queued
    beats = visitor.types().count("heartbeat")
    visitor.page.wait_for_timeout(2500)
    assert visitor.types().count("heartbeat") == beats  # none while hidden
    visitor.page.evaluate("__setHidden(false)")
    visitor.wait_emitted("heartbeat", beats + 1)


def test_closing_the_tab_sends_what_is_queued(site: TrackedSite, visitor: Visitor) -> None:
    visitor.page.goto(site.page("close", BUTTONS, **NO_TIMER))
    click_all(visitor)
    emitted = {e["eventId"] for e in visitor.emitted}
    visitor.page.close(run_before_unload=True)
    site.wait(len(emitted) + 1, "event_type != 'page_exit'")
    site.wait(1, "event_type = 'page_exit'")
    stored = {row[0] for row in site.rows("event_id")}
    assert emitted <= stored
    assert site.types().count("tap") == 12


def test_offline_events_wait_and_are_delivered_when_back_online(
    site: TrackedSite, visitor: Visitor
) -> None:
    visitor.page.goto(site.page("offline", BUTTONS, batch_size=5, flush_interval=200))
    visitor.page.evaluate("sightline.getTracker().flush()")
    site.wait(2)
    visitor.context.set_offline(True)
    click_all(visitor)
    visitor.page.wait_for_timeout(1500)  # batches fail, the tracker backs off
    assert site.count("event_type = 'tap'") == 0
    visitor.context.set_offline(False)  # the browser's `online` event: send now
    assert site.wait(14, timeout=10) == 14
    assert site.types().count("tap") == 12


def test_offline_queue_survives_the_page_only_with_consent(
    site: TrackedSite, new_visitor: Callable[..., Visitor]
) -> None:
    page_url = site.page("queue", BUTTONS, **NO_TIMER)
    for consent, kept in [(True, 12), (False, 0)]:
        visitor = new_visitor()
        visitor.page.goto(page_url)
        if consent:
            visitor.page.evaluate("sightline.getTracker().setConsent({analytics: true})")
        visitor.page.evaluate("sightline.getTracker().flush()")
        visitor.context.set_offline(True)
        click_all(visitor)
        taps = site.count("event_type = 'tap'")
        other = visitor.context.new_page()
        visitor.page.close(run_before_unload=True)  # offline: nothing can be sent
        while not visitor.page.is_closed():  # (closing runs the page's handlers first)
            other.wait_for_timeout(50)
        visitor.context.set_offline(False)
        other.goto(site.web.origin + "/blank")  # the site's origin, without the tracker
        # Chromium hands a closing page's localStorage writes to other pages of the origin
        # asynchronously: give them a moment to arrive (longer on a busy machine).
        stored = None
        for _ in range(200 if consent else 40):
            stored = other.evaluate("localStorage.getItem('sl_q')")
            if stored is not None:
                break
            other.wait_for_timeout(50)
        assert (stored is not None) == consent
        other.goto(page_url)  # the next page load sends what the last one could not
        other.evaluate("sightline.getTracker().flush()")
        # With consent every kept tap arrives; without, nothing was kept on the device
        # (checked above) — whether the browser still got some out before going away
        # is the browser's business, so only "nothing lost with consent" is counted.
        assert site.wait(taps + kept, "event_type = 'tap'") >= taps + kept
        if consent:
            assert other.evaluate("localStorage.getItem('sl_q')") is None


def test_events_kept_while_hidden_offline_go_when_back_online(
    site: TrackedSite, visitor: Visitor
) -> None:
    """With consent, a tab hidden while offline keeps what it could not send on the device;
    back online, the same page sends it."""
    visitor.context.add_init_script(VISIBILITY)
    visitor.page.goto(site.page("hidden-offline", BUTTONS, **NO_TIMER))
    visitor.page.evaluate("sightline.getTracker().setConsent({analytics: true})")
    visitor.context.set_offline(True)
    click_all(visitor)
    visitor.page.evaluate("__setHidden(true)")
    kept = visitor.page.evaluate("JSON.parse(localStorage.getItem('sl_q')).length")
    assert kept == len(visitor.emitted)
    visitor.context.set_offline(False)
    assert site.wait(kept) == kept
    assert visitor.page.evaluate("localStorage.getItem('sl_q')") is None


def test_failed_batches_are_retried_with_backoff(site: TrackedSite, visitor: Visitor) -> None:
    site.web.proxied.clear()
    site.web.fail_next = 3
    src = f"{site.web.origin}{PROXY_PREFIX}sdk/v1/sightline.js"
    visitor.page.goto(site.page("retry", BUTTONS, src=src, batch_size=2, flush_interval=100))
    assert site.wait(2, timeout=20) == 2
    posts = [(t, status) for t, method, _, status in site.web.proxied if method == "POST"]
    assert [status for _, status in posts][:4] == [503, 503, 503, 204]
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(posts[:4])]
    # 1 s, 2 s, 4 s between attempts (timers fire a little late on a busy machine)
    for gap, backoff in zip(gaps, [1, 2, 4], strict=True):
        assert backoff * 0.9 <= gap < backoff + 1.5, gaps


def test_first_party_serving_under_a_path_of_the_site(site: TrackedSite, visitor: Visitor) -> None:
    """The tracker and its endpoint on the site's own domain, under /insights/ (a reverse
    proxy): no request leaves the site's origin, and the endpoint follows the script's path."""
    site.web.proxied.clear()
    src = f"{site.web.origin}{PROXY_PREFIX}sdk/v1/sightline.js"
    visitor.page.goto(site.page("first-party", BUTTONS, src=src))
    visitor.page.click("#b0")
    visitor.page.evaluate("sightline.getTracker().flush()")
    assert site.wait(3) == 3
    paths = {path for _, _, path, _ in site.web.proxied}
    assert "/api/v1/analytics/collect" in paths
    assert any(path.startswith("/sdk/v1/sightline-extras.js") for path in paths)
    assert visitor.page.evaluate("sightline.getTracker().config.endpoint") == (
        f"{site.web.origin}{PROXY_PREFIX}api/v1/analytics/collect"
    )
