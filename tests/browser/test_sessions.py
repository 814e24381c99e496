"""Sessions: 30 minutes of inactivity end one, the site's tabs share one when consent
allows storage, a cookieless visit keeps its session across its own pages; event ids."""

from __future__ import annotations

import re

import pytest
from tests.browser.conftest import TrackedSite, Visitor

pytestmark = pytest.mark.browser

BUTTON = '<button id=go data-track="tap">go</button> <a id=next href="second">second</a>'
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
#: An event id: its page load's random UUID and the event's number on that page.
EVENT_ID = re.compile(rf"^({UUID4})\.([1-9][0-9]*)$")


@pytest.mark.parametrize("consent", [True, False], ids=["with-consent", "cookieless"])
def test_thirty_minutes_without_events_end_the_session(
    site: TrackedSite, visitor: Visitor, consent: bool
) -> None:
    visitor.page.clock.install()
    visitor.page.goto(site.page("session", BUTTON))
    if consent:
        visitor.page.evaluate("sightline.getTracker().setConsent({analytics: true})")
    visitor.page.click("#go")
    visitor.page.clock.fast_forward("29:00")
    visitor.page.click("#go")  # 29 minutes: the same session
    visitor.page.clock.fast_forward("31:00")
    visitor.page.click("#go")
    visitor.wait_emitted("session_end")
    visitor.wait_emitted("tap", 3)
    events = visitor.emitted
    types = [e["eventType"] for e in events]
    assert types.count("session_start") == 2 and types.count("session_end") == 1
    end = events[types.index("session_end")]
    start = events[types.index("session_start", types.index("session_end"))]
    assert types.index("session_end") < types.index("session_start", 1)
    before = events[: types.index("session_end")]
    after = events[types.index("session_start", 1) :]
    # the old session ends when its last event happened, 29 minutes in
    assert end["timestamp"] == before[-1]["timestamp"]
    assert end["properties"]["duration"] >= 29 * 60
    if consent:
        # (the page view before consent was given has no ids)
        old = {e["sessionId"] for e in before if e["sessionId"]}
        assert old == {end["sessionId"]}
        assert {e["sessionId"] for e in after} == {start["sessionId"]} != old
    else:
        assert {e["sessionId"] for e in events} == {""}
    visitor.page.evaluate("sightline.getTracker().flush()")
    assert site.wait(len(events)) == len(events)


def test_the_sites_tabs_share_one_session_with_consent(site: TrackedSite, visitor: Visitor) -> None:
    url = site.page("tabs", BUTTON)
    visitor.page.goto(url)
    visitor.page.evaluate("sightline.getTracker().setConsent({analytics: true})")
    visitor.page.click("#go")
    second = visitor.context.new_page()
    second.goto(url)
    second.click("#go")
    visitor.wait_emitted("tap", 2)
    # (the first page view, before consent was given, has no ids)
    assert [e["visitorId"] for e in visitor.emitted[:2]] == ["", ""]
    ids = {(e["visitorId"], e["sessionId"]) for e in visitor.emitted[2:]}
    assert len(ids) == 1 and all(ids.pop())
    assert len(visitor.emitted[2:]) >= 3  # a tap in the first tab; a view and a tap in the second
    assert visitor.types().count("session_start") == 1


def test_a_cookieless_visit_keeps_its_session_across_its_pages(
    site: TrackedSite, visitor: Visitor
) -> None:
    visitor.page.goto(site.page("first", BUTTON))
    site.page("second", BUTTON)
    visitor.page.click("#next")
    visitor.page.wait_for_url(site.url("second"))
    visitor.wait_emitted("page_view", 2)
    visitor.page.reload()
    visitor.wait_emitted("page_view", 3)
    assert visitor.types().count("session_start") == 1
    visitor.page.goto(site.web.origin + "/blank")
    site.wait(1, "event_type = 'page_exit'")
    # the server's cookieless identity puts all of it in one session too
    assert len(set(site.rows("session_id"))) == 1


def test_event_ids_are_a_page_uuid_and_a_count_also_without_crypto_random_uuid(
    site: TrackedSite, visitor: Visitor
) -> None:
    """An event id is its page load's random UUID and a count: unique, and its repeated
    part costs the archive little. crypto.randomUUID exists only in secure contexts;
    elsewhere the UUIDs come from blob URLs (here the page has randomUUID removed)."""
    visitor.page.goto(site.page("ids", BUTTON))
    visitor.page.evaluate("sightline.getTracker().setConsent({analytics: true})")
    visitor.page.click("#go")
    visitor.context.add_init_script("delete Crypto.prototype.randomUUID")
    visitor.page.evaluate("localStorage.removeItem('sl_s')")
    visitor.page.reload()
    assert visitor.page.evaluate("typeof crypto.randomUUID") == "undefined"
    for _ in range(20):
        visitor.page.click("#go")
    visitor.wait_emitted("tap", 21)
    ids = [e["eventId"] for e in visitor.emitted]
    assert len(set(ids)) == len(ids)
    parts = [EVENT_ID.match(i) for i in ids]
    assert all(parts), ids
    # two page loads, each numbering its events from 1
    pages = list(dict.fromkeys(p.group(1) for p in parts if p))
    assert len(pages) == 2
    for page in pages:
        counts = [int(p.group(2)) for p in parts if p and p.group(1) == page]
        assert counts == list(range(1, len(counts) + 1))
    # the session started after the reload, without randomUUID, has a UUID too
    stored = visitor.page.evaluate("JSON.parse(localStorage.getItem('sl_s')).id")
    assert re.fullmatch(UUID4, stored)
    visitor.page.evaluate("sightline.getTracker().flush()")
    assert site.wait(len(ids)) >= len(ids)
