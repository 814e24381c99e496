"""Each warm store in turn, for the suites that must give the same answers on both.

The query suites (tests/integration/test_analytics_*.py, tests/unit/query/) take the
``warm_store`` fixture from tests/conftest.py: they run once against the embedded DuckDB
file and once against a PostgreSQL database of their own (dropped afterwards).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sightline.stores.base import Store

#: The engines every query suite runs against.
ENGINES = ("duckdb", "postgres")


@dataclass(frozen=True)
class WarmStore:
    """One engine: its name and the server settings that select it."""

    engine: str
    settings: dict[str, Any] = field(default_factory=dict)

    def open(self, directory: Path) -> Store:
        """A migrated store of this engine (DuckDB: a file under ``directory``)."""
        store: Store
        if self.engine == "postgres":
            from sightline.stores.postgres import PostgresStore

            store = PostgresStore(self.settings["postgres_url"], pool_size=4)
        else:
            from sightline.stores.duckdb import DuckDBStore

            store = DuckDBStore(directory / "store.duckdb")
        store.migrate()
        return store

    def epoch_ms(self, column: str) -> str:
        """SQL for a timestamp column as epoch milliseconds, in this engine's dialect."""
        if self.engine == "postgres":
            return f"(floor(extract(epoch FROM {column}) * 1000))::bigint"
        return f"epoch_ms({column})"


@contextlib.contextmanager
def warm_store(engine: str) -> Iterator[WarmStore]:
    if engine == "postgres":
        from tests.support.services import postgres_database

        with postgres_database() as url:
            yield WarmStore("postgres", {"store": "postgres", "postgres_url": url})
        return
    yield WarmStore("duckdb")


@contextlib.contextmanager
def open_warm_store(engine: str, directory: Path) -> Iterator[Store]:
    """A migrated store of ``engine`` (PostgreSQL: a database of its own), closed after."""
    with warm_store(engine) as warm:
        store = warm.open(directory)
        try:
            yield store
        finally:
            store.close()
