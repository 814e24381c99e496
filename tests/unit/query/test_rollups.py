"""The overview's daily series read from daily_stats equals the raw series, and falls
back to raw rows for any day whose rollup is behind."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from sightline.events import Event
from sightline.query.engine import QueryEngine
from sightline.query.model import DAILY_STATS, Granularity, Period, Query, parse_metrics
from sightline.query.rollups import daily_series
from sightline.sites import Site
from sightline.stores.duckdb import DuckDBStore

TZ = "Europe/Berlin"
FIRST = date(2026, 6, 1)
DAYS = 6
TODAY = FIRST + timedelta(days=DAYS - 1)
GOALS = ["affiliate_click"]
KINDS = ["page_view", "page_view", "heartbeat", "product_view", "affiliate_click"]
METRICS = parse_metrics(list(dict.fromkeys(DAILY_STATS.values())))


def _events(rng: random.Random, day: date, count: int, prefix: str) -> list[Event]:
    base = int(datetime(day.year, day.month, day.day, 9, tzinfo=UTC).timestamp() * 1000)
    events = []
    for i in range(count):
        visitor = f"v{rng.randrange(60)}"
        session = f"{visitor}-{day.isoformat()}"
        kind = rng.choice(
            ["page_view", "page_view", "heartbeat", "product_view", "affiliate_click"]
        )
        events.append(
            Event(
                event_type=kind,
                event_id=f"{prefix}{day.isoformat()}-{i}",
                timestamp=base + i * 20_000,
                session_id=session,
                visitor_id=visitor,
                page_path=f"/p/{rng.randrange(9)}",
                site_id="s",
                server_timestamp=base + i * 20_000,
                properties={"productId": "p1", "revenue": 1.5} if kind == "affiliate_click" else {},
            )
        )
    return events


@pytest.fixture
def store(tmp_path: Path) -> DuckDBStore:
    store = DuckDBStore(tmp_path / "store.duckdb")
    store.migrate()
    store.add_site(Site(id="s", domain="s.example", site_key="pk_s", timezone=TZ))
    rng = random.Random(11)
    for n in range(DAYS):
        store.write_events(
            _events(rng, FIRST + timedelta(days=n), 300, "e"), checkpoint=None, goals=GOALS
        )
    store.refresh_rollups([("s", FIRST + timedelta(days=n)) for n in range(DAYS)], GOALS)
    return store


def _query() -> Query:
    return Query("s", Period(FIRST - timedelta(days=2), TODAY, TZ), goals=tuple(GOALS))


def _raw(engine: QueryEngine) -> list[dict[str, object]]:
    return engine.timeseries(_query(), METRICS, Granularity.DAY)


def test_settled_days_from_the_rollup_equal_the_raw_series(store: DuckDBStore) -> None:
    engine = QueryEngine(store)
    assert daily_series(engine, _query(), METRICS, TODAY) == _raw(engine)


def test_the_rollup_is_read_for_settled_days_and_not_for_today(store: DuckDBStore) -> None:
    engine = QueryEngine(store)
    store.cursor().execute("UPDATE daily_stats SET unique_visitors = 9999")
    series = {p["bucket"]: p for p in daily_series(engine, _query(), METRICS, TODAY)}
    assert series[FIRST.isoformat()]["visitors"] == 9999
    assert series[TODAY.isoformat()]["visitors"] != 9999


def test_a_day_whose_rollup_is_behind_is_counted_from_raw_rows(store: DuckDBStore) -> None:
    engine = QueryEngine(store)
    late = _events(random.Random(3), FIRST + timedelta(days=1), 40, "late")
    store.write_events(late, checkpoint=None, goals=GOALS)  # no rollup refresh
    store.cursor().execute("UPDATE daily_stats SET unique_visitors = 9999")
    series = {p["bucket"]: p for p in daily_series(engine, _query(), METRICS, TODAY)}
    raw = {p["bucket"]: p for p in _raw(engine)}
    behind = (FIRST + timedelta(days=1)).isoformat()
    assert series[behind] == raw[behind]
    assert series[FIRST.isoformat()]["visitors"] == 9999


def test_filtered_queries_read_raw_rows(store: DuckDBStore) -> None:
    from sightline.query.model import make_filter, parse_dimension

    engine = QueryEngine(store)
    store.cursor().execute("UPDATE daily_stats SET unique_visitors = 9999")
    query = _query().with_filters((make_filter(parse_dimension("page"), "is", ["/p/1"]),))
    assert daily_series(engine, query, METRICS, TODAY) == engine.timeseries(
        query, METRICS, Granularity.DAY
    )
