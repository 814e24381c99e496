"""Retention: of the visitors first seen in a day (or week), how many come back later.

Exactly (docs/metrics.md, "Retention"):

- A visitor's *first visit* is their earliest stored event that passes the query's
  filters, at any time before the range ends. Visitors whose first visit falls in the
  range form the cohort of that local day (or Monday-based week).
- Period n of a cohort is the n-th day (week) after the cohort's own; a visitor is
  *retained* in period n if they have an event in it (of the chosen ``returnEvent`` type,
  or of any type) that passes the filters and lies in the range. Period 0 of "any
  event" is the whole cohort.
- Periods are listed up to the range's last day (week).
- Cookieless visitor ids change daily (docs/enrichment.md), so retention is meaningful
  for visitors who gave consent.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlglot import exp

from sightline.query.calendar import Buckets
from sightline.query.model import Granularity, Query
from sightline.query.planner import E, EventRows, Scan, bucket_expr, table_as
from sightline.query.sql import Params, column, fragment

#: The earliest instant a first visit is looked for.
BEGINNING = datetime(1970, 1, 2)


class RetentionPeriod(enum.Enum):
    DAY = "day"
    WEEK = "week"

    @property
    def granularity(self) -> Granularity:
        return Granularity.DAY if self is RetentionPeriod.DAY else Granularity.WEEK


def retention_statements(
    query: Query,
    buckets: Buckets,
    return_event: str | None,
) -> tuple[exp.Select, exp.Select, Params]:
    """(cohort sizes: cohort, visitors) and (returns: cohort, period, visitors)."""
    params = Params()
    lo, hi = buckets.lo, buckets.hi
    everything = Scan(query, params, BEGINNING, hi)
    seen = EventRows(everything)
    seen.where.append(fragment("_v <> ''", _v=column("visitor_id", E)))
    first = (
        seen.select(
            exp.alias_(column("visitor_id", E), "visitor"),
            exp.alias_(fragment("min(_t)", _t=column("ts", E)), "first"),
        )
        .group_by(column("visitor_id", E))
        .having(exp.GTE(this=fragment("min(_t)", _t=column("ts", E)), expression=params.add(lo)))
    )
    cohorts = exp.select(
        exp.alias_(column("visitor", "fv"), "visitor"),
        exp.alias_(bucket_expr(column("first", "fv"), buckets, params), "cohort"),
    ).from_(first.subquery("fv"))
    in_range = EventRows(Scan(query, params, lo, hi))
    in_range.where.append(fragment("_v <> ''", _v=column("visitor_id", E)))
    if return_event is not None:
        in_range.where.append(
            exp.EQ(this=column("event_type", E), expression=params.add(return_event))
        )
    active = in_range.select(
        exp.alias_(column("visitor_id", E), "visitor"),
        exp.alias_(bucket_expr(column("ts", E), buckets, params), "k"),
    ).distinct()

    sizes = (
        exp.select(column("cohort", "c"), fragment("count(*)"))
        .with_("c", as_=cohorts)
        .from_(table_as("c", "c"))
        .group_by(column("cohort", "c"))
    )
    returns = (
        exp.select(
            column("cohort", "c"),
            exp.alias_(fragment("_k - _c", _k=column("k", "a"), _c=column("cohort", "c")), "n"),
            fragment("count(*)"),
        )
        .with_("c", as_=cohorts)
        .with_("a", as_=active)
        .from_(table_as("c", "c"))
        .join(
            table_as("a", "a"),
            on=exp.and_(
                exp.EQ(this=column("visitor", "a"), expression=column("visitor", "c")),
                exp.GTE(this=column("k", "a"), expression=column("cohort", "c")),
            ),
            join_type="inner",
        )
        .group_by(column("cohort", "c"), column("n"))
    )
    return sizes, returns, params
