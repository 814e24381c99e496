"""The result cache never serves numbers older than promised: new events show up as soon
as they are stored (realtime within 1 s, the rest within 5 s), even right after the same
question was answered; and an export streams a large range without holding it. On each
warm store."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import BROWSER_UA, ServerProcess, running_server
from tests.support.stores import WarmStore


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, store_engine: WarmStore
) -> Iterator[ServerProcess]:
    with running_server(
        tmp_path_factory.mktemp("fresh"), **store_engine.settings, rate_limit_per_minute=0
    ) as srv:
        yield srv


def send(server: ServerProcess, site: dict[str, Any], kinds: list[str]) -> float:
    """Send events now; returns the time the collector acknowledged them (durable)."""
    now = int(time.time() * 1000)
    events = [
        {
            "eventId": str(uuid.uuid4()),
            "eventType": kind,
            "timestamp": now,
            "sessionId": "fresh-session",
            "visitorId": "fresh-visitor",
            "pagePath": "/fresh",
            "properties": {"productId": "p1", "revenue": 2.5} if kind == "affiliate_click" else {},
        }
        for kind in kinds
    ]
    response = httpx.post(
        server.url + "/api/v1/analytics/collect",
        json={"siteKey": site["siteKey"], "events": events},
        headers={"user-agent": BROWSER_UA},
    )
    assert response.status_code == 204, response.text
    return time.monotonic()


def poll(server: ServerProcess, path: str, check: Any, limit: float, **params: Any) -> float:
    """Seconds until ``check(answer)`` holds (fails past ``limit``)."""
    started = time.monotonic()
    while True:
        answer = server.get(f"/api/v1/analytics/{path}", **params).json()
        if check(answer):
            return time.monotonic() - started
        assert time.monotonic() - started < limit, answer
        time.sleep(0.02)


def test_new_events_are_never_hidden_by_the_cache(server: ServerProcess) -> None:
    site = server.add_site("fresh.example", origins=["*"])
    params = {"site": site["id"]}
    for round_ in range(1, 6):
        # Ask first, so the answer before the new events is in the cache.
        before = server.get("/api/v1/analytics/dashboard", **params).json()["totals"]
        assert before["pageViews"] == round_ - 1
        acked = send(server, site, ["page_view"])
        stored = server.wait_for_events(round_, where=f"site_id = '{site['id']}'")
        assert stored == round_
        waited = poll(
            server,
            "dashboard",
            lambda a, n=round_: a["totals"]["pageViews"] == n,
            5.0,
            **params,
        )
        # A commit ends every cached answer: visible at once, not after the 5 s TTL.
        assert waited < 1.0
        assert time.monotonic() - acked < 5.0


def test_realtime_within_one_second(server: ServerProcess) -> None:
    site = server.add_site("live.example", origins=["*"])
    params = {"site": site["id"]}
    assert server.get("/api/v1/analytics/realtime", **params).json()["pageViewsLastMinute"] == 0
    acked = send(server, site, ["page_view", "page_view", "affiliate_click"])
    poll(
        server,
        "realtime",
        lambda a: a["pageViewsLastMinute"] == 2 and a["clicksLastMinute"] == 1,
        5.0,
        **params,
    )
    # From the acknowledgement: the writer's commit (writer_flush_ms) plus at most 1 s.
    assert time.monotonic() - acked < 2.0
    answer = server.get("/api/v1/analytics/realtime", **params).json()
    assert answer == {
        "activeUsers": 1,
        "pageViewsLastMinute": 2,
        "clicksLastMinute": 1,
        "eventsLastMinute": 3,
        "conversionRate": 100.0,
    }


def test_a_large_export_is_streamed(server: ServerProcess) -> None:
    site = server.add_site("export.example", origins=["*"])
    now = int(time.time() * 1000)
    total = 0
    with httpx.Client(headers={"user-agent": BROWSER_UA}, timeout=60) as client:
        for batch in range(40):
            events = [
                {
                    "eventId": f"x{batch}-{i}",
                    "eventType": "page_view",
                    "timestamp": now - (batch * 500 + i) * 1000,
                    "sessionId": f"s{batch}",
                    "visitorId": f"v{batch}",
                    "pagePath": f"/long/{'x' * 200}/{i}",
                }
                for i in range(500)
            ]
            response = client.post(
                server.url + "/api/v1/analytics/collect/batch",
                json={"siteKey": site["siteKey"], "events": events},
            )
            total += response.json()["queued"]
    assert server.wait_for_events(total, where=f"site_id = '{site['id']}'", timeout=60) == total
    chunks = 0
    size = 0
    with httpx.stream(
        "GET",
        server.url + "/api/v1/analytics/export",
        params={"site": site["id"], "format": "ndjson"},
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=60,
    ) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers  # streamed, not buffered
        for chunk in response.iter_raw():
            chunks += 1
            size += len(chunk)
    assert chunks > 1
    assert size > total * 200
