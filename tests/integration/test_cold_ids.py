"""Ids in cold files: UUID-shaped and 32-hex ids are stored as 16 bytes, the tracker's
event ids (``<UUID>.<n>``) as the UUID and n, everything else as text, and every reader
(queries, export, erasure, the archiver's read-back) gives back exactly the string that
was archived. Files of earlier formats (ids as text; packed without counted event ids)
stay readable, alone and together with current ones."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sightline.config import Settings
from sightline.query.engine import QueryEngine
from sightline.query.model import Period, Query, parse_metrics
from sightline.query.tiers import PACKED_SUFFIX, UUID_SUFFIX
from sightline.sites import Site
from sightline.stores.base import DUCKDB_FILE
from sightline.stores.duckdb import DuckDBStore
from sightline.stores.parquet import (
    PART_PREFIX,
    ColdFile,
    ColdStore,
    conform,
    day_path,
    open_cold,
    pack,
    pack_id,
    read_cold,
    unpack,
)
from sightline.workers.archive import Archiver
from tests.support.history import history

SITE = "ids"
TODAY = datetime.now(UTC).date()
FIRST = TODAY - timedelta(days=100)
LAST = FIRST + timedelta(days=5)
WARM_DAYS = 90


def _forms(n: int) -> str:
    """A differently shaped id for each n (unique per n)."""
    u = uuid.UUID(int=(n * 0x9E3779B97F4A7C15) % (1 << 128) | (1 << 100), version=4)
    return [
        f"{u}.{n // 7 + 1}",  # the tracker's event id, a page's UUID and a count: packed
        str(u),  # canonical lowercase UUID: packed
        u.hex,  # 32 lowercase hex digits: packed
        str(u).upper(),  # uppercase UUID: kept as text
        u.hex.upper(),  # uppercase hex: kept as text
        "{" + str(u) + "}",  # braces: kept as text
        f"custom-{n}",  # anything else: kept as text
        str(u)[:-1] + "g",  # not hex: kept as text
        f"{u}.0{n}",  # a count with a leading zero: kept as text
    ][n % 9]


def test_pack_and_unpack_give_back_every_string() -> None:
    page = "0b6c3d1e-8f2a-4c5b-9d7e-1a2b3c4d5e6f"
    values = [_forms(n) for n in range(27)] + ["", None, "é" * 32, "0" * 36]
    values += [f"{page}.1", f"{page}.0", f"{page}.", f"{page}.{10**18 - 1}", f"{page}.{10**18}"]
    values += [f"{page.upper()}.3", f"{page}.-1", f"{page}.1.2", f"{page}x1"]
    column = pa.chunked_array([pa.array(values[:9]), pa.array(values[9:])])
    times = pa.array(range(len(values)), pa.timestamp("ms"))
    table = pa.table(
        {
            "event_id": column,
            "ts": times,
            "received_at": times,
            "session_id": column,
            "visitor_id": column,
        }
    ).slice(2)
    packed = pack(table)
    assert packed.schema.field("event_id__uuid").type == pa.uuid()
    assert packed.schema.field("event_id__page").type == pa.uuid()
    assert packed.schema.field("event_id__seq").type == pa.int64()
    assert packed.schema.field("event_id__hex").type == pa.binary(16)
    assert "session_id__page" not in packed.schema.names  # only event ids are counted
    # Only the odd ones stay text; a null id is null in all three columns.
    kept = [v for v in packed.column("event_id").to_pylist() if v is not None]
    assert kept == [v for v in values[2:] if v is not None and _text_kept(v)]
    seqs = packed.column("event_id__seq").to_pylist()
    assert [s for s in seqs if s is not None] == [
        int(v.rsplit(".", 1)[1]) for v in values[2:] if v is not None and _counted(v)
    ]
    assert packed.column("event_id__uuid").null_count + packed.column("event_id__hex").null_count
    for name in ("event_id", "session_id", "visitor_id"):
        assert unpack(packed).column(name).to_pylist() == values[2:]


@pytest.mark.parametrize("unit", ["ms", "us"])
def test_received_at_is_stored_after_ts_and_given_back(unit: str) -> None:
    ts = [1_700_000_000_000, 1_700_000_000_500, 1_700_000_001_000]
    received = [ts[0], ts[1] + 61_000, ts[2] - 3]
    if unit == "us":  # times not in whole milliseconds stay times
        ts, received = [t * 1000 + 1 for t in ts], [r * 1000 + 2 for r in received]
    ids = pa.array(["a", "b", "c"])
    table = pa.table(
        {
            "event_id": ids,
            "ts": pa.array(ts, pa.timestamp(unit)),
            "received_at": pa.array(received, pa.timestamp(unit)),
            "session_id": ids,
            "visitor_id": ids,
        }
    )
    packed = pack(table)
    lag = packed.column("received_at__lag_ms").to_pylist()
    assert lag == ([0, 61_000, -3] if unit == "ms" else [None, None, None])
    assert packed.column("received_at").null_count == (3 if unit == "ms" else 0)
    assert (
        unpack(packed).column("received_at").to_pylist() == table.column("received_at").to_pylist()
    )


def _text_kept(value: str, counted: bool = True) -> bool:
    canonical = len(value) == 36 and value == value.lower() and _is_uuid(value)
    plain_hex = len(value) == 32 and all(c in "0123456789abcdef" for c in value)
    return not (canonical or plain_hex or (counted and _counted(value)))


def _counted(value: str) -> bool:
    """The tracker's event id form: a canonical UUID, a dot, 1 to 10^18 - 1."""
    page, dot, n = value.partition(".")
    return (
        bool(dot)
        and _text_kept(page, counted=False) is False
        and len(page) == 36
        and n.isascii()
        and n.isdigit()
        and not n.startswith("0")
        and len(n) <= 18
    )


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


