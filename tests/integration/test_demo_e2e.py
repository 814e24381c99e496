"""The demo traffic through a real server: what the dashboard shows is what was generated."""

from __future__ import annotations

import collections
import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from sightline.demo import DemoError, generate_traffic, send_traffic
from sightline.events.types import PASSIVE_TYPES
from tests.support.server import ServerProcess, running_server

DOMAIN = "demo.sightline.local"


def expected_totals(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The dashboard's metrics counted straight from the generated events (docs/metrics.md)."""
    sessions: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for event in events:
        sessions[event["sessionId"]].append(event)
    kinds = collections.Counter(e["eventType"] for e in events)
    revenue = sum(
        round(e["properties"]["revenue"] * 100)
        for e in events
        if e["eventType"] == "affiliate_click" and "revenue" in e["properties"]
    )
    not_interactions = PASSIVE_TYPES | {"page_view"}
    bounces = sum(
        1
        for items in sessions.values()
        if sum(1 for e in items if e["eventType"] == "page_view") <= 1
        and not any(e["eventType"] not in not_interactions for e in items)
    )
    durations = [
        (max(e["timestamp"] for e in items) - min(e["timestamp"] for e in items)) // 1000
        for items in sessions.values()
    ]
    return {
        "events": len(events),
        "pageViews": kinds["page_view"],
        "uniqueVisitors": len({e["visitorId"] for e in events}),
        "sessions": len(sessions),
        "productViews": kinds["product_view"],
        "affiliateClicks": kinds["affiliate_click"],
        "conversions": sum(
            1
            for items in sessions.values()
            if any(e["eventType"] == "affiliate_click" for e in items)
        ),
        "revenue": revenue,
        "bounceRate": 100 * bounces / len(sessions),
        "avgSessionDuration": sum(durations) / len(durations),
    }


@pytest.mark.slow
def test_dashboard_totals_equal_the_generated_traffic(server: ServerProcess) -> None:
    site = server.add_site(DOMAIN, origins=["*"])
    now = int(time.time() * 1000)
    requests = list(generate_traffic(days=3, visitors=25, seed=3, now_ms=now))
    events = [e for r in requests for e in r.events]
    progress: list[int] = []

    summary = send_traffic(
        server.url, site["siteKey"], requests, concurrency=4, on_progress=progress.append
    )

    assert summary.requests == len(requests) == sum(progress)
    assert summary.events_sent == summary.queued == len(events)
    assert summary.rejected == 0
    assert summary.errors == []
    assert server.wait_for_events(len(events)) == len(events)
    today = dt.datetime.fromtimestamp(now / 1000, dt.UTC).date()
    response = server.get(
        "/api/v1/analytics/dashboard",
        site=site["id"],
        startDate=(today - dt.timedelta(days=3)).isoformat(),
        endDate=today.isoformat(),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    totals = body["totals"]
    expected = expected_totals(events)
    approximate = {"bounceRate", "avgSessionDuration"}
    assert {k: totals[k] for k in expected if k not in approximate} == {
        k: v for k, v in expected.items() if k not in approximate
    }
    assert totals["bounceRate"] == pytest.approx(expected["bounceRate"], abs=0.01)
    # Whole seconds from a session's first to its last event (docs/metrics.md); the API
    # rounds the mean to two decimals.
    assert totals["avgSessionDuration"] == pytest.approx(expected["avgSessionDuration"], abs=0.006)
    assert sum(day["events"] for day in body["series"]) == len(events)
    assert expected["affiliateClicks"] > 0
    assert expected["conversions"] > 0


def test_sending_to_an_unknown_site_key_fails_clearly(server: ServerProcess) -> None:
    requests = generate_traffic(days=1, visitors=20, seed=5)
    with pytest.raises(DemoError, match="accepted none") as raised:
        send_traffic(server.url, "pk_not_a_site_key", requests, concurrency=2)
    assert "HTTP 4" in str(raised.value)
    assert server.count_events() == 0


def test_an_unreachable_collector_fails_after_retries() -> None:
    requests = generate_traffic(days=1, visitors=1, seed=5)
    started = time.monotonic()
    with pytest.raises(DemoError, match=r"gave up .* after 3 attempts: ConnectError"):
        send_traffic("http://127.0.0.1:9", "pk_x", requests, concurrency=1, max_attempts=3)
    assert time.monotonic() - started < 10


@pytest.mark.slow
def test_rate_limited_requests_are_retried_until_accepted(tmp_path: Path) -> None:
    # A bucket of 120 requests refilled at 2 per second: the last ten wait for tokens.
    with running_server(tmp_path, rate_limit_per_minute=120) as server:
        site = server.add_site(DOMAIN, origins=["*"])
        requests = list(generate_traffic(days=2, visitors=120, seed=9))[:130]
        events = sum(len(r.events) for r in requests)

        summary = send_traffic(server.url, site["siteKey"], requests, concurrency=2)

        assert summary.requests == 130
        assert summary.queued == events
        assert server.wait_for_events(events) == events
        assert summary.seconds > 3  # it did have to wait for the bucket
