"""The production warm store: PostgreSQL.

The same tables as the embedded DuckDB store (migrations/postgres mirrors
migrations/duckdb), with what a shared server needs on top:

- **Day partitions.** ``events`` is partitioned by range of ``ts``, one partition per
  UTC day (``events_pYYYYMMDD``). The writer creates the partitions a batch needs before
  writing it, under an advisory lock, so concurrent workers never race on the DDL.
- **COPY.** A batch goes into a per-connection temporary table with ``COPY ... (FORMAT
  BINARY)``; one transaction then drops the events already stored, inserts the rest,
  merges their sessions and records the checkpoint.
- **Idempotent writes.** Several workers share a transport, and each remembers only
  what it wrote itself, so the store decides what is new: each batch's (site, eventId)
  keys are inserted into ``event_keys`` with ``ON CONFLICT DO NOTHING`` in the same
  transaction as the events, and only events whose key was new are stored. A redelivered
  batch or a client's retry is stored once, whichever worker gets it
  (docs/decisions/0006-idempotent-postgres-writes.md).
- **Pooling.** Every read and write borrows a connection from a psycopg_pool pool.

Reads use the same method names as DuckDBStore. ``query`` takes SQL in PostgreSQL syntax
with psycopg placeholders (``%(name)s`` / ``%s``, as SQLGlot's postgres printer writes
them), or DuckDB-style ``$name`` / ``?`` placeholders; numeric results come back as
``int`` or ``float`` and JSON as text, as DuckDB returns them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import operator
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Any

import msgspec
import psycopg
import pyarrow as pa
from psycopg import errors, sql
from psycopg.adapt import Loader
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from sightline.events import Event
from sightline.events.types import PASSIVE_TYPES, EventType
from sightline.query import daily
from sightline.query.daily import rollup_rebuild_plan
from sightline.query.sql import render
from sightline.query.tiers import ColdSource
from sightline.sites import Site
from sightline.stores.base import DroppedEvents
from sightline.stores.duckdb import (
    EVENT_COLUMNS,
    EXPERIMENT_JSON,
    experiment_changes,
    experiment_record,
    experiment_values,
)

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
#: How long the keys of stored events are kept to recognise a redelivery or a retry.
DEFAULT_DEDUPE_HOURS = 7 * 24
#: How often a writer deletes expired event keys (seconds).
_PRUNE_INTERVAL = 600.0
#: Advisory lock ids (the first argument of the two-key form): migrations, partition DDL,
#: rollups of one site.
_LOCK_MIGRATE = 0x5167_0001
_LOCK_PARTITIONS = 0x5167_0002
_LOCK_ROLLUP = 0x5167_0003

_json = msgspec.json.Encoder()
_decode_json = msgspec.json.decode

# -- the batch as rows ---------------------------------------------------------------------

_INT_COLUMNS = frozenset({"ts", "received_at", "revenue", "session_duration"})
_FIELD_INDEX = {name: index for index, name in enumerate(Event.__struct_fields__)}
_SOURCE_FIELD = {"ts": "timestamp", "received_at": "server_timestamp"}
_DERIVED = ("product_id", "revenue", "properties")
#: The staging table's columns: those copied from Event fields as they are, then those
#: derived from properties, then the event's key (times as epoch milliseconds).
_COPIED = tuple(c for c in EVENT_COLUMNS if c not in _DERIVED)
_STAGE_COLUMNS = (*_COPIED, *_DERIVED, "key")
_STAGE_TYPES = [
    "bytea" if c == "key" else "int8" if c in _INT_COLUMNS else "text" for c in _STAGE_COLUMNS
]
_STAGE_TABLE = "_sightline_batch"
_pick = operator.itemgetter(*(_FIELD_INDEX[_SOURCE_FIELD.get(c, c)] for c in _COPIED))
_PROPERTIES = _FIELD_INDEX["properties"]
_SITE = _FIELD_INDEX["site_id"]
_EVENT_ID = _FIELD_INDEX["event_id"]


def event_key(site_id: str, event_id: str) -> bytes:
    """The 128-bit key of an event in ``event_keys``: a hash of (site, eventId)."""
    return hashlib.blake2b(f"{site_id}\0{event_id}".encode(), digest_size=16).digest()


def events_to_rows(events: Sequence[Event]) -> list[tuple[Any, ...]]:
    """Staging rows of a batch (``_STAGE_COLUMNS``), the first of each (site, eventId)."""
    encode = _json.encode
    astuple = msgspec.structs.astuple
    seen: set[bytes] = set()
    rows: list[tuple[Any, ...]] = []
    for event in events:
        fields = astuple(event)
        key = event_key(fields[_SITE], fields[_EVENT_ID])
        if key in seen:
            continue
        seen.add(key)
        props = fields[_PROPERTIES]
        if props:
            product = props.get("productId", "")
            revenue = props.get("revenue")
            derived: tuple[Any, ...] = (
                product if isinstance(product, str) else str(product),
                round(revenue * 100)
                if isinstance(revenue, int | float) and not isinstance(revenue, bool)
                else 0,
                encode(props).decode(),
                key,
            )
        else:
            derived = ("", 0, "{}", key)
        rows.append(_pick(fields) + derived)
    return rows


# -- connections ---------------------------------------------------------------------------


class _NumberLoader(Loader):
    """numeric as int when whole, else float (DuckDB answers sum() and avg() that way)."""

    def load(self, data: Any) -> int | float:
        text = bytes(data)
        if b"." in text or b"e" in text or b"N" in text:
            return float(text)
        return int(text)


class _TextLoader(Loader):
    """json and jsonb as their text (as DuckDB returns JSON columns)."""

    def load(self, data: Any) -> str:
        return bytes(data).decode()


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.autocommit = True
    conn.execute("SET TimeZone TO 'UTC'")
    conn.adapters.register_loader("numeric", _NumberLoader)
    conn.adapters.register_loader("json", _TextLoader)
    conn.adapters.register_loader("jsonb", _TextLoader)
    # The writer's staging table lives as long as the connection (rows: one transaction).
    conn.execute(_STAGE_DDL)


_PLACEHOLDER = re.compile(r"%\([A-Za-z_][A-Za-z0-9_]*\)s|%s|%")
_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@functools.lru_cache(maxsize=512)
def to_psycopg(text: str, positional: bool) -> str:
    """SQL with DuckDB-style (``$name``, ``?``) or psycopg placeholders, for psycopg:
    literal ``%`` doubled, ``$name`` -> ``%(name)s``, ``?`` -> ``%s`` (positional)."""
    text = _PLACEHOLDER.sub(lambda m: m.group(0) if len(m.group(0)) > 1 else "%%", text)
    text = _DOLLAR.sub(lambda m: f"%({m.group(1)})s", text)
    if positional:
        text = text.replace("?", "%s")
    return text


class _ThreadCursor:
    """A DuckDB-like cursor (``execute(...).fetchall()``) on a connection of one thread."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._cur: psycopg.Cursor[Any] = conn.cursor()

    def execute(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        self._cur.execute(
            to_psycopg(query, isinstance(params, list | tuple)).encode(), params or None
        )
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cur.fetchall() if self._cur.description else []


class PostgresStore:
    """Events, sessions, rollups, sites, users and tokens in one PostgreSQL database."""

    engine = "postgres"

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        dedupe_hours: int = DEFAULT_DEDUPE_HOURS,
        connect_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.dedupe_hours = dedupe_hours
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            configure=_configure,
            timeout=connect_timeout,
            name="sightline",
            open=False,
        )
        self.pool.open(wait=True, timeout=connect_timeout)
        self._partitions: set[int] = set()
        self._partitions_lock = threading.Lock()
        self._local = threading.local()
        self._thread_conns: list[psycopg.Connection[Any]] = []
        self._last_prune = time.monotonic()
        self._auth_watchers: list[Callable[[], None]] = []
        self._site_watchers: list[Callable[[], None]] = []
        #: Events a write found already stored (redeliveries, retries), since start.
        self.duplicates = 0

    # -- connections -------------------------------------------------------------------

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self.pool.connection() as conn:
            yield conn

    def cursor(self) -> _ThreadCursor:
        """A DuckDB-like cursor for the calling thread, on an autocommit connection of
        its own (for read-only operator queries that BEGIN and ROLLBACK around a read)."""
        cur: _ThreadCursor | None = getattr(self._local, "cursor", None)
        if cur is None:
            conn = psycopg.connect(self.url, autocommit=True)
            _configure(conn)
            self._thread_conns.append(conn)
            cur = _ThreadCursor(conn)
            self._local.cursor = cur
        return cur

    def close(self) -> None:
        self.pool.close()
        for conn in self._thread_conns:
            conn.close()
        self._thread_conns.clear()

    def query(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn:
            cur = conn.execute(_prepare(sql, params), params or None)
            return cur.fetchall() if cur.description else []

    def query_dicts(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_prepare(sql, params), params or None)
            return cur.fetchall() if cur.description else []

    def stream(
        self, sql: str, params: dict[str, Any], batch_rows: int = 10_000
    ) -> Iterator[pa.RecordBatch]:
        """A read's rows as Arrow record batches, read through a server-side cursor, so
        memory stays bounded by the batch size whatever the number of rows."""
        with (
            self.pool.connection() as conn,
            conn.transaction(),
            conn.cursor(name="sightline_stream") as cur,
        ):
            cur.itersize = batch_rows
            cur.execute(_prepare(sql, params), params or None)
            names = [d.name for d in cur.description or ()]
            while True:
                rows = cur.fetchmany(batch_rows)
                if not rows:
                    return
                columns = list(zip(*rows, strict=True))
                yield pa.RecordBatch.from_arrays([pa.array(c) for c in columns], names=names)

    # -- schema ------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply pending migrations (one process at a time); returns the versions applied."""
        applied: list[int] = []
        folder = resources.files("sightline.stores.migrations") / "postgres"
        with self.pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", [_LOCK_MIGRATE])
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                    "name text NOT NULL, applied_at timestamp NOT NULL)"
                )
                done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
                for entry in sorted(folder.iterdir(), key=lambda p: p.name):
                    if not entry.name.endswith(".sql"):
                        continue
                    version = int(entry.name.split("_", 1)[0])
                    if version in done:
                        continue
                    with conn.transaction():
                        conn.execute(entry.read_text().encode())
                        conn.execute(
                            "INSERT INTO schema_migrations VALUES (%s, %s, now())",
                            [version, entry.name],
                        )
                    applied.append(version)
                    log.info("applied migration %s", entry.name)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_MIGRATE])
        return applied

    def schema_version(self) -> int:
        try:
            row = self.query("SELECT max(version) FROM schema_migrations")
        except errors.UndefinedTable:
            return 0
        return int(row[0][0] or 0)

    def partitions(self) -> list[str]:
        """Names of the events table's day partitions, oldest first."""
        return [
            r[0]
            for r in self.query(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'events'::regclass ORDER BY c.relname"
            )
        ]

    def ensure_partitions(self, days: Iterable[int]) -> None:
        """Create the day partitions (days since the epoch) that do not exist yet."""
        wanted = set(days) - self._partitions
        if not wanted:
            return
        with self._partitions_lock:
            if not self._partitions:
                self._partitions |= {
                    _partition_day(name) for name in self.partitions() if name[-8:].isdigit()
                }
            wanted -= self._partitions
            if not wanted:
                return
            with self.pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_PARTITIONS])
                for day in sorted(wanted):
                    first = date(1970, 1, 1) + timedelta(days=day)
                    conn.execute(
                        sql.SQL(
                            "CREATE TABLE IF NOT EXISTS {} PARTITION OF events "
                            "FOR VALUES FROM ({}) TO ({})"
                        ).format(
                            sql.Identifier(f"events_p{first:%Y%m%d}"),
                            sql.Literal(first.isoformat()),
                            sql.Literal((first + timedelta(days=1)).isoformat()),
                        )
                    )
            self._partitions |= wanted

    def drop_partitions_before(self, day: date) -> list[str]:
        """Drop whole days of events older than ``day`` (retention); returns the names."""
        return [name for name, _ in self._drop_partitions(day)]

    def _drop_partitions(self, day: date) -> list[tuple[str, int]]:
        """Drop the day partitions before ``day``, one short transaction each (dropping a
        partition locks the parent table briefly); returns (name, rows it held)."""
        dropped = []
        for name in self.partitions():
            if name[-8:].isdigit() and datetime.strptime(name[-8:], "%Y%m%d").date() < day:
                with self.pool.connection() as conn, conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_PARTITIONS])
                    table = sql.Identifier(name)
                    found = conn.execute(
                        sql.SQL("SELECT count(*) FROM {}").format(table)
                    ).fetchone()
                    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
                dropped.append((name, int(found[0]) if found else 0))
        with self._partitions_lock:
            self._partitions.clear()
        return dropped

    def drop_events_before(self, site_id: str | None, day: date) -> DroppedEvents:
        """Retention (see stores.base.Store): every site's days before ``day`` go as whole
        partitions; one site's go row by row (the partitions hold every site's events;
        the days are pruned and the (site_id, ts) index finds the rows)."""
        cut = datetime(day.year, day.month, day.day)
        if site_id is None:
            dropped = self._drop_partitions(day)
            with self.pool.connection() as conn:
                gone = conn.execute("DELETE FROM session_stats WHERE ended_at < %s", [cut]).rowcount
            return DroppedEvents(
                events=sum(rows for _, rows in dropped),
                sessions=gone,
                partitions=tuple(name for name, _ in dropped),
            )
        with self.pool.connection() as conn, conn.transaction():
            events = conn.execute(
                "DELETE FROM events WHERE site_id = %s AND ts < %s", [site_id, cut]
            ).rowcount
            gone = conn.execute(
                "DELETE FROM session_stats WHERE site_id = %s AND ended_at < %s", [site_id, cut]
            ).rowcount
        return DroppedEvents(events=events, sessions=gone)

    # -- ingest ------------------------------------------------------------------------

    def write_events(
        self,
        events: Sequence[Event],
        *,
        checkpoint: tuple[str, str] | None,
        goals: Iterable[str],
        merges: Sequence[tuple[str, str, str]] = (),
        attempts: int = 5,
    ) -> None:
        """Store the events not stored yet, merge their sessions and record the
        checkpoint, in one transaction.

        ``merges`` are sessions a late event joined, as (site, absorbed, survivor): the
        absorbed session's stored events are relabelled and the survivor's row rebuilt
        from the stored events before the batch is merged in (as the DuckDB store does).
        """
        rows = events_to_rows(events)
        ts_at = _STAGE_COLUMNS.index("ts")
        self.ensure_partitions({row[ts_at] // DAY_MS for row in rows})
        params = {"goals": list(goals), "passive": _PASSIVE}
        for attempt in range(attempts):
            try:
                with self.pool.connection() as conn:
                    self._write(conn, rows, checkpoint, params, merges)
                break
            except (errors.DeadlockDetected, errors.SerializationFailure):
                if attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
            except errors.CheckViolation as exc:
                # "no partition of relation events found for row": another process's
                # retention dropped a day this process remembered creating.
                if "partition" not in str(exc) or attempt == attempts - 1:
                    raise
                with self._partitions_lock:
                    self._partitions.clear()
                self.ensure_partitions({row[ts_at] // DAY_MS for row in rows})
        if time.monotonic() - self._last_prune >= _PRUNE_INTERVAL:
            self._last_prune = time.monotonic()
            self.prune_event_keys()

    def _write(
        self,
        conn: psycopg.Connection[Any],
        rows: list[tuple[Any, ...]],
        checkpoint: tuple[str, str] | None,
        params: dict[str, Any],
        merges: Sequence[tuple[str, str, str]],
    ) -> None:
        with conn.transaction(), conn.cursor() as cur:
            if merges:
                _join_sessions(cur, merges, params)
            if rows:
                with cur.copy(_COPY_SQL) as copy:
                    copy.set_types(_STAGE_TYPES)
                    for row in rows:
                        copy.write_row(row)
                cur.execute(_CLAIM_SQL)
                claimed = cur.rowcount
                if claimed < len(rows):
                    self.duplicates += len(rows) - claimed
                    if claimed:
                        cur.execute(_DROP_STORED_SQL)
                if claimed:
                    cur.execute(_INSERT_EVENTS_SQL)
                    cur.execute(_SESSION_MERGE_SQL, params)
            if checkpoint is not None:
                cur.execute(
                    "INSERT INTO checkpoints VALUES (%s, %s, now()) ON CONFLICT (name) "
                    "DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
                    list(checkpoint),
                )

    def prune_event_keys(self, batch: int = 50_000) -> int:
        """Forget keys of events stored longer ago than the dedupe horizon."""
        removed = 0
        horizon = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=self.dedupe_hours)
        while True:
            with self.pool.connection() as conn:
                cur = conn.execute(
                    "DELETE FROM event_keys WHERE ctid = ANY(ARRAY(SELECT ctid FROM event_keys "
                    "WHERE seen_at < %s LIMIT %s))",
                    [horizon, batch],
                )
            removed += cur.rowcount
            if cur.rowcount < batch:
                return removed

    def checkpoint(self, name: str) -> str | None:
        rows = self.query("SELECT position FROM checkpoints WHERE name = %s", [name])
        return rows[0][0] if rows else None

    def recent_event_keys(self, limit: int) -> list[tuple[str, str]]:
        """Keys for a writer's in-memory dedupe window. The store itself is idempotent
        (event_keys), so a starting writer needs none: this answers an empty list rather
        than reading up to a million rows at every start."""
        return []

    def session_spans(
        self, site_id: str, visitor_ids: Sequence[str], since_ms: int
    ) -> list[tuple[str, str, str, int, int]]:
        """Server-made sessions of these visitors that ended at or after ``since_ms``."""
        return [
            (r[0], r[1], r[2], int(r[3]), int(r[4]))
            for r in self.query(
                f"SELECT site_id, visitor_id, session_id, {_ms('started_at')}, "
                f"{_ms('ended_at')} FROM session_stats WHERE site_id = %(site)s "
                "AND session_id LIKE 'srv\\_%' AND visitor_id = ANY(%(visitors)s) "
                f"AND ended_at >= {_EPOCH} + %(since)s * interval '1 millisecond'",
                {"site": site_id, "since": since_ms, "visitors": list(visitor_ids)},
            )
        ]

    def session_starts(self, site_id: str, session_ids: Sequence[str]) -> list[tuple[str, int]]:
        """When these sessions started, for those already stored."""
        return [
            (r[0], int(r[1]))
            for r in self.query(
                f"SELECT session_id, {_ms('started_at')} FROM session_stats "
                "WHERE site_id = %(site)s AND session_id = ANY(%(ids)s)",
                {"site": site_id, "ids": list(session_ids)},
            )
        ]

    def refresh_rollups(
        self,
        days: Iterable[tuple[str, date]],
        goals: Sequence[str],
        *,
        cold: ColdSource | None = None,
    ) -> None:
        """Recompute DailyStats and ProductStats rows for (site id, local day) pairs (from
        the warm events: PostgreSQL has no cold tier, docs/cold.md, so ``cold`` is None).

        One refresh of a site at a time across every process (an advisory lock), so
        workers refreshing the same days never interleave their delete and insert.
        """
        by_site: dict[str, set[date]] = {}
        for site_id, day in days:
            by_site.setdefault(site_id, set()).add(day)
        for site_id, site_days in by_site.items():
            site = self.get_site(site_id)
            if site is None:
                continue
            first, last = min(site_days), max(site_days)
            with self.pool.connection() as conn, conn.transaction():
                conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_LOCK_ROLLUP, site_id]
                )
                for table, build in _ROLLUPS:
                    tree, values = build(site_id, site.timezone, first, last, goals)
                    params = {**values.values, "site": site_id, "days": sorted(site_days)}
                    conn.execute(
                        sql.SQL("DELETE FROM {} WHERE site_id = %(site)s AND date = ANY(%(days)s)")
                        .format(sql.Identifier(table))
                        .as_string(),
                        params,
                    )
                    select = to_psycopg(render(tree, "postgres"), positional=False)
                    conn.execute(
                        f"INSERT INTO {table} SELECT %(site)s, r.* FROM ({select}) r "
                        "WHERE r.date = ANY(%(days)s)",
                        params,
                    )

    # -- sites -------------------------------------------------------------------------

    def add_site(self, site: Site) -> None:
        self.query(
            "INSERT INTO sites (id, domain, site_key, allowed_origins, timezone, created_at, "
            "consent_mode, retention_days) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                site.id,
                site.domain,
                site.site_key,
                site.allowed_origins,
                site.timezone,
                datetime.fromtimestamp(site.created_at / 1000, UTC).replace(tzinfo=None),
                site.consent_mode,
                site.retention_days,
            ],
        )

    def list_sites(self) -> list[Site]:
        return [_site(row) for row in self.query(_SITE_SELECT + " ORDER BY created_at, domain")]

    def get_site(self, id_or_domain: str) -> Site | None:
        rows = self.query(_SITE_SELECT + " WHERE id = %s OR domain = %s", [id_or_domain] * 2)
        return _site(rows[0]) if rows else None

    def site_by_key(self, site_key: str) -> Site | None:
        rows = self.query(_SITE_SELECT + " WHERE site_key = %s", [site_key])
        return _site(rows[0]) if rows else None

    def update_site(
        self, site_id: str, domain: str, allowed_origins: list[str], timezone: str
    ) -> None:
        self.query(
            "UPDATE sites SET domain = %s, allowed_origins = %s, timezone = %s WHERE id = %s",
            [domain, allowed_origins, timezone, site_id],
        )
        self._notify_sites()

    def set_site_key(self, site_id: str, site_key: str) -> None:
        self.query("UPDATE sites SET site_key = %s WHERE id = %s", [site_key, site_id])
        self._notify_sites()

    def set_site_privacy(self, site_id: str, consent_mode: str, retention_days: int) -> None:
        self.query(
            "UPDATE sites SET consent_mode = %s, retention_days = %s WHERE id = %s",
            [consent_mode, retention_days, site_id],
        )
        self._notify_sites()

    def delete_site(self, site_id: str, attempts: int = 5) -> bool:
        """Remove a site and everything stored about it (every table with a site_id)."""
        gone = self.query("DELETE FROM sites WHERE id = %s RETURNING id", [site_id])
        if not gone:
            return False
        self._notify_sites()
        self._purge_site_rows(site_id, None)
        return True

    def rebuild_site_rollups(
        self,
        site_id: str,
        goals: Sequence[str],
        attempts: int = 5,
        *,
        previous_timezone: str | None = None,
    ) -> None:
        """Recompute a site's daily rollups after its time zone changed (from
        ``previous_timezone``); rows of days whose events retention deleted are kept
        (:func:`rollup_rebuild_plan`)."""
        site = self.get_site(site_id)
        if site is None:
            return

        def raw_days(zone: str) -> dict[date, int]:
            rows = self.query(
                "SELECT ((ts AT TIME ZONE 'UTC') AT TIME ZONE %s)::date, count(*) FROM events "
                "WHERE site_id = %s GROUP BY 1",
                [zone, site_id],
            )
            return {row[0]: int(row[1]) for row in rows}

        stored = self.query("SELECT date, events FROM daily_stats WHERE site_id = %s", [site_id])
        recompute, kept = rollup_rebuild_plan(
            raw_days(site.timezone),
            raw_days(previous_timezone or site.timezone),
            {row[0]: int(row[1]) for row in stored},
        )
        self.refresh_rollups([(site_id, day) for day in recompute], goals)
        with self.pool.connection() as conn, conn.transaction():
            for table in ("daily_stats", "product_stats"):
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE site_id = %s AND NOT (date = ANY(%s))").format(
                        sql.Identifier(table)
                    ),
                    [site_id, sorted({*recompute, *kept})],
                )

    def _purge_site_rows(self, site_id: str, tables: Sequence[str] | None) -> None:
        if tables is None:
            tables = [
                row[0]
                for row in self.query(
                    "SELECT c.relname FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'site_id' "
                    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
                    "AND NOT c.relispartition AND c.relname <> 'sites' ORDER BY c.relname"
                )
            ]
        with self.pool.connection() as conn, conn.transaction():
            for table in tables:
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE site_id = %s").format(sql.Identifier(table)),
                    [site_id],
                )

    # -- users, tokens, sign-ins, audit ------------------------------------------------

    def watch_auth(self, callback: Callable[[], None]) -> None:
        self._auth_watchers.append(callback)

    def watch_sites(self, callback: Callable[[], None]) -> None:
        self._site_watchers.append(callback)

    def _notify_auth(self) -> None:
        for callback in self._auth_watchers:
            callback()

    def _notify_sites(self) -> None:
        for callback in self._site_watchers:
            callback()
        self._notify_auth()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        with self.pool.connection() as conn, conn.transaction():
            yield conn

    def add_user(self, user_id: str, email: str, password_hash: str | None, role: str) -> None:
        self.query(
            "INSERT INTO users VALUES (%s, %s, %s, %s, now())",
            [user_id, email, password_hash, role],
        )

    def get_user(self, email_or_id: str) -> dict[str, Any] | None:
        rows = self.query_dicts(
            "SELECT id, email, password_hash, role FROM users WHERE email = %s OR id = %s",
            [email_or_id] * 2,
        )
        return rows[0] if rows else None

    def user_records(self, id_or_email: str | None = None) -> list[dict[str, Any]]:
        """Users without secrets: id, email, role (every site), grants, has_password."""
        where = "" if id_or_email is None else " WHERE u.id = %(key)s OR u.email = %(key)s"
        return _with_grants(
            self.query_dicts(
                _USER_RECORD_SELECT + where + " ORDER BY u.created_at, u.email",
                {"key": id_or_email},
            )
        )

    def create_user(
        self,
        user_id: str,
        email: str,
        password_hash: str | None,
        role: str,
        grants: Mapping[str, str],
    ) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO users (id, email, password_hash, role, created_at) "
                "VALUES (%s, %s, %s, %s, now())",
                [user_id, email, password_hash, role],
            )
            for site_id, site_role in grants.items():
                conn.execute(
                    "INSERT INTO site_grants VALUES (%s, %s, %s, now())",
                    [user_id, site_id, site_role],
                )

    def update_user_access(
        self, user_id: str, role: str | None, grants: Mapping[str, str] | None
    ) -> None:
        """Set the role on every site and/or replace the per-site grants (None: unchanged)."""
        with self._transaction() as conn:
            if role is not None:
                conn.execute("UPDATE users SET role = %s WHERE id = %s", [role, user_id])
            if grants is not None:
                conn.execute("DELETE FROM site_grants WHERE user_id = %s", [user_id])
                for site_id, site_role in grants.items():
                    conn.execute(
                        "INSERT INTO site_grants VALUES (%s, %s, %s, now())",
                        [user_id, site_id, site_role],
                    )
        self._notify_auth()

    def set_site_grant(self, user_id: str, site_id: str, role: str | None) -> bool:
        """Grant ``role`` on one site, or take the grant away (None); False if none to remove."""
        with self._transaction() as conn:
            removed = conn.execute(
                "DELETE FROM site_grants WHERE user_id = %s AND site_id = %s RETURNING site_id",
                [user_id, site_id],
            ).fetchall()
            if role is not None:
                conn.execute(
                    "INSERT INTO site_grants VALUES (%s, %s, %s, now())", [user_id, site_id, role]
                )
        self._notify_auth()
        return role is not None or bool(removed)

    def set_password_hash(self, user_id: str, password_hash: str | None) -> None:
        self.query("UPDATE users SET password_hash = %s WHERE id = %s", [password_hash, user_id])

    def password_hash(self, email: str) -> tuple[str, str | None] | None:
        """(user id, argon2 hash) of the user with this e-mail, for sign-in."""
        rows = self.query("SELECT id, password_hash FROM users WHERE email = %s", [email])
        return (rows[0][0], rows[0][1]) if rows else None

    def delete_user(self, user_id: str) -> bool:
        """Remove a user with their grants, sign-ins and API tokens."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM site_grants WHERE user_id = %s", [user_id])
            conn.execute("DELETE FROM login_sessions WHERE user_id = %s", [user_id])
            conn.execute(
                "DELETE FROM token_activity WHERE token_id IN "
                "(SELECT id FROM api_tokens WHERE user_id = %s)",
                [user_id],
            )
            conn.execute("DELETE FROM api_tokens WHERE user_id = %s", [user_id])
            gone = conn.execute(
                "DELETE FROM users WHERE id = %s RETURNING id", [user_id]
            ).fetchall()
        self._notify_auth()
        return bool(gone)

    def count_admins(self) -> int:
        """Users who are admin on every site."""
        return int(self.query("SELECT count(*) FROM users WHERE role = 'admin'")[0][0])

    def add_token(self, token_id: str, user_id: str, name: str, token_hash: str) -> None:
        self.query(
            "INSERT INTO api_tokens VALUES (%s, %s, %s, %s, now(), NULL)",
            [token_id, user_id, name, token_hash],
        )

    def user_for_token(self, token_hash: str) -> dict[str, Any] | None:
        rows = self.query_dicts(
            "SELECT u.id, u.email, u.role, t.id AS token_id FROM api_tokens t "
            "JOIN users u ON u.id = t.user_id "
            "WHERE t.token_hash = %s AND t.revoked_at IS NULL",
            [token_hash],
        )
        return rows[0] if rows else None

    def revoke_token(self, token_id: str) -> bool:
        return self.revoke_api_token(token_id)

    def principal_for_token(self, token_hash: str) -> dict[str, Any] | None:
        """The user behind a live API token, with their grants."""
        rows = self.query_dicts(
            "SELECT u.id AS user_id, u.email, u.role, t.id AS credential_id, "
            f"{_GRANTS_OF_USER} AS grants FROM api_tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.token_hash = %s AND t.revoked_at IS NULL",
            [token_hash],
        )
        return _with_grants(rows)[0] if rows else None

    def principal_for_session(self, id_hash: str) -> dict[str, Any] | None:
        """The user behind an unexpired sign-in, with their grants and the CSRF token."""
        rows = self.query_dicts(
            "SELECT u.id AS user_id, u.email, u.role, s.id_hash AS credential_id, "
            f"s.csrf_token, {_ms('s.expires_at')} AS expires_at, {_GRANTS_OF_USER} AS grants "
            "FROM login_sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.id_hash = %s AND s.expires_at > now() AT TIME ZONE 'UTC'",
            [id_hash],
        )
        return _with_grants(rows)[0] if rows else None

    def api_token_records(
        self, user_id: str | None = None, token_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Tokens (never their hashes), newest first, of one user or all."""
        return self.query_dicts(
            f"SELECT t.id, t.user_id, u.email, t.name, {_ms('t.created_at')} AS created_at, "
            f"{_ms('t.revoked_at')} AS revoked_at, {_ms('a.last_used_at')} AS last_used_at "
            "FROM api_tokens t JOIN users u ON u.id = t.user_id "
            "LEFT JOIN token_activity a ON a.token_id = t.id "
            "WHERE (%(user)s::text IS NULL OR t.user_id = %(user)s) "
            "AND (%(token)s::text IS NULL OR t.id = %(token)s) "
            "ORDER BY t.created_at DESC, t.id",
            {"user": user_id, "token": token_id},
        )

    def revoke_api_token(self, token_id: str) -> bool:
        """Revoke a token; it stops working at once in this process."""
        rows = self.query(
            "UPDATE api_tokens SET revoked_at = now() "
            "WHERE id = %s AND revoked_at IS NULL RETURNING id",
            [token_id],
        )
        self._notify_auth()
        return bool(rows)

    def record_token_use(self, token_id: str) -> None:
        """Best effort: a failure here never fails the request."""
        with contextlib.suppress(psycopg.Error):
            self.query(
                "INSERT INTO token_activity VALUES (%s, now()) ON CONFLICT (token_id) "
                "DO UPDATE SET last_used_at = excluded.last_used_at",
                [token_id],
            )

    def add_login_session(
        self, id_hash: str, user_id: str, csrf_token: str, lifetime: timedelta
    ) -> None:
        expires = datetime.now(UTC).replace(tzinfo=None) + lifetime
        self.query(
            "INSERT INTO login_sessions VALUES (%s, %s, %s, now(), %s)",
            [id_hash, user_id, csrf_token, expires],
        )

    def delete_login_sessions(
        self, *, id_hash: str | None = None, user_id: str | None = None, keep: str | None = None
    ) -> int:
        """End one sign-in (``id_hash``) or every sign-in of a user but ``keep``; and purge
        expired ones. Returns how many live sign-ins ended."""
        if id_hash is None and user_id is None:
            raise ValueError("delete_login_sessions needs id_hash or user_id")
        with self._transaction() as conn:
            ended = conn.execute(
                "DELETE FROM login_sessions WHERE (%(id)s::text IS NULL OR id_hash = %(id)s) "
                "AND (%(user)s::text IS NULL OR user_id = %(user)s) "
                "AND (%(keep)s::text IS NULL OR id_hash <> %(keep)s) "
                "AND expires_at > now() AT TIME ZONE 'UTC' RETURNING id_hash",
                {"id": id_hash, "user": user_id, "keep": keep},
            ).fetchall()
            conn.execute("DELETE FROM login_sessions WHERE expires_at <= now() AT TIME ZONE 'UTC'")
        self._notify_auth()
        return len(ended)

    # -- saved funnels ----------------------------------------------------------------

    def saved_funnels(self, site_id: str) -> list[dict[str, Any]]:
        return self.query_dicts(
            f"SELECT id, name, definition, created_by, {_ms('created_at')} AS created_at "
            "FROM saved_funnels WHERE site_id = %(site)s ORDER BY name, id",
            {"site": site_id},
        )

    def save_funnel(
        self, site_id: str, funnel_id: str, name: str, definition: str, created_by: str
    ) -> str:
        rows = self.query(
            "INSERT INTO saved_funnels VALUES (%s, %s, %s, %s, %s, now()) "
            "ON CONFLICT (site_id, name) DO UPDATE SET definition = excluded.definition "
            "RETURNING id",
            [funnel_id, site_id, name, definition, created_by],
        )
        return str(rows[0][0]) if rows else funnel_id

    def delete_funnel(self, site_id: str, funnel_id: str) -> bool:
        gone = self.query(
            "DELETE FROM saved_funnels WHERE site_id = %s AND id = %s RETURNING id",
            [site_id, funnel_id],
        )
        return bool(gone)

    def record_audit(self, actor: str, action: str, target: str, details: Any = None) -> None:
        self.query(
            "INSERT INTO audit_log VALUES (now(), %s, %s, %s, %s::jsonb)",
            [actor, action, target, _json.encode(details or {}).decode()],
        )

    def audit_records(self, limit: int = 100, before_ms: int | None = None) -> list[dict[str, Any]]:
        """The newest audit entries first (``before_ms`` pages back)."""
        return self.query_dicts(
            f"SELECT {_ms('ts')} AS ts, actor, action, target, details FROM audit_log "
            f"WHERE %(before)s::bigint IS NULL OR {_ms('ts')} < %(before)s::bigint "
            "ORDER BY ts DESC LIMIT %(limit)s",
            {"before": before_ms, "limit": limit},
        )

    # -- experiments -------------------------------------------------------------------

    def add_experiment(self, site_id: str, record: Mapping[str, Any]) -> bool:
        """Store a new experiment; False when the site already has one with its key."""
        rows = self.query(
            "INSERT INTO experiments VALUES (%s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, "
            "%s, %s, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC', NULL, NULL) "
            "ON CONFLICT (site_id, key) DO NOTHING RETURNING key",
            [site_id, *experiment_values(record)],
        )
        return bool(rows)

    def experiment_records(
        self, site_id: str, key: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """A site's experiments (oldest first), or the one with ``key``, or those with
        ``status``."""
        rows = self.query_dicts(
            "SELECT key, name, description, variants, goal, targeting, "
            f"minimum_detectable_effect, status, {_ms('created_at')} AS created_at, "
            f"{_ms('updated_at')} AS updated_at, {_ms('started_at')} AS started_at, "
            f"{_ms('stopped_at')} AS stopped_at FROM experiments WHERE site_id = %(site)s "
            "AND (%(key)s::text IS NULL OR key = %(key)s) "
            "AND (%(status)s::text IS NULL OR status = %(status)s) ORDER BY created_at, key",
            {"site": site_id, "key": key, "status": status},
        )
        return [experiment_record(row) for row in rows]

    def update_experiment(self, site_id: str, key: str, changes: Mapping[str, Any]) -> bool:
        """Change an experiment's fields (name, description, variants, goal, targeting,
        minimum_detectable_effect, status, started_at, stopped_at: ms or None)."""
        pairs = experiment_changes(changes)
        sets = ", ".join(
            f"{name} = %s::jsonb" if name in EXPERIMENT_JSON else f"{name} = %s"
            for name, _ in pairs
        )
        rows = self.query(
            f"UPDATE experiments SET {sets}, updated_at = now() AT TIME ZONE 'UTC' "
            "WHERE site_id = %s AND key = %s RETURNING key",
            [*(value for _, value in pairs), site_id, key],
        )
        return bool(rows)

    def delete_experiment(self, site_id: str, key: str) -> bool:
        rows = self.query(
            "DELETE FROM experiments WHERE site_id = %s AND key = %s RETURNING key",
            [site_id, key],
        )
        return bool(rows)


# -- SQL -----------------------------------------------------------------------------------

_EPOCH = "timestamp '1970-01-01 00:00:00'"


def _ms(column: str) -> str:
    """Epoch milliseconds of a UTC timestamp column (DuckDB's epoch_ms)."""
    return f"(floor(extract(epoch FROM {column}) * 1000))::bigint"


def _prepare(text: str, params: Sequence[Any] | dict[str, Any] | None) -> bytes:
    return to_psycopg(text, isinstance(params, list | tuple)).encode()


def _join_sessions(
    cur: psycopg.Cursor[Any], merges: Sequence[tuple[str, str, str]], params: dict[str, Any]
) -> None:
    joined = {
        "m_site": [m[0] for m in merges],
        "m_absorbed": [m[1] for m in merges],
        "m_survivor": [m[2] for m in merges],
    }
    span = cur.execute(_JOIN_SPAN_SQL, joined).fetchone()
    if span is None or span[0] is None:
        return  # neither session is stored yet: the batch itself carries them
    bounds = {**joined, "m_lo": span[0], "m_hi": span[1]}
    for statement in _JOIN_SESSIONS_SQL:
        cur.execute(statement, bounds)
    cur.execute(_SESSION_REBUILD_SQL, {**params, **bounds})


def _partition_day(name: str) -> int:
    return (datetime.strptime(name[-8:], "%Y%m%d").date() - date(1970, 1, 1)).days


_PASSIVE = sorted(PASSIVE_TYPES | {EventType.PAGE_VIEW})

_SITE_SELECT = (
    f"SELECT id, domain, site_key, allowed_origins, timezone, {_ms('created_at')}, "
    "consent_mode, retention_days FROM sites"
)

_GRANTS_OF_USER = (
    "coalesce((SELECT json_agg(json_build_object('siteId', g.site_id, 'role', g.role) "
    "ORDER BY g.site_id) FROM site_grants g WHERE g.user_id = u.id), '[]'::json)"
)
_USER_RECORD_SELECT = (
    "SELECT u.id, u.email, u.role, u.password_hash IS NOT NULL AS has_password, "
    f"{_ms('u.created_at')} AS created_at, {_GRANTS_OF_USER} AS grants FROM users u"
)


def _with_grants(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        if isinstance(row.get("grants"), str):
            row["grants"] = _decode_json(row["grants"])
    return rows


def _site(row: tuple[Any, ...]) -> Site:
    return Site(
        id=row[0],
        domain=row[1],
        site_key=row[2],
        allowed_origins=list(row[3]),
        timezone=row[4],
        created_at=int(row[5]),
        consent_mode=row[6],
        retention_days=int(row[7]),
    )


def _pg_type(copy_type: str) -> str:
    return {"int8": "bigint", "text": 'text COLLATE "C"'}.get(copy_type, copy_type)


_STAGE_DDL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE_TABLE} ("
    + ", ".join(f"{c} {_pg_type(t)}" for c, t in zip(_STAGE_COLUMNS, _STAGE_TYPES, strict=True))
    + ") ON COMMIT DELETE ROWS"
)
_COPY_SQL = f"COPY {_STAGE_TABLE} ({', '.join(_STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"

#: Claim the batch's keys. Keys are claimed in key order, so two workers claiming
#: overlapping batches cannot deadlock; a worker meeting a key another has claimed but
#: not committed waits for that commit, then skips the key. The row count says how many
#: keys were new.
_CLAIM_SQL = f"""
INSERT INTO event_keys (key, seen_at)
SELECT key, now() AT TIME ZONE 'UTC' FROM {_STAGE_TABLE} ORDER BY key
ON CONFLICT DO NOTHING
"""
#: When some keys were not new: keep in the stage only the events whose key this
#: transaction claimed (their key rows carry its transaction id).
_DROP_STORED_SQL = f"""
DELETE FROM {_STAGE_TABLE} b WHERE NOT EXISTS (
    SELECT 1 FROM event_keys k WHERE k.key = b.key AND k.xmin = pg_current_xact_id()::xid
)
"""


def _stage_value(column: str) -> str:
    if column in ("ts", "received_at"):
        return f"{_EPOCH} + {column} * interval '1 millisecond'"
    if column == "properties":
        return "properties::jsonb"
    return column


_INSERT_EVENTS_SQL = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) SELECT "
    + ", ".join(_stage_value(c) for c in EVENT_COLUMNS)
    + f" FROM {_STAGE_TABLE}"
)

