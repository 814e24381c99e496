"""The demo traffic generator: valid, deterministic events with the shape of real traffic."""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import uuid
from typing import Any

import msgspec
import pytest
import ua_parser

from sightline.demo import (
    DEVICES,
    PRODUCTS,
    REQUEST_EVENTS,
    DemoRequest,
    estimate_requests,
    generate_traffic,
)
from sightline.events import Event, decode_event

NOW = 1_717_000_000_000  # a fixed "now" (2024-05-29T16:26:40Z) makes runs comparable
DAY = 86_400_000
WIRE_NAMES = {field.encode_name for field in msgspec.structs.fields(Event)}
SERVER_FIELDS = {
    "siteId",
    "serverTimestamp",
    "country",
    "region",
    "city",
    "referrerSource",
    "channel",
}


@pytest.fixture(scope="module")
def month() -> list[DemoRequest]:
    """The default demo: 30 days, 500 visitors."""
    return list(generate_traffic(days=30, visitors=500, now_ms=NOW))


@pytest.fixture(scope="module")
def events(month: list[DemoRequest]) -> list[dict[str, Any]]:
    return [event for request in month for event in request.events]


def by_type(events: list[dict[str, Any]]) -> collections.Counter[str]:
    return collections.Counter(e["eventType"] for e in events)


def session_starts(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["eventType"] == "session_start"]


def test_same_seed_same_events_other_seed_other_events() -> None:
    def encoded(seed: int) -> bytes:
        requests = generate_traffic(days=3, visitors=40, seed=seed, now_ms=NOW)
        return msgspec.json.encode([(r.user_agent, r.visitor_id, r.events) for r in requests])

    first = encoded(11)
    assert first == encoded(11)
    assert first != encoded(12)


def test_default_size_is_tens_of_thousands_of_events(events: list[dict[str, Any]]) -> None:
    assert 50_000 <= len(events) <= 150_000
    assert len({e["visitorId"] for e in events}) == 500


def test_every_event_is_valid_for_the_collector(events: list[dict[str, Any]]) -> None:
    for event in events:
        decoded = decode_event(msgspec.json.encode(event))
        assert decoded.event_id == event["eventId"]
        assert set(event) <= WIRE_NAMES, set(event) - WIRE_NAMES
        assert not set(event) & SERVER_FIELDS  # country and the like are the server's job
    types = by_type(events)
    # All the kinds of events the demo promises, typed ones included.
    for name in (
        "session_start", "session_end", "page_view", "page_exit", "heartbeat", "scroll_depth",
        "product_view", "product_hover", "product_click", "product_compare", "product_wishlist",
        "affiliate_click", "affiliate_hover", "copied_coupon", "search_query", "search_filter",
        "zero_results", "js_error",
    ):  # fmt: skip
        assert types[name] > 0, name


def test_every_event_carries_the_tracker_context(events: list[dict[str, Any]]) -> None:
    for event in events:
        # the tracker's form: the page load's UUID and the event's number on that page
        page, count = event["eventId"].split(".")
        assert uuid.UUID(page).version == 4 and int(count) >= 1
        for key in ("sessionId", "visitorId", "userAgent", "screenResolution", "viewport"):
            assert event[key], key
        assert event["deviceType"] in {"desktop", "mobile", "tablet"}
        assert event["pageUrl"].startswith("https://demo.sightline.local/")
        assert event["pageUrl"].split("?")[0].endswith(event["pagePath"])
        assert event["pageTitle"]
        assert "referrer" in event
    assert len({e["eventId"] for e in events}) == len(events)
    pages = {e["eventId"].split(".")[0] for e in events}
    assert len(events) > 2 * len(pages)  # a page load's events share its UUID


def test_requests_hold_one_session_in_time_order(month: list[DemoRequest]) -> None:
    last_seen: dict[str, int] = {}
    for request in month:
        assert 1 <= len(request.events) <= REQUEST_EVENTS
        assert {e["sessionId"] for e in request.events} == {request.events[0]["sessionId"]}
        assert {e["userAgent"] for e in request.events} == {request.user_agent}
        assert {e["visitorId"] for e in request.events} == {request.visitor_id}
        for event in request.events:
            session = event["sessionId"]
            assert event["timestamp"] > last_seen.get(session, 0)
            last_seen[session] = event["timestamp"]


def test_visitors_requests_are_consecutive(month: list[DemoRequest]) -> None:
    order = [visitor for visitor, _ in itertools.groupby(r.visitor_id for r in month)]
    assert len(order) == len(set(order)) == 500


