"""Exports: a range's raw events as CSV, JSON (array or NDJSON) or Parquet, streamed.

Rows come out in (timestamp, event id) order. The range is read in runs of whole local
days of at most ``CHUNK_ROWS`` rows (counted first), each as a stream of record batches
written out batch by batch, so memory stays bounded by one run's sort and the batch size
whatever the range. Columns are the event's API names
(the ``Event`` schema, camelCase); times are milliseconds since the epoch (UTC),
``revenue`` is in cents and ``properties`` is the event's JSON object.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from sqlglot import exp

from sightline.query.calendar import EPOCH_DAY, Buckets, utc_bounds
from sightline.query.explorer import EVENT_FIELDS
from sightline.query.model import Granularity, Period, Query
from sightline.query.planner import E, EventRows, Scan, bucket_expr
from sightline.query.sql import Params, column, fragment, render
from sightline.query.tiers import ColdSource, with_cold

if TYPE_CHECKING:
    from sightline.query.engine import Store


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    media_type: str
    extension: str


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("csv", "text/csv; charset=utf-8", "csv"),
        Format("json", "application/json", "json"),
        Format("ndjson", "application/x-ndjson", "ndjson"),
        Format("parquet", "application/vnd.apache.parquet", "parquet"),
    )
}

_NUMBERS = ("timestamp", "receivedAt", "revenue", "sessionDuration")
#: Most rows one statement sorts (whole local days are read together up to this).
CHUNK_ROWS = 500_000
#: Rows per record batch read from the store (and per Parquet row group).
BATCH_ROWS = 10_000

SCHEMA = pa.schema(
    [(name, pa.int64() if name in _NUMBERS else pa.string()) for name in EVENT_FIELDS]
)


def file_name(period: Period, fmt: Format) -> str:
    """The seed's name: ``analytics-<startDate>-to-<endDate>.<ext>``."""
    return f"analytics-{period.start.isoformat()}-to-{period.end.isoformat()}.{fmt.extension}"


def chunk_statements(
    query: Query, dialect: str, counts: dict[int, int], cold: ColdSource | None = None
) -> Iterator[tuple[str, dict[str, object]]]:
    """Statements over runs of consecutive local days holding at most ``CHUNK_ROWS`` rows
    (a day is never split), each ordered by (ts, event id); days without rows are skipped.
    ``counts``: rows per local day number (days since 1970-01-01)."""
    chunk: list[date] = []
    rows = 0

    def statement(days: list[date]) -> tuple[str, dict[str, object]]:
        lo, _ = utc_bounds(Period(days[0], days[0], query.period.tz))
        _, hi = utc_bounds(Period(days[-1], days[-1], query.period.tz))
        params = Params()
        selected = EventRows(Scan(query, params, lo, hi))
        select: exp.Expr = selected.select(*[column(c, E) for c in EVENT_FIELDS.values()]).order_by(
            column("ts", E), column("event_id", E)
        )
        if cold is not None:
            select = with_cold(select, params.values, cold)
        return render(select, dialect), params.values

    day = query.period.start
    while day <= query.period.end:
        n = counts.get((day - EPOCH_DAY).days, 0)
        if chunk and (not n or rows + n > CHUNK_ROWS):
            yield statement(chunk)
            chunk, rows = [], 0
        if n:
            chunk.append(day)
            rows += n
        day += timedelta(days=1)
    if chunk:
        yield statement(chunk)


def day_counts(query: Query) -> tuple[exp.Select, Params]:
    """Rows per local day of the range (what the export will hold)."""
    lo, hi = utc_bounds(query.period)
    params = Params()
    selected = EventRows(Scan(query, params, lo, hi))
    key = bucket_expr(column("ts", E), Buckets.of(query.period, Granularity.DAY), params)
    select = selected.select(exp.alias_(key, "k"), fragment("count(*)")).group_by(column("k"))
    return select, params


def shape(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Stored columns -> the export's names and types (times in epoch milliseconds)."""
    arrays = []
    for name, array in zip(EVENT_FIELDS, batch.columns, strict=True):
        if name in ("timestamp", "receivedAt"):
            array = pc.divide(pc.cast(array, pa.int64()), 1000)
        elif name in _NUMBERS:
            array = pc.cast(array, pa.int64())
        else:
            array = pc.cast(array, pa.string())
        arrays.append(array)
    return pa.record_batch(arrays, schema=SCHEMA)


class _Sink:
    """A write-only file that hands what was written to the response, chunk by chunk."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.size += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def drain(self) -> bytes:
        data = b"".join(self.parts)
        self.parts = []
        return data


_encode = msgspec.json.Encoder().encode


def json_rows(batch: pa.RecordBatch) -> Iterator[bytes]:
    for row in batch.to_pylist():
        row["properties"] = msgspec.Raw((row["properties"] or "{}").encode())
        yield _encode(row)


def export_events(
    store: Store, query: Query, fmt: Format, cold: ColdSource | None = None
) -> Iterator[bytes]:
    """The export's bytes, produced as the rows are read (archived ones included when
    ``cold`` is given)."""
    dialect = getattr(store, "engine", "duckdb")
    select, params = day_counts(query)
    counting: exp.Expr = select
    if cold is not None:
        counting = with_cold(select, params.values, cold)
    counts = {int(k): int(n) for k, n in store.query(render(counting, dialect), params.values)}
    batches = (
        shape(batch)
        for sql, values in chunk_statements(query, dialect, counts, cold)
        for batch in store.stream(sql, values, BATCH_ROWS)
        if batch.num_rows
    )
    if fmt.name == "csv":
        sink = _Sink()
        writer = pcsv.CSVWriter(sink, SCHEMA)
        yield sink.drain()
        for batch in batches:
            writer.write_batch(batch)
            yield sink.drain()
        writer.close()
        yield sink.drain()
    elif fmt.name == "parquet":
        sink = _Sink()
        parquet = pq.ParquetWriter(sink, SCHEMA, compression="zstd")
        for batch in batches:
            parquet.write_batch(batch)
            yield sink.drain()
        parquet.close()
        yield sink.drain()
    elif fmt.name == "ndjson":
        for batch in batches:
            yield b"".join(row + b"\n" for row in json_rows(batch))
    else:
        yield b"["
        first = True
        for batch in batches:
            chunk = []
            for row in json_rows(batch):
                chunk.append(row if first else b"," + row)
                first = False
            yield b"".join(chunk)
        yield b"]"
