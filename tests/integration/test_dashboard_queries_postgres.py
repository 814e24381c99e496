"""The overview's own queries (web vitals, the daily series read from rollups) give the
same answers on PostgreSQL as on DuckDB."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from sightline.events import Event
from sightline.query.engine import QueryEngine
from sightline.query.model import DAILY_STATS, Granularity, Period, Query, parse_metrics
from sightline.query.rollups import daily_series
from sightline.query.vitals import web_vitals
from sightline.sites import Site
from sightline.stores.duckdb import DuckDBStore
from sightline.stores.postgres import PostgresStore
from tests.support.stores import open_warm_store

GOALS = ["affiliate_click"]
TZ = "Europe/Berlin"
FIRST = date(2026, 3, 26)
DAYS = 5
KINDS = ["page_view", "page_view", "heartbeat", "product_view", "affiliate_click"]


def traffic() -> list[Event]:
    rng = random.Random(4)
    events = []
    for n in range(DAYS):
        day = FIRST + timedelta(days=n)
        base = int(datetime(day.year, day.month, day.day, 8, tzinfo=UTC).timestamp() * 1000)
        for i in range(150):
            visitor = f"v{rng.randrange(40)}"
            kind = rng.choice(KINDS)
            properties: dict[str, object] = {}
            if kind == "page_view":
                properties = {"lcp": rng.randrange(400, 5000), "cls": rng.randrange(0, 30) / 100}
            elif kind == "affiliate_click":
                properties = {"productId": "p1", "revenue": 2.5}
            events.append(
                Event(
                    event_type=kind,
                    event_id=f"e{n}-{i}",
                    timestamp=base + i * 30_000,
                    session_id=f"{visitor}-{n}",
                    visitor_id=visitor,
                    page_path=f"/p/{rng.randrange(5)}",
                    site_id="s",
                    server_timestamp=base + i * 30_000,
                    properties=properties,
                )
            )
    return events


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[PostgresStore]:
    with open_warm_store("postgres", tmp_path) as store:
        assert isinstance(store, PostgresStore)
        yield store


def test_vitals_and_rollup_series_match_duckdb(tmp_path: Path, pg: PostgresStore) -> None:
    duck = DuckDBStore(tmp_path / "duck.duckdb")
    duck.migrate()
    answers = {}
    query = Query("s", Period(FIRST, FIRST + timedelta(days=DAYS - 1), TZ), goals=tuple(GOALS))
    metrics = parse_metrics(list(dict.fromkeys(DAILY_STATS.values())))
    today = FIRST + timedelta(days=DAYS - 1)
    try:
        for store in (duck, pg):
            store.add_site(Site(id="s", domain="s.example", site_key="pk_s", timezone=TZ))
            store.write_events(traffic(), checkpoint=None, goals=GOALS)
            store.refresh_rollups([("s", FIRST + timedelta(days=n)) for n in range(DAYS)], GOALS)
            engine = QueryEngine(store)
            series = daily_series(engine, query, metrics, today)
            assert series == engine.timeseries(query, metrics, Granularity.DAY)
            answers[store.engine] = (web_vitals(engine, query), series)
    finally:
        duck.close()
    assert answers["postgres"] == answers["duckdb"]
    vitals = {v["name"]: v for v in answers["duckdb"][0]}
    assert vitals["lcp"]["samples"] > 100 and vitals["lcp"]["rating"] is not None


def named_products() -> list[Event]:
    """p1 renamed over time (the latest name wins, also from a click), p2 never named."""
    base = int(datetime(2026, 3, 27, 8, tzinfo=UTC).timestamp() * 1000)
    named = [
        ("product_view", "p1", "Old name", 0),
        ("product_view", "p1", "Trail <b>shoe</b> & sock", 60_000),
        ("product_view", "p1", "", 120_000),
        ("affiliate_click", "p1", "", 180_000),
        ("product_view", "p2", "", 0),
        ("affiliate_click", "p2", "", 60_000),
        ("product_view", "p3", "Later", 240_000),
        ("product_view", "p3", "Latest", 240_000),
    ]
    return [
        Event(
            event_type=kind,
            event_id=f"n{i}",
            timestamp=base + offset,
            session_id="s1",
            visitor_id="v1",
            page_path="/p",
            site_id="s",
            server_timestamp=base + offset,
            properties={"productId": product, **({"productName": name} if name else {})},
        )
        for i, (kind, product, name, offset) in enumerate(named)
    ]


def test_product_names_match_duckdb(tmp_path: Path, pg: PostgresStore) -> None:
    duck = DuckDBStore(tmp_path / "duck.duckdb")
    duck.migrate()
    query = Query("s", Period(FIRST, FIRST + timedelta(days=DAYS - 1), TZ), goals=tuple(GOALS))
    answers = {}
    try:
        for store in (duck, pg):
            store.add_site(Site(id="s", domain="s.example", site_key="pk_s", timezone=TZ))
            store.write_events(named_products(), checkpoint=None, goals=GOALS)
            answers[store.engine] = QueryEngine(store).top_products(query, "views", False, 10)
    finally:
        duck.close()
    assert answers["postgres"] == answers["duckdb"]
    names = {p["productId"]: p["productName"] for p in answers["duckdb"]}
    # equal timestamps: the larger event id is the later one
    assert names == {"p1": "Trail <b>shoe</b> & sock", "p2": "", "p3": "Latest"}
    assert [p["productId"] for p in answers["duckdb"]] == ["p1", "p3", "p2"]


def test_saved_funnels_on_postgres(pg: PostgresStore) -> None:
    pg.add_site(Site(id="s", domain="s.example", site_key="pk_s", timezone=TZ))
    first = pg.save_funnel("s", "f1", "A", '{"steps": ["a", "b"], "window": "1d"}', "me")
    again = pg.save_funnel("s", "f2", "A", '{"steps": ["a", "c"], "window": "1d"}', "me")
    assert first == again == "f1"
    rows = pg.saved_funnels("s")
    assert [(r["id"], r["name"], r["definition"]) for r in rows] == [
        ("f1", "A", '{"steps": ["a", "c"], "window": "1d"}')
    ]
    assert rows[0]["created_at"] > 0
    assert pg.delete_funnel("s", "f1") and not pg.delete_funnel("s", "f1")
    pg.save_funnel("s", "f3", "B", "{}", "me")
    pg.delete_site("s")
    assert pg.saved_funnels("s") == []