def test_timestamps_lie_in_the_requested_window(events: list[dict[str, Any]]) -> None:
    stamps = [e["timestamp"] for e in events]
    assert min(stamps) > NOW - 30 * DAY
    assert max(stamps) <= NOW
    # Spread over the whole window, not bunched at one end.
    days_with_traffic = {(NOW - s) // DAY for s in stamps}
    assert days_with_traffic == set(range(30))


def test_a_short_window_stays_inside_it() -> None:
    events = [e for r in generate_traffic(days=1, visitors=30, now_ms=NOW) for e in r.events]
    assert events
    assert all(NOW - DAY < e["timestamp"] <= NOW for e in events)


def test_funnel_loses_visitors_at_every_step(events: list[dict[str, Any]]) -> None:
    types = by_type(events)
    assert types["page_view"] > types["product_view"] > types["affiliate_click"] > 0

    sessions: dict[str, set[str]] = collections.defaultdict(set)
    for event in events:
        if event["eventType"] == "page_view":
            sessions[event["sessionId"]].add(event["pagePath"].split("/")[1] or "home")
        elif event["eventType"] in ("product_view", "affiliate_click"):
            sessions[event["sessionId"]].add(event["eventType"])
    home = {s for s, steps in sessions.items() if "home" in steps}
    category = {s for s in home if "category" in sessions[s]}
    viewed = {s for s in category if "product_view" in sessions[s]}
    clicked = {s for s in viewed if "affiliate_click" in sessions[s]}
    assert len(home) > len(category) > len(viewed) > len(clicked) > 0
    # Clicks convert into commission now and then, never always.
    clicks = [e["properties"] for e in events if e["eventType"] == "affiliate_click"]
    paid = [c for c in clicks if "revenue" in c]
    assert 0 < len(paid) < len(clicks) / 4
    assert all(0 < c["revenue"] < c["price"] for c in paid)
    assert {c["platform"] for c in clicks} >= {"Amazon", "eBay", "Walmart"}


def test_devices_and_user_agents_look_like_real_browsers(events: list[dict[str, Any]]) -> None:
    starts = session_starts(events)
    devices = collections.Counter(e["deviceType"] for e in starts)
    assert 0.4 < devices["mobile"] / len(starts) < 0.7
    assert devices["desktop"] / len(starts) > 0.25
    assert devices["tablet"] > 0
    os_names = {"Mac OS X": "macOS"}
    for device in DEVICES:
        parsed = ua_parser.parse(device.user_agent)
        assert parsed.user_agent is not None
        assert parsed.os is not None
        assert parsed.user_agent.family == device.browser
        assert os_names.get(parsed.os.family, parsed.os.family) == device.os
        assert parsed.device is None or parsed.device.family != "Spider"
    assert len({e["userAgent"] for e in starts}) >= 12


def test_visits_come_from_many_sources(events: list[dict[str, Any]]) -> None:
    starts = session_starts(events)
    referrers = collections.Counter(e["referrer"] for e in starts)
    assert {
        "https://www.google.com/",
        "https://www.bing.com/",
        "https://duckduckgo.com/",
        "https://l.facebook.com/",
        "https://www.reddit.com/",
    } <= set(referrers)
    assert 0.25 < referrers[""] / len(starts) < 0.7  # direct and newsletter
    tagged = [e for e in starts if "utmSource" in e]
    assert 0.05 < len(tagged) / len(starts) < 0.4
    assert {e["utmSource"] for e in tagged} >= {"newsletter", "google", "facebook"}
    # The landing page URL carries the tags, later pages do not; events keep them.
    for event in tagged:
        assert f"utm_source={event['utmSource']}" in event["pageUrl"]
    later = [e for e in events if "utmSource" in e and e["eventType"] == "page_view"]
    assert any("utm_source" not in e["pageUrl"] for e in later)


def test_visitors_come_back(events: list[dict[str, Any]]) -> None:
    sessions: dict[str, set[str]] = collections.defaultdict(set)
    for event in session_starts(events):
        sessions[event["visitorId"]].add(event["sessionId"])
    returning = sum(1 for s in sessions.values() if len(s) > 1)
    assert 0.3 < returning / len(sessions) < 0.9


def test_more_traffic_on_weekdays_and_in_the_evening(events: list[dict[str, Any]]) -> None:
    starts = [
        dt.datetime.fromtimestamp(e["timestamp"] / 1000, dt.UTC) for e in session_starts(events)
    ]
    weekday_days = {s.date() for s in starts if s.weekday() < 5}
    weekend_days = {s.date() for s in starts if s.weekday() >= 5}
    per_weekday = sum(1 for s in starts if s.weekday() < 5) / len(weekday_days)
    per_weekend_day = sum(1 for s in starts if s.weekday() >= 5) / len(weekend_days)
    assert per_weekday > per_weekend_day * 1.1
    hours = collections.Counter(s.hour for s in starts)
    evening = sum(hours[h] for h in (19, 20, 21))
    night = sum(hours[h] for h in (2, 3, 4))
    morning = sum(hours[h] for h in (7, 8, 9))
    assert evening > 2 * morning > 2 * night


def test_typed_properties_carry_catalogue_values(events: list[dict[str, Any]]) -> None:
    catalogue = {p.id: p for p in PRODUCTS}
    unanswered = {e["properties"]["query"] for e in events if e["eventType"] == "zero_results"}
    assert 55 <= len(catalogue) <= 65
    for event in events:
        props = event["properties"]
        if event["eventType"] == "product_view":
            product = catalogue[props["productId"]]
            assert props["productPrice"] == product.price
            assert event["pagePath"] == f"/product/{product.slug}"
            assert props["source"] in {"direct", "search", "category", "recommendation", "related"}
        elif event["eventType"] == "affiliate_click":
            product = catalogue[props["productId"]]
            assert props["platform"] in {o.platform for o in product.offers}
            assert props["position"] in {"hero", "sidebar", "inline", "sticky"}
            assert props["price"] > 0
        elif event["eventType"] == "scroll_depth":
            assert props["depth"] in {25, 50, 75, 90, 100}
            assert props["pixelDepth"] <= props["contentHeight"]
        elif event["eventType"] == "search_query":
            assert (props["resultsCount"] == 0) == (props["query"] in unanswered)


def test_estimate_is_close_to_the_real_count(month: list[DemoRequest]) -> None:
    estimate = estimate_requests(30, 500)
    assert 0.8 * len(month) < estimate < 1.25 * len(month)
    assert estimate_requests(5, 0) == 0


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="days"):
        list(generate_traffic(days=0, visitors=5))
