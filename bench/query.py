#!/usr/bin/env python3
"""Query benchmark: latency of every analytics endpoint's queries over millions of events.

Run it from the repository with the project's environment::

    .venv/bin/python bench/query.py                      # 10M events over 90 days
    .venv/bin/python bench/query.py --events 2000000 --days 30 --runs 5
    .venv/bin/python bench/query.py --db /tmp/q.duckdb   # keep the file, reuse it next time

It bulk-loads generated events straight into a DuckDB file with the store's own schema
(migrations) — no HTTP, no enrichment — in timestamp order as the writer would have
stored them, then builds session_stats with the writer's own session merge and the
DailyStats/ProductStats rollups. The traffic is shaped like a product catalogue's:
visitors with a device, browser, OS and country; sessions of 1-60 events from a channel
(search, social, email, direct, referral; 10 % with UTM campaigns); pages and products
with skewed popularity; page views, scrolls, heartbeats, product views, clicks, affiliate
clicks with revenue, searches, experiment exposures; session and visitor ids of 32 hex
characters, event ids of the tracker's form (the page load's UUID and a count; a page
view starts a page load).

Then, for the last ``--window`` days of data (30 by default), it runs each endpoint's
queries through the query engine (the same code the HTTP handlers call, without the
result cache, which would otherwise answer every repeat) ``--runs`` times after one
warm-up, and prints p50/p95 per endpoint. Breakdowns ask for the endpoint's default
metrics (visitors, page views) unless the row says otherwise. Realtime runs at the
data's last minute.
Export is timed for one day and seven days of NDJSON, with the process's peak resident
memory during each (constant memory means they are about the same).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sightline.query import realtime
from sightline.query.engine import QueryEngine
from sightline.query.exports import FORMATS
from sightline.query.funnels import Funnel, parse_steps
from sightline.query.model import (
    DAILY_STATS,
    Granularity,
    Period,
    Query,
    make_filter,
    parse_dimension,
    parse_metrics,
)
from sightline.query.retention import RetentionPeriod
from sightline.sites import Site
from sightline.stores.duckdb import _PASSIVE, _SESSION_MERGE_SQL, DuckDBStore

SITE = Site(id="bench-site", domain="shop.example", site_key="pk_bench", timezone="Europe/Berlin")
GOALS = ["affiliate_click"]
#: The data ends at this local midnight (a fixed date, so runs are comparable).
END = date(2026, 11, 1)

GENERATE = """
CREATE OR REPLACE MACRO u(a, b) AS (hash(a, b) % 1000003) / 1000003.0;
CREATE OR REPLACE TEMP TABLE v AS
SELECT i AS vn, md5('visitor' || i) AS visitor_id,
    ['desktop', 'desktop', 'mobile', 'mobile', 'mobile', 'tablet'][1 + (hash(i, 1) % 6)::BIGINT]
        AS device_type,
    ['Chrome', 'Chrome', 'Chrome', 'Safari', 'Safari', 'Firefox', 'Edge'][
        1 + (hash(i, 2) % 7)::BIGINT] AS browser,
    ['Windows', 'macOS', 'iOS', 'Android', 'Linux'][1 + (hash(i, 3) % 5)::BIGINT] AS os,
    ['DE', 'DE', 'DE', 'US', 'US', 'FR', 'GB', 'NL', 'AT', 'CH', 'IT', 'ES'][
        1 + (hash(i, 4) % 12)::BIGINT] AS country
FROM range($visitors) t(i);

CREATE OR REPLACE TEMP TABLE s AS
SELECT i AS sn, md5('session' || i) AS session_id,
    floor(pow(u(i, 10), 1.6) * $visitors)::BIGINT AS vn,
    $start::TIMESTAMP + to_microseconds(floor(u(i, 11) * $span_us)::BIGINT) AS started,
    least(60, 1 + floor(-ln(1 - u(i, 12)) * $mean))::BIGINT AS n,
    floor(pow(u(i, 13), 2.5) * 400)::BIGINT AS landing,
    floor(u(i, 14) * 10)::BIGINT AS source,
    u(i, 15) < 0.1 AS campaign
