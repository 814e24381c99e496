#!/usr/bin/env python3
"""Dashboard benchmark: time to first meaningful render of the overview.

Run it from the repository with the project's environment::

    .venv/bin/python bench/dashboard.py                     # 10M events over 90 days
    .venv/bin/python bench/dashboard.py --events 1000000 --runs 3
    .venv/bin/python bench/dashboard.py --db /tmp/d.duckdb  # keep the file, reuse it

It generates events straight into a DuckDB file (bench/query.py's generator: the
store's own schema, sessions and rollups), starts ``sightline serve`` on it, signs in
with Debian's Chromium (Playwright) and opens the overview for the last 30 days of the
data. "Meaningful" is when the KPI cards show figures and the time-series chart is
drawn, measured in the page from navigation start (a MutationObserver records
``performance.now()``). The first load has a cold result cache; the later ones wait out
the cache's 5 s lifetime first, so every load runs its queries. The server warms its
store in the background after start (api/warmup.py); the script prints when that
finished relative to the first load. Target: at most 1 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402
from tests.support.server import running_server  # noqa: E402

from sightline.stores.base import DUCKDB_FILE  # noqa: E402

EMAIL = "bench@dashboard.invalid"
PASSWORD = "benchmark password"  # noqa: S105 (a throwaway server's user)

#: Records when the overview first shows figures and a chart (run before the page's
#: own scripts; Playwright's init scripts are not subject to the page's CSP).
OBSERVER = """
(() => {
  const check = () => {
    const kpi = document.querySelector('[data-kpi="uniqueVisitors"] .kpi-value');
    const chart = document.querySelector('.chart-card svg circle, .chart-card .empty');
    if (window.__meaningful === undefined && kpi && kpi.textContent !== '\\u2013' && chart) {
      window.__meaningful = performance.now();
    }
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true,
                                                  characterData: true});
})();
"""


#: Each request the page made: path, start and end (ms from navigation start).
RESOURCES = (
    "() => performance.getEntriesByType('resource')"
    ".map(e => [new URL(e.name).pathname.replace(/^\\/static\\/[0-9a-f]+/, ''),"
    " e.startTime, e.responseEnd])"
)


def _warm_up_line(log: str) -> tuple[datetime, str] | None:
    """When the server's start-up warm-up finished, and its summary (from its log)."""
    for line in log.splitlines():
        if "sightline.warmup: warmed" in line:
            return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f"), line.split(": ", 1)[1]
    return None


def _query_bench() -> object:
    spec = importlib.util.spec_from_file_location("bench_query", ROOT / "bench" / "query.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90, help="days of data")
    parser.add_argument("--runs", type=int, default=5, help="uncached loads after the first")
    parser.add_argument("--db", type=Path, help="DuckDB file (reused when it exists)")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        print("Debian's chromium is needed (apt-get install chromium)")
        return 1
    query_bench = _query_bench()
    with tempfile.TemporaryDirectory(prefix="sightline-bench-dashboard-") as directory:
        tmp = Path(directory)
        data = tmp / "data"
        data.mkdir()
        source = args.db or tmp / "events.duckdb"
        if not source.exists():
            query_bench.load(source, args.events, args.days)  # type: ignore[attr-defined]
        shutil.copy(source, data / DUCKDB_FILE)
        end = query_bench.END  # type: ignore[attr-defined]
        start, last = end - timedelta(days=30), end - timedelta(days=1)
        with running_server(tmp) as server:
            server.cli("user", "add", EMAIL, "--role", "admin", "--password-stdin", stdin=PASSWORD)
            url = (
                f"{server.url}/?site=shop.example&period=custom"
                f"&from={start.isoformat()}&to={last.isoformat()}"
            )
            timings: list[float] = []
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"]
                )
                context = browser.new_context(
                    viewport={"width": 1280, "height": 900}, bypass_csp=True
                )
                context.add_init_script(OBSERVER)
                answer = context.request.post(
                    server.url + "/api/v1/auth/login", data={"email": EMAIL, "password": PASSWORD}
                )
                assert answer.ok, answer.text()
                page = context.new_page()
                for run in range(args.runs + 1):
                    if run:
                        time.sleep(5.5)  # the result cache keeps answers 5 s
                    else:
                        first_at = datetime.now()
                    page.goto(url)
                    page.wait_for_function(
                        "() => window.__meaningful !== undefined", timeout=60_000
                    )
                    timings.append(page.evaluate("window.__meaningful") / 1000)
                    if run == 0:
                        first_requests = page.evaluate(RESOURCES)
                requests = page.evaluate(RESOURCES)
                kpi = page.locator('[data-kpi="pageViews"] .kpi-value').inner_text()
                browser.close()
            warmed = _warm_up_line(server.log_path.read_text())
    cold, warm = timings[0], timings[1:]
    print(
        f"\nOverview of 30 days over {args.events:,} events ({args.days} days); page views: {kpi}"
    )
    print(f"{'load':<28}{'seconds':>10}")
    print(f"{'first (cold cache)':<28}{cold:>10.3f}")
    if warm:
        print(f"{'uncached, median':<28}{statistics.median(warm):>10.3f}")
        print(f"{'uncached, worst':<28}{max(warm):>10.3f}")
    for label, entries in (("first", first_requests), ("last", requests)):
        print(f"\nrequests of the {label} load (ms from navigation start)")
        for path, began, ended in entries:
            print(f"  {path:<40}{began:>8.0f}{ended:>8.0f}")
    if warmed is None:
        print("\nthe start-up warm-up had not finished when the loads ended")
    else:
        finished, line = warmed
        lead = (first_at - finished).total_seconds()
        when = f"{lead:.1f} s before" if lead >= 0 else f"{-lead:.1f} s after"
        print(f"\nstart-up warm-up ({line}) finished {when} the first load began")
    print(f"target: <= 1.000 s  ({'met' if max(timings) <= 1.0 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as exc:
        print(exc.stderr)
        raise
