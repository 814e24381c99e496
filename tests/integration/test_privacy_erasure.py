"""Erasure and export reach every tier: the warm store, the rollups, the spool (events
still in flight), the Redis hot store, and the bytes of every file in the data directory.

Every test drives a real server (tests/support/server.py) or the CLI on its data
directory; nothing is mocked.
"""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from sightline.events import Event
from sightline.transport.local import Spool
from tests.integration.test_cli import cli_json
from tests.support.server import BROWSER_UA, ServerProcess, running_server
from tests.support.services import REDIS_URL, redis_prefix

DAY_MS = 86_400_000
#: The subject: a consented visitor (a UUID, as the tracker makes) who signed in.
TARGET_VISITOR = "7c1d9e52-4b7a-4f0e-9a61-2f5be0c4d8a3"
TARGET_USER = "user-erase-me-4471c0d2"
OTHERS = ["0b6f2c1e-9d3a-4e55-8f10-6a7c2d9e1b44", "e5a0f7d3-1c2b-4a9e-b6d8-3f4e5a6b7c8d"]


def make_events(
    visitor: str, n: int, *, user: str = "", days_back: int = 2
) -> list[dict[str, Any]]:
    """``n`` events of one visitor over the last ``days_back`` days, in two sessions."""
    now = int(time.time() * 1000)
    events = []
    for i in range(n):
        day = i % (days_back + 1)
        session = f"{visitor[:8]}-s{day}"
        kind = ("page_view", "product_view", "affiliate_click")[i % 3]
        properties: dict[str, Any] = {}
        if kind != "page_view":
            properties = {"productId": f"p{i % 4}", "revenue": 2.5}
        events.append(
            {
                "eventId": str(uuid.uuid4()),
                "eventType": kind,
                "timestamp": now - day * DAY_MS - (n - i) * 1000,
                "visitorId": visitor,
                "sessionId": session,
                "userId": user if i % 2 else "",
                "consent": "granted",
                "pageUrl": f"https://shop.example/p/{i}",
                "pagePath": f"/p/{i}",
                "properties": properties,
            }
        )
    return events


