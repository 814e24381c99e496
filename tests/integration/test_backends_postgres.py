"""The PostgreSQL warm store against a real server, each test in a database of its own.

The same events written to DuckDB and to PostgreSQL, in shuffled batches with late and
repeated events, give identical sessions and rollups; writes are idempotent whoever
repeats them; partitions appear as days need them; administration works the same.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sightline import admin
from sightline.events import Event
from sightline.sites import Site
from sightline.stores.duckdb import EVENT_COLUMNS, DuckDBStore
from sightline.stores.postgres import PostgresStore
from sightline.workers.sessions import Sessionizer
from tests.support.services import postgres_database

GOALS = ["affiliate_click"]
MIN = 60_000
KINDS = ["page_view"] * 5 + [
    "click",
    "product_view",
    "affiliate_click",
    "search_query",
    "heartbeat",
    "scroll_depth",
]


@pytest.fixture
def pg() -> Iterator[PostgresStore]:
    with postgres_database() as url:
        store = PostgresStore(url, pool_size=4)
        store.migrate()
        try:
            yield store
        finally:
            store.close()


def site(site_id: str, tz: str) -> Site:
    return Site(
        id=site_id,
        domain=f"{site_id}.example",
        site_key=f"pk_{site_id}",
        allowed_origins=["*"],
        timezone=tz,
        created_at=int(time.time() * 1000),
    )


def traffic(rng: random.Random, site_id: str, base: int, visitors: int = 40) -> list[Event]:
    """Sessions over a few days; some visitors without session ids (cookieless)."""
    events = []
    for v in range(visitors):
        visitor = f"{site_id}-v{v}"
        cookieless = v % 4 == 0
        t = base + rng.randint(0, 48 * 60) * MIN
        for s in range(rng.randint(1, 3)):
            t += rng.randint(40, 600) * MIN
            for _ in range(rng.randint(1, 9)):
                t += rng.randint(0, 20) * MIN + rng.randint(1, 59_999)
                kind = rng.choice(KINDS)
                props: dict[str, Any] = {}
                if kind in ("product_view", "affiliate_click"):
                    props = {"productId": f"p{rng.randint(1, 4)}"}
                    if kind == "affiliate_click" and rng.random() < 0.6:
                        props["revenue"] = rng.choice([1.25, 3.5, 10])
                events.append(
                    Event(
                        event_type=kind,
                        event_id=str(uuid.uuid4()),
                        timestamp=t,
                        session_id="" if cookieless else f"{visitor}-s{s}",
                        visitor_id=visitor,
                        page_path=f"/page/{rng.randint(1, 6)}",
                        page_url="https://example.test/",
                        referrer=rng.choice(["", "https://www.google.com/", "https://t.co/x"]),
                        referrer_source=rng.choice(["", "Google", "Twitter"]),
                        channel=rng.choice(["Direct", "Organic Search", "Social"]),
                        utm_source=rng.choice(["", "news", "ads"]),
                        device_type=rng.choice(["desktop", "mobile"]),
                        browser=rng.choice(["Chrome", "Firefox"]),
                        os=rng.choice(["Linux", "iOS"]),
                        country=rng.choice(["DE", "FR", "US"]),
                        properties=props,
                        site_id=site_id,
                        server_timestamp=t + rng.randint(0, 2000),
                    )
                )
    return events


class StoreFeeder:
    """What the writer does around write_events: server sessions, then the batch."""

    def __init__(self, store: DuckDBStore | PostgresStore) -> None:
        self.store = store
        self.sessions = Sessionizer(30 * MIN, store.session_spans, store.session_starts)
        self.merges = 0

    def write(self, events: list[Event]) -> None:
        self.sessions.assign(events)
        merges = self.sessions.take_merges()
        self.merges += len(merges)
        self.store.write_events(events, checkpoint=None, goals=GOALS, merges=merges)


def copies(events: list[Event]) -> list[Event]:
    return [Event(**{f: getattr(e, f) for f in Event.__struct_fields__}) for e in events]


def batches(rng: random.Random, events: list[Event]) -> Iterator[list[Event]]:
    order = list(events)
    rng.shuffle(order)
    i = 0
    while i < len(order):
        n = rng.randint(1, 120)
        yield order[i : i + n]
        i += n


SESSION_COLUMNS = (
    "site_id, session_id, visitor_id, started_at, ended_at, duration, page_views, events, "
    "interactions, bounce, converted, revenue, landing_page, landing_at, exit_page, exit_at, "
    "referrer, referrer_source, channel, utm_source, utm_medium, utm_campaign, device_type, "
    "browser, os, country"
)


def table_rows(store: DuckDBStore | PostgresStore, sql: str) -> list[tuple[Any, ...]]:
    return [
        tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in store.query(sql)
    ]


def test_same_events_give_identical_sessions_and_rollups(tmp_path: Path, pg: PostgresStore) -> None:
    rng = random.Random(7)
    base = int(datetime(2026, 3, 27, tzinfo=UTC).timestamp() * 1000)  # across a DST change
    sites = [site("berlin", "Europe/Berlin"), site("tokyo", "Asia/Tokyo"), site("utc", "UTC")]
    events = [e for s in sites for e in traffic(rng, s.id, base)]
    duck = DuckDBStore(tmp_path / "duck.duckdb")
    duck.migrate()
    joined: dict[str, int] = {}
    try:
        for store in (duck, pg):
            for s in sites:
                store.add_site(s)
            feeder = StoreFeeder(store)
            order = random.Random(11)  # the same shuffled batches for both engines
            for batch in batches(order, copies(events)):
                feeder.write(batch)
            if store is pg:
                # Late repeats of earlier events (redeliveries, retries) change nothing:
                # PostgreSQL is idempotent by itself (DuckDB relies on the writer's
                # dedupe window, which this test does not use).
                feeder.write(copies(order.sample(events, 50)))
            days = {
                (s.id, d)
                for s in sites
                for d in (date(2026, 3, 26) + timedelta(days=i) for i in range(8))
            }
            store.refresh_rollups(days, GOALS)
            joined[store.engine] = feeder.merges

        for sql in (
            f"SELECT {SESSION_COLUMNS} FROM session_stats ORDER BY site_id, session_id",
            "SELECT * FROM daily_stats ORDER BY site_id, date",
            "SELECT * FROM product_stats ORDER BY site_id, product_id, date",
            f"SELECT {', '.join(c for c in EVENT_COLUMNS if c != 'properties')} FROM events "
            "ORDER BY site_id, event_id",
        ):
            expected = table_rows(duck, sql)
            assert expected, sql
            assert table_rows(pg, sql) == expected, sql
        assert pg.query("SELECT count(*) FROM events")[0][0] == len(events)
        server_sessions = pg.query(
            "SELECT count(*) FROM session_stats WHERE session_id LIKE 'srv!_%' ESCAPE '!'"
        )[0][0]
        assert server_sessions > 0
        # Late events bridged server-made sessions, and both engines joined them alike.
        assert joined["duckdb"] > 0 and joined["postgres"] == joined["duckdb"]
    finally:
        duck.close()


def test_the_schema_mirrors_duckdb(tmp_path: Path, pg: PostgresStore) -> None:
    duck = DuckDBStore(tmp_path / "duck.duckdb")
    duck.migrate()
    try:
        assert pg.schema_version() == duck.schema_version()
        sql = (
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = {schema} AND table_name NOT LIKE 'events!_p%' ESCAPE '!' "
            "AND table_name NOT IN ('event_keys', 'schema_migrations') "
            "ORDER BY table_name, ordinal_position"
        )
        assert pg.query(sql.format(schema="current_schema()")) == duck.query(
            sql.format(schema="'main'")
        )
        columns = [
            r[0]
            for r in pg.query(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'events' ORDER BY ordinal_position"
            )
        ]
        assert tuple(columns) == EVENT_COLUMNS
    finally:
        duck.close()


def test_redelivered_and_concurrent_batches_are_stored_once(pg: PostgresStore) -> None:
    pg.add_site(site("s", "UTC"))
    rng = random.Random(3)
    events = traffic(rng, "s", int(time.time() * 1000) - 86_400_000, visitors=60)
    for e in events:
        e.session_id = e.session_id or f"{e.visitor_id}-x"
    first, rest = events[: len(events) // 2], events[len(events) // 2 :]
    pg.write_events(first, checkpoint=None, goals=GOALS)
    pg.write_events(copies(first), checkpoint=None, goals=GOALS)  # a redelivery
    # Four workers write overlapping halves of the rest at the same moment.
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(part: list[Event]) -> None:
        try:
            start.wait()
            for i in range(0, len(part), 40):
                pg.write_events(part[i : i + 40], checkpoint=None, goals=GOALS)
        except BaseException as exc:
            errors.append(exc)

    parts = [copies(rest), copies(rest[::-1]), copies(rest[::2]), copies(first + rest)]
    threads = [threading.Thread(target=work, args=(p,)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    stored = pg.query("SELECT event_id, count(*) FROM events GROUP BY event_id")
    assert len(stored) == len(events)
    assert all(count == 1 for _, count in stored)
    assert pg.query("SELECT sum(events) FROM session_stats")[0][0] == len(events)
    assert pg.duplicates >= len(first)
    assert pg.query("SELECT count(*) FROM event_keys")[0][0] == len(events)


def test_partitions_are_made_for_the_days_written(pg: PostgresStore) -> None:
    pg.add_site(site("s", "UTC"))
    days = [date(2026, 1, 30), date(2026, 2, 1), date(2026, 2, 3)]
    events = [
        Event(
            event_type="page_view",
            event_id=f"e{i}",
            timestamp=int(datetime(d.year, d.month, d.day, 23, 59, tzinfo=UTC).timestamp() * 1000),
            session_id="s1",
            visitor_id="v1",
            site_id="s",
            server_timestamp=int(time.time() * 1000),
        )
        for i, d in enumerate(days)
    ]
    pg.write_events(events, checkpoint=("transport:test", "7"), goals=GOALS)
    assert pg.partitions() == ["events_p20260130", "events_p20260201", "events_p20260203"]
    assert pg.checkpoint("transport:test") == "7"
    per_partition = pg.query(
        "SELECT tableoid::regclass::text, count(*) FROM events GROUP BY 1 ORDER BY 1"
    )
    assert per_partition == [(f"events_p{d:%Y%m%d}", 1) for d in days]
    # A second store (another worker) finds them and adds only what is missing.
    other = PostgresStore(pg.url, pool_size=1)
    try:
        other.ensure_partitions({(date(2026, 2, 4) - date(1970, 1, 1)).days})
    finally:
        other.close()
    assert pg.partitions()[-1] == "events_p20260204"
    assert pg.drop_partitions_before(date(2026, 2, 1)) == ["events_p20260130"]
    assert pg.query("SELECT count(*) FROM events")[0][0] == 2


def test_dashboard_reads_prune_days_and_use_the_site_index(pg: PostgresStore) -> None:
    pg.add_site(site("s", "UTC"))
    rng = random.Random(5)
    start = int(datetime(2026, 2, 1, tzinfo=UTC).timestamp() * 1000)
    pg.write_events(traffic(rng, "s", start, visitors=300), checkpoint=None, goals=GOALS)
    assert len(pg.partitions()) >= 3
    with pg.connection() as conn, conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")  # tiny test tables: show the index
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT count(*) FROM events WHERE site_id = 's' "
                "AND ts >= '2026-02-02' AND ts < '2026-02-03'"
            )
        )
    assert "events_p20260202" in plan, plan
    assert "events_p20260201" not in plan and "events_p20260203" not in plan, plan
    assert "site_id_ts_idx" in plan, plan


def test_administration_and_reads_work_the_same(pg: PostgresStore) -> None:
    info = admin.add_site(pg, "shop.example", ["https://shop.example"], "Europe/Paris")
    assert pg.site_by_key(info["siteKey"]) is not None
    user = admin.add_user(pg, "a@example.com", "admin", "correct horse battery", {})
    token = admin.create_token(pg, "a@example.com", "ci")
    principal = pg.principal_for_token(admin.hash_token(token["token"]))
    assert principal is not None and principal["email"] == "a@example.com"
    assert principal["grants"] == []
    viewer = admin.add_user(pg, "v@example.com", None, None, {info["id"]: "viewer"})
    assert admin.get_user(pg, viewer["id"])["sites"][0]["role"] == "viewer"
    pg.record_token_use(token["id"])
    records = pg.api_token_records(user_id=user["id"])
    assert records[0]["last_used_at"] is not None
    assert admin.revoke_token(pg, token["id"])["revokedAt"]
    assert pg.principal_for_token(admin.hash_token(token["token"])) is None
    assert [r["action"] for r in pg.audit_records()][:2] == ["token.revoke", "user.create"]

    now = int(time.time() * 1000)
    pg.write_events(
        traffic(random.Random(1), info["id"], now - 86_400_000, 5), checkpoint=None, goals=GOALS
    )
    rows = admin.run_read_query(pg, "SELECT count(*) FROM events WHERE page_path LIKE '/page/%'")
    assert rows[0][0] > 0
    assert pg.query("SELECT count(*) FROM events WHERE site_id = $site", {"site": info["id"]})
    batches = list(pg.stream("SELECT event_id, ts, properties FROM events", {}, batch_rows=7))
    assert sum(b.num_rows for b in batches) == rows[0][0]
    assert batches[0].schema.names == ["event_id", "ts", "properties"]
    admin.delete_site(pg, info["id"])
    assert pg.query("SELECT count(*) FROM events")[0][0] == 0
    assert pg.query("SELECT count(*) FROM site_grants")[0][0] == 0


def test_migrate_is_safe_to_run_from_many_processes_at_once(pg: PostgresStore) -> None:
    stores = [PostgresStore(pg.url, pool_size=1) for _ in range(3)]
    try:
        results: list[list[int]] = []
        threads = [threading.Thread(target=lambda s=s: results.append(s.migrate())) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert results == [[], [], []]
    finally:
        for s in stores:
            s.close()


def test_writers_sharing_a_store_continue_each_others_sessions(
    pg: PostgresStore, tmp_path: Path
) -> None:
    """A cookieless visitor's batches alternate between two workers: each looks the
    visitor's sessions up in the store (``shared``), so the visit stays one session."""
    from sightline.config import Settings
    from sightline.metrics import Metrics
    from sightline.transport import Delivery
    from sightline.transport.local import LocalTransport
    from sightline.workers.ingest import Writer

    pg.add_site(site("s", "UTC"))
    settings = Settings(data_dir=str(tmp_path))
    writers = [
        Writer(pg, LocalTransport(tmp_path / f"spool{i}"), settings, Metrics(), shared=True)
        for i in range(2)
    ]
    start = int(time.time() * 1000) - 3 * 3_600_000
    for step in range(4):  # 20 minutes apart: one visit of an hour
        at = start + step * 20 * MIN
        event = Event(
            event_type="page_view",
            event_id=f"e{step}",
            timestamp=at,
            visitor_id="cookieless-v",
            site_id="s",
            server_timestamp=at,
        )
        writers[step % 2].write(Delivery([event]))
    sessions = pg.query("SELECT session_id, events FROM session_stats")
    assert len(sessions) == 1 and sessions[0][1] == 4, sessions
