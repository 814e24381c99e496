#!/usr/bin/env python3
"""Experiment benchmark: how long results take, and how fast assignment and the statistics are.

    .venv/bin/python bench/experiments.py                       # 1M exposed visitors
    .venv/bin/python bench/experiments.py --visitors 200000 --runs 3

It generates, straight into a DuckDB file with the store's schema (no HTTP), an
experiment with three variants over 14 days: every visitor has one to three
``experiment_exposure`` events, five page views, and about 5 % of them one to two goal
events (``affiliate_click`` with revenue), half of those on the goal's product. Then it
times the results document (the statement plus the statistics) ``--runs`` times after a
warm-up and prints p50 and the slowest run; and it times assignment (visitors per
second, pure Python) and the probability of being best for 2 to 5 variants.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sightline.experiments import assign_variant
from sightline.query import stats
from sightline.query.experiments import experiment_results
from sightline.stores.duckdb import DuckDBStore

SITE = "bench-site"
START = datetime(2026, 3, 2, tzinfo=UTC)
DAYS = 14
START_MS = int(START.timestamp() * 1000)
STOP_MS = START_MS + DAYS * 86_400_000
EXPERIMENT = {
    "key": "checkout-cta",
    "name": "Checkout CTA",
    "status": "running",
    "variants": [
        {"key": "control", "weight": 1},
        {"key": "green", "weight": 1},
        {"key": "large", "weight": 1},
    ],
    "goal": {"eventType": "affiliate_click", "filters": ["product:is:sku-1"]},
    "minimum_detectable_effect": 0.1,
    "created_at": START_MS,
    "started_at": START_MS,
    "stopped_at": STOP_MS,
}

_COLUMNS = (
    "site_id, event_id, event_type, ts, received_at, session_id, visitor_id, user_id, "
    "page_url, page_path, page_title, referrer, referrer_source, channel, "
    "screen_resolution, viewport, device_type, os, browser, browser_version, country, "
    "region, city, utm_source, utm_medium, utm_campaign, utm_term, utm_content, "
    "product_id, revenue, properties, session_duration"
)


def load(store: DuckDBStore, visitors: int) -> int:
    """Generated events, in SQL (DuckDB's range()); returns how many."""
    span = DAYS * 86_400
    store.query(
        f"""
        INSERT INTO events ({_COLUMNS})
        WITH v AS (
            SELECT i, md5(i::VARCHAR) AS visitor,
                   TIMESTAMP '{START:%Y-%m-%d %H:%M:%S}'
                       + to_seconds((hash(i) % {span - 7200})::BIGINT) AS first_seen,
                   ['control', 'green', 'large'][1 + (hash(i * 7) % 3)::INTEGER] AS variant,
                   hash(i * 13) % 1000 AS luck
            FROM range({visitors}) AS r(i)
        ), rows AS (
            SELECT v.*, k.n AS n, k.kind AS kind FROM v,
            (VALUES (0, 'experiment_exposure'), (1, 'experiment_exposure'),
                    (2, 'page_view'), (3, 'page_view'), (4, 'page_view'), (5, 'page_view'),
                    (6, 'page_view'), (7, 'affiliate_click'), (8, 'affiliate_click')) AS k(n, kind)
            WHERE (k.n <> 1 OR v.luck % 2 = 0)
              AND (k.n < 7 OR (v.luck < 50 + (v.variant = 'green')::INTEGER * 8
                               AND (k.n = 7 OR v.luck % 3 = 0)))
        )
        SELECT '{SITE}', md5(visitor || n::VARCHAR), kind,
               first_seen + to_seconds(n * 60), first_seen + to_seconds(n * 60),
               visitor, visitor, '', 'https://shop.example/p', '/p', 'P', '', '', 'Direct',
               '', '', 'desktop', 'Linux', 'Chrome', '131', 'DE', '', '', '', '', '', '', '',
               CASE WHEN kind = 'affiliate_click' THEN
                   CASE WHEN luck % 2 = 0 THEN 'sku-1' ELSE 'sku-2' END ELSE '' END,
               CASE WHEN kind = 'affiliate_click' THEN 250 + luck ELSE 0 END,
               CASE WHEN kind = 'experiment_exposure'
                    THEN json_object('experiment', 'checkout-cta', 'variant', variant)
                    ELSE '{{}}'::JSON END,
               0
        FROM rows
        """
    )
    return int(store.query("SELECT count(*) FROM events")[0][0])


def timed(work: Callable[[], object], runs: int) -> tuple[float, float]:
    work()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), max(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sightline-bench-") as directory:
        store = DuckDBStore(Path(directory) / "bench.duckdb")
        store.migrate()
        t0 = time.perf_counter()
        events = load(store, args.visitors)
        loaded = time.perf_counter() - t0
        print(f"{events:,} events of {args.visitors:,} visitors loaded in {loaded:.1f} s\n")
        now = STOP_MS
        answer = experiment_results(store, SITE, "Europe/Berlin", EXPERIMENT, now)
        p50, worst = timed(
            lambda: experiment_results(store, SITE, "Europe/Berlin", EXPERIMENT, now), args.runs
        )
        store.close()
    print(f"{'what':<58} {'p50':>10} {'max':>10}")
    print("-" * 80)
    print(
        f"{'results document (statement + statistics), 3 variants':<58} "
        f"{p50 * 1000:>8.0f} ms {worst * 1000:>7.0f} ms"
    )
    n = 200_000
    t0 = time.perf_counter()
    for i in range(n):
        assign_variant("checkout-cta", f"visitor-{i}", [1, 1, 1])
    rate = n / (time.perf_counter() - t0)
    print(f"{'assignment, pure Python':<58} {rate:>10,.0f} visitors/s")
    for k in (2, 3, 4, 5):
        conversions = [5000 + 40 * i for i in range(k)]
        exposures = [100_000] * k
        p50, worst = timed(
            lambda c=conversions, n=exposures: stats.probability_best(c, n), args.runs
        )
        print(
            f"{f'probability of being best, {k} variants of 100,000':<58} "
            f"{p50 * 1000:>8.1f} ms {worst * 1000:>7.1f} ms"
        )
    print()
    for variant in answer["variants"]:
        print(
            f"  {variant['key']:<8} exposures {variant['exposures']:>9,}  "
            f"conversions {variant['conversions']:>7,}  rate {variant['conversionRate']:.4f}  "
            f"P(best) {variant['probabilityBest']:.3f}"
        )
    print(
        f"  SRM p = {answer['srm']['pValue']:.3f}, days in series: {len(answer['series']['dates'])}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
