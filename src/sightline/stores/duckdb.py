"""The embedded warm store: one DuckDB file.

One process owns the file. Inside it, the writer thread is the only one that writes
events (in batches, each with its transport checkpoint in the same transaction); API
requests read through their own cursors, which DuckDB isolates with MVCC.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import msgspec
import pyarrow as pa

from sightline.events import Event
from sightline.events.types import PASSIVE_TYPES, EventType
from sightline.query import daily
from sightline.query.daily import rollup_rebuild_plan
from sightline.query.sql import render
from sightline.query.tiers import ColdSource, with_cold
from sightline.sites import Site
from sightline.stores.base import DroppedEvents
from sightline.stores.parquet import ColdError, ColdFile

log = logging.getLogger(__name__)

EVENT_COLUMNS: tuple[str, ...] = (
    "site_id",
    "event_id",
    "event_type",
    "ts",
    "received_at",
    "session_id",
    "visitor_id",
    "user_id",
    "page_url",
    "page_path",
    "page_title",
    "referrer",
    "referrer_source",
    "channel",
    "screen_resolution",
    "viewport",
    "device_type",
    "os",
    "browser",
    "browser_version",
    "country",
    "region",
    "city",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "product_id",
    "revenue",
    "properties",
    "session_duration",
)


_EVENT_SCHEMA = pa.schema(
    [
        (
            c,
            pa.timestamp("ms")
            if c in ("ts", "received_at")
            else pa.int64()
            if c in ("revenue", "session_duration")
            else pa.string(),
        )
        for c in EVENT_COLUMNS
    ]
)

_json = msgspec.json.Encoder()


_FIELD_INDEX = {name: index for index, name in enumerate(Event.__struct_fields__)}
_SOURCE_FIELD = {"ts": "timestamp", "received_at": "server_timestamp"}
#: (column, index of the Event field it comes from) for the columns copied as they are.
_COPIED = tuple(
    (c, _FIELD_INDEX[_SOURCE_FIELD.get(c, c)])
    for c in EVENT_COLUMNS
    if c not in ("product_id", "revenue", "properties")
)
_PROPERTIES = _FIELD_INDEX["properties"]


def events_to_arrow(events: Sequence[Event]) -> pa.Table:
    """Columnar form of a batch, in the events table's column order."""
    if not events:
        return _EVENT_SCHEMA.empty_table()
    fields = list(zip(*map(msgspec.structs.astuple, events), strict=True))
    columns: dict[str, Any] = {name: fields[index] for name, index in _COPIED}
    properties = fields[_PROPERTIES]
    product_ids: list[str] = []
    revenues: list[int] = []
    encoded: list[str] = []
    encode = _json.encode
    for props in properties:
        if not props:
            product_ids.append("")
            revenues.append(0)
            encoded.append("{}")
            continue
        product = props.get("productId", "")
        product_ids.append(product if isinstance(product, str) else str(product))
        revenue = props.get("revenue")
        revenues.append(
            round(revenue * 100)
            if isinstance(revenue, int | float) and not isinstance(revenue, bool)
            else 0
        )
        encoded.append(encode(props).decode())
    columns["product_id"] = product_ids
    columns["revenue"] = revenues
    columns["properties"] = encoded
    return pa.table(
        [pa.array(columns[f.name], f.type) for f in _EVENT_SCHEMA], schema=_EVENT_SCHEMA
    )