@dataclass
class Tiers:
    store: DuckDBStore
    cold: ColdStore


@pytest.fixture
def tiers(tmp_path: Path) -> Iterator[Tiers]:
    store = DuckDBStore(tmp_path / DUCKDB_FILE)
    store.migrate()
    store.add_site(Site(id=SITE, domain="ids.example", site_key="pk_ids"))
    events = history(SITE, FIRST, LAST, seed=3, sessions_per_day=8)
    sessions: dict[str, str] = {}
    visitors: dict[str, str] = {}
    for n, event in enumerate(events):
        event.event_id = _forms(n)
        event.session_id = sessions.setdefault(event.session_id, _forms(len(sessions) + 3))
        event.visitor_id = visitors.setdefault(event.visitor_id, _forms(len(visitors) + 5))
        # Received a little after (or, from a fast clock, before) the event's time.
        event.server_timestamp = event.timestamp + [0, 0, 35, 1_234, -7, 86_400_000][n % 6]
    store.write_events(events, checkpoint=None, goals=["affiliate_click"])
    cold = open_cold(Settings(data_dir=str(tmp_path), warm_days=WARM_DAYS), store)
    assert cold is not None
    try:
        yield Tiers(store, cold)
    finally:
        store.close()


ORDER = "ORDER BY event_id"
COLUMNS = "event_id, session_id, visitor_id, user_id, ts, event_type, page_path, received_at"


def _cold_rows(cold: ColdStore, store: DuckDBStore) -> list[tuple[Any, ...]]:
    source = cold.source(SITE, None, None)
    assert source is not None
    return store.query(f"SELECT {COLUMNS} FROM ({source.sql('duckdb')}) {ORDER}")


