"""The overview's daily series from the ``daily_stats`` rollup, for days that are settled.

Counting distinct visitors per day over raw events is the most expensive part of the
overview. The writer keeps the same figures per local day in ``daily_stats`` (built from
the same query model, see query/daily.py), so an unfiltered daily series can read them —
but only for days whose rollup row is known to be current:

- the day ended before today began (in the site's time zone), and
- its rollup row still counts exactly the events, sessions and conversions that the raw
  tables hold for that day (a cheap count, no distinct). A late event, an erasure, a
  rollup refresh that has not happened yet or was lost in a crash all change one of
  these counts, and the day is then computed from raw rows as before.

Filtered queries and other metrics go to the raw tables as always.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from sightline.query.calendar import Buckets
from sightline.query.daily import DAILY_COLUMNS
from sightline.query.model import Granularity, Metric, Period, Query, parse_metrics
from sightline.query.sql import Params, column

if TYPE_CHECKING:
    from sightline.query.engine import QueryEngine

#: Counts compared between the rollup and the raw tables before a day is trusted.
CHECKED = ("events", "sessions", "conversions")
_METRIC_COLUMN = {metric: name for name, metric in DAILY_COLUMNS.items()}


def _rollup_rows(
    engine: QueryEngine, site_id: str, start: date, end: date, names: list[str]
) -> dict[date, dict[str, Any]]:
    params = Params()
    select = (
        exp.select(column("date"), *(column(_METRIC_COLUMN[n]) for n in names))
        .from_("daily_stats")
        .where(
            exp.and_(
                exp.EQ(this=column("site_id"), expression=params.add(site_id)),
                exp.GTE(this=column("date"), expression=params.add(start)),
                exp.LTE(this=column("date"), expression=params.add(end)),
            )
        )
    )
    rows = engine.run(select, params)
    found: dict[date, dict[str, Any]] = {}
    for row in rows:
        day = row[0] if isinstance(row[0], date) else date.fromisoformat(str(row[0])[:10])
        found[day] = dict(zip(names, row[1:], strict=True))
    return found


def daily_series(
    engine: QueryEngine, query: Query, metrics: tuple[Metric, ...], today: date
) -> list[dict[str, Any]]:
    """The same answer as ``engine.timeseries(query, metrics, Granularity.DAY)``, reading
    settled days from ``daily_stats``."""
    names = [m.name for m in metrics]
    settled_end = min(query.period.end, today - timedelta(days=1))
    if (
        query.filters
        or query.period.start > settled_end
        or not all(n in _METRIC_COLUMN for n in names)
    ):
        return engine.timeseries(query, metrics, Granularity.DAY)
    from sightline.query.engine import format_value

    settled = Period(query.period.start, settled_end, query.period.tz)
    checks = parse_metrics(list(CHECKED))
    raw_counts = {
        point["bucket"]: point
        for point in engine.timeseries(query.with_period(settled), checks, Granularity.DAY)
    }
    rolled = _rollup_rows(
        engine, query.site_id, settled.start, settled.end, list(dict.fromkeys([*names, *CHECKED]))
    )
    by_day: dict[str, dict[str, Any]] = {}
    stale: list[date] = []
    day = settled.start
    while day <= settled.end:
        label = day.isoformat()
        counts = raw_counts.get(label, {})
        row = rolled.get(day)
        empty = not any(counts.get(c, 0) for c in CHECKED)
        if row is None and empty:
            by_day[label] = {m.name: format_value(m, 0) for m in metrics}
        elif row is not None and all(int(row[c] or 0) == counts.get(c, 0) for c in CHECKED):
            by_day[label] = {m.name: format_value(m, row[m.name]) for m in metrics}
        else:
            stale.append(day)
        day += timedelta(days=1)
    # today (and later), and any day whose rollup is behind, from the raw tables
    missing: list[tuple[date, date]] = []
    if stale:
        missing.append((min(stale), max(stale)))
    if query.period.end > settled_end:
        missing.append((max(settled_end + timedelta(days=1), query.period.start), query.period.end))
    for first, last in missing:
        span = query.with_period(Period(first, last, query.period.tz))
        for point in engine.timeseries(span, metrics, Granularity.DAY):
            if point["bucket"] not in by_day:
                by_day[point["bucket"]] = {m.name: point[m.name] for m in metrics}
    buckets = Buckets.of(query.period, Granularity.DAY)
    return [
        {"bucket": buckets.label(key), **by_day[buckets.label(key)]} for key in buckets.all_keys()
    ]
