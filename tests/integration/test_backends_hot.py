"""Redis as the hot store and the query cache, shared by every process of an installation.

Two server processes share PostgreSQL and a Redis key prefix: each answers realtime
from the counters any writer recorded in Redis, and reuses the answers the other
computed — until a writer commits (the shared data version moves) or the answer's
freshness promise runs out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sightline.events import Event
from sightline.query.cache import ResultCache
from sightline.stores.postgres import PostgresStore
from sightline.stores.redis_hot import RedisHotStore
from tests.support.server import BROWSER_UA, ServerProcess, running_server
from tests.support.services import REDIS_URL, postgres_database, redis_prefix


def hot_event(site_id: str, visitor: str, kind: str = "page_view") -> Event:
    now = int(time.time() * 1000)
    return Event(
        event_type=kind,
        event_id=uuid.uuid4().hex,
        timestamp=now,
        session_id=f"{visitor}-s",
        visitor_id=visitor,
        page_path="/",
        site_id=site_id,
        server_timestamp=now,
    )


def test_result_caches_share_answers_through_redis() -> None:
    with redis_prefix() as prefix:
        one, two = RedisHotStore(REDIS_URL, prefix), RedisHotStore(REDIS_URL, prefix)
        wall = [1_000_000.0]
        try:
            first = ResultCache(one.data_version, shared=one, wall_clock=lambda: wall[0])
            second = ResultCache(two.data_version, shared=two, wall_clock=lambda: wall[0])
            computed: list[str] = []

            def compute(who: str) -> Any:
                computed.append(who)
                return {"totals": {"events": len(computed)}, "series": [1.5, "x"]}

            key = ("dashboard", "site-1", 30)
            answer = first.get_or_compute(key, 5.0, lambda: compute("first"))
            # The other process reuses it, as it was (JSON), without computing.
            assert second.get_or_compute(key, 5.0, lambda: compute("second")) == answer
            assert computed == ["first"] and second.shared_hits == 1
            # A writer's commit anywhere moves the shared version: every answer is a miss.
            one.record([hot_event("site-1", "v1")])
            fresh = second.get_or_compute(key, 5.0, lambda: compute("second"))
            assert computed == ["first", "second"] and fresh["totals"]["events"] == 2
            assert first.get_or_compute(key, 5.0, lambda: compute("first")) == fresh
            # No answer outlives its freshness promise, whoever computed it.
            wall[0] += 5.0
            third = ResultCache(one.data_version, shared=one, wall_clock=lambda: wall[0])
            third.get_or_compute(key, 5.0, lambda: compute("third"))
            assert computed[-1] == "third"
        finally:
            one.close()
            two.close()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess, str, str]]:
    """Two full servers (collector, writer, API) on one PostgreSQL database, one Redis
    stream and one hot-store prefix."""
    with postgres_database() as url, redis_prefix() as prefix:
        shared = {
            "store": "postgres",
            "postgres_url": url,
            "transport": "redis",
            "redis_prefix": prefix,
            "hot_store": "redis",
            "rate_limit_per_minute": 0,
        }
        with (
            running_server(tmp_path / "a", **shared) as a,
            running_server(tmp_path / "b", **shared) as b,
        ):
            yield a, b, url, prefix


def realtime(server: ServerProcess, site_id: str) -> dict[str, Any]:
    response = server.get("/api/v1/analytics/realtime", site=site_id)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def wait_for(check: Any, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_two_servers_share_realtime_counters_and_cached_answers(
    pair: tuple[ServerProcess, ServerProcess, str, str],
) -> None:
    a, b, url, prefix = pair
    site = a.add_site("hot.example", origins=["*"])
    now = int(time.time() * 1000)
    events = [
        {
            "eventId": str(uuid.uuid4()),
            "eventType": kind,
            "timestamp": now,
            "sessionId": f"s{i % 2}",
            "visitorId": f"v{i % 2}",
            "pagePath": "/",
        }
        for i, kind in enumerate(["page_view"] * 3 + ["click"])
    ]
    response = httpx.post(
        a.url + "/api/v1/analytics/collect/batch",
        json={"siteKey": site["siteKey"], "events": events},
        headers={"user-agent": BROWSER_UA},
    )
    assert response.json()["queued"] == 4, response.text
    assert b.wait_for_events(4) == 4
    expected = {
        "activeUsers": 2,
        "pageViewsLastMinute": 3,
        "clicksLastMinute": 1,
        "eventsLastMinute": 4,
    }
    wait_for(lambda: {k: realtime(b, site["id"])[k] for k in expected} == expected)
    assert {k: realtime(a, site["id"])[k] for k in expected} == expected

    # Counters another process recorded (events this installation's store never saw)
    # show in both servers' answers: realtime reads Redis, not the warm store.
    other = RedisHotStore(REDIS_URL, prefix)
    try:
        other.record([hot_event(site["id"], "v-elsewhere"), hot_event(site["id"], "v-else-2")])
        for server in (a, b):
            wait_for(lambda s=server: realtime(s, site["id"])["eventsLastMinute"] == 6, 3.0)
            assert realtime(server, site["id"])["activeUsers"] == 4

        # The query cache is shared: b answers with what a computed, even though rows were
        # written behind its back (no writer counted them, so the version did not move)...
        params = {"site": site["id"]}
        before = a.get("/api/v1/analytics/dashboard", **params).json()
        assert before["totals"]["events"] == 4
        store = PostgresStore(url, pool_size=1)
        try:
            store.write_events(
                [hot_event(site["id"], "v-behind") for _ in range(5)],
                checkpoint=None,
                goals=["affiliate_click"],
            )
        finally:
            store.close()
        assert b.get("/api/v1/analytics/dashboard", **params).json() == before
        # ... until any writer commits: the shared version moves and b recomputes at once.
        other.record([hot_event(site["id"], "v-elsewhere")])
        after = b.get("/api/v1/analytics/dashboard", **params).json()
        assert after["totals"]["events"] == 9
        assert a.get("/api/v1/analytics/dashboard", **params).json() == after
    finally:
        other.close()
