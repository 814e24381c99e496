#!/usr/bin/env python3
"""Statement building: what the query engine spends before the database sees a query.

    .venv/bin/python bench/planning.py               # 200 runs per case
    .venv/bin/python bench/planning.py --runs 1000

Every analytics request with a new filter builds its statements as SQL trees and prints
them for the engine (the result cache answers repeats). On a small site that work, not
the database, is most of a request's time, so it is measured here on its own: for each
case, the statements of a dashboard request (totals of the events and of the sessions,
and a top-10 page breakdown), built and printed for DuckDB and for PostgreSQL. Prints
p50/p99 per request in milliseconds and statements per second.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

from sightline.query.calendar import utc_bounds
from sightline.query.model import Period, Query, Table, parse_dimension, parse_metrics
from sightline.query.params import parse_filter
from sightline.query.planner import Grouping, aggregate
from sightline.query.sql import render

CASES = {
    "no filter": (),
    "page is": ("page:is:/pricing",),
    "city contains": ("city:contains:ber",),
    "UTM term and page": ("utmTerm:is:shoes", "page:contains:/p/"),
    "custom property": ("prop:plan:is:pro",),
    "experiment variant": ("variant:cta:is:b",),
}
#: The dashboard's KPI cards, by the table each is computed from.
KPIS = parse_metrics(
    ["visitors", "pageViews", "sessions", "bounceRate", "avgSessionDuration", "conversions"]
)
EVENT_METRICS = tuple(m for m in KPIS if m.table is Table.EVENTS)
SESSION_METRICS = tuple(m for m in KPIS if m.table is Table.SESSIONS)


def one_request(filters: tuple[str, ...], dialect: str) -> int:
    query = Query("site", Period(date(2026, 10, 1), date(2026, 10, 30), "Europe/Berlin"))
    query = query.with_filters(tuple(parse_filter(f) for f in filters))
    lo, hi = utc_bounds(query.period)
    top_pages = Grouping(
        dimension=parse_dimension("page"), sort=EVENT_METRICS[0], limit=10, offset=0
    )
    statements = [
        aggregate(query, Table.EVENTS, EVENT_METRICS, lo, hi),
        aggregate(query, Table.SESSIONS, SESSION_METRICS, lo, hi),
        aggregate(query, Table.EVENTS, EVENT_METRICS, lo, hi, top_pages),
    ]
    for tree, _params in statements:
        render(tree, dialect)
    return len(statements)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="requests per case")
    args = parser.parse_args()
    print(f"{'case':<22}{'engine':<10}{'p50 ms':>9}{'p99 ms':>9}{'statements/s':>14}")
    print("-" * 64)
    for name, filters in CASES.items():
        for dialect in ("duckdb", "postgres"):
            one_request(filters, dialect)  # warm-up (parsed fragments are cached)
            times = []
            count = 0
            for _ in range(args.runs):
                started = time.perf_counter()
                count += one_request(filters, dialect)
                times.append(time.perf_counter() - started)
            times.sort()
            p50 = statistics.median(times) * 1000
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000
            rate = count / sum(times)
            print(f"{name:<22}{dialect:<10}{p50:>9.2f}{p99:>9.2f}{rate:>14,.0f}")


if __name__ == "__main__":
    main()
