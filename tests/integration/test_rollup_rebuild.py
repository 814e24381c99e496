"""A site's time zone changes: its daily rollups are rebuilt from warm and archived
events, and the history whose raw events retention deleted is kept, on DuckDB and on
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from sightline import admin
from sightline.config import Settings
from sightline.privacy.retention import apply_retention, set_site_privacy
from sightline.privacy.service import PrivacyService
from sightline.sites import Site
from sightline.stores.base import Store
from sightline.stores.duckdb import DuckDBStore
from sightline.stores.parquet import open_cold
from sightline.workers.archive import Archiver
from tests.support.history import history
from tests.support.stores import ENGINES, open_warm_store

GOALS = ["affiliate_click"]
TODAY = datetime.now(UTC).date()
FIRST = TODAY - timedelta(days=60)
LAST = TODAY - timedelta(days=1)
NEW_ZONE = "America/New_York"


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with open_warm_store(request.param, tmp_path) as opened:
        yield opened


def fill(store: Store, site_id: str = "s1") -> None:
    """Two months of events of a UTC site, with their rollups."""
    store.add_site(Site(id=site_id, domain=f"{site_id}.example", site_key=f"pk_{site_id}"))
    events = history(site_id, FIRST, LAST, sessions_per_day=4)
    store.write_events(events, checkpoint=None, goals=GOALS)
    days = {(site_id, FIRST + timedelta(days=i)) for i in range((LAST - FIRST).days + 2)}
    store.refresh_rollups(days, GOALS)


def table(store: Store, name: str) -> dict[Any, tuple[Any, ...]]:
    """A rollup table of site s1 by its key (date, or (product, date)), values as text."""
    key = "date" if name == "daily_stats" else "product_id, date"
    rows = store.query(f"SELECT * FROM {name} WHERE site_id = 's1' ORDER BY {key}")
    width = 1 if name == "daily_stats" else 2
    out = {}
    for row in rows:
        values = tuple(str(v) for v in row[1:])
        out[values[0] if width == 1 else values[:2]] = values
    return out


def test_a_time_zone_change_keeps_the_history_retention_left(store: Store, tmp_path: Path) -> None:
    fill(store)
    settings = msgspec.convert(
        {"data_dir": str(tmp_path / "data"), "store": store.engine}, Settings
    )
    service = PrivacyService.build(settings, store)
    set_site_privacy(service, "s1", None, 40, "tester")
    report = apply_retention(service)
    assert report["sites"][0]["eventsDeleted"] > 0
    cutoff = datetime.fromisoformat(report["sites"][0]["cutoff"].rstrip("Z"))
    before = table(store, "daily_stats")
    products_before = table(store, "product_stats")
    assert min(before) == FIRST.isoformat()

    admin.update_site(store, "s1", timezone=NEW_ZONE, goals=GOALS)

    after = table(store, "daily_stats")
    products_after = table(store, "product_stats")
    # Days whose events retention deleted keep their figures (and their products).
    gone = [d for d in before if date.fromisoformat(d) < cutoff.date()]
    assert gone and all(after[d] == before[d] for d in gone)
    assert all(products_after[k] == v for k, v in products_before.items() if k[1] in gone)
    # Days whose events are all still raw equal a recomputation in the new zone.
    raw = [d for d in after if date.fromisoformat(d) > cutoff.date() + timedelta(days=1)]
    assert len(raw) >= 35
    store.refresh_rollups([("s1", date.fromisoformat(d)) for d in raw], GOALS)
    assert table(store, "daily_stats") == after
    assert table(store, "product_stats") == products_after
    # No day lost or invented: FIRST to the last local day with events.
    newest = store.query("SELECT max(ts) FROM events WHERE site_id = 's1'")[0][0]
    local_last = newest.replace(tzinfo=UTC).astimezone(ZoneInfo(NEW_ZONE)).date()
    assert sorted(after) == [
        (FIRST + timedelta(days=i)).isoformat() for i in range((local_last - FIRST).days + 1)
    ]
    # The figures moved with the zone: the recent days differ from the UTC ones.
    assert [after[d] for d in raw] != [before[d] for d in raw]


def test_without_retention_a_time_zone_change_recomputes_every_day(store: Store) -> None:
    fill(store)
    admin.update_site(store, "s1", timezone=NEW_ZONE, goals=GOALS)
    after = table(store, "daily_stats")
    # The UTC rows of the first day are gone (its events belong to the day before in New
    # York, or to the same day), and every row equals a recomputation.
    for name in ("daily_stats", "product_stats"):
        store.query(f"DELETE FROM {name} WHERE site_id = 's1' RETURNING site_id")
    days = [FIRST - timedelta(days=1) + timedelta(days=i) for i in range((LAST - FIRST).days + 3)]
    store.refresh_rollups([("s1", d) for d in days], GOALS)
    assert table(store, "daily_stats") == after
    total = store.query("SELECT count(*) FROM events WHERE site_id = 's1'")[0][0]
    assert sum(int(v[1]) for v in after.values()) == total


def test_archived_days_are_rebuilt_from_their_parquet_files(tmp_path: Path) -> None:
    """The same events in an all-warm store and in a store whose older days are
    archived: after the same time-zone change, the rollups are the same."""
    stores = {}
    for name in ("warm", "archived"):
        data = tmp_path / name
        data.mkdir()
        stores[name] = DuckDBStore(data / "sightline.duckdb")
        stores[name].migrate()
        fill(stores[name])
    try:
        archived = stores["archived"]
        cold = open_cold(Settings(data_dir=str(tmp_path / "archived"), warm_days=10), archived)
        assert cold is not None
        summary = Archiver(archived, cold, 10).run()
        assert summary["failed"] == [] and summary["days"] >= 45
        warm_left = archived.query("SELECT count(*) FROM events")[0][0]
        assert warm_left < stores["warm"].query("SELECT count(*) FROM events")[0][0] / 4

        for store in stores.values():
            admin.update_site(store, "s1", timezone="Asia/Tokyo", goals=GOALS)

        expected = table(stores["warm"], "daily_stats")
        assert table(archived, "daily_stats") == expected
        assert table(archived, "product_stats") == table(stores["warm"], "product_stats")
        assert len(expected) >= 60
    finally:
        for store in stores.values():
            store.close()