def send(server: ServerProcess, site_key: str, events: list[dict[str, Any]]) -> None:
    response = httpx.post(
        server.url + "/api/v1/analytics/collect/batch",
        json={"siteKey": site_key, "events": events},
        headers={"User-Agent": BROWSER_UA},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["queued"] == len(events), response.text


def scan_files(data_dir: Path, needles: list[str]) -> list[tuple[str, str]]:
    """(file, needle) for every needle found in the bytes of any file under data_dir."""
    found = []
    for path in sorted(data_dir.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            for needle in needles:
                if needle.encode() in data:
                    found.append((str(path.relative_to(data_dir)), needle))
    return found


def scan_redis(prefix: str, needles: list[str]) -> list[tuple[str, str]]:
    """(key, needle) for every needle in any key name or value under the prefix."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    found = []
    try:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            kind = client.type(key).decode()
            if kind == "string":
                values: list[Any] = [client.get(key)]
            elif kind == "hash":
                values = [*client.hgetall(key).items()]
            elif kind == "zset":
                values = client.zrange(key, 0, -1)
            elif kind == "set":
                values = list(client.smembers(key))
            elif kind == "list":
                values = client.lrange(key, 0, -1)
            elif kind == "stream":
                values = [entry for entry in client.xrange(key)]
            else:
                values = [client.dump(key)]
            blob = repr([key, values]).encode()
            found += [(key.decode(), n) for n in needles if n.encode() in blob]
    finally:
        client.close()
    return found


def stored_by_visitor(server: ServerProcess, site_id: str) -> dict[str, int]:
    rows = server.query(
        f"SELECT visitor_id, count(*) FROM events WHERE site_id = '{site_id}' GROUP BY 1"
    )
    return {r[0]: int(r[1]) for r in rows}


def rollups_match_recomputation(server: ServerProcess, site_id: str) -> bool:
    """daily_stats equals a fresh aggregation of the stored events (UTC site)."""
    stored = server.query(
        "SELECT date::VARCHAR, events, page_views, unique_visitors, affiliate_clicks, revenue "
        f"FROM daily_stats WHERE site_id = '{site_id}' AND events > 0 ORDER BY 1"
    )
    fresh = server.query(
        "SELECT CAST(ts AS DATE)::VARCHAR, count(*), "
        "count(*) FILTER (WHERE event_type = 'page_view'), count(DISTINCT visitor_id), "
        "count(*) FILTER (WHERE event_type = 'affiliate_click'), "
        "coalesce(sum(revenue) FILTER (WHERE event_type = 'affiliate_click'), 0) "
        f"FROM events WHERE site_id = '{site_id}' GROUP BY 1 ORDER BY 1"
    )
    return [list(r) for r in stored] == [list(r) for r in fresh]


def wait_until(check: Any, timeout: float = 40.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return bool(check())


@pytest.mark.parametrize("transport", ["local", "redis"])
def test_erasure_through_the_api_reaches_every_byte_and_every_redis_key(
    tmp_path: Path, transport: str
) -> None:
    with (
        redis_prefix() as prefix,
        running_server(
            tmp_path,
            rate_limit_per_minute=0,
            transport=transport,
            hot_store="redis",
            redis_url=REDIS_URL,
            redis_prefix=prefix,
            # A batch waits 1.5 s in the queue: the second round is still in flight
            # (spool and queue) when the erasure runs.
            writer_flush_ms=1500,
        ) as server,
    ):
        site = server.add_site("shop.example", origins=["*"])
        send(server, site["siteKey"], make_events(TARGET_VISITOR, 12, user=TARGET_USER))
        for other in OTHERS:
            send(server, site["siteKey"], make_events(other, 9))
        assert server.wait_for_events(30) == 30
        assert wait_until(lambda: rollups_match_recomputation(server, site["id"]))
        token = server.token

        # Round two: the subject and another visitor, still in flight when erased.
        in_flight = make_events(TARGET_VISITOR, 4, user=TARGET_USER, days_back=0)
        send(server, site["siteKey"], in_flight + make_events(OTHERS[0], 3, days_back=0))
        response = httpx.post(
            server.url + "/api/v1/privacy/erase",
            json={"visitorId": TARGET_VISITOR},
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["erased"] is True
        assert report["tiers"]["events"] >= 12
        assert report["tiers"]["session_stats"] >= 1
        assert report["storeFile"]["verified"] is True

        # The other visitor's in-flight events arrive; the subject's never do.
        assert server.wait_for_events(21) == 21
        time.sleep(2)  # a batch of the subject would have been written by now
        by_visitor = stored_by_visitor(server, site["id"])
        assert by_visitor == {OTHERS[0]: 12, OTHERS[1]: 9}
        sessions = server.query("SELECT DISTINCT visitor_id FROM session_stats")
        assert sorted(r[0] for r in sessions) == sorted(OTHERS)
        assert wait_until(lambda: rollups_match_recomputation(server, site["id"]))

        metrics = httpx.get(server.url + "/metrics", timeout=10).text
        assert "sightline_events_erased_total 4.0" in metrics

        needles = [TARGET_VISITOR, TARGET_USER]
        assert scan_files(server.data_dir, needles) == []
        # Stream entries (redis transport) are trimmed within seconds once acknowledged.
        assert wait_until(lambda: scan_redis(prefix, needles) == [], timeout=20)
        # Every other visitor's data is still there, in the store and in Redis.
        assert scan_redis(prefix, [OTHERS[0]]) != []

        # The audit entry holds the subject's keyed hash, never the id.
        audit = server.query(
            "SELECT actor, target, details::VARCHAR FROM audit_log WHERE action = 'privacy.erase'"
        )
        assert len(audit) == 1
        actor, target, details = audit[0]
        assert actor == "admin@test.invalid"
        assert len(target) == 64 and TARGET_VISITOR not in details
        assert json.loads(details)["tiers"]["events"] == report["tiers"]["events"]

        server.stop()
        assert scan_files(server.data_dir, needles) == []


def _spool_in_flight(data_dir: Path, site_id: str, events: list[dict[str, Any]]) -> None:
    """Events the collector accepted (made durable in the spool) but the writer has not
    stored: what a crash between the two leaves, written as the collector writes it."""
    now = int(time.time() * 1000)
    decoded = [msgspec.convert(e, Event) for e in events]
    for event in decoded:
        event.site_id = site_id
        event.server_timestamp = now
        event.user_agent = BROWSER_UA
    spool = Spool(data_dir / "spool", 64 << 20)
    spool.open_for_append()
    spool.append([msgspec.msgpack.encode(decoded)])
    spool.close()


def test_export_holds_exactly_the_subject_records_of_every_tier_then_offline_erasure(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path, rate_limit_per_minute=0) as server:
        site = server.add_site("shop.example", origins=["*"])
        subject_stored = make_events(TARGET_VISITOR, 10, user=TARGET_USER)
        send(server, site["siteKey"], subject_stored)
        for other in OTHERS:
            send(server, site["siteKey"], make_events(other, 6))
        assert server.wait_for_events(22) == 22
        server.stop()
    data = server.data_dir
    subject_in_flight = make_events(TARGET_VISITOR, 3, user=TARGET_USER, days_back=0)
    other_in_flight = make_events(OTHERS[1], 2, days_back=0)
    _spool_in_flight(data, site["id"], subject_in_flight + other_in_flight)

    # Export with no server running: the warm store and the spool, through the CLI.
    archive_path = tmp_path / "subject.zip"
    result = cli_json(
        data, "gdpr", "export", "--visitor", TARGET_VISITOR, "--out", str(archive_path)
    )
    manifest = result["manifest"]
    assert manifest["found"]["events"] == 10
    assert manifest["found"]["spool"] == 3
    assert manifest["found"]["session_stats"] == 3
    assert {"events", "session_stats", "spool"} <= set(manifest["searched"]["tiers"])
    with zipfile.ZipFile(archive_path) as archive:
        assert json.loads(archive.read("manifest.json"))["found"] == manifest["found"]
        events = json.loads(archive.read("events.json"))
        spooled = json.loads(archive.read("spool.json"))
        rows = list(csv.DictReader(io.StringIO(archive.read("events.csv").decode())))
        sessions = json.loads(archive.read("session_stats.json"))
    assert sorted(e["event_id"] for e in events) == sorted(e["eventId"] for e in subject_stored)
    assert sorted(e["eventId"] for e in spooled) == sorted(e["eventId"] for e in subject_in_flight)
    assert sorted(r["event_id"] for r in rows) == sorted(e["eventId"] for e in subject_stored)
    assert {s["visitor_id"] for s in sessions} == {TARGET_VISITOR}
    assert all(e["visitor_id"] == TARGET_VISITOR for e in events)

    # By user id: the visitor ids the user's events carried are searched too.
    by_user = cli_json(data, "gdpr", "export", "--user", TARGET_USER, "--out", str(archive_path))
    assert by_user["manifest"]["subject"]["linkedVisitorIds"] == [TARGET_VISITOR]
    assert by_user["manifest"]["found"]["events"] == 10

    # Erase with no server running, then start it: the spool replays without the subject.
    erased = cli_json(data, "gdpr", "erase", "--user", TARGET_USER, "--yes")
    assert erased["tiers"]["events"] == 10
    # Every copy in the spool files: the 3 in flight and the 10 already stored.
    assert erased["tiers"]["spool"] == 13
    assert erased["storeFile"]["verified"] is True
    again = ServerProcess(data, {"rate_limit_per_minute": 0}, tmp_path / "again.log")
    again.start()
    try:
        assert again.wait_for_events(14) == 14
        assert stored_by_visitor(again, site["id"]) == {OTHERS[0]: 6, OTHERS[1]: 8}
        assert wait_until(lambda: rollups_match_recomputation(again, site["id"]))
    finally:
        again.stop()
    assert scan_files(data, [TARGET_VISITOR, TARGET_USER]) == []
    after = cli_json(
        data, "gdpr", "export", "--visitor", TARGET_VISITOR, "--out", str(archive_path)
    )
    assert sum(after["manifest"]["found"].values()) == 0


def test_privacy_api_refuses_what_it_should(server: ServerProcess) -> None:
    site = server.add_site("shop.example", origins=["*"])
    headers = {"Authorization": f"Bearer {server.token}"}
    url = server.url + "/api/v1/privacy/erase"
    missing = httpx.post(url, json={}, headers=headers)
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "missing_subject"
    unknown = httpx.post(url, json={"visitorId": "x", "nope": 1}, headers=headers)
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "invalid_body"
    assert httpx.post(url, json={"visitorId": "x"}).status_code == 401
    no_site = httpx.post(url, json={"visitorId": "x", "site": "nowhere.example"}, headers=headers)
    assert no_site.status_code == 404
    server.cli("user", "add", "analyst@test.invalid", "--role", "analyst")
    analyst = server.cli("token", "create", "--email", "analyst@test.invalid")["token"]
    forbidden = httpx.post(
        url,
        json={"visitorId": "x", "site": site["id"]},
        headers={"Authorization": f"Bearer {analyst}"},
    )
    assert forbidden.status_code == 403
    exported = httpx.get(
        server.url + "/api/v1/privacy/export", params={"visitorId": "nobody"}, headers=headers
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
        assert archive.namelist() == ["manifest.json"]
        assert sum(json.loads(archive.read("manifest.json"))["found"].values()) == 0
    # The CLI goes through the running server (the control endpoint).
    out = server.data_dir.parent / "cli-export.zip"
    result = server.cli("gdpr", "export", "--visitor", "nobody", "--out", str(out))
    assert result["manifest"]["found"]["events"] == 0 and zipfile.is_zipfile(out)
    erased = server.cli("gdpr", "erase", "--visitor", "nobody", "--yes")
    assert erased["erased"] is True and erased["tiers"]["events"] == 0
    privacy = httpx.get(f"{server.url}/api/v1/privacy/sites/{site['id']}", headers=headers)
    assert privacy.json() == {
        "site": site["id"],
        "domain": "shop.example",
        "consentMode": "cookieless",
        "retentionDays": 0,
    }
    bad = httpx.patch(
        f"{server.url}/api/v1/privacy/sites/{site['id']}",
        json={"retentionDays": 3},
        headers=headers,
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_retention"
    changed = httpx.patch(
        f"{server.url}/api/v1/privacy/sites/{site['id']}",
        json={"consentMode": "consent-required", "retentionDays": 90},
        headers=headers,
    )
    assert changed.json()["consentMode"] == "consent-required"
    retention = httpx.post(server.url + "/api/v1/privacy/retention", headers=headers)
    assert retention.status_code == 200
    assert retention.json()["sites"][0]["eventsDeleted"] == 0


@pytest.mark.parametrize("mode", ["cookieless", "consent-required"])
def test_no_raw_ip_is_stored_in_any_mode(tmp_path: Path, mode: str) -> None:
    ip = "203.0.113.77"
    with running_server(
        tmp_path, rate_limit_per_minute=0, trusted_proxies="127.0.0.1", anonymize_ip="prefix"
    ) as server:
        site = server.add_site("shop.example", origins=["*"])
        server.cli("site", "privacy", site["id"], "--consent-mode", mode)
        events = make_events(OTHERS[0], 6)
        for e in events[:3]:
            e.pop("visitorId")
            e.pop("consent")
        if mode == "consent-required":
            events = events[3:]
        response = httpx.post(
            server.url + "/api/v1/analytics/collect/batch",
            json={"siteKey": site["siteKey"], "events": events},
            headers={"User-Agent": BROWSER_UA, "X-Forwarded-For": ip},
        )
        assert response.json()["queued"] == len(events)
        assert server.wait_for_events(len(events)) == len(events)
        prefixes = server.query(
            "SELECT DISTINCT json_extract_string(properties, '$.\"$ipPrefix\"') FROM events"
        )
        assert prefixes == [("203.0.113.0/24",)]
        server.stop()
    assert scan_files(server.data_dir, [ip]) == []


# -- the cold tier: archived Parquet files -------------------------------------------------

#: Days kept warm by the server in the cold-tier tests (events older than that go cold).
COLD_WARM_DAYS = 7
COLD_SETTINGS: dict[str, Any] = {
    "warm_days": COLD_WARM_DAYS,
    # The archiver is run by the test (below); the server never runs it on its own.
    "archive_interval_hours": 0,
    # The warm window must outlast the oldest event the collector accepts.
    "max_event_age_hours": 72,
}


def _old_events(site_id: str, visitor: str, n: int, *, user: str = "") -> list[Event]:
    """``n`` events of a visitor 10 to 12 days ago: older than the collector accepts, so
    written straight into the store, as they were when they arrived."""
    events = []
    for e in make_events(visitor, n, user=user, days_back=2):
        e["timestamp"] -= 10 * DAY_MS
        event = msgspec.convert(e, Event)
        event.site_id = site_id
        event.server_timestamp = event.timestamp
        event.user_agent = BROWSER_UA
        events.append(event)
    return events


def _archived_history(data_dir: Path, cold_settings: dict[str, str]) -> tuple[str, list[str]]:
    """A store with a site whose events of 10 to 12 days ago are archived to Parquet by
    the archiver; returns (admin token, the subject's archived event ids)."""
    from sightline import admin
    from sightline.config import Settings
    from sightline.sites import Site
    from sightline.stores.base import DUCKDB_FILE
    from sightline.stores.duckdb import DuckDBStore
    from sightline.stores.parquet import open_cold
    from sightline.workers.archive import Archiver
    from tests.support.server import ADMIN_EMAIL

    data_dir.mkdir(parents=True)
    store = DuckDBStore(data_dir / DUCKDB_FILE)
    try:
        store.migrate()
        store.add_site(
            Site(id="shop", domain="shop.example", site_key="pk_shop", allowed_origins=["*"])
        )
        admin.add_user(store, ADMIN_EMAIL, "admin", None)
        token: str = admin.create_token(store, ADMIN_EMAIL)["token"]
        subject = _old_events("shop", TARGET_VISITOR, 9, user=TARGET_USER)
        batch = subject + _old_events("shop", OTHERS[0], 6) + _old_events("shop", OTHERS[1], 5)
        store.write_events(batch, checkpoint=None, goals=["affiliate_click"])
        days = {("shop", datetime.fromtimestamp(e.timestamp / 1000, UTC).date()) for e in batch}
        store.refresh_rollups(days, ["affiliate_click"])
        settings = Settings(data_dir=str(data_dir), warm_days=COLD_WARM_DAYS, **cold_settings)
        cold = open_cold(settings, store)
        assert cold is not None
        summary = Archiver(store, cold, COLD_WARM_DAYS).run()
        assert summary["failed"] == [] and summary["rows"] == 20, summary
        assert store.query("SELECT count(*) FROM events")[0][0] == 0
    finally:
        store.close()
    return token, [e.event_id for e in subject]


def _cold_files(data_dir: Path, cold_settings: dict[str, str]) -> dict[str, bytes]:
    """Every object under the cold location (the S3 prefix, or the directory): its
    bytes, and for a Parquet file its decoded rows too (pages are zstd-compressed, so an
    id need not appear in the raw bytes)."""
    import pyarrow as pa

    from sightline.config import Settings
    from sightline.stores.parquet import cold_location, open_filesystem, read_cold

    settings = Settings(data_dir=str(data_dir), **cold_settings)
    fs, root = open_filesystem(cold_location(settings), settings.cold_s3_endpoint_url)
    fs.invalidate_cache()
    found = {}
    for path in fs.find(root):
        blob = fs.cat_file(path)
        if path.endswith(".parquet"):
            blob += repr(read_cold(pa.BufferReader(blob)).to_pylist()).encode()
        found[path] = blob
    return found


def _holding(objects: dict[str, bytes], needles: list[str]) -> list[str]:
    return sorted(p for p, blob in objects.items() if any(n.encode() in blob for n in needles))


def _all_tier_checks(data_dir: Path, cold_settings: dict[str, str]) -> dict[str, Any]:
    """With the server stopped: per visitor, the events in the warm store and in the
    archive; and whether the rollups equal a recomputation from both tiers."""
    from sightline.config import Settings
    from sightline.stores.base import DUCKDB_FILE
    from sightline.stores.duckdb import DuckDBStore
    from sightline.stores.parquet import open_cold

    store = DuckDBStore(data_dir / DUCKDB_FILE)
    try:
        cold = open_cold(Settings(data_dir=str(data_dir), **cold_settings), store)
        assert cold is not None
        source = cold.source("shop", None, None)
        assert source is not None
        archived = store.query(
            f"SELECT visitor_id, count(*) FROM ({source.sql('duckdb')}) GROUP BY 1"
        )
        warm = store.query("SELECT visitor_id, count(*) FROM events GROUP BY 1")
        both = f"SELECT * FROM events UNION ALL BY NAME {source.sql('duckdb')}"
        stored = store.query(
            "SELECT date::VARCHAR, events, page_views, unique_visitors, affiliate_clicks, "
            "revenue FROM daily_stats WHERE site_id = 'shop' AND events > 0 ORDER BY 1"
        )
        fresh = store.query(
            "SELECT CAST(ts AS DATE)::VARCHAR, count(*), "
            "count(*) FILTER (WHERE event_type = 'page_view'), count(DISTINCT visitor_id), "
            "count(*) FILTER (WHERE event_type = 'affiliate_click'), "
            "coalesce(sum(revenue) FILTER (WHERE event_type = 'affiliate_click'), 0) "
            f"FROM ({both}) WHERE site_id = 'shop' GROUP BY 1 ORDER BY 1"
        )
        return {
            "archived": {r[0]: int(r[1]) for r in archived},
            "warm": {r[0]: int(r[1]) for r in warm},
            "rollups": [list(r) for r in stored] == [list(r) for r in fresh],
            "rollupDays": len(stored),
            "manifest": store.query("SELECT count(*), sum(rows) FROM cold_files")[0],
        }
    finally:
        store.close()


@pytest.fixture(params=["dir", "s3"])
def cold_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Where the cold tier lives: the data directory's ``cold/``, or an S3 bucket (moto's
    server)."""
    if request.param == "dir":
        yield {}
        return
    from tests.support.s3 import make_bucket, s3_server

    with s3_server() as endpoint:
        make_bucket(endpoint, "archive")
        yield {"cold_url": f"s3://archive/{tmp_path.name}", "cold_s3_endpoint_url": endpoint}


def test_erasure_reaches_archived_parquet_files_spool_and_redis(
    tmp_path: Path, cold_settings: dict[str, str]
) -> None:
    data = tmp_path / "data"
    token, archived_ids = _archived_history(data, cold_settings)
    assert _all_tier_checks(data, cold_settings)["archived"] == {
        TARGET_VISITOR: 9,
        OTHERS[0]: 6,
        OTHERS[1]: 5,
    }
    needles = [TARGET_VISITOR, TARGET_USER]
    # The scan below finds the subject in the archive before the erasure.
    assert _holding(_cold_files(data, cold_settings), needles)
    headers = {"Authorization": f"Bearer {token}"}
    with redis_prefix() as prefix:
        server = ServerProcess(
            data,
            {
                **COLD_SETTINGS,
                **cold_settings,
                "rate_limit_per_minute": 0,
                "hot_store": "redis",
                "redis_url": REDIS_URL,
                "redis_prefix": prefix,
                "writer_flush_ms": 1500,
            },
            tmp_path / "server.log",
        )
        server._token = token
        server.start()
        try:
            stored = make_events(TARGET_VISITOR, 8, user=TARGET_USER, days_back=1)
            send(server, "pk_shop", stored)
            for other in OTHERS:
                send(server, "pk_shop", make_events(other, 6, days_back=1))
            assert server.wait_for_events(20) == 20

            # Export: exactly the subject's records, from the warm store and the archive.
            exported = httpx.get(
                server.url + "/api/v1/privacy/export",
                params={"visitorId": TARGET_VISITOR},
                headers=headers,
                timeout=60,
            )
            assert exported.status_code == 200, exported.text
            with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
                manifest = json.loads(archive.read("manifest.json"))
                warm_rows = json.loads(archive.read("events.json"))
                cold_rows = json.loads(archive.read("cold.json"))
                cold_csv = list(csv.DictReader(io.StringIO(archive.read("cold.csv").decode())))
            assert "cold" in manifest["searched"]["tiers"]
            assert manifest["found"]["events"] == 8 and manifest["found"]["cold"] == 9
            assert sorted(r["event_id"] for r in warm_rows) == sorted(e["eventId"] for e in stored)
            assert sorted(r["event_id"] for r in cold_rows) == sorted(archived_ids)
            assert sorted(r["event_id"] for r in cold_csv) == sorted(archived_ids)
            assert {r["visitor_id"] for r in cold_rows + warm_rows} == {TARGET_VISITOR}

            # In flight when the erasure runs: the subject's and another visitor's.
            in_flight = make_events(TARGET_VISITOR, 4, user=TARGET_USER, days_back=0)
            send(server, "pk_shop", in_flight + make_events(OTHERS[0], 3, days_back=0))
            response = httpx.post(
                server.url + "/api/v1/privacy/erase",
                json={"visitorId": TARGET_VISITOR},
                headers=headers,
                timeout=120,
            )
            assert response.status_code == 200, response.text
            report = response.json()
            assert report["erased"] is True, report
            assert report["tiers"]["cold"] == 9
            assert report["tiers"]["events"] >= 8
            assert report["storeFile"]["verified"] is True
            assert server.wait_for_events(15) == 15
            time.sleep(2)  # a batch of the subject would have been written by now
            assert stored_by_visitor(server, "shop") == {OTHERS[0]: 9, OTHERS[1]: 6}
            assert wait_until(lambda: scan_redis(prefix, [TARGET_VISITOR, TARGET_USER]) == [])
            assert scan_redis(prefix, [OTHERS[0]]) != []
            again = httpx.get(
                server.url + "/api/v1/privacy/export",
                params={"visitorId": TARGET_VISITOR},
                headers=headers,
                timeout=60,
            )
            with zipfile.ZipFile(io.BytesIO(again.content)) as archive:
                assert sum(json.loads(archive.read("manifest.json"))["found"].values()) == 0
        finally:
            server.stop()

    assert scan_files(data, needles) == []
    cold_objects = _cold_files(data, cold_settings)
    assert cold_objects and all(p.endswith(".parquet") for p in cold_objects)
    assert _holding(cold_objects, needles) == []
    assert _holding(cold_objects, OTHERS[:1])
    checks = _all_tier_checks(data, cold_settings)
    # Everyone else's events are intact in both tiers; the rollups of every day (the
    # archived ones too) equal a recomputation from both tiers.
    assert checks["archived"] == {OTHERS[0]: 6, OTHERS[1]: 5}
    assert checks["warm"] == {OTHERS[0]: 9, OTHERS[1]: 6}
    assert checks["manifest"][1] == 11 and checks["manifest"][0] == len(cold_objects)
    assert checks["rollups"] is True and checks["rollupDays"] >= 4


def test_retention_deletes_archived_days_and_their_manifest_rows(
    tmp_path: Path, cold_settings: dict[str, str]
) -> None:
    data = tmp_path / "data"
    token, _ = _archived_history(data, cold_settings)
    headers = {"Authorization": f"Bearer {token}"}
    server = ServerProcess(
        data, {**COLD_SETTINGS, **cold_settings, "rate_limit_per_minute": 0}, tmp_path / "log"
    )
    server._token = token
    server.start()
    try:
        manifest_before = server.query("SELECT day, rows, path FROM cold_files ORDER BY day")
        rollups_before = server.query("SELECT * FROM daily_stats ORDER BY date")
        assert len({r[0] for r in manifest_before}) == 3
        changed = httpx.patch(
            f"{server.url}/api/v1/privacy/sites/shop", json={"retentionDays": 11}, headers=headers
        )
        assert changed.status_code == 200, changed.text
        response = httpx.post(server.url + "/api/v1/privacy/retention", headers=headers, timeout=60)
        assert response.status_code == 200, response.text
        site = response.json()["sites"][0]
        first_kept = site["cutoff"][:10]  # ISO dates compare as text
        dropped = [r for r in manifest_before if r[0] < first_kept]
        kept = [r for r in manifest_before if r[0] >= first_kept]
        assert dropped and kept
        assert site["archivedEventsDeleted"] == sum(r[1] for r in dropped)
        # The manifest lists the kept files only; the rollups of every day stay.
        assert server.query("SELECT day, rows, path FROM cold_files ORDER BY day") == kept
        assert server.query("SELECT * FROM daily_stats ORDER BY date") == rollups_before
        audit = server.query(
            "SELECT details::VARCHAR FROM audit_log WHERE action = 'privacy.retention'"
        )
        assert json.loads(audit[0][0])["sites"][0]["archivedEventsDeleted"] > 0
        again = httpx.post(server.url + "/api/v1/privacy/retention", headers=headers, timeout=60)
        assert again.json()["sites"][0]["archivedEventsDeleted"] == 0
    finally:
        server.stop()
    # The dropped files are gone from the location; the kept ones are all that is left.
    objects = _cold_files(data, cold_settings)
    assert sorted(p.rsplit("/", 1)[1] for p in objects) == sorted(
        r[2].rsplit("/", 1)[1] for r in kept
    )
    checks = _all_tier_checks(data, cold_settings)
    assert sum(checks["archived"].values()) == sum(r[1] for r in kept)
