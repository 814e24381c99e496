"""Archived events answer every analytics endpoint exactly as they did while warm.

Five months of events are written into a real DuckDB store; every endpoint of the query
suite is asked about ranges that are all warm, all cold and across the boundary; then the
archiver moves the old days to Parquet and a restarted server must give the same
answers, byte for byte.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from sightline import admin
from sightline.config import Settings
from sightline.query.engine import QueryEngine
from sightline.query.model import Period, Query, parse_metrics
from sightline.sites import Site
from sightline.stores.base import DUCKDB_FILE
from sightline.stores.duckdb import DuckDBStore
from sightline.stores.parquet import open_cold
from tests.support.history import history
from tests.support.server import ADMIN_EMAIL, ServerProcess, sightline_command

pytestmark = pytest.mark.slow

SITE = "shop"
TODAY = datetime.now(UTC).date()
FIRST = TODAY - timedelta(days=150)
WARM_DAYS = 90
CUTOFF = TODAY - timedelta(days=WARM_DAYS)


def _ranges() -> list[tuple[date, date]]:
    return [
        (FIRST, TODAY - timedelta(days=1)),  # everything
        (FIRST + timedelta(days=10), FIRST + timedelta(days=40)),  # cold only
        (CUTOFF - timedelta(days=6), CUTOFF + timedelta(days=5)),  # across the boundary
        (CUTOFF - timedelta(days=1), CUTOFF - timedelta(days=1)),  # the last cold day
    ]


def _urls() -> list[str]:
    urls = []
    for start, end in _ranges():
        q = f"site={SITE}&startDate={start}&endDate={end}"
        urls += [
            f"/api/v1/analytics/dashboard?{q}",
            f"/api/v1/analytics/dashboard?{q}&filter=country:is:DE",
            f"/api/v1/analytics/timeseries?{q}&metrics=visitors,pageViews,events,revenue,"
            "sessions,bounceRate,conversions&granularity=week",
            f"/api/v1/analytics/timeseries?{q}&metrics=visitors,events&compare=previous",
            f"/api/v1/analytics/breakdown?{q}&dimension=page&metrics=visitors,events,sessions",
            f"/api/v1/analytics/breakdown?{q}&dimension=city&metrics=visitors,events,sessions",
            f"/api/v1/analytics/breakdown?{q}&dimension=variant:cta&metrics=visitors,events",
            f"/api/v1/analytics/breakdown?{q}&dimension=prop:productId&metrics=events,revenue",
            f"/api/v1/analytics/breakdown?{q}&dimension=utmSource&metrics=visitors,events"
            "&filter=page:is:/pricing",
            f"/api/v1/analytics/products/top?{q}",
            f"/api/v1/analytics/funnel?{q}&step=page_view&step=product_view"
            "&step=affiliate_click&window=2h",
            f"/api/v1/analytics/funnel?{q}&step=page_view&step=signup&dimension=country",
            f"/api/v1/analytics/retention?{q}&period=week",
            f"/api/v1/analytics/retention?{q}&period=day&returnEvent=product_view",
            f"/api/v1/analytics/sessions?{q}&limit=50",
            f"/api/v1/analytics/events?{q}&limit=200",
            f"/api/v1/analytics/events?{q}&limit=100&order=asc&filter=eventType:is:signup",
            f"/api/v1/analytics/export?{q}&format=csv",
            f"/api/v1/analytics/export?{q}&format=ndjson",
        ]
    return urls


def _answers(server: ServerProcess) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for url in _urls():
        response = httpx.get(
            server.url + url, headers={"Authorization": f"Bearer {server.token}"}, timeout=60
        )
        assert response.status_code == 200, (url, response.text)
        is_json = response.headers["content-type"].startswith("application/json")
        out[url] = response.json() if is_json else response.content
    return out


def _secret(server: ServerProcess) -> str:
    info = json.loads((server.data_dir / "server.json").read_text())
    return str(info["secret"])


def write_history(data_dir: Path) -> str:
    """Five months of events in a fresh store; returns an admin API token."""
    store = DuckDBStore(data_dir / DUCKDB_FILE)
    store.migrate()
    site = Site(id=SITE, domain="shop.example", site_key="pk_shop", timezone="Europe/Berlin")
    store.add_site(site)
    admin.add_user(store, ADMIN_EMAIL, "admin", None)
    token: str = admin.create_token(store, ADMIN_EMAIL)["token"]
    events = history(SITE, FIRST, TODAY - timedelta(days=1))
    for i in range(0, len(events), 2000):
        store.write_events(events[i : i + 2000], checkpoint=None, goals=["affiliate_click"])
    store.close()
    return token


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("cold")
    data_dir = root / "data"
    data_dir.mkdir()
    token = write_history(data_dir)
    process = ServerProcess(
        data_dir, {"warm_days": WARM_DAYS, "archive_interval_hours": 0}, root / "server.log"
    )
    process._token = token
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_every_endpoint_answers_the_same_after_archiving(server: ServerProcess) -> None:
    before = _answers(server)
    warm_before = server.count_events()
    # Through the running server, as an operator would.
    summary = server.cli("archive")
    # Every UTC day before the cutoff went cold, and only those.
    assert summary["days"] == (CUTOFF - FIRST).days
    assert 0 < summary["rows"] < warm_before
    assert summary["cold"]["rows"] == summary["rows"]
    assert server.count_events() + summary["rows"] == warm_before
    oldest = server.query("SELECT CAST(min(ts) AS VARCHAR) FROM events")[0][0]
    assert oldest >= CUTOFF.isoformat()
    # The session rows (rollups) stay warm.
    old_sessions = f"SELECT count(*) FROM session_stats WHERE started_at < DATE '{CUTOFF}'"
    assert server.query(old_sessions)[0][0] > 0
    # A fresh process (no cached answers) reads both tiers.
    server.stop()
    server.restart()
    after = _answers(server)
    for url in before:
        assert after[url] == before[url], url


def test_a_second_run_finds_nothing_to_archive(server: ServerProcess) -> None:
    summary = server.cli("archive")
    assert summary["days"] == 0
    assert summary["removedUnrecorded"] == 0
    assert summary["cold"]["days"] == (CUTOFF - FIRST).days


def test_date_ranges_read_only_the_files_they_need(server: ServerProcess) -> None:
    server.stop()
    store = DuckDBStore(server.data_dir / DUCKDB_FILE)
    try:
        cold = open_cold(Settings(data_dir=str(server.data_dir)), store)
        assert cold is not None
        lo = datetime.combine(FIRST + timedelta(days=10), datetime.min.time())
        source = cold.source(SITE, lo, lo + timedelta(days=3))
        assert source is not None
        read = source.sql("duckdb")
        for offset in range(10, 13):
            assert f"day={FIRST + timedelta(days=offset)}" in read
        assert read.count(".parquet") == 3
        assert cold.source(SITE, datetime.combine(CUTOFF, datetime.min.time()), None) is None
        assert cold.source("elsewhere", None, None) is None
        # Without the cold tier the old days are missing: the answers above read it.
        warm_only = QueryEngine(store).totals(
            Query(SITE, Period(FIRST, TODAY, "Europe/Berlin")), parse_metrics(["events"])
        )
        tiered = QueryEngine(store, cold).totals(
            Query(SITE, Period(FIRST, TODAY, "Europe/Berlin")), parse_metrics(["events"])
        )
        assert warm_only["events"] < tiered["events"]
        assert tiered["events"] - warm_only["events"] == cold.summary()["rows"]
    finally:
        store.close()


def test_the_command_works_without_a_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_history(data_dir)
    offline = ServerProcess(data_dir, {"warm_days": WARM_DAYS}, tmp_path / "unused.log")
    plan = offline.cli("archive", "--dry-run")
    assert plan["dryRun"] and plan["days"] == 0
    assert len(plan["pending"]) == (CUTOFF - FIRST).days
    assert plan["pending"][0]["day"] == FIRST.isoformat()
    result = subprocess.run(
        [*sightline_command(), "archive"],
        env=offline.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    # Progress on stderr, one line per day; the summary on stdout.
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == (CUTOFF - FIRST).days
    assert progress[-1].startswith(f"[{len(progress)}/{len(progress)}] {SITE} ")
    assert f"archived {len(progress)} day(s)" in result.stdout
    assert offline.cli("archive")["days"] == 0


def test_the_command_refuses_when_archiving_is_off(tmp_path: Path) -> None:
    offline = ServerProcess(tmp_path, {"warm_days": 0}, tmp_path / "unused.log")
    with pytest.raises(RuntimeError, match="warm_days is 0"):
        offline.cli("archive")


def test_the_server_archives_on_its_own(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    token = write_history(data_dir)
    # Every 3.6 s (the first run comes one interval after start-up).
    settings = {"warm_days": WARM_DAYS, "archive_interval_hours": 0.001}
    server = ServerProcess(data_dir, settings, tmp_path / "server.log")
    server._token = token
    server.start()
    try:
        old = f"ts < DATE '{CUTOFF}'"
        assert server.count_events(old) > 0
        deadline = time.monotonic() + 60
        while server.count_events(old) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert server.count_events(old) == 0
        status = server.control("archive-status", {})
        assert status["days"] == (CUTOFF - FIRST).days
        assert status["location"] == str(data_dir / "cold")
        # Bad input to the control operations is a client error.
        response = httpx.post(
            f"{server.url}/api/v1/control/archive-day",
            json={"site": SITE, "day": "yesterday"},
            headers={"X-Sightline-Control": _secret(server)},
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_body"
    finally:
        server.stop()
