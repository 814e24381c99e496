"""What a warm store offers the rest of Sightline, as one Protocol.

The embedded :class:`~sightline.stores.duckdb.DuckDBStore` and the production
:class:`~sightline.stores.postgres.PostgresStore` both satisfy it; the writer, the
administrative operations, the site registry and the authenticator are written against
it, so the choice of engine is configuration (``store = "duckdb" | "postgres"``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

    from sightline.config import Settings
    from sightline.events import Event
    from sightline.query.tiers import ColdSource
    from sightline.sites import Site


@dataclass(frozen=True, slots=True)
class DroppedEvents:
    """What :meth:`Store.drop_events_before` removed."""

    #: Events removed.
    events: int
    #: Sessions removed (those that ended before the cut).
    sessions: int
    #: Whole day partitions dropped (PostgreSQL, all sites at once), oldest first.
    partitions: tuple[str, ...] = ()


class Store(Protocol):
    #: The SQL dialect queries are rendered for: ``duckdb`` or ``postgres``.
    engine: str

    # -- lifecycle and schema ----------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply pending migrations; returns the versions applied."""
        ...

    def schema_version(self) -> int: ...

    def close(self) -> None: ...

    def cursor(self) -> Any:
        """A DB-API-like cursor for this thread (``execute``/``fetchall``), for operator
        reads wrapped in BEGIN ... ROLLBACK."""

    # -- reads for the query layer -----------------------------------------------------

    def query(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]: ...

    def query_dicts(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> list[dict[str, Any]]: ...

    def stream(
        self, sql: str, params: dict[str, Any], batch_rows: int = 10_000
    ) -> Iterator[pa.RecordBatch]: ...

    # -- the writer --------------------------------------------------------------------

    def write_events(
        self,
        events: Sequence[Event],
        *,
        checkpoint: tuple[str, str] | None,
        goals: Iterable[str],
        merges: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        """Store a batch with its sessions (and the transport checkpoint), atomically;
        ``merges`` (site, absorbed, survivor) are sessions a late event joined."""
        ...

    def checkpoint(self, name: str) -> str | None: ...

    def recent_event_keys(self, limit: int) -> list[tuple[str, str]]: ...

    def session_spans(
        self, site_id: str, visitor_ids: Sequence[str], since_ms: int
    ) -> list[tuple[str, str, str, int, int]]: ...

    def session_starts(self, site_id: str, session_ids: Sequence[str]) -> list[tuple[str, int]]: ...

    def refresh_rollups(
        self,
        days: Iterable[tuple[str, date]],
        goals: Sequence[str],
        *,
        cold: ColdSource | None = None,
    ) -> None: ...

    def drop_events_before(self, site_id: str | None, day: date) -> DroppedEvents:
        """Retention: remove the events of one site (or of every site, ``None``) received
        for times before ``day`` 00:00 UTC, and the sessions that ended before it. The
        daily rollups (aggregates, no visitor ids) stay. PostgreSQL drops whole day
        partitions when every site goes, and deletes rows for one site."""
        ...

    # -- sites -------------------------------------------------------------------------

    def add_site(self, site: Site) -> None: ...

    def list_sites(self) -> list[Site]: ...

    def get_site(self, id_or_domain: str) -> Site | None: ...

    def site_by_key(self, site_key: str) -> Site | None: ...

    def update_site(
        self, site_id: str, domain: str, allowed_origins: list[str], timezone: str
    ) -> None: ...

    def set_site_key(self, site_id: str, site_key: str) -> None: ...

    def set_site_privacy(self, site_id: str, consent_mode: str, retention_days: int) -> None: ...

    def delete_site(self, site_id: str, attempts: int = 5) -> bool: ...

    def rebuild_site_rollups(
        self,
        site_id: str,
        goals: Sequence[str],
        attempts: int = 5,
        *,
        previous_timezone: str | None = None,
    ) -> None: ...

    def watch_sites(self, callback: Callable[[], None]) -> None: ...

    # -- users, tokens, sign-ins, audit ------------------------------------------------

    def watch_auth(self, callback: Callable[[], None]) -> None: ...

    def add_user(self, user_id: str, email: str, password_hash: str | None, role: str) -> None: ...

    def get_user(self, email_or_id: str) -> dict[str, Any] | None: ...

    def user_records(self, id_or_email: str | None = None) -> list[dict[str, Any]]: ...

    def create_user(
        self,
        user_id: str,
        email: str,
        password_hash: str | None,
        role: str,
        grants: Mapping[str, str],
    ) -> None: ...

    def update_user_access(
        self, user_id: str, role: str | None, grants: Mapping[str, str] | None
    ) -> None: ...

    def set_site_grant(self, user_id: str, site_id: str, role: str | None) -> bool: ...

    def set_password_hash(self, user_id: str, password_hash: str | None) -> None: ...

    def password_hash(self, email: str) -> tuple[str, str | None] | None: ...

    def delete_user(self, user_id: str) -> bool: ...

    def count_admins(self) -> int: ...

    def add_token(self, token_id: str, user_id: str, name: str, token_hash: str) -> None: ...

    def user_for_token(self, token_hash: str) -> dict[str, Any] | None: ...

    def revoke_token(self, token_id: str) -> bool: ...

    def principal_for_token(self, token_hash: str) -> dict[str, Any] | None: ...

    def principal_for_session(self, id_hash: str) -> dict[str, Any] | None: ...

    def api_token_records(
        self, user_id: str | None = None, token_id: str | None = None
    ) -> list[dict[str, Any]]: ...

    def revoke_api_token(self, token_id: str) -> bool: ...

    def record_token_use(self, token_id: str) -> None: ...

    def add_login_session(
        self, id_hash: str, user_id: str, csrf_token: str, lifetime: timedelta
    ) -> None: ...

    def delete_login_sessions(
        self, *, id_hash: str | None = None, user_id: str | None = None, keep: str | None = None
    ) -> int: ...

    def saved_funnels(self, site_id: str) -> list[dict[str, Any]]: ...

    def save_funnel(
        self, site_id: str, funnel_id: str, name: str, definition: str, created_by: str
    ) -> str: ...

    def delete_funnel(self, site_id: str, funnel_id: str) -> bool: ...

    def record_audit(self, actor: str, action: str, target: str, details: Any = None) -> None: ...

    def audit_records(
        self, limit: int = 100, before_ms: int | None = None
    ) -> list[dict[str, Any]]: ...

    # -- experiments (records: key, name, description, variants, goal, targeting,
    #    minimum_detectable_effect, status, created_at/updated_at/started_at/stopped_at ms)

    def add_experiment(self, site_id: str, record: Mapping[str, Any]) -> bool:
        """Store a new experiment; False when the site already has one with its key."""
        ...

    def experiment_records(
        self, site_id: str, key: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]: ...

    def update_experiment(self, site_id: str, key: str, changes: Mapping[str, Any]) -> bool: ...

    def delete_experiment(self, site_id: str, key: str) -> bool: ...


#: Name of the embedded store's file inside the data directory.
DUCKDB_FILE = "sightline.duckdb"


def open_store(settings: Settings, *, pool_size: int | None = None) -> Store:
    """The warm store the settings choose (not yet migrated)."""
    if settings.store == "postgres":
        from sightline.stores.postgres import PostgresStore

        if not settings.postgres_url:
            raise ValueError("store = postgres needs postgres_url (SIGHTLINE_POSTGRES_URL)")
        return PostgresStore(
            settings.postgres_url,
            pool_size=pool_size if pool_size is not None else settings.postgres_pool_size,
        )
    from sightline.stores.duckdb import DuckDBStore

    settings.data_path.mkdir(parents=True, exist_ok=True)
    return DuckDBStore(settings.data_path / DUCKDB_FILE)