def test_archived_ids_read_back_exactly(tiers: Tiers) -> None:
    store, cold = tiers.store, tiers.cold
    warm = store.query(f"SELECT {COLUMNS} FROM events {ORDER}")
    shapes = {_text_kept(r[0]) for r in warm}
    assert shapes == {True, False}
    assert {r[7] - r[4] for r in warm} >= {timedelta(0), timedelta(milliseconds=-7)}
    query = Query(SITE, Period(FIRST, LAST, "UTC"))
    metrics = parse_metrics(["visitors", "sessions", "events", "pageViews"])
    before = QueryEngine(store).totals(query, metrics)

    summary = Archiver(store, cold, WARM_DAYS).run()
    assert summary["rows"] == len(warm) and not summary["failed"]
    assert store.query("SELECT count(*) FROM events")[0][0] == 0

    # Queries (DuckDB over the files) see the very same strings.
    assert _cold_rows(cold, store) == warm
    assert QueryEngine(store, cold).totals(query, metrics) == before

    # The files are packed: canonical ids are 16-byte UUIDs, not text.
    files = cold.manifest.cold_files(SITE)
    assert files and all(f.path.endswith(PACKED_SUFFIX) for f in files)
    with cold.fs.open(cold.location(files[0].path), "rb") as fh:
        parquet = pq.ParquetFile(fh)
        column = parquet.schema.column(parquet.schema_arrow.get_field_index("event_id__uuid"))
        assert column.physical_type == "FIXED_LEN_BYTE_ARRAY"
        assert str(column.logical_type) == "UUID"
        text = parquet.read(columns=["event_id"]).column("event_id").to_pylist()
        pages = parquet.read(columns=["event_id__page"]).column(0)
        assert 0 < pages.null_count < len(pages)
    assert all(v is None or _text_kept(v) for v in text)
    assert any(v is None for v in text)

    # Export (read by pyarrow, not DuckDB) gives the same strings.
    visitors = sorted({r[2] for r in warm})
    exported = cold.export_subject(SITE, visitors, [])
    assert sorted(r["event_id"] for r in exported) == [r[0] for r in warm]
    assert {r["visitor_id"] for r in exported} == set(visitors)
    assert {r["session_id"] for r in exported} == {r[1] for r in warm}


def test_erasure_matches_ids_of_every_shape(tiers: Tiers) -> None:
    store, cold = tiers.store, tiers.cold
    warm = store.query(f"SELECT {COLUMNS} FROM events {ORDER}")
    Archiver(store, cold, WARM_DAYS).run()
    # A visitor id of a packable shape and one of another shape.
    packed = next(r[2] for r in warm if not _text_kept(r[2]))
    text = next(r[2] for r in warm if _text_kept(r[2]))
    removed = cold.erase_subject(SITE, [packed, text], [])
    assert removed == sum(1 for r in warm if r[2] in (packed, text))
    assert _cold_rows(cold, store) == [r for r in warm if r[2] not in (packed, text)]
    assert cold.export_subject(SITE, [packed, text], []) == []


def _day_rows(store: DuckDBStore, day: date) -> pa.Table:
    lo = datetime.combine(day, datetime.min.time())
    return pa.Table.from_batches(
        list(
            store.stream(
                "SELECT * FROM events WHERE site_id = $s AND ts >= $lo AND ts < $hi",
                {"s": SITE, "lo": lo, "hi": lo + timedelta(days=1)},
            )
        )
    )


def _record_part(
    cold: ColdStore, store: DuckDBStore, day: date, table: pa.Table, suffix: str, ids: Any
) -> ColdFile:
    """Write ``table`` as a part named with ``suffix`` and record it in the manifest the
    archiver's way (its events leave the warm store)."""
    rel = f"{day_path(SITE, day)}/{PART_PREFIX}{uuid.uuid4().hex}{suffix}"
    full = f"{cold.root}/{rel}"
    cold.fs.makedirs(full.rsplit("/", 1)[0], exist_ok=True)
    with cold.fs.open(full, "wb") as fh:
        pq.write_table(table, fh, compression="zstd")
    entry = ColdFile(rel, SITE, day, table.num_rows, int(cold.fs.size(full)))
    store.commit_archive(entry, ids.combine_chunks())
    return entry


