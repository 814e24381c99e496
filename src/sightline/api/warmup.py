"""Warming the store after start-up, so the first overview is as quick as the next ones.

Right after a start, DuckDB reads every column block of a query from disk and the
process runs each code path for the first time; on a store of millions of events that
made the first overview two or three times slower than later ones. Once the server is
up, a background thread runs, per site, what the dashboard's default overview asks for:
the KPI totals of the last 30 days and of the 30 days before (the change badges), the
daily series and the first tab of each breakdown panel. That fills DuckDB's buffer pool
(and PostgreSQL's shared buffers) with the blocks those queries read.

The 30 days end today in the site's time zone or, when the site's latest rollup day is
older (a site that stopped sending, a restored copy), on that day: the data someone
opening the dashboard looks at.

The answers are thrown away: the result cache is not filled, so a warm-up never serves
data that a later write made stale. Readiness (/readyz) does not wait for the warm-up.
It gives way to the dashboard: before each query it waits while analytics requests are
being answered (so the first visitor's queries do not share the CPU with it), and it
stops between queries when the server stops.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlglot import exp

from sightline.query.engine import QueryEngine
from sightline.query.model import (
    DAILY_STATS,
    Period,
    Query,
    parse_dimension,
    parse_metrics,
)
from sightline.query.rollups import daily_series
from sightline.query.sql import Params, column
from sightline.sites import Site

if TYPE_CHECKING:
    from starlette.datastructures import State

log = logging.getLogger("sightline.warmup")

#: The overview's default range, in days (the dashboard's "30d" preset).
DEFAULT_DAYS = 30
#: While requests are being answered the warm-up waits, checking this often (seconds)…
YIELD_SECONDS = 0.05
#: … but not longer than this before each query (a busy dashboard warms the store itself).
MAX_YIELD_SECONDS = 10.0
#: The first tab of each breakdown panel of the overview: dimension and sort metric.
PANELS = (
    ("page", "pageViews"),
    ("referrerSource", "visitors"),
    ("country", "visitors"),
    ("deviceType", "visitors"),
    ("eventType", "events"),
)


def latest_day(engine: QueryEngine, site_id: str) -> date | None:
    """The site's latest day in the ``daily_stats`` rollup (None without data)."""
    params = Params()
    select = (
        exp.select(exp.Max(this=column("date")))
        .from_("daily_stats")
        .where(exp.EQ(this=column("site_id"), expression=params.add(site_id)))
    )
    found = engine.run(select, params)[0][0]
    if found is None:
        return None
    return found if isinstance(found, date) else date.fromisoformat(str(found)[:10])


def overview_period(engine: QueryEngine, site: Site, today: date) -> Period:
    """The 30 days up to today or, when the site's data ends earlier, up to its last day."""
    last = latest_day(engine, site.id)
    end = today if last is None or last >= today else last
    return Period(end - timedelta(days=DEFAULT_DAYS - 1), end, site.timezone)


def overview_steps(
    engine: QueryEngine, site: Site, goals: tuple[str, ...]
) -> list[tuple[str, Callable[[], object]]]:
    """The overview's queries for one site, in the order the page asks for them."""
    today = datetime.now(ZoneInfo(site.timezone)).date()
    period = overview_period(engine, site, today)
    query = Query(site_id=site.id, period=period, goals=goals)
    previous = query.with_period(period.previous())
    figures = parse_metrics(list(dict.fromkeys(DAILY_STATS.values())))
    steps: list[tuple[str, Callable[[], object]]] = [
        ("totals", lambda: engine.totals(query, figures)),
        ("daily series", lambda: daily_series(engine, query, figures, today)),
        ("previous totals", lambda: engine.totals(previous, figures)),
    ]
    for name, sort in PANELS:
        metrics = parse_metrics([sort])
        steps.append(
            (
                f"breakdown {name}",
                functools.partial(
                    engine.breakdown, query, metrics, parse_dimension(name), metrics[0], limit=10
                ),
            )
        )
    return steps


def warm_overviews(state: State, stop: threading.Event) -> int:
    """Run each site's default overview once, through the app's query engine, giving way
    to requests; the number of queries run. Errors are logged (a warm-up is an
    optimisation, never a reason to fail)."""
    from sightline.api.analytics import analytics_of

    analytics = analytics_of(state)
    runtime = analytics.runtime
    try:
        sites = runtime.store.list_sites()
    except Exception:
        log.exception("warm-up: could not list the sites")
        return 0
    goals = tuple(runtime.settings.conversion_events)
    return warm_sites(analytics.engine, sites, goals, stop, lambda: analytics.answering > 0)


def warm_sites(
    engine: QueryEngine,
    sites: list[Site],
    goals: tuple[str, ...],
    stop: threading.Event,
    busy: Callable[[], bool] = lambda: False,
) -> int:
    """Run the default overview of each of ``sites``; before each query, wait while
    ``busy()`` (requests are being answered), up to :data:`MAX_YIELD_SECONDS`."""
    ran = 0
    started = time.perf_counter()
    for site in sites:
        if stop.is_set():
            break
        try:
            steps = overview_steps(engine, site, goals)
        except Exception:
            log.exception("warm-up of %s failed", site.domain)
            continue
        for name, step in steps:
            waited = 0.0
            while busy() and waited < MAX_YIELD_SECONDS and not stop.is_set():
                stop.wait(YIELD_SECONDS)
                waited += YIELD_SECONDS
            if stop.is_set():
                break
            try:
                step()
                ran += 1
            except Exception:
                log.exception("warm-up of %s (%s) failed", site.domain, name)
                break
    log.info(
        "warmed the overview of %d site(s) in %.2f s (%d queries)",
        len(sites),
        time.perf_counter() - started,
        ran,
    )
    return ran
