"""Retention in each warm store: events before a day go, for one site or for all (on
PostgreSQL as whole day partitions), with the sessions that ended before it; rollups
stay; a writer that remembered a dropped day's partition still stores late events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from sightline.events import Event
from sightline.sites import Site
from sightline.stores.base import DroppedEvents, Store
from tests.support.stores import WarmStore

GOALS = ["affiliate_click"]
DAYS = [date(2026, 3, 1) + timedelta(days=i) for i in range(4)]


def at(day: date, hour: int, minute: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).timestamp() * 1000)


def visit(site_id: str, day: date, n: int, hour: int = 10) -> list[Event]:
    """One session of ``n`` page views on ``day`` (new event ids on every call: the
    PostgreSQL store remembers stored ids)."""
    run = uuid.uuid4().hex[:8]
    return [
        Event(
            event_type="page_view",
            event_id=f"{site_id}-{day}-{hour}-{i}-{run}",
            timestamp=at(day, hour, i),
            session_id=f"{site_id}-{day}-{hour}",
            visitor_id=f"{site_id}-v",
            page_path=f"/{i}",
            site_id=site_id,
            server_timestamp=at(day, hour, i),
        )
        for i in range(n)
    ]


@pytest.fixture
def store(tmp_path: Path, store_engine: WarmStore) -> Iterator[Store]:
    store = store_engine.open(tmp_path)
    try:
        for site_id in ("s1", "s2"):
            store.add_site(Site(id=site_id, domain=f"{site_id}.example", site_key=f"pk_{site_id}"))
        for site_id in ("s1", "s2"):
            events = [e for day in DAYS for e in visit(site_id, day, 3)]
            # A session across midnight into the third day: it ends after the cut.
            events += visit(site_id, DAYS[1], 1, hour=23)[:1]
            events += [
                Event(
                    event_type="page_view",
                    event_id=f"{site_id}-late-night-{uuid.uuid4().hex}",
                    timestamp=at(DAYS[2], 0, 5),
                    session_id=f"{site_id}-{DAYS[1]}-23",
                    visitor_id=f"{site_id}-v",
                    page_path="/night",
                    site_id=site_id,
                    server_timestamp=at(DAYS[2], 0, 5),
                )
            ]
            store.write_events(events, checkpoint=None, goals=GOALS)
        store.refresh_rollups([(s, d) for s in ("s1", "s2") for d in DAYS], GOALS)
        yield store
    finally:
        for site_id in ("s1", "s2"):  # (the PostgreSQL database serves the whole module)
            store.delete_site(site_id)
        store.close()


def counts(store: Store, table: str, site_id: str) -> int:
    return int(store.query(f"SELECT count(*) FROM {table} WHERE site_id = '{site_id}'")[0][0])


def test_one_sites_events_before_a_day(store: Store) -> None:
    assert counts(store, "events", "s1") == 14 and counts(store, "session_stats", "s1") == 5
    rollups = store.query("SELECT * FROM daily_stats ORDER BY site_id, date")
    dropped = store.drop_events_before("s1", DAYS[2])
    # Days 1 and 2: 3 + 3 + the 23:00 view; the session across midnight ended after the cut.
    assert dropped == DroppedEvents(events=7, sessions=2)
    assert counts(store, "events", "s1") == 7 and counts(store, "session_stats", "s1") == 3
    assert counts(store, "events", "s2") == 14 and counts(store, "session_stats", "s2") == 5
    first = store.query("SELECT min(ts) FROM events WHERE site_id = 's1'")[0][0]
    assert first == datetime(2026, 3, 3, 0, 5)
    assert store.query("SELECT * FROM daily_stats ORDER BY site_id, date") == rollups
    assert store.drop_events_before("s1", DAYS[2]) == DroppedEvents(events=0, sessions=0)


def test_every_sites_events_before_a_day(store: Store) -> None:
    dropped = store.drop_events_before(None, DAYS[1])
    assert (dropped.events, dropped.sessions) == (6, 2)
    if store.engine == "postgres":
        assert dropped.partitions == ("events_p20260301",)
        assert store.partitions()[0] == "events_p20260302"  # type: ignore[attr-defined]
    else:
        assert dropped.partitions == ()
    assert counts(store, "events", "s1") == counts(store, "events", "s2") == 11


def test_a_writer_with_a_stale_partition_list_still_stores(
    store: Store, store_engine: WarmStore, tmp_path: Path
) -> None:
    other = store_engine.open(tmp_path)  # another process's retention job (same store)
    try:
        other.drop_events_before(None, DAYS[1])
    finally:
        other.close()
    # On PostgreSQL this store still believes the first day's partition exists.
    late = visit("s1", DAYS[0], 2, hour=15)
    store.write_events(late, checkpoint=None, goals=GOALS)
    assert counts(store, "events", "s1") == 11 + 2