# A batch's sessions, aggregated and merged into session_stats by exactly the rules of
# the DuckDB store: attribution from the session's earliest event, landing/exit from its
# first/last page view, counts added, so the result does not depend on arrival order.
_ATTRIBUTION = (
    "referrer",
    "referrer_source",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "device_type",
    "browser",
    "os",
    "country",
)
_FROM_EARLIER = ",\n    ".join(
    f"{c} = CASE WHEN excluded.started_at < session_stats.started_at "
    f"THEN excluded.{c} ELSE session_stats.{c} END"
    for c in ("visitor_id", *_ATTRIBUTION)
)


def _duration(start: str, end: str) -> str:
    return f"(floor(extract(epoch FROM ({end}) - ({start})) * 1000))::bigint / 1000"


_SESSION_SOURCE_COLUMNS = (
    f"site_id, session_id, visitor_id, event_type, revenue, page_path, {', '.join(_ATTRIBUTION)}"
)


def _session_merge_sql(source: str) -> str:
    """Aggregate the sessions of ``source`` (a query with the events' columns and ``t``,
    their time as a timestamp) and merge them into session_stats."""
    return _SESSION_MERGE_TEMPLATE.replace("{source}", source)


_SESSION_MERGE_TEMPLATE = f"""
WITH b AS (
    {{source}}
), agg AS (
    SELECT site_id, session_id,
        min(t) AS started_at,
        max(t) AS ended_at,
        count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
        count(*) AS events,
        count(*) FILTER (WHERE NOT (event_type = ANY(%(passive)s))) AS interactions,
        coalesce(bool_or(event_type = ANY(%(goals)s)), false) AS converted,
        coalesce(sum(revenue) FILTER (WHERE event_type = ANY(%(goals)s)), 0)::bigint AS revenue,
        min(t) FILTER (WHERE event_type = 'page_view') AS landing_at,
        max(t) FILTER (WHERE event_type = 'page_view') AS exit_at
    FROM b GROUP BY site_id, session_id
), first_event AS (
    SELECT DISTINCT ON (site_id, session_id) site_id, session_id, visitor_id,
        {", ".join(_ATTRIBUTION)}
    FROM b ORDER BY site_id, session_id, t
), landing AS (
    SELECT DISTINCT ON (site_id, session_id) site_id, session_id, page_path
    FROM b WHERE event_type = 'page_view' ORDER BY site_id, session_id, t
), exit AS (
    SELECT DISTINCT ON (site_id, session_id) site_id, session_id, page_path
    FROM b WHERE event_type = 'page_view' ORDER BY site_id, session_id, t DESC
)
INSERT INTO session_stats (
    site_id, session_id, visitor_id, started_at, ended_at, duration, page_views, events,
    interactions, bounce, converted, revenue, landing_page, landing_at, exit_page, exit_at,
    {", ".join(_ATTRIBUTION)}
)
SELECT
    a.site_id, a.session_id, f.visitor_id, a.started_at, a.ended_at,
    {_duration("a.started_at", "a.ended_at")},
    a.page_views, a.events, a.interactions,
    a.page_views <= 1 AND a.interactions = 0,
    a.converted, a.revenue,
    l.page_path, a.landing_at, x.page_path, a.exit_at,
    {", ".join(f"f.{c}" for c in _ATTRIBUTION)}
FROM agg a
JOIN first_event f ON f.site_id = a.site_id AND f.session_id = a.session_id
LEFT JOIN landing l ON l.site_id = a.site_id AND l.session_id = a.session_id
LEFT JOIN exit x ON x.site_id = a.site_id AND x.session_id = a.session_id
ORDER BY a.site_id, a.session_id
ON CONFLICT (site_id, session_id) DO UPDATE SET
    {_FROM_EARLIER},
    started_at = least(session_stats.started_at, excluded.started_at),
    ended_at = greatest(session_stats.ended_at, excluded.ended_at),
    duration = {
    _duration(
        "least(session_stats.started_at, excluded.started_at)",
        "greatest(session_stats.ended_at, excluded.ended_at)",
    )
},
    page_views = session_stats.page_views + excluded.page_views,
    events = session_stats.events + excluded.events,
    interactions = session_stats.interactions + excluded.interactions,
    bounce = session_stats.page_views + excluded.page_views <= 1
        AND session_stats.interactions + excluded.interactions = 0,
    converted = session_stats.converted OR excluded.converted,
    revenue = session_stats.revenue + excluded.revenue,
    landing_page = CASE WHEN session_stats.landing_at IS NULL
        OR excluded.landing_at < session_stats.landing_at
        THEN excluded.landing_page ELSE session_stats.landing_page END,
    landing_at = least(session_stats.landing_at, excluded.landing_at),
    exit_page = CASE WHEN session_stats.exit_at IS NULL
        OR excluded.exit_at >= session_stats.exit_at
        THEN excluded.exit_page ELSE session_stats.exit_page END,
    exit_at = greatest(session_stats.exit_at, excluded.exit_at)
"""
#: A batch's sessions, from the stage.
_SESSION_MERGE_SQL = _session_merge_sql(
    f"SELECT {_SESSION_SOURCE_COLUMNS}, {_EPOCH} + ts * interval '1 millisecond' AS t "
    f"FROM {_STAGE_TABLE} WHERE session_id <> ''"
)
#: The survivors of joined sessions, rebuilt from their stored events (between the
#: joined sessions' first and last event, so only those days' partitions are read).
_SESSION_REBUILD_SQL = _session_merge_sql(
    f"SELECT {', '.join('e.' + c for c in _SESSION_SOURCE_COLUMNS.split(', '))}, e.ts AS t "
    "FROM events e JOIN (SELECT DISTINCT site_id, survivor FROM unnest("
    "%(m_site)s::text[], %(m_absorbed)s::text[], %(m_survivor)s::text[]) "
    "AS m(site_id, absorbed, survivor)) m "
    "ON e.site_id = m.site_id AND e.session_id = m.survivor "
    "WHERE e.ts >= %(m_lo)s AND e.ts <= %(m_hi)s"
)
#: Relabel the absorbed sessions' events and drop both rows (the survivor is rebuilt).
_JOIN_SESSIONS_SQL = (
    "UPDATE events e SET session_id = m.survivor FROM unnest("
    "%(m_site)s::text[], %(m_absorbed)s::text[], %(m_survivor)s::text[]) "
    "AS m(site_id, absorbed, survivor) "
    "WHERE e.site_id = m.site_id AND e.session_id = m.absorbed "
    "AND e.ts >= %(m_lo)s AND e.ts <= %(m_hi)s",
    "DELETE FROM session_stats s USING unnest("
    "%(m_site)s::text[], %(m_absorbed)s::text[], %(m_survivor)s::text[]) "
    "AS m(site_id, absorbed, survivor) "
    "WHERE s.site_id = m.site_id AND (s.session_id = m.absorbed OR s.session_id = m.survivor)",
)
#: The time span of the sessions being joined (bounds the relabelling to their days).
_JOIN_SPAN_SQL = (
    "SELECT min(s.started_at), max(s.ended_at) FROM session_stats s JOIN unnest("
    "%(m_site)s::text[], %(m_absorbed)s::text[], %(m_survivor)s::text[]) "
    "AS m(site_id, absorbed, survivor) "
    "ON s.site_id = m.site_id AND (s.session_id = m.absorbed OR s.session_id = m.survivor)"
)

#: The rollup tables and the statements (query/daily.py, the API's own definitions)
#: that compute their rows.
_ROLLUPS = (
    ("daily_stats", daily.daily_stats_statement),
    ("product_stats", daily.product_stats_statement),
)
