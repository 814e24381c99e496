"""The start-up warm-up runs each site's default overview over a real DuckDB store,
anchored on the site's latest data, and gives way when the server stops."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from sightline.api import warmup
from sightline.api.warmup import PANELS, latest_day, overview_period, warm_sites
from sightline.events import Event
from sightline.query.engine import QueryEngine
from sightline.sites import Site
from sightline.stores.duckdb import DuckDBStore
from tests.support.server import running_server

TZ = "Europe/Berlin"
LAST = date(2026, 5, 20)
GOALS = ["affiliate_click"]
SITE = Site(id="s", domain="s.example", site_key="pk_s", timezone=TZ)
EMPTY = Site(id="e", domain="e.example", site_key="pk_e", timezone="UTC")


def _events(day: date) -> list[Event]:
    base = int(datetime(day.year, day.month, day.day, 9, tzinfo=UTC).timestamp() * 1000)
    return [
        Event(
            event_type="page_view" if i % 3 else "affiliate_click",
            event_id=f"{day.isoformat()}-{i}",
            timestamp=base + i * 60_000,
            session_id=f"v{i % 7}-{day.isoformat()}",
            visitor_id=f"v{i % 7}",
            page_path=f"/p/{i % 4}",
            site_id="s",
            server_timestamp=base + i * 60_000,
            properties={"productId": "p1"} if i % 3 == 0 else {},
        )
        for i in range(40)
    ]


@pytest.fixture
def store(tmp_path: Path) -> DuckDBStore:
    store = DuckDBStore(tmp_path / "store.duckdb")
    store.migrate()
    store.add_site(SITE)
    store.add_site(EMPTY)
    days = [LAST - timedelta(days=n) for n in range(3)]
    for day in days:
        store.write_events(_events(day), checkpoint=None, goals=GOALS)
    store.refresh_rollups([("s", day) for day in days], GOALS)
    return store


def test_the_period_ends_on_the_latest_data_or_today(store: DuckDBStore) -> None:
    engine = QueryEngine(store)
    assert latest_day(engine, "s") == LAST
    assert latest_day(engine, "e") is None
    later = overview_period(engine, SITE, LAST + timedelta(days=40))
    assert (later.start, later.end, later.tz) == (LAST - timedelta(days=29), LAST, TZ)
    earlier = overview_period(engine, SITE, LAST - timedelta(days=1))
    assert earlier.end == LAST - timedelta(days=1)
    today = date(2026, 11, 25)
    assert overview_period(engine, EMPTY, today).end == today


def test_every_site_gets_its_overview_queries(store: DuckDBStore) -> None:
    engine = QueryEngine(store)
    ran = warm_sites(engine, [SITE, EMPTY], tuple(GOALS), threading.Event())
    assert ran == 2 * (3 + len(PANELS))


def test_a_stopped_warm_up_runs_nothing(store: DuckDBStore) -> None:
    stop = threading.Event()
    stop.set()
    assert warm_sites(QueryEngine(store), [SITE, EMPTY], tuple(GOALS), stop) == 0


def test_a_failing_site_does_not_stop_the_others(store: DuckDBStore) -> None:
    broken = Site(id="b", domain="b.example", site_key="pk_b", timezone="No/Such_Zone")
    ran = warm_sites(QueryEngine(store), [broken, SITE], tuple(GOALS), threading.Event())
    assert ran == 3 + len(PANELS)


def test_the_warm_up_waits_while_requests_are_answered(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[float] = []

    def busy() -> bool:
        calls.append(time.monotonic())
        return len(calls) % 4 != 0  # busy three checks out of four

    ran = warm_sites(QueryEngine(store), [SITE], tuple(GOALS), threading.Event(), busy)
    assert ran == 3 + len(PANELS)
    assert len(calls) == 4 * ran  # each query waited for three busy checks
    # a dashboard that never stops asking holds each query back at most MAX_YIELD_SECONDS
    monkeypatch.setattr(warmup, "MAX_YIELD_SECONDS", 0.1)
    started = time.monotonic()
    assert warm_sites(QueryEngine(store), [SITE], tuple(GOALS), threading.Event(), lambda: True)
    assert time.monotonic() - started >= 0.1 * (3 + len(PANELS))


def test_stopping_ends_the_wait(store: DuckDBStore) -> None:
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    assert warm_sites(QueryEngine(store), [SITE], tuple(GOALS), stop, lambda: True) == 0
    assert time.monotonic() - started < 5


def test_a_started_server_warms_each_site_without_holding_back_readiness(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path) as server:
        server.add_site("warm.example")
        server.stop()
        server.restart()  # ready: /readyz answered 200 (the warm-up runs behind it)
        queries = 3 + len(PANELS)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if "warmed the overview of 1 site(s)" in server.log_path.read_text():
                break
            time.sleep(0.1)
        log = server.log_path.read_text()
        assert "warmed the overview of 1 site(s) in" in log
        assert f"({queries} queries)" in log
        assert "warm-up of" not in log  # no failure logged
