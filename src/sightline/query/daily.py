"""The rollups the writer keeps: the seed's DailyStats and ProductStats per local day.

Built from the same query model as the API (so a day's row is exactly what the API says
of that day), as statements any store renders for its engine: rows in the column order
of ``daily_stats`` and ``product_stats`` after ``site_id``. Definitions are in
docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from sqlglot import exp

from sightline.query.calendar import Buckets, utc_bounds
from sightline.query.model import Granularity, Period, Query, Table, parse_metrics
from sightline.query.planner import E, Grouping, Scan, aggregate, alias_of, bucket_expr
from sightline.query.products import product_fields, product_rows_of
from sightline.query.sql import Params, column, fragment

#: daily_stats columns after site_id and date -> the metric each one is.
DAILY_COLUMNS: dict[str, str] = {
    "events": "events",
    "page_views": "pageViews",
    "unique_visitors": "visitors",
    "sessions": "sessions",
    "avg_session_duration": "avgSessionDuration",
    "bounce_rate": "bounceRate",
    "product_views": "productViews",
    "affiliate_clicks": "affiliateClicks",
    "conversions": "conversions",
    "revenue": "revenue",
}
#: product_stats columns after site_id, product_id and date (ProductStats field order).
PRODUCT_COLUMNS = (
    "views",
    "unique_views",
    "clicks",
    "unique_clicks",
    "conversions",
    "revenue",
    "ctr",
    "conversion_rate",
)


def day_of(key: exp.Expr) -> exp.Expr:
    """A local day number (days since 1970-01-01) as a DATE."""
    return fragment("CAST('1970-01-01' AS DATE) + CAST(_k AS INTEGER)", _k=key)


def _query(site_id: str, tz: str, first: date, last: date, goals: Sequence[str]) -> Query:
    return Query(site_id, Period(first, last, tz), goals=tuple(goals))


def daily_stats_statement(
    site_id: str, tz: str, first: date, last: date, goals: Sequence[str]
) -> tuple[exp.Select, Params]:
    """(date, events, page_views, …, revenue) for every local day first..last that has
    events or sessions."""
    query = _query(site_id, tz, first, last, goals)
    lo, hi = utc_bounds(query.period)
    grouping = Grouping(buckets=Buckets.of(query.period, Granularity.DAY))
    metrics = parse_metrics(list(DAILY_COLUMNS.values()))
    params = Params()
    sides = {}
    for table, alias in ((Table.EVENTS, "ev"), (Table.SESSIONS, "se")):
        wanted = tuple(m for m in metrics if m.table is table)
        select, _ = aggregate(query, table, wanted, lo, hi, grouping, params)
        sides[alias] = (select, {m.name for m in wanted})
    outputs: list[exp.Expr] = [
        exp.alias_(
            day_of(exp.Coalesce(this=column("k", "ev"), expressions=[column("k", "se")])),
            "date",
        )
    ]
    for name, metric in DAILY_COLUMNS.items():
        side = "ev" if metric in sides["ev"][1] else "se"
        value = exp.Coalesce(
            this=column(alias_of(metric), side), expressions=[exp.Literal.number(0)]
        )
        outputs.append(exp.alias_(value, name))
    statement = (
        exp.select(*outputs)
        .from_(sides["ev"][0].subquery("ev"))
        .join(
            sides["se"][0].subquery("se"),
            on=exp.EQ(this=column("k", "ev"), expression=column("k", "se")),
            join_type="full",
        )
    )
    return statement, params


def product_stats_statement(
    site_id: str, tz: str, first: date, last: date, goals: Sequence[str]
) -> tuple[exp.Select, Params]:
    """(product_id, date, views, unique_views, …, conversion_rate) per product and local
    day first..last."""
    query = _query(site_id, tz, first, last, goals)
    lo, hi = utc_bounds(query.period)
    params = Params()
    scan = Scan(query, params, lo, hi)
    rows = product_rows_of(scan)
    key = bucket_expr(column("ts", E), Buckets.of(query.period, Granularity.DAY), params)
    fields = product_fields(scan)
    order = [
        "views",
        "uniqueViews",
        "clicks",
        "uniqueClicks",
        "conversions",
        "revenue",
        "ctr",
        "conversionRate",
    ]
    select = rows.select(
        exp.alias_(column("product_id", E), "product_id"),
        exp.alias_(day_of(key), "date"),
        *[
            exp.alias_(fields[name], column_name)
            for name, column_name in zip(order, PRODUCT_COLUMNS, strict=True)
        ],
    ).group_by(column("product_id", E), column("date"))
    return select, params


def rollup_rebuild_plan(
    raw: Mapping[date, int], raw_before: Mapping[date, int], stored: Mapping[date, int]
) -> tuple[list[date], list[date]]:
    """(days to recompute, days to keep) when a site's rollups are rebuilt because its
    time zone changed.

    ``raw``: the site's raw events (warm and archived) per local day in the new zone;
    ``raw_before``: the same per local day in the zone the stored rows were computed in;
    ``stored``: the events each stored DailyStats row counts. A stored day that counts
    more events than are still raw for it lost events to retention: its rows are kept as
    they are (its history cannot be recomputed), and it is not recomputed. Every other
    day with raw events is recomputed; the rows of the remaining days (days the new zone
    left without events) are deleted.
    """
    kept = sorted(day for day, events in stored.items() if raw_before.get(day, 0) < events)
    keep = set(kept)
    return sorted(day for day in raw if day not in keep), kept
