"""Shared fixtures. Service tests skip off CI when a service is absent; under CI=true a
skip of a service test is a failure."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess, running_server
from tests.support.stores import ENGINES, WarmStore, warm_store

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason: str) -> None:
    """Skip a test whose service is missing, except on CI where that is a failure."""
    if ON_CI:
        pytest.fail(f"{reason} (CI=true: service tests may not be skipped)")
    pytest.skip(reason)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real Sightline server subprocess with rate limiting off."""
    with running_server(tmp_path, rate_limit_per_minute=0) as srv:
        yield srv


@pytest.fixture(scope="module", params=ENGINES)
def store_engine(request: pytest.FixtureRequest) -> Iterator[WarmStore]:
    """Each warm store in turn (DuckDB, then a PostgreSQL database of the module's own,
    dropped after): a module using it runs all its tests against both engines."""
    with warm_store(request.param) as store:
        yield store
