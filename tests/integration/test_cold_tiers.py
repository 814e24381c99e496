"""The cold tier in a directory and on S3 (moto's server, started by the tests): queries
across tiers, and the data-subject export and erasure the privacy features call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from sightline.config import Settings
from sightline.query.engine import QueryEngine
from sightline.query.exports import FORMATS
from sightline.query.model import Granularity, Period, Query, parse_dimension, parse_metrics
from sightline.sites import Site
from sightline.stores.base import DUCKDB_FILE
from sightline.stores.duckdb import EVENT_COLUMNS, DuckDBStore
from sightline.stores.parquet import ColdStore, open_cold
from sightline.workers.archive import Archiver
from tests.support.history import history
from tests.support.s3 import make_bucket, s3_server

pytestmark = pytest.mark.slow

TODAY = datetime.now(UTC).date()
FIRST = TODAY - timedelta(days=110)
WARM_DAYS = 90
CUTOFF = datetime.combine(TODAY - timedelta(days=WARM_DAYS), datetime.min.time())
SITES = ("a", "b")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as endpoint:
        make_bucket(endpoint, "archive")
        yield endpoint


@dataclass
class Tiers:
    store: DuckDBStore
    cold: ColdStore
    archiver: Archiver


@pytest.fixture(params=["dir", "s3"])
def tiers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Tiers]:
    settings = Settings(data_dir=str(tmp_path), warm_days=WARM_DAYS)
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        prefix = f"s3://archive/{tmp_path.name}"
        settings = Settings(
            data_dir=str(tmp_path),
            warm_days=WARM_DAYS,
            cold_url=prefix,
            cold_s3_endpoint_url=endpoint,
        )
    store = DuckDBStore(tmp_path / DUCKDB_FILE)
    store.migrate()
    for seed, site in enumerate(SITES):
        store.add_site(Site(id=site, domain=f"{site}.example", site_key=f"pk_{site}"))
        events = history(site, FIRST, TODAY - timedelta(days=1), seed=seed, sessions_per_day=6)
        store.write_events(events, checkpoint=None, goals=["affiliate_click"])
    cold = open_cold(settings, store)
    assert cold is not None
    try:
        yield Tiers(store, cold, Archiver(store, cold, WARM_DAYS))
    finally:
        store.close()


def _warm_rows(store: DuckDBStore, where: str, params: list[Any]) -> list[dict[str, Any]]:
    return store.query_dicts(
        f"SELECT * FROM events WHERE ts < ? AND ({where}) ORDER BY ts, event_id",
        [CUTOFF, *params],
    )


def _figures(engine: QueryEngine, site: str) -> list[Any]:
    query = Query(site, Period(FIRST, TODAY, "UTC"))
    metrics = parse_metrics(["events", "visitors", "revenue", "sessions"])
    return [
        engine.totals(query, metrics),
        engine.timeseries(query, metrics, Granularity.WEEK),
        engine.breakdown(query, metrics, parse_dimension("page"), metrics[1]),
        b"".join(engine.export(query, FORMATS["ndjson"])),
    ]


def test_queries_count_every_event_once_across_tiers(tiers: Tiers) -> None:
    before = {site: _figures(QueryEngine(tiers.store), site) for site in SITES}
    summary = tiers.archiver.run()
    assert summary["failed"] == []
    assert summary["days"] == 2 * (CUTOFF.date() - FIRST).days
    assert tiers.store.query("SELECT count(*) FROM events WHERE ts < ?", [CUTOFF])[0][0] == 0
    engine = QueryEngine(tiers.store, tiers.cold)
    for site in SITES:
        assert _figures(engine, site) == before[site]
    assert _figures(QueryEngine(tiers.store), "a") != before["a"]


def test_export_subject_returns_archived_rows_as_warm_rows(tiers: Tiers) -> None:
    visitor = _warm_rows(tiers.store, "site_id = 'a' AND visitor_id = 'v001'", [])
    user = _warm_rows(tiers.store, "user_id = 'user-v005'", [])
    assert visitor and user and {r["site_id"] for r in user} == set(SITES)
    tiers.archiver.run()

    exported = tiers.cold.export_subject("a", ["v001"], [])
    assert exported == visitor
    assert list(exported[0]) == list(EVENT_COLUMNS)
    # Every site at once, by user id.
    assert tiers.cold.export_subject(None, [], ["user-v005"]) == user
    assert tiers.cold.export_subject("a", ["nobody"], ["nobody"]) == []
    assert tiers.cold.export_subject(None, [], []) == []
    json.dumps(exported, default=str)  # plain values a privacy archive can carry


def test_erase_subject_rewrites_the_affected_files(tiers: Tiers) -> None:
    gone = _warm_rows(tiers.store, "site_id = 'a' AND (visitor_id = 'v002' OR user_id = 'x')", [])
    kept_elsewhere = _warm_rows(tiers.store, "site_id = 'b' AND visitor_id = 'v002'", [])
    assert gone and kept_elsewhere
    tiers.archiver.run()
    files_before = {f.path: f for f in tiers.cold.manifest.cold_files()}
    total_before = tiers.cold.summary()["rows"]

    removed = tiers.cold.erase_subject("a", ["v002"], ["x"])

    assert removed == len(gone)
    assert tiers.cold.export_subject("a", ["v002"], []) == []
    assert tiers.cold.export_subject("b", ["v002"], []) == kept_elsewhere
    assert tiers.cold.summary()["rows"] == total_before - removed
    files_after = {f.path: f for f in tiers.cold.manifest.cold_files()}
    rewritten = set(files_before) - set(files_after)
    assert rewritten
    assert all(files_before[p].site_id == "a" for p in rewritten)
    # The old files are gone from the location; nothing unrecorded is left behind.
    assert sorted(tiers.cold._listing()) == sorted(files_after)
    # Queries see the erasure.
    query = Query("a", Period(FIRST, TODAY, "UTC"))
    events = parse_metrics(["events"])
    engine = QueryEngine(tiers.store, tiers.cold)
    assert engine.totals(query, events)["events"] == (
        tiers.store.query("SELECT count(*) FROM events WHERE site_id = 'a'")[0][0]
        + sum(f.rows for f in files_after.values() if f.site_id == "a")
    )
    # Erasing again finds nothing.
    assert tiers.cold.erase_subject("a", ["v002"], ["x"]) == 0


def test_erasing_every_row_of_a_file_removes_it(tiers: Tiers) -> None:
    tiers.archiver.run()
    first = tiers.cold.manifest.cold_files("b")[0]
    visitors = sorted(
        {
            r["visitor_id"]
            for r in tiers.cold.export_subject("b", [f"v{i:03d}" for i in range(60)], [])
            if r["ts"].date() == first.day
        }
    )
    rows_that_day = first.rows
    removed = tiers.cold.erase_subject("b", visitors, [])
    assert removed >= rows_that_day
    assert not [f for f in tiers.cold.manifest.cold_files("b") if f.day == first.day]


def test_reconcile_removes_unrecorded_files(tiers: Tiers) -> None:
    tiers.archiver.run()
    stray = "site=a/day=2000-01-01/part-0123.parquet"
    full = f"{tiers.cold.root}/{stray}"
    tiers.cold.fs.makedirs(full.rsplit("/", 1)[0], exist_ok=True)
    with tiers.cold.fs.open(full, "wb") as fh:
        fh.write(b"not recorded")
    assert tiers.cold.reconcile() == [stray]
    assert not tiers.cold.fs.exists(full)
    assert tiers.cold.reconcile() == []


def test_a_column_added_to_events_later_is_archived_too(tiers: Tiers) -> None:
    query = Query("a", Period(FIRST, TODAY, "UTC"))
    metrics = parse_metrics(["events", "visitors"])
    before = QueryEngine(tiers.store).totals(query, metrics)
    # Older days go cold first; then the schema grows; then the rest goes cold.
    Archiver(tiers.store, tiers.cold, WARM_DAYS + 10).run()
    tiers.store.query("ALTER TABLE events ADD COLUMN consent VARCHAR NOT NULL DEFAULT 'granted'")
    tiers.archiver.run()
    engine = QueryEngine(tiers.store, tiers.cold)
    assert engine.totals(query, metrics) == before
    newer = [f for f in tiers.cold.manifest.cold_files("a") if f.day >= FIRST + timedelta(days=10)]
    with tiers.cold.fs.open(tiers.cold.location(newer[0].path), "rb") as fh:
        assert pq.read_schema(fh).names[-1] == "consent"
    # Both generations of files read together; the older ones have no value.
    source = tiers.cold.source("a", None, None)
    assert source is not None
    counted = tiers.store.query(f"SELECT count(*), count(consent) FROM ({source.sql('duckdb')})")[0]
    assert counted[0] > counted[1] > 0