FROM range($sessions) t(i);
"""

INSERT = """
INSERT INTO events
SELECT
    $site,
    -- the tracker's event id: the page load's UUID and the event's number on the page
    regexp_replace(md5(session_id || '/' || page_no), '^(.{8})(.{4})(.{4})(.{4})(.{12})$',
        '\\1-\\2-\\3-\\4-\\5') || '.' || row_number() OVER (PARTITION BY sn, page_no ORDER BY k),
    kind,
    ts,
    ts,
    session_id,
    visitor_id,
    '',
    'https://shop.example' || path,
    path,
    'Page ' || path,
    CASE WHEN k = 0 THEN referrer ELSE 'https://shop.example/' END,
    CASE WHEN k = 0 THEN referrer_source ELSE '' END,
    CASE WHEN k = 0 THEN channel ELSE 'internal' END,
    '1920x1080', '1280x720', device_type, os, browser, '120.0', country,
    CASE WHEN country = 'DE' THEN 'Berlin' ELSE '' END,
    CASE WHEN country = 'DE' THEN 'Berlin' ELSE '' END,
    CASE WHEN k = 0 AND campaign THEN 'newsletter' ELSE '' END,
    CASE WHEN k = 0 AND campaign THEN 'email' ELSE '' END,
    CASE WHEN k = 0 AND campaign THEN 'autumn-sale' ELSE '' END,
    CASE WHEN k = 0 AND campaign THEN 'shoes' ELSE '' END,
    CASE WHEN k = 0 AND campaign THEN 'hero' ELSE '' END,
    product,
    revenue,
    CASE
        WHEN kind IN ('product_view', 'affiliate_click') AND revenue > 0
            THEN '{"productId":"' || product || '","revenue":' || (revenue / 100.0) || '}'
        WHEN kind IN ('product_view', 'affiliate_click')
            THEN '{"productId":"' || product || '"}'
        WHEN kind = 'experiment_exposure'
            THEN '{"experiment":"cta","variant":"' || (CASE WHEN u(sn, 99) < 0.5
                THEN 'A' ELSE 'B' END) || '"}'
        WHEN kind = 'page_view' AND u(sn, 98) < 0.3 THEN '{"plan":"pro"}'
        ELSE '{}'
    END,
    (epoch_ms(ts) - epoch_ms(started)) // 1000
FROM (SELECT *,
    -- each page view starts a page load (a new tracker, counting its events from 1)
    sum((kind = 'page_view')::INT) OVER (PARTITION BY sn ORDER BY k) AS page_no
FROM (
    SELECT s.*, v.*, k,
        u(s.sn, k + 4000) AS r,
        s.started + to_microseconds((k * 45 + floor(u(sn, k + 1000) * 40))::BIGINT * 1000000) AS ts,
        CASE
            WHEN k = 0 THEN 'page_view'
            WHEN k = 1 AND u(sn, 97) < 0.2 THEN 'experiment_exposure'
            ELSE (CASE
                WHEN r < 0.30 THEN 'page_view' WHEN r < 0.45 THEN 'scroll_depth'
                WHEN r < 0.60 THEN 'heartbeat' WHEN r < 0.75 THEN 'product_view'
                WHEN r < 0.83 THEN 'click' WHEN r < 0.88 THEN 'affiliate_click'
                WHEN r < 0.92 THEN 'search_query' WHEN r < 0.96 THEN 'product_hover'
                ELSE 'page_exit' END)
        END AS kind,
        CASE WHEN k = 0 THEN '/p/' || landing
            ELSE '/p/' || floor(pow(u(sn, k + 2000), 2.5) * 400)::BIGINT END AS path,
        ['', '', '', 'https://www.google.com/', 'https://www.google.com/',
         'https://www.bing.com/', 'https://www.facebook.com/', 'https://mail.google.com/',
         'https://blog.example.org/post', 'https://news.example.com/'][1 + source] AS referrer,
        ['', '', '', 'Google', 'Google', 'Bing', 'Facebook', 'Gmail', 'blog.example.org',
         'news.example.com'][1 + source] AS referrer_source,
        CASE WHEN campaign THEN 'email' ELSE ['direct', 'direct', 'direct', 'organic_search',
         'organic_search', 'organic_search', 'social', 'email', 'referral', 'referral'][
         1 + source] END AS channel,
        'prod-' || floor(pow(u(sn, k + 3000), 2) * 300)::BIGINT AS product_x
    FROM s JOIN v USING (vn), range(s.n) ks(k)
) e0) e,
LATERAL (SELECT
    CASE WHEN kind IN ('product_view', 'affiliate_click') THEN product_x ELSE '' END AS product,
    CASE WHEN kind = 'affiliate_click' AND u(sn, k + 5000) < 0.6
        THEN [125, 350, 1000, 2500][1 + floor(u(sn, k + 6000) * 4)::BIGINT] ELSE 0 END
        AS revenue) x
