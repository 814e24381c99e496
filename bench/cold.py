#!/usr/bin/env python3
"""Cold tier benchmark: bytes per event on disk, warm and cold, and query latency over
archived events.

Run it from the repository with the project's environment::

    .venv/bin/python bench/cold.py                       # 10M events over 90 days
    .venv/bin/python bench/cold.py --events 1000000 --runs 5
    .venv/bin/python bench/cold.py --db /tmp/q.duckdb    # keep the generated file, reuse it

It generates the same synthetic catalogue traffic as ``bench/query.py`` (straight into a
DuckDB file with the store's schema; session and visitor ids of 32 hex characters, event
ids of the tracker's form; times truncated to whole milliseconds, as the collector stores
them), then:

1. measures the warm ``events`` table alone (copied into a fresh DuckDB file) and the
   30-day overview (dashboard totals + daily series) on warm data;
2. archives every day with the real archiver (``workers/archive.py``) into a temporary
   directory and measures the Parquet files (total and per column);
3. runs the same 30-day overview, a page breakdown and a funnel over the cold files
   (the query engine with the cold tier, as the server runs it).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

import query as query_bench
from sightline.config import Settings
from sightline.query.engine import QueryEngine
from sightline.query.funnels import Funnel, parse_steps
from sightline.query.model import (
    DAILY_STATS,
    Granularity,
    Period,
    Query,
    parse_dimension,
    parse_metrics,
)
from sightline.stores.duckdb import DuckDBStore
from sightline.stores.parquet import open_cold
from sightline.workers.archive import Archiver

SITE = query_bench.SITE
END = query_bench.END
GOALS = query_bench.GOALS


def timed(run: Callable[[], Any], runs: int) -> tuple[float, float]:
    """(p50, p95) milliseconds of ``runs`` runs after one warm-up."""
    run()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def warm_events_bytes(db: Path, scratch: Path) -> int:
    """Bytes of the events table alone: copied into a fresh DuckDB file."""
    target = scratch / "events-only.duckdb"
    con = duckdb.connect(str(target))
    con.execute(f"ATTACH '{db}' AS src (READ_ONLY)")
    con.execute("CREATE TABLE events AS SELECT * FROM src.events")
    con.execute("DETACH src")
    con.execute("CHECKPOINT")
    con.close()
    size = target.stat().st_size
    target.unlink()
    return size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90, help="days of data")
    parser.add_argument("--window", type=int, default=30, help="days each query covers")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--db", type=Path, help="generated DuckDB file (kept; reused when it exists)"
    )
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="sightline-cold-bench-"))
    try:
        db = scratch / "bench.duckdb"
        if args.db is not None:
            if not args.db.exists():
                query_bench.load(args.db, args.events, args.days)
            shutil.copy(args.db, db)
        else:
            query_bench.load(db, args.events, args.days)
        # The collector stores times in whole milliseconds (the generator draws
        # microseconds): store them as the real pipeline would.
        con = duckdb.connect(str(db))
        con.execute(
            "UPDATE events SET ts = date_trunc('millisecond', ts), "
            "received_at = date_trunc('millisecond', received_at)"
        )
        con.execute("CHECKPOINT")
        con.close()
        return run(db, scratch, args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(db: Path, scratch: Path, args: argparse.Namespace) -> int:
    warm_bytes = warm_events_bytes(db, scratch)
    store = DuckDBStore(db)
    events = int(store.query("SELECT count(*) FROM events")[0][0])
    period = Period(END - timedelta(days=args.window), END - timedelta(days=1), SITE.timezone)
    query = Query(SITE.id, period, goals=tuple(GOALS))
    daily = parse_metrics(list(dict.fromkeys(DAILY_STATS.values())))
    top = parse_metrics(["visitors", "pageViews"])
    funnel = Funnel(parse_steps(["page_view", "product_view", "click", "affiliate_click"]), 86_400)

    def cases(engine: QueryEngine) -> list[tuple[str, str, Callable[[], Any]]]:
        page = parse_dimension("page")
        return [
            (
                f"{args.window}-day overview (totals + daily series)",
                "≤ 500",
                lambda: (
                    engine.totals(query, daily),
                    engine.timeseries(query, daily, Granularity.DAY),
                ),
            ),
            (
                f"{args.window}-day breakdown top 10: page",
                "-",
                lambda: engine.breakdown(query, top, page, top[0], limit=10),
            ),
            (f"{args.window}-day funnel, 4 steps", "-", lambda: engine.funnel(query, funnel)),
        ]

    warm_engine = QueryEngine(store)
    expected = [c[2]() for c in cases(warm_engine)]
    warm_times = {name: timed(fn, args.runs) for name, _, fn in cases(warm_engine)}

    settings = Settings(data_dir=str(scratch), cold_url=str(scratch / "cold"))
    cold = open_cold(settings, store)
    assert cold is not None
    # Everything before today is outside a one-day warm window: archive it all.
    archiver = Archiver(store, cold, warm_days=1)
    started = time.perf_counter()
    summary = archiver.run()
    archive_seconds = time.perf_counter() - started
    left = int(store.query("SELECT count(*) FROM events")[0][0])
    cold_bytes = int(summary["bytes"])
    print(
        f"\narchived {summary['rows']:,} events in {summary['days']} day files in "
        f"{archive_seconds:.1f} s ({summary['rows'] / archive_seconds:,.0f} events/s); "
        f"{left} left warm",
        flush=True,
    )

    cold_engine = QueryEngine(store, cold)
    got = [c[2]() for c in cases(cold_engine)]
    if got != expected:
        print("MISMATCH: cold answers differ from warm ones", file=sys.stderr)
        return 1
    cold_times = {name: timed(fn, args.runs) for name, _, fn in cases(cold_engine)}

    per_column: dict[str, int] = defaultdict(int)
    for entry in cold.manifest.cold_files():
        meta = pq.read_metadata(cold.location(entry.path))
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                column = group.column(c)
                per_column[column.path_in_schema] += column.total_compressed_size

    print(f"\n{events:,} events over {args.days} days\n")
    print("| storage | bytes | bytes per event | target |")
    print("|---|---|---|---|")
    print(f"| warm: DuckDB events table | {warm_bytes:,} | {warm_bytes / events:.1f} | - |")
    print(f"| cold: Parquet (zstd) | {cold_bytes:,} | {cold_bytes / events:.1f} | ≤ 25 |")
    print("\n| Parquet column | bytes per event |")
    print("|---|---|")
    for name, size in sorted(per_column.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {size / events:.2f} |")
    print(
        f"\n| query ({args.runs} runs after a warm-up) | warm p50 / p95 ms | cold p50 / p95 ms "
        "| target ms |"
    )
    print("|---|---|---|---|")
    for name, target, _ in cases(cold_engine):
        w50, w95 = warm_times[name]
        c50, c95 = cold_times[name]
        print(f"| {name} | {w50:.0f} / {w95:.0f} | {c50:.0f} / {c95:.0f} | {target} |")
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
