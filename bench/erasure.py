#!/usr/bin/env python3
"""Erasure benchmark: how long erasing one visitor takes as the DuckDB store grows.

    .venv/bin/python bench/erasure.py                      # 100k, 1M and 3M events
    .venv/bin/python bench/erasure.py --events 200000

For each size it builds a fresh DuckDB store (events of 2,000 visitors over 30 days, their
sessions, rollups), then erases one visitor (about events/2,000 rows spread over the
file) through the privacy service, exactly as ``POST /api/v1/privacy/erase`` does:
tombstones, deletion from every warm table, rollup recomputation of the days touched,
row-group rewrite, free-block overwrite and the byte check of the file. It prints the
time of the whole erasure and of the byte purge, the row groups rewritten, and whether
the id was gone from the file's bytes afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from sightline.config import Settings
from sightline.privacy.service import PrivacyService
from sightline.sites import Site
from sightline.stores.duckdb import DuckDBStore

VISITORS = 2_000
GOALS = ["affiliate_click"]


def build(path: Path, events: int, layout: str = "spread") -> DuckDBStore:
    """``spread``: every visitor has events in every row group (the worst case: they came
    back all month); ``clustered``: each visitor's events are stored together (one visit)."""
    visitor = "(i % $v)" if layout == "spread" else "(i * $v // $n)"
    store = DuckDBStore(path)
    store.migrate()
    store.add_site(Site(id="s1", domain="shop.example", site_key="pk", created_at=1))
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=30)
    cur = store.cursor()
    cur.execute(
        "INSERT INTO events SELECT 's1', 'e' || i, "
        "CASE i % 3 WHEN 0 THEN 'page_view' WHEN 1 THEN 'product_view' "
        "ELSE 'affiliate_click' END, "
        "$start + to_milliseconds(i * (2592000000::BIGINT // $n)), now(), "
        f"'s-' || {visitor} || '-' || (i // ($n // 30 + 1)), "
        f"'visitor-' || lpad({visitor}::VARCHAR, 8, '0') || '-bench-subject', '', "
        "'https://shop.example/p/' || (i % 500), '/p/' || (i % 500), 'Product', '', '', "
        "'direct', '1920x1080', '1280x720', 'desktop', 'Linux', 'Chrome', '131', 'DE', '', "
        "'', '', '', '', '', '', 'p' || (i % 50), CASE WHEN i % 3 = 2 THEN 250 ELSE 0 END, "
        "'{}', 0 FROM range($n) t(i)",
        {"n": events, "v": VISITORS, "start": start},
    )
    cur.execute(
        "INSERT INTO session_stats SELECT site_id, session_id, any_value(visitor_id), min(ts), "
        "max(ts), 0, count(*), count(*), 0, false, false, 0, NULL, NULL, NULL, NULL, '', '', "
        "'direct', '', '', '', 'desktop', 'Chrome', 'Linux', 'DE' FROM events "
        "GROUP BY site_id, session_id"
    )
    days = {("s1", (start + timedelta(days=d)).date()) for d in range(31)}
    store.refresh_rollups(days, GOALS)
    cur.execute("CHECKPOINT")
    return store


def run(events: int, layout: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sightline.duckdb"
        store = build(path, events, layout)
        size = path.stat().st_size
        settings = msgspec.convert({"data_dir": tmp}, Settings)
        service = PrivacyService.build(settings, store)
        subject = "visitor-" + "42".rjust(8, "0") + "-bench-subject"
        started = time.perf_counter()
        report = service.erase(service.subject(visitor_ids=[subject]), "bench")
        seconds = time.perf_counter() - started
        store.close()
        return {
            "layout": layout,
            "events": events,
            "file_mb": size / 1e6,
            "erased": report["tiers"]["events"],
            "sessions": report["tiers"]["session_stats"],
            "days": report["rollupsRecomputed"],
            "seconds": seconds,
            "purge": report["storeFile"]["seconds"],
            "groups": report["storeFile"]["rowGroupsRewritten"],
            "verified": report["storeFile"]["verified"],
            "gone": subject.encode() not in path.read_bytes(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, action="append")
    parser.add_argument("--layout", choices=["spread", "clustered"], action="append")
    args = parser.parse_args()
    sizes = args.events or [100_000, 1_000_000, 3_000_000]
    layouts = args.layout or ["clustered", "spread"]
    print(
        f"{'layout':>9} {'events':>10} {'file MB':>8} {'erased':>7} {'sessions':>8} {'days':>5} "
        f"{'erase s':>8} {'purge s':>8} {'groups':>6} {'verified':>8} {'gone':>5}"
    )
    for layout in layouts:
        for n in sizes:
            _print(run(n, layout))


def _print(r: dict[str, Any]) -> None:
    print(
        f"{r['layout']:>9} {r['events']:>10,} {r['file_mb']:>8.1f} {r['erased']:>7} "
        f"{r['sessions']:>8} {r['days']:>5} {r['seconds']:>8.2f} {r['purge']:>8.2f} "
        f"{r['groups']:>6} {r['verified']!s:>8} {r['gone']!s:>5}"
    )


if __name__ == "__main__":
    main()
