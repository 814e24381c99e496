"""Where data about a visitor or a user lives: the tiers an export reads and an erasure
clears, behind one small Protocol.

A tier answers two questions for one site: every record it holds about the subject
(``export_subject``) and "delete them" (``erase_subject``, returning how many went).
The runtime fills a :class:`TierRegistry` (:func:`build_registry`); export and erasure
walk it in order. Adding a place where data lives is one ``registry.register(...)``
line; the cold Parquet tier registers itself that way.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgspec

from sightline.privacy import _spool

if TYPE_CHECKING:
    from sightline.config import Settings
    from sightline.stores.base import Store
    from sightline.stores.redis_hot import RedisHotStore

log = logging.getLogger(__name__)


@runtime_checkable
class Tier(Protocol):
    """One place data about a subject may live."""

    #: Short and stable: it names the tier in archives, manifests and audit entries.
    name: str

    def export_subject(
        self, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Every record this tier holds about the subject on ``site_id``."""
        ...

    def erase_subject(
        self, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> int:
        """Delete them; returns how many records went."""
        ...


class _SubjectStore(Protocol):
    def export_subject(
        self, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> list[dict[str, Any]]: ...

    def erase_subject(
        self, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> int: ...


class NamedTier:
    """Any object with ``export_subject`` and ``erase_subject`` (such as the cold Parquet
    store), registered under ``name``."""

    def __init__(self, name: str, store: _SubjectStore) -> None:
        self.name = name
        self.store = store

    def export_subject(
        self, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        return self.store.export_subject(site_id, list(visitor_ids), list(user_ids))

    def erase_subject(
        self, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> int:
        return self.store.erase_subject(site_id, list(visitor_ids), list(user_ids))


class TierRegistry:
    """The tiers of one installation, in the order an erasure visits them."""

    def __init__(self) -> None:
        self._tiers: list[Tier] = []

    def register(self, tier: Tier, *, before: str | None = None) -> None:
        if any(t.name == tier.name for t in self._tiers):
            raise ValueError(f"a tier named {tier.name!r} is registered already")
        index = next((i for i, t in enumerate(self._tiers) if t.name == before), None)
        if index is None:
            self._tiers.append(tier)
        else:
            self._tiers.insert(index, tier)

    def __iter__(self) -> Iterator[Tier]:
        return iter(list(self._tiers))

    def names(self) -> list[str]:
        return [t.name for t in self._tiers]

    def get(self, name: str) -> Tier | None:
        return next((t for t in self._tiers if t.name == name), None)


# -- the warm store ----------------------------------------------------------------------

#: Tables about Sightline's own users and administration, never about tracked subjects.
_NOT_SUBJECT_TABLES = frozenset(
    {
        "users",
        "site_grants",
        "login_sessions",
        "api_tokens",
        "token_activity",
        "audit_log",
        "privacy_tombstones",
        "checkpoints",
        "schema_migrations",
        "sites",
    }
)


def subject_tables(store: Store) -> list[tuple[str, bool, bool]]:
    """(table, has visitor_id, has user_id) of every warm-store table with a site_id and
    a visitor_id or user_id column: events, session_stats, and whatever other tables
    keep per-visitor rows. session_stats and other derived tables come before events
    (their rows are found through the subject's events)."""
    schema = "main" if store.engine == "duckdb" else "public"
    rows = store.query(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = $schema AND column_name IN ('site_id', 'visitor_id', 'user_id')",
        {"schema": schema},
    )
    if store.engine == "postgres":  # partitions are reached through their parent table
        partitions = {
            r[0] for r in store.query("SELECT relname FROM pg_class WHERE relispartition")
        }
        rows = [r for r in rows if r[0] not in partitions]
    columns: dict[str, set[str]] = {}
    for table, column in rows:
        columns.setdefault(table, set()).add(column)
    found = [
        (table, "visitor_id" in cols, "user_id" in cols)
        for table, cols in columns.items()
        if table not in _NOT_SUBJECT_TABLES
        and not table.startswith("_")
        and "site_id" in cols
        and ({"visitor_id", "user_id"} & cols)
    ]
    return sorted(found, key=lambda item: (item[0] == "events", item[0]))


class WarmTable:
    """One warm-store table holding per-visitor rows (events, session_stats, ...)."""

    def __init__(self, store: Store, table: str, has_visitor: bool, has_user: bool) -> None:
        self.store = store
        self.table = table
        self.name = table
        self.has_visitor = has_visitor
        self.has_user = has_user

    def _in(self, column: str, param: str) -> str:
        if self.store.engine == "duckdb":
            return f"list_contains(${param}, {column})"
        return f"{column} = ANY(${param})"

    def where(self) -> str:
        """The subject's rows on ``$site``: by visitor or user id, and (for tables other
        than events) the rows of the sessions the subject's events belong to."""
        terms = []
        if self.has_visitor:
            terms.append(self._in("visitor_id", "visitors"))
        if self.has_user:
            terms.append(self._in("user_id", "users"))
        if self.table != "events" and not self.has_user:
            terms.append(
                "session_id IN (SELECT session_id FROM events WHERE site_id = $site AND "
                f"session_id <> '' AND ({self._in('visitor_id', 'visitors')} OR "
                f"{self._in('user_id', 'users')}))"
            )
        return f"site_id = $site AND ({' OR '.join(terms)})"

    def params(
        self, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> dict[str, Any]:
        return {"site": site_id, "visitors": list(visitor_ids), "users": list(user_ids)}

    def export_subject(
        self, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        rows = self.store.query_dicts(
            f'SELECT * FROM "{self.table}" WHERE {self.where()}',
            self.params(site_id, visitor_ids, user_ids),
        )
        return [plain_record(row) for row in rows]

    def erase_subject(
        self, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> int:
        gone = self.store.query(
            f'DELETE FROM "{self.table}" WHERE {self.where()} RETURNING site_id',
            self.params(site_id, visitor_ids, user_ids),
        )
        return len(gone)


def plain_record(row: dict[str, Any]) -> dict[str, Any]:
    """A row as JSON-friendly values: times as ISO 8601 UTC, JSON columns decoded."""
    out: dict[str, Any] = {}
    for column, value in row.items():
        if isinstance(value, datetime):
            value = value.replace(tzinfo=UTC).isoformat(timespec="milliseconds")
        elif isinstance(value, date):
            value = value.isoformat()
        elif column == "properties" and isinstance(value, str):
            with contextlib.suppress(msgspec.DecodeError):
                value = msgspec.json.decode(value)
        out[column] = value
    return out


# -- the local spool ---------------------------------------------------------------------


class SpoolTier:
    """Events in the embedded transport's spool (and a broker transport's outbox) files.

    The export lists the events not yet committed to the warm store (those after the
    writer's checkpoint). The erasure scrubs every copy in every segment file, committed
    or not, in place (see :mod:`sightline.privacy._spool`).
    """

    name = "spool"

    def __init__(
        self, directories: Sequence[Path], checkpoint: Callable[[], str | None] | None = None
    ) -> None:
        self.directories = list(directories)
        self.checkpoint = checkpoint

    def export_subject(
        self, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        position = self.checkpoint() if self.checkpoint is not None else None
        records: list[dict[str, Any]] = []
        for directory in self.directories:
            after = position if directory.name == "spool" else None
            for event in _spool.subject_events(directory, site_id, visitor_ids, user_ids, after):
                records.append(msgspec.to_builtins(event))
        return records

    def erase_subject(
        self, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> int:
        return sum(
            _spool.scrub_directory(directory, site_id, visitor_ids, user_ids)
            for directory in self.directories
        )


# -- the Redis hot store -----------------------------------------------------------------


class HotStoreTier:
    """Realtime counters in Redis: the active-visitor set holds visitor ids. Erasing also
    bumps the shared data version, so every process's result cache misses."""

    name = "hot"

    def __init__(self, hot: RedisHotStore) -> None:
        self.hot = hot

    def _key(self, site_id: str) -> str:
        return f"{self.hot.prefix}:{site_id}:visitors"

    def export_subject(
        self, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        if not visitor_ids:
            return []
        client = self.hot._client
        scores = client.zmscore(self._key(site_id), list(visitor_ids))
        return [
            {"siteId": site_id, "visitorId": v, "lastEventAt": int(score)}
            for v, score in zip(visitor_ids, scores, strict=True)
            if score is not None
        ]

    def erase_subject(
        self, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> int:
        client = self.hot._client
        removed = int(client.zrem(self._key(site_id), *visitor_ids)) if visitor_ids else 0
        client.incr(f"{self.hot.prefix}:version")
        return removed


class CacheTier:
    """In-process result caches: they hold aggregates, never ids, but an answer computed
    before the erasure must not be served after it."""

    name = "cache"

    def __init__(self, clear: Sequence[Callable[[], None]] = ()) -> None:
        self.clear = list(clear)

    def export_subject(
        self, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        return []

    def erase_subject(
        self, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> int:
        for clear in self.clear:
            clear()
        return 0


def build_registry(
    settings: Settings,
    store: Store,
    *,
    hot: RedisHotStore | None = None,
    caches: Sequence[Callable[[], None]] = (),
    cold: _SubjectStore | None = None,
) -> TierRegistry:
    """Every tier of this installation, in erasure order."""
    registry = TierRegistry()
    for table, has_visitor, has_user in subject_tables(store):
        registry.register(WarmTable(store, table, has_visitor, has_user))
    spools = [settings.data_path / "spool", settings.data_path / "outbox"]
    checkpoint_name = "transport:local"
    registry.register(SpoolTier(spools, lambda: store.checkpoint(checkpoint_name)))
    if hot is not None:
        registry.register(HotStoreTier(hot))
    registry.register(CacheTier(caches))
    if cold is not None:
        registry.register(NamedTier("cold", cold), before="spool")
    return registry