ORDER BY ts
"""


def load(path: Path, events: int, days: int) -> None:
    store = DuckDBStore(path)
    store.migrate()
    cur = store.cursor()
    cur.execute("SET preserve_insertion_order = true")
    mean = 5.5
    sessions = int(events / (mean + 0.5))
    visitors = max(1, sessions // 4)
    start = datetime.combine(END - timedelta(days=days), datetime.min.time())
    started = time.perf_counter()
    print(f"generating {events:,} events over {days} days into {path} …", flush=True)
    cur.execute(
        GENERATE.replace("$visitors", str(visitors))
        .replace("$sessions", str(sessions))
        .replace("$start", f"'{start.isoformat()}'")
        .replace("$span_us", str(days * 86_400 * 1_000_000))
        .replace("$mean", str(mean))
    )
    cur.execute(INSERT.replace("$site", f"'{SITE.id}'"))
    stored = cur.execute("SELECT count(*) FROM events").fetchone()
    print(f"  {stored[0]:,} events in {time.perf_counter() - started:.0f} s", flush=True)
    started = time.perf_counter()
    cur.execute("CREATE OR REPLACE TEMP VIEW _batch AS SELECT * FROM events")
    cur.execute(_SESSION_MERGE_SQL, {"goals": GOALS, "passive": _PASSIVE})
    store.add_site(SITE)
    n = cur.execute("SELECT count(*) FROM session_stats").fetchone()
    print(f"  {n[0]:,} sessions in {time.perf_counter() - started:.0f} s", flush=True)
    started = time.perf_counter()
    day = END - timedelta(days=days + 1)
    while day <= END:
        week = [(SITE.id, day + timedelta(days=i)) for i in range(7)]
        store.refresh_rollups(week, GOALS)
        day += timedelta(days=7)
    print(f"  rollups in {time.perf_counter() - started:.0f} s", flush=True)
    cur.execute("CHECKPOINT")
    store.close()


def peak_rss_during(work: Callable[[], Any]) -> tuple[float, int]:
    """(seconds, peak resident MiB) of ``work``, sampling /proc every 10 ms."""
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    peak = max(peak, int(line.split()[1]) // 1024)
            time.sleep(0.01)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    started = time.perf_counter()
    work()
    elapsed = time.perf_counter() - started
    done.set()
    thread.join()
    return elapsed, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90, help="days of data")
    parser.add_argument("--window", type=int, default=30, help="days each query covers")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--db", type=Path, help="DuckDB file (reused when it exists)")
    args = parser.parse_args()
    scratch = None
    if args.db is None:
        scratch = tempfile.TemporaryDirectory(prefix="sightline-bench-")
        args.db = Path(scratch.name) / "bench.duckdb"
    if not args.db.exists():
        load(args.db, args.events, args.days)
    store = DuckDBStore(args.db, read_only=True)
    engine = QueryEngine(store)
    events = store.query("SELECT count(*) FROM events")[0][0]
    sessions = store.query("SELECT count(*) FROM session_stats")[0][0]
    period = Period(END - timedelta(days=args.window), END - timedelta(days=1), SITE.timezone)
    query = Query(SITE.id, period, goals=tuple(GOALS))
    in_window = store.query(
        "SELECT count(*) FROM events WHERE ts >= ? AND ts < ?",
        [
            datetime.combine(period.start, datetime.min.time()),
            datetime.combine(END, datetime.min.time()),
        ],
    )[0][0]
    daily = parse_metrics(list(dict.fromkeys(DAILY_STATS.values())))
    four = parse_metrics(["visitors", "pageViews", "sessions", "bounceRate"])
    top = parse_metrics(["visitors", "pageViews"])  # the breakdown endpoint's default
    wide = parse_metrics(["visitors", "pageViews", "sessions", "bounceRate", "conversions"])
    filtered = query.with_filters((make_filter(parse_dimension("country"), "is", ["DE"]),))
    funnel = Funnel(parse_steps(["page_view", "product_view", "click", "affiliate_click"]), 86_400)
    by_channel = Funnel(funnel.steps, funnel.window, parse_dimension("channel"))
    data_end = datetime.combine(END, datetime.min.time(), UTC) - timedelta(seconds=30)

    def breakdown(q: Query, name: str, metrics: Any = top) -> Callable[[], Any]:
        dimension = parse_dimension(name)
        return lambda: engine.breakdown(q, metrics, dimension, metrics[0], limit=10)

    cases: list[tuple[str, str, Callable[[], Any]]] = [
        (
            "realtime",
            "≤ 50",
            lambda: realtime.realtime_stats(engine, SITE.id, SITE.timezone, data_end),
        ),
        (
            "dashboard (overview: totals + daily series)",
            "≤ 300",
            lambda: (engine.totals(query, daily), engine.timeseries(query, daily, Granularity.DAY)),
        ),
        (
            "timeseries, day, 4 metrics",
            "≤ 300",
            lambda: engine.timeseries(query, four, Granularity.DAY),
        ),
        (
            "timeseries, hour, 4 metrics",
            "≤ 300",
            lambda: engine.timeseries(query, four, Granularity.HOUR),
        ),
        ("breakdown top 10: page", "≤ 300", breakdown(query, "page")),
        ("breakdown top 10: entry page", "≤ 300", breakdown(query, "entryPage")),
        ("breakdown top 10: channel", "≤ 300", breakdown(query, "channel")),
        ("breakdown top 10: country", "≤ 300", breakdown(query, "country")),
        ("breakdown top 10: page, country = DE", "≤ 300", breakdown(filtered, "page")),
        ("breakdown top 10: page, 5 metrics", "≤ 300", breakdown(query, "page", wide)),
        ("breakdown top 10: country, 5 metrics", "≤ 300", breakdown(query, "country", wide)),
        ("breakdown top 10: city (from first events)", "-", breakdown(query, "city")),
        ("breakdown top 10: variant:cta", "-", breakdown(query, "variant:cta", wide)),
        ("products/top 10", "-", lambda: engine.top_products(query, "views", False, 10)),
        ("funnel, 4 steps, 1-day window", "≤ 1000", lambda: engine.funnel(query, funnel)),
        ("funnel, 4 steps, by channel", "-", lambda: engine.funnel(query, by_channel)),
        ("retention, weekly", "-", lambda: engine.retention(query, RetentionPeriod.WEEK, None)),
        ("sessions (first page of 50)", "-", lambda: engine.sessions(query, limit=50)),
        ("events (first page of 100)", "-", lambda: engine.events(query, limit=100)),
    ]
    print(
        f"\n{events:,} events, {sessions:,} sessions; each query covers {args.window} days "
        f"({in_window:,} events); {args.runs} runs after a warm-up\n"
    )
    print("| endpoint | p50 ms | p95 ms | target ms |")
    print("|---|---|---|---|")
    for name, target, run in cases:
        run()
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            run()
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        print(f"| {name} | {statistics.median(times):.0f} | {p95:.0f} | {target} |", flush=True)

    print("\n| export (NDJSON) | rows | seconds | MiB/s | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for days in (1, 7):
        span = Period(END - timedelta(days=days), END - timedelta(days=1), SITE.timezone)
        sized = [0]

        def export(span: Period = span, sized: list[int] = sized) -> None:
            for chunk in engine.export(query.with_period(span), FORMATS["ndjson"]):
                sized[0] += len(chunk)

        rows = store.query(
            "SELECT count(*) FROM events WHERE ts >= ? AND ts < ?",
            [
                datetime.combine(span.start, datetime.min.time()) - timedelta(hours=1),
                datetime.combine(END, datetime.min.time()) - timedelta(hours=1),
            ],
        )[0][0]
        seconds, peak = peak_rss_during(export)
        print(
            f"| {days} day{'s' if days > 1 else ''} | ~{rows:,} | {seconds:.1f} | "
            f"{sized[0] / seconds / 2**20:.0f} | {peak} |",
            flush=True,
        )
    store.close()
    if scratch is not None:
        scratch.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