class DuckDBStore:
    """Events, sessions, rollups, sites, users and tokens in one DuckDB file."""

    engine = "duckdb"

    def __init__(self, path: Path | str, *, read_only: bool = False, threads: int = 2) -> None:
        self.path = Path(path)
        #: The archived events (the cold tier sets itself here, :func:`open_cold`): read
        #: with the warm ones when a site's rollups are rebuilt or an erasure corrects them.
        self.cold: ColdSource | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = duckdb.connect(
            str(self.path),
            read_only=read_only,
            config={"threads": threads},
        )
        self._local = threading.local()
        self._lock = threading.Lock()

    # -- connections -------------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection for the calling thread (DuckDB connections are not thread-safe)."""
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            with self._lock:
                cur = self._db.cursor()
            cur.execute("SET TimeZone = 'UTC'")
            self._local.cursor = cur
        return cur

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def query(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        cur = self.cursor()
        return cur.execute(sql, bind(sql, params)).fetchall()

    def query_dicts(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        cur = self.cursor()
        result = cur.execute(sql, bind(sql, params))
        names = [d[0] for d in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]

    # -- schema ------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply pending migrations; returns the versions applied."""
        cur = self.cursor()
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        done = {row[0] for row in cur.execute("SELECT version FROM schema_migrations").fetchall()}
        applied: list[int] = []
        folder = resources.files("sightline.stores.migrations") / "duckdb"
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            if not entry.name.endswith(".sql"):
                continue
            version = int(entry.name.split("_", 1)[0])
            if version in done:
                continue
            cur.execute("BEGIN")
            try:
                cur.execute(entry.read_text())
                cur.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, now())", [version, entry.name]
                )
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise
            applied.append(version)
            log.info("applied migration %s", entry.name)
        return applied

    def schema_version(self) -> int:
        try:
            row = self.query("SELECT max(version) FROM schema_migrations")
        except duckdb.CatalogException:
            return 0
        return int(row[0][0] or 0)

    # -- ingest (single writer) --------------------------------------------------------

    def write_events(
        self,
        events: Sequence[Event],
        *,
        checkpoint: tuple[str, str] | None,
        goals: Iterable[str],
        merges: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        """Insert a batch, merge its sessions and record the checkpoint, atomically.

        ``merges`` are sessions a late event joined, as (site, absorbed, survivor): the
        absorbed session's stored events are relabelled and the survivor's row rebuilt
        from the stored events before the batch is merged in.
        """
        cur = self.cursor()
        batch = events_to_arrow(events)
        cur.register("_batch", batch)
        params = {"goals": list(goals), "passive": _PASSIVE}
        try:
            cur.execute("BEGIN")
            try:
                if merges:
                    self._join_sessions(cur, merges, params)
                if len(events):
                    cur.execute("INSERT INTO events SELECT * FROM _batch")
                    cur.execute(_SESSION_MERGE_SQL, params)
                if checkpoint is not None:
                    cur.execute(
                        "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, now())", list(checkpoint)
                    )
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise
        finally:
            cur.unregister("_batch")

    @staticmethod
    def _join_sessions(
        cur: duckdb.DuckDBPyConnection,
        merges: Sequence[tuple[str, str, str]],
        params: dict[str, Any],
    ) -> None:
        table = pa.table(
            {
                "site_id": [m[0] for m in merges],
                "absorbed": [m[1] for m in merges],
                "survivor": [m[2] for m in merges],
            }
        )
        cur.register("_merges", table)
        try:
            cur.execute(
                "UPDATE events SET session_id = m.survivor FROM _merges m "
                "WHERE events.site_id = m.site_id AND events.session_id = m.absorbed"
            )
            cur.execute(
                "DELETE FROM session_stats USING _merges m "
                "WHERE session_stats.site_id = m.site_id "
                "AND (session_stats.session_id = m.absorbed "
                "OR session_stats.session_id = m.survivor)"
            )
            cur.execute(_SESSION_REBUILD_SQL, params)
        finally:
            cur.unregister("_merges")

    def checkpoint(self, name: str) -> str | None:
        rows = self.query("SELECT position FROM checkpoints WHERE name = ?", [name])
        return rows[0][0] if rows else None

    def recent_event_keys(self, limit: int) -> list[tuple[str, str]]:
        """The most recently received (site id, event id) pairs, for the dedupe window."""
        rows = self.query(
            "SELECT site_id, event_id FROM events ORDER BY received_at DESC LIMIT ?", [limit]
        )
        return [(r[0], r[1]) for r in rows]

    def session_spans(
        self, site_id: str, visitor_ids: Sequence[str], since_ms: int
    ) -> list[tuple[str, str, str, int, int]]:
        """Server-made sessions of these visitors that ended at or after ``since_ms``."""
        return [
            (r[0], r[1], r[2], int(r[3]), int(r[4]))
            for r in self.query(
                "SELECT site_id, visitor_id, session_id, epoch_ms(started_at), epoch_ms(ended_at) "
                "FROM session_stats WHERE site_id = $site AND session_id LIKE 'srv!_%' ESCAPE '!' "
                "AND ended_at >= make_timestamp($since * 1000) "
                "AND visitor_id IN (SELECT unnest($visitors))",
                {"site": site_id, "since": since_ms, "visitors": list(visitor_ids)},
            )
        ]

    def session_starts(self, site_id: str, session_ids: Sequence[str]) -> list[tuple[str, int]]:
        """When these sessions started, for those already stored."""
        return [
            (r[0], int(r[1]))
            for r in self.query(
                "SELECT session_id, epoch_ms(started_at) FROM session_stats "
                "WHERE site_id = $site AND session_id IN (SELECT unnest($ids))",
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
        """Recompute DailyStats and ProductStats rows for (site id, local day) pairs
        (from the warm events, and the archived ones too when ``cold`` is given)."""
        by_site: dict[str, set[date]] = {}
        for site_id, day in days:
            by_site.setdefault(site_id, set()).add(day)
        cur = self.cursor()
        for site_id, site_days in by_site.items():
            site = self.get_site(site_id)
            if site is None:
                continue
            first, last = min(site_days), max(site_days)
            statements = (
                ("daily_stats", daily.daily_stats_statement),
                ("product_stats", daily.product_stats_statement),
            )
            cur.execute("BEGIN")
            try:
                for table, build in statements:
                    select, values = build(site_id, site.timezone, first, last, goals)
                    tree = select if cold is None else with_cold(select, values.values, cold)
                    params = {**values.values, "site": site_id, "days": sorted(site_days)}
                    delete = (
                        f"DELETE FROM {table} WHERE site_id = $site AND list_contains($days, date)"
                    )
                    insert = (
                        f"INSERT INTO {table} SELECT $site, r.* FROM ({render(tree)}) r "
                        "WHERE list_contains($days, r.date)"
                    )
                    cur.execute(delete, bind(delete, params))
                    cur.execute(insert, bind(insert, params))
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise

    # -- sites -------------------------------------------------------------------------

    def add_site(self, site: Site) -> None:
        self.cursor().execute(
            "INSERT INTO sites (id, domain, site_key, allowed_origins, timezone, created_at, "
            "consent_mode, retention_days) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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

    def set_site_privacy(self, site_id: str, consent_mode: str, retention_days: int) -> None:
        with self._transaction() as cur:
            cur.execute(
                "UPDATE sites SET consent_mode = ?, retention_days = ? WHERE id = ?",
                [consent_mode, retention_days, site_id],
            )
        self._notify_sites()

    def list_sites(self) -> list[Site]:
        return [_site(row) for row in self.query(_SITE_SELECT + " ORDER BY created_at, domain")]

    def get_site(self, id_or_domain: str) -> Site | None:
        rows = self.query(_SITE_SELECT + " WHERE id = ? OR domain = ?", [id_or_domain] * 2)
        return _site(rows[0]) if rows else None

    def site_by_key(self, site_key: str) -> Site | None:
        rows = self.query(_SITE_SELECT + " WHERE site_key = ?", [site_key])
        return _site(rows[0]) if rows else None

    # -- users and tokens --------------------------------------------------------------

    def add_user(self, user_id: str, email: str, password_hash: str | None, role: str) -> None:
        self.cursor().execute(
            "INSERT INTO users VALUES (?, ?, ?, ?, now())", [user_id, email, password_hash, role]
        )

    def get_user(self, email_or_id: str) -> dict[str, Any] | None:
        rows = self.query_dicts(
            "SELECT id, email, password_hash, role FROM users WHERE email = ? OR id = ?",
            [email_or_id] * 2,
        )
        return rows[0] if rows else None

    def add_token(self, token_id: str, user_id: str, name: str, token_hash: str) -> None:
        self.cursor().execute(
            "INSERT INTO api_tokens VALUES (?, ?, ?, ?, now(), NULL)",
            [token_id, user_id, name, token_hash],
        )

    def user_for_token(self, token_hash: str) -> dict[str, Any] | None:
        rows = self.query_dicts(
            "SELECT u.id, u.email, u.role, t.id AS token_id FROM api_tokens t "
            "JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND t.revoked_at IS NULL",
            [token_hash],
        )
        return rows[0] if rows else None

    def revoke_token(self, token_id: str) -> bool:
        rows = self.query(
            "UPDATE api_tokens SET revoked_at = now() "
            "WHERE id = ? AND revoked_at IS NULL RETURNING id",
            [token_id],
        )
        return bool(rows)

    # -- auth and administration -------------------------------------------------------
    # Roles on every site and per site, dashboard sign-ins, API token hygiene, site
    # changes and the audit log. Changes to who may do what call the callbacks given to
    # watch_auth (the Authenticator drops its cache: revocation is immediate in this
    # process); site changes call those given to watch_sites (the collector's registry).

    _auth_watchers: list[Callable[[], None]]
    _site_watchers: list[Callable[[], None]]

    def watch_auth(self, callback: Callable[[], None]) -> None:
        if not hasattr(self, "_auth_watchers"):
            self._auth_watchers = []
        self._auth_watchers.append(callback)

    def watch_sites(self, callback: Callable[[], None]) -> None:
        if not hasattr(self, "_site_watchers"):
            self._site_watchers = []
        self._site_watchers.append(callback)

    def _notify_auth(self) -> None:
        for callback in getattr(self, "_auth_watchers", ()):
            callback()

    def _notify_sites(self) -> None:
        for callback in getattr(self, "_site_watchers", ()):
            callback()
        self._notify_auth()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One administrative change at a time (DuckDB refuses concurrent updates of a row)."""
        with _ADMIN_WRITES:
            cur = self.cursor()
            cur.execute("BEGIN")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def user_records(self, id_or_email: str | None = None) -> list[dict[str, Any]]:
        """Users without secrets: id, email, role (every site), grants, has_password."""
        where = "" if id_or_email is None else " WHERE u.id = $key OR u.email = $key"
        return self.query_dicts(
            _USER_RECORD_SELECT + where + " ORDER BY u.created_at, u.email", {"key": id_or_email}
        )

    def create_user(
        self,
        user_id: str,
        email: str,
        password_hash: str | None,
        role: str,
        grants: Mapping[str, str],
    ) -> None:
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO users (id, email, password_hash, role, created_at) "
                "VALUES (?, ?, ?, ?, now())",
                [user_id, email, password_hash, role],
            )
            for site_id, site_role in grants.items():
                cur.execute(
                    "INSERT INTO site_grants VALUES (?, ?, ?, now())", [user_id, site_id, site_role]
                )

    def update_user_access(
        self, user_id: str, role: str | None, grants: Mapping[str, str] | None
    ) -> None:
        """Set the role on every site and/or replace the per-site grants (None: unchanged)."""
        with self._transaction() as cur:
            if role is not None:
                cur.execute("UPDATE users SET role = ? WHERE id = ?", [role, user_id])
            if grants is not None:
                cur.execute("DELETE FROM site_grants WHERE user_id = ?", [user_id])
                for site_id, site_role in grants.items():
                    cur.execute(
                        "INSERT INTO site_grants VALUES (?, ?, ?, now())",
                        [user_id, site_id, site_role],
                    )
        self._notify_auth()

    def set_site_grant(self, user_id: str, site_id: str, role: str | None) -> bool:
        """Grant ``role`` on one site, or take the grant away (None); False if none to remove."""
        with self._transaction() as cur:
            removed = cur.execute(
                "DELETE FROM site_grants WHERE user_id = ? AND site_id = ? RETURNING site_id",
                [user_id, site_id],
            ).fetchall()
            if role is not None:
                cur.execute(
                    "INSERT INTO site_grants VALUES (?, ?, ?, now())", [user_id, site_id, role]
                )
        self._notify_auth()
        return role is not None or bool(removed)

    def set_password_hash(self, user_id: str, password_hash: str | None) -> None:
        with self._transaction() as cur:
            cur.execute("UPDATE users SET password_hash = ? WHERE id = ?", [password_hash, user_id])

    def password_hash(self, email: str) -> tuple[str, str | None] | None:
        """(user id, argon2 hash) of the user with this e-mail, for sign-in."""
        rows = self.query("SELECT id, password_hash FROM users WHERE email = ?", [email])
        return (rows[0][0], rows[0][1]) if rows else None

    def delete_user(self, user_id: str) -> bool:
        """Remove a user with their grants, sign-ins and API tokens."""
        with self._transaction() as cur:
            cur.execute("DELETE FROM site_grants WHERE user_id = ?", [user_id])
            cur.execute("DELETE FROM login_sessions WHERE user_id = ?", [user_id])
            cur.execute(
                "DELETE FROM token_activity WHERE token_id IN "
                "(SELECT id FROM api_tokens WHERE user_id = ?)",
                [user_id],
            )
            cur.execute("DELETE FROM api_tokens WHERE user_id = ?", [user_id])
            gone = cur.execute("DELETE FROM users WHERE id = ? RETURNING id", [user_id]).fetchall()
        self._notify_auth()
        return bool(gone)

    def count_admins(self) -> int:
        """Users who are admin on every site."""
        return int(self.query("SELECT count(*) FROM users WHERE role = 'admin'")[0][0])

    def principal_for_token(self, token_hash: str) -> dict[str, Any] | None:
        """The user behind a live API token, with their grants."""
        rows = self.query_dicts(
            "SELECT u.id AS user_id, u.email, u.role, t.id AS credential_id, "
            f"{_GRANTS_OF_USER} AS grants FROM api_tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.token_hash = ? AND t.revoked_at IS NULL",
            [token_hash],
        )
        return rows[0] if rows else None

    def principal_for_session(self, id_hash: str) -> dict[str, Any] | None:
        """The user behind an unexpired sign-in, with their grants and the CSRF token."""
        rows = self.query_dicts(
            "SELECT u.id AS user_id, u.email, u.role, s.id_hash AS credential_id, "
            f"s.csrf_token, epoch_ms(s.expires_at) AS expires_at, {_GRANTS_OF_USER} AS grants "
            "FROM login_sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.id_hash = ? AND s.expires_at > now()",
            [id_hash],
        )
        return rows[0] if rows else None

    def api_token_records(
        self, user_id: str | None = None, token_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Tokens (never their hashes), newest first, of one user or all."""
        return self.query_dicts(
            "SELECT t.id, t.user_id, u.email, t.name, epoch_ms(t.created_at) AS created_at, "
            "epoch_ms(t.revoked_at) AS revoked_at, epoch_ms(a.last_used_at) AS last_used_at "
            "FROM api_tokens t JOIN users u ON u.id = t.user_id "
            "LEFT JOIN token_activity a ON a.token_id = t.id "
            "WHERE ($user IS NULL OR t.user_id = $user) AND ($token IS NULL OR t.id = $token) "
            "ORDER BY t.created_at DESC, t.id",
            {"user": user_id, "token": token_id},
        )

    def revoke_api_token(self, token_id: str) -> bool:
        """Revoke a token; it stops working at once in this process."""
        with self._transaction() as cur:
            rows = cur.execute(
                "UPDATE api_tokens SET revoked_at = now() "
                "WHERE id = ? AND revoked_at IS NULL RETURNING id",
                [token_id],
            ).fetchall()
        self._notify_auth()
        return bool(rows)

    def record_token_use(self, token_id: str) -> None:
        """Best effort: skipped while another change is being written, or on a conflict."""
        if not _ADMIN_WRITES.acquire(blocking=False):
            return
        try:
            with contextlib.suppress(duckdb.Error):
                self.cursor().execute(
                    "INSERT OR REPLACE INTO token_activity VALUES (?, now())", [token_id]
                )
        finally:
            _ADMIN_WRITES.release()

    def add_login_session(
        self, id_hash: str, user_id: str, csrf_token: str, lifetime: timedelta
    ) -> None:
        expires = datetime.now(UTC).replace(tzinfo=None) + lifetime
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO login_sessions VALUES (?, ?, ?, now(), ?)",
                [id_hash, user_id, csrf_token, expires],
            )

    def delete_login_sessions(
        self, *, id_hash: str | None = None, user_id: str | None = None, keep: str | None = None
    ) -> int:
        """End one sign-in (``id_hash``) or every sign-in of a user but ``keep``; and purge
        expired ones. Returns how many live sign-ins ended."""
        if id_hash is None and user_id is None:
            raise ValueError("delete_login_sessions needs id_hash or user_id")
        with self._transaction() as cur:
            ended = cur.execute(
                "DELETE FROM login_sessions WHERE ($id IS NULL OR id_hash = $id) "
                "AND ($user IS NULL OR user_id = $user) AND ($keep IS NULL OR id_hash <> $keep) "
                "AND expires_at > now() RETURNING id_hash",
                {"id": id_hash, "user": user_id, "keep": keep},
            ).fetchall()
            cur.execute("DELETE FROM login_sessions WHERE expires_at <= now()")
        self._notify_auth()
        return len(ended)

    def update_site(
        self, site_id: str, domain: str, allowed_origins: list[str], timezone: str
    ) -> None:
        with self._transaction() as cur:
            cur.execute(
                "UPDATE sites SET domain = ?, allowed_origins = ?, timezone = ? WHERE id = ?",
                [domain, allowed_origins, timezone, site_id],
            )
        self._notify_sites()

    def set_site_key(self, site_id: str, site_key: str) -> None:
        with self._transaction() as cur:
            cur.execute("UPDATE sites SET site_key = ? WHERE id = ?", [site_key, site_id])
        self._notify_sites()

    def delete_site(self, site_id: str, attempts: int = 5) -> bool:
        """Remove a site and everything stored about it (every table with a site_id).

        The site goes first, so the collector refuses its key; the data follows in its own
        transaction, retried if it meets a concurrent write of the same rows.
        """
        with self._transaction() as cur:
            gone = cur.execute("DELETE FROM sites WHERE id = ? RETURNING id", [site_id]).fetchall()
        if not gone:
            return False
        self._notify_sites()
        self._purge_site_rows(site_id, attempts)
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
        ``previous_timezone``), from its warm and archived events (docs/privacy.md,
        "Changing a site's time zone"): see :func:`rollup_rebuild_plan`."""
        site = self.get_site(site_id)
        if site is None:
            return
        cold = self.cold

        def raw_days(zone: str) -> dict[date, int]:
            archived = cold.source(site_id, None, None) if cold is not None else None
            union = f" UNION ALL SELECT ts FROM ({archived.sql('duckdb')})" if archived else ""
            rows = self.query(
                "SELECT CAST(timezone($zone, ts::TIMESTAMPTZ) AS DATE), count(*) FROM "
                f"(SELECT ts FROM events WHERE site_id = $site{union}) GROUP BY 1",
                {"zone": zone, "site": site_id},
            )
            return {row[0]: int(row[1]) for row in rows}

        stored = self.query("SELECT date, events FROM daily_stats WHERE site_id = ?", [site_id])
        recompute, kept = rollup_rebuild_plan(
            raw_days(site.timezone),
            raw_days(previous_timezone or site.timezone),
            {row[0]: int(row[1]) for row in stored},
        )

        def remove_other_days() -> None:
            with self._transaction() as cur:
                for table in ("daily_stats", "product_stats"):
                    cur.execute(
                        f"DELETE FROM {table} WHERE site_id = $site "
                        "AND NOT list_contains($days, date)",
                        {"site": site_id, "days": sorted({*recompute, *kept})},
                    )

        _retry_conflicts(
            lambda: self.refresh_rollups([(site_id, d) for d in recompute], goals, cold=cold),
            attempts,
        )
        _retry_conflicts(remove_other_days, attempts)

    def drop_events_before(
        self, site_id: str | None, day: date, attempts: int = 5
    ) -> DroppedEvents:
        """Retention: delete events before ``day`` 00:00 UTC (one site or all) and the
        sessions that ended before it; rollups stay (see stores.base.Store)."""
        cut = datetime(day.year, day.month, day.day)
        where = "" if site_id is None else " AND site_id = $site"
        args: dict[str, Any] = {"cut": cut} | ({} if site_id is None else {"site": site_id})
        counts: list[int] = []

        def delete() -> None:
            counts.clear()
            with self._transaction() as cur:
                for statement in (
                    f"DELETE FROM events WHERE ts < $cut{where}",
                    f"DELETE FROM session_stats WHERE ended_at < $cut{where}",
                ):
                    row = cur.execute(statement, args).fetchone()
                    counts.append(int(row[0]) if row else 0)

        _retry_conflicts(delete, attempts)
        return DroppedEvents(events=counts[0], sessions=counts[1])

    def _purge_site_rows(self, site_id: str, attempts: int) -> None:
        """Delete a site's rows from every table with a site_id column."""
        tables = [
            row[0]
            for row in self.query(
                "SELECT table_name FROM information_schema.columns "
                "WHERE column_name = 'site_id' AND table_schema = 'main' "
                "AND table_name <> 'sites' ORDER BY table_name"
            )
        ]

        def purge() -> None:
            with self._transaction() as cur:
                for table in tables:
                    cur.execute(f'DELETE FROM "{table}" WHERE site_id = ?', [site_id])

        _retry_conflicts(purge, attempts)

    # -- saved funnels ----------------------------------------------------------------

    def saved_funnels(self, site_id: str) -> list[dict[str, Any]]:
        """The site's saved funnels by name: id, name, definition (JSON text), created_by,
        created_at (ms)."""
        return self.query_dicts(
            "SELECT id, name, definition, created_by, epoch_ms(created_at) AS created_at "
            "FROM saved_funnels WHERE site_id = $site ORDER BY name, id",
            {"site": site_id},
        )

    def save_funnel(
        self, site_id: str, funnel_id: str, name: str, definition: str, created_by: str
    ) -> str:
        """Save a funnel under ``name`` (replacing the site's funnel of that name); its id."""
        with self._transaction() as cur:
            row = cur.execute(
                "INSERT INTO saved_funnels VALUES (?, ?, ?, ?, ?, now()) "
                "ON CONFLICT (site_id, name) DO UPDATE SET definition = excluded.definition "
                "RETURNING id",
                [funnel_id, site_id, name, definition, created_by],
            ).fetchone()
        return str(row[0]) if row else funnel_id

    def delete_funnel(self, site_id: str, funnel_id: str) -> bool:
        with self._transaction() as cur:
            gone = cur.execute(
                "DELETE FROM saved_funnels WHERE site_id = ? AND id = ? RETURNING id",
                [site_id, funnel_id],
            ).fetchall()
        return bool(gone)

    def record_audit(self, actor: str, action: str, target: str, details: Any = None) -> None:
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO audit_log VALUES (now(), ?, ?, ?, ?)",
                [actor, action, target, _json.encode(details or {}).decode()],
            )

    def audit_records(self, limit: int = 100, before_ms: int | None = None) -> list[dict[str, Any]]:
        """The newest audit entries first (``before_ms`` pages back)."""
        return self.query_dicts(
            "SELECT epoch_ms(ts) AS ts, actor, action, target, details FROM audit_log "
            "WHERE $before IS NULL OR epoch_ms(ts) < CAST($before AS BIGINT) "
            "ORDER BY ts DESC LIMIT $limit",
            {"before": before_ms, "limit": limit},
        )

    # -- experiments -------------------------------------------------------------------

    def add_experiment(self, site_id: str, record: Mapping[str, Any]) -> bool:
        """Store a new experiment; False when the site already has one with its key."""
        with self._transaction() as cur:
            taken = cur.execute(
                "SELECT 1 FROM experiments WHERE site_id = ? AND key = ?", [site_id, record["key"]]
            ).fetchall()
            if taken:
                return False
            cur.execute(
                "INSERT INTO experiments VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, now(), now(), NULL, NULL)",
                [site_id, *experiment_values(record)],
            )
        return True

    def experiment_records(
        self, site_id: str, key: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """A site's experiments (oldest first), or the one with ``key``, or those with
        ``status``."""
        rows = self.query_dicts(
            "SELECT key, name, description, variants, goal, targeting, "
            "minimum_detectable_effect, status, epoch_ms(created_at) AS created_at, "
            "epoch_ms(updated_at) AS updated_at, epoch_ms(started_at) AS started_at, "
            "epoch_ms(stopped_at) AS stopped_at FROM experiments WHERE site_id = $site "
            "AND ($key IS NULL OR key = $key) AND ($status IS NULL OR status = $status) "
            "ORDER BY created_at, key",
            {"site": site_id, "key": key, "status": status},
        )
        return [experiment_record(row) for row in rows]

    def update_experiment(self, site_id: str, key: str, changes: Mapping[str, Any]) -> bool:
        """Change an experiment's fields (name, description, variants, goal, targeting,
        minimum_detectable_effect, status, started_at, stopped_at: ms or None)."""
        pairs = experiment_changes(changes)
        sets = ", ".join(f"{name} = ?" for name, _ in pairs)
        with self._transaction() as cur:
            found = cur.execute(
                f"UPDATE experiments SET {sets}, updated_at = now() "
                "WHERE site_id = ? AND key = ? RETURNING key",
                [*(value for _, value in pairs), site_id, key],
            ).fetchall()
        return bool(found)

    def delete_experiment(self, site_id: str, key: str) -> bool:
        with self._transaction() as cur:
            gone = cur.execute(
                "DELETE FROM experiments WHERE site_id = ? AND key = ? RETURNING key",
                [site_id, key],
            ).fetchall()
        return bool(gone)

    # -- query layer -------------------------------------------------------------------

    def stream(
        self, sql: str, params: dict[str, Any], batch_rows: int = 10_000
    ) -> Iterator[pa.RecordBatch]:
        """A read's rows as Arrow record batches, produced as they are read.

        The result is streamed (DuckDB's relation reader), so memory stays bounded by the
        batch size whatever the number of rows. The read has a connection of its own,
        closed when the iterator is exhausted or closed, so it may be consumed from any
        thread while other reads go on.
        """
        with self._lock:
            cur = self._db.cursor()
        try:
            cur.execute("SET TimeZone = 'UTC'")
            relation = cur.sql(sql, params=bind(sql, params))
            with relation.to_arrow_reader(batch_rows) as reader:
                yield from reader
        finally:
            cur.close()

    # -- cold tier manifest ------------------------------------------------------------

    def register_filesystem(self, filesystem: Any) -> None:
        """Let every connection read paths of an fsspec filesystem (the cold tier on S3)."""
        with self._lock:
            self._db.register_filesystem(filesystem)

    def cold_files(
        self, site_id: str | None = None, first: date | None = None, last: date | None = None
    ) -> list[ColdFile]:
        """Manifest rows of archived files, optionally of one site and days [first, last]."""
        rows = self.query(
            "SELECT path, site_id, day, rows, bytes FROM cold_files "
            "WHERE ($site IS NULL OR site_id = $site) "
            "AND ($first IS NULL OR day >= $first) AND ($last IS NULL OR day <= $last) "
            "ORDER BY site_id, day, path",
            {"site": site_id, "first": first, "last": last},
        )
        return [ColdFile(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in rows]

    def commit_archive(self, entry: ColdFile, event_ids: pa.Array) -> int:
        """Record an archived file and delete its events from ``events``, atomically."""
        lo = datetime.combine(entry.day, datetime.min.time())
        ids = pa.table({"event_id": event_ids})
        with _ADMIN_WRITES:
            cur = self.cursor()
            cur.register("_archived", ids)
            try:
                cur.execute("BEGIN")
                try:
                    deleted = cur.execute(
                        "DELETE FROM events WHERE site_id = ? AND ts >= ? AND ts < ? "
                        "AND event_id IN (SELECT event_id FROM _archived)",
                        [entry.site_id, lo, lo + timedelta(days=1)],
                    ).fetchall()[0][0]
                    if int(deleted) != entry.rows:
                        raise ColdError(
                            f"{entry.path}: {entry.rows} rows archived but {deleted} "
                            "matched in the warm store (they changed meanwhile)"
                        )
                    cur.execute(
                        "INSERT INTO cold_files VALUES (?, ?, ?, ?, ?, now())",
                        [entry.path, entry.site_id, entry.day, entry.rows, entry.bytes],
                    )
                    cur.execute("COMMIT")
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
            finally:
                cur.unregister("_archived")
        return int(deleted)

    def replace_cold_file(self, old_path: str, new: ColdFile | None) -> None:
        with self._transaction() as cur:
            cur.execute("DELETE FROM cold_files WHERE path = ?", [old_path])
            if new is not None:
                cur.execute(
                    "INSERT INTO cold_files VALUES (?, ?, ?, ?, ?, now())",
                    [new.path, new.site_id, new.day, new.rows, new.bytes],
                )


_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@functools.lru_cache(maxsize=256)
def _named_params(sql: str) -> frozenset[str]:
    return frozenset(_PARAM.findall(sql))


def bind(
    sql: str, params: Sequence[Any] | dict[str, Any] | None
) -> Sequence[Any] | dict[str, Any] | None:
    """Keep only the named parameters ``sql`` uses (DuckDB refuses extra ones)."""
    if not isinstance(params, dict):
        return params
    used = _named_params(sql)
    return {k: v for k, v in params.items() if k in used}


def local_days_to_utc(first: date, last: date, tz: str) -> tuple[datetime, datetime]:
    """UTC bounds [lo, hi) of the local days first..last in time zone ``tz``."""
    zone = ZoneInfo(tz)
    lo = datetime.combine(first, datetime.min.time(), zone).astimezone(UTC)
    hi = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
    return lo.replace(tzinfo=None), hi.replace(tzinfo=None)


_PASSIVE = sorted(PASSIVE_TYPES | {EventType.PAGE_VIEW})

_SITE_SELECT = (
    "SELECT id, domain, site_key, allowed_origins, timezone, epoch_ms(created_at), "
    "coalesce(consent_mode, 'cookieless'), coalesce(retention_days, 0) FROM sites"
)

# -- auth and administration (queries) --
#: Serialises administrative writes in this process.
_ADMIN_WRITES = threading.RLock()


def _retry_conflicts(write: Callable[[], None], attempts: int) -> None:
    """Run ``write``, again after a short pause when it meets a concurrent write of the
    same rows (the writer thread may be refreshing the same rollups)."""
    for attempt in range(attempts):
        try:
            write()
            return
        except duckdb.TransactionException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


_GRANTS_OF_USER = (
    "coalesce((SELECT list({'siteId': g.site_id, 'role': g.role} ORDER BY g.site_id) "
    "FROM site_grants g WHERE g.user_id = u.id), [])"
)
_USER_RECORD_SELECT = (
    "SELECT u.id, u.email, u.role, u.password_hash IS NOT NULL AS has_password, "
    f"epoch_ms(u.created_at) AS created_at, {_GRANTS_OF_USER} AS grants FROM users u"
)


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


# A batch's sessions, aggregated and merged into session_stats. Attribution comes from
# the session's earliest event, landing/exit from its first/last page view, so the result
# does not depend on the order in which events arrive.
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


def _session_merge_sql(source: str) -> str:
    return _SESSION_MERGE_TEMPLATE.replace("{source}", source)


_SESSION_MERGE_TEMPLATE = f"""
INSERT INTO session_stats
SELECT
    site_id, session_id,
    arg_min(visitor_id, ts),
    min(ts), max(ts),
    date_diff('millisecond', min(ts), max(ts)) // 1000,
    count(*) FILTER (WHERE event_type = 'page_view'),
    count(*),
    count(*) FILTER (WHERE NOT list_contains($passive, event_type)),
    count(*) FILTER (WHERE event_type = 'page_view') <= 1
        AND count(*) FILTER (WHERE NOT list_contains($passive, event_type)) = 0,
    bool_or(list_contains($goals, event_type)),
    coalesce(sum(revenue) FILTER (WHERE list_contains($goals, event_type)), 0),
    arg_min(page_path, ts) FILTER (WHERE event_type = 'page_view'),
    min(ts) FILTER (WHERE event_type = 'page_view'),
    arg_max(page_path, ts) FILTER (WHERE event_type = 'page_view'),
    max(ts) FILTER (WHERE event_type = 'page_view'),
    {", ".join(f"arg_min({c}, ts)" for c in _ATTRIBUTION)}
FROM {{source}}
WHERE session_id <> ''
GROUP BY site_id, session_id
ON CONFLICT (site_id, session_id) DO UPDATE SET
    {_FROM_EARLIER},
    started_at = least(session_stats.started_at, excluded.started_at),
    ended_at = greatest(session_stats.ended_at, excluded.ended_at),
    duration = date_diff('millisecond', least(session_stats.started_at, excluded.started_at),
                         greatest(session_stats.ended_at, excluded.ended_at)) // 1000,
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
_SESSION_MERGE_SQL = _session_merge_sql("_batch")
#: The survivors of joined sessions, rebuilt from the events already stored.
_SESSION_REBUILD_SQL = _session_merge_sql(
    "(SELECT e.* FROM events e JOIN (SELECT DISTINCT site_id, survivor FROM _merges) m "
    "ON e.site_id = m.site_id AND e.session_id = m.survivor)"
)


# -- experiments -----------------------------------------------------------------------------

EXPERIMENT_JSON = ("variants", "goal", "targeting")
_EXPERIMENT_FIELDS = (
    "name",
    "description",
    "variants",
    "goal",
    "targeting",
    "minimum_detectable_effect",
    "status",
    "started_at",
    "stopped_at",
)


def experiment_values(record: Mapping[str, Any]) -> list[Any]:
    """A new experiment's values in column order, from key to status."""
    return [
        record["key"],
        record["name"],
        record["description"],
        *(_json.encode(record[name]).decode() for name in EXPERIMENT_JSON),
        float(record["minimum_detectable_effect"]),
        record["status"],
    ]


def experiment_changes(changes: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(column, value) pairs to set: JSON columns as text, times as naive UTC datetimes."""
    pairs: list[tuple[str, Any]] = []
    for name, value in changes.items():
        if name not in _EXPERIMENT_FIELDS:
            raise ValueError(f"not an experiment field: {name!r}")
        if name in EXPERIMENT_JSON:
            value = _json.encode(value).decode()
        elif name in ("started_at", "stopped_at") and value is not None:
            value = datetime.fromtimestamp(value / 1000, UTC).replace(tzinfo=None)
        pairs.append((name, value))
    if not pairs:
        raise ValueError("no experiment field to change")
    return pairs


def experiment_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored experiment row with its JSON columns decoded."""
    record = dict(row)
    for name in EXPERIMENT_JSON:
        if isinstance(record[name], str | bytes):
            record[name] = msgspec.json.decode(record[name])
    for name in ("created_at", "updated_at", "started_at", "stopped_at"):
        if record[name] is not None:
            record[name] = int(record[name])
    return record