def _write_old_format(cold: ColdStore, store: DuckDBStore, day: date) -> ColdFile:
    """A part as files were written before ids were packed: ids as text, sorted by
    session, no packed columns."""
    table = conform(_day_rows(store, day))
    table = table.sort_by([("session_id", "ascending"), ("ts", "ascending")])
    return _record_part(cold, store, day, table, ".parquet", table.column("event_id"))


def test_files_written_with_text_ids_stay_readable(tiers: Tiers) -> None:
    store, cold = tiers.store, tiers.cold
    warm = store.query(f"SELECT {COLUMNS} FROM events {ORDER}")
    old = [_write_old_format(cold, store, FIRST + timedelta(days=d)) for d in (0, 1)]
    with cold.fs.open(cold.location(old[0].path), "rb") as fh:
        assert "event_id" + UUID_SUFFIX not in pq.read_schema(fh).names
        assert read_cold(fh, columns=["event_id"]).num_rows == old[0].rows

    # Only old files in range: they read alone.
    source = cold.source(
        SITE, None, datetime.combine(FIRST + timedelta(days=2), datetime.min.time())
    )
    assert source is not None
    only_old = store.query(f"SELECT {COLUMNS} FROM ({source.sql('duckdb')}) {ORDER}")
    assert only_old == [r for r in warm if r[4].date() < FIRST + timedelta(days=2)]

    # Then the other days go cold packed; both kinds read together.
    Archiver(store, cold, WARM_DAYS).run()
    kinds = {f.path.endswith(PACKED_SUFFIX) for f in cold.manifest.cold_files(SITE)}
    assert kinds == {True, False}
    assert _cold_rows(cold, store) == warm
    visitors = sorted({r[2] for r in warm})
    assert sorted(r["event_id"] for r in cold.export_subject(SITE, visitors, [])) == [
        r[0] for r in warm
    ]

    # Erasure rewrites an old file in the packed form, other ids unchanged.
    victim = next(r[2] for r in warm if r[4].date() == FIRST)
    cold.erase_subject(SITE, [victim], [])
    assert _cold_rows(cold, store) == [r for r in warm if r[2] != victim]


def _write_format_2(cold: ColdStore, store: DuckDBStore, day: date) -> ColdFile:
    """A part as format 2 wrote it: ids packed, but event ids of the tracker's form kept
    as text (no ``event_id__page`` / ``event_id__seq``)."""
    table = pack(conform(_day_rows(store, day)))
    ids = unpack(table).column("event_id")
    parts = pack_id(ids, counted=False)
    table = table.drop_columns([c for c in table.column_names if c.startswith("event_id")])
    for offset, (suffix, values) in enumerate(parts.items()):
        table = table.add_column(1 + offset, "event_id" + suffix, values)
    return _record_part(cold, store, day, table, ".p2.parquet", ids)


def test_files_of_format_2_stay_readable(tiers: Tiers) -> None:
    store, cold = tiers.store, tiers.cold
    warm = store.query(f"SELECT {COLUMNS} FROM events {ORDER}")
    old = _write_format_2(cold, store, FIRST)
    with cold.fs.open(cold.location(old.path), "rb") as fh:
        names = pq.read_schema(fh).names
    assert "event_id__uuid" in names and "event_id__page" not in names
    Archiver(store, cold, WARM_DAYS).run()
    suffixes = {f.path.rsplit("-", 1)[1].split(".", 1)[1] for f in cold.manifest.cold_files(SITE)}
    assert suffixes == {"p2.parquet", "p3.parquet"}
    # Queries, export and erasure read both formats; erasure rewrites in format 3.
    assert _cold_rows(cold, store) == warm
    visitors = sorted({r[2] for r in warm})
    exported = cold.export_subject(SITE, visitors, [])
    assert sorted(r["event_id"] for r in exported) == [r[0] for r in warm]
    victim = next(r[2] for r in warm if r[4].date() == FIRST)
    cold.erase_subject(SITE, [victim], [])
    assert _cold_rows(cold, store) == [r for r in warm if r[2] != victim]
    assert not any(f.path.endswith(".p2.parquet") for f in cold.manifest.cold_files(SITE))
