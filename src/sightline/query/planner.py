"""Meaning: which rows a query selects, what each dimension's value is, how each metric
is counted — as SQLGlot trees, the same for every engine.

Two kinds of rows are counted. Event metrics count ``events`` (alias ``e``) whose
timestamp is in the range; session metrics count ``session_stats`` rows (alias ``s``)
that started in the range. A filter or a breakdown on a dimension of the other kind
reaches across:

- an event dimension narrows sessions to those with at least one event in the range that
  passes every event filter (and, broken down, a session counts under each value its
  events in the range have);
- a session dimension narrows events to those whose session passes (broken down, each
  event counts under its session's value);
- a visitor dimension (experiment variant) applies to events and sessions of the visitor.

Definitions in prose are in docs/metrics.md.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlglot import exp

from sightline.query.calendar import Buckets
from sightline.query.model import (
    DIMENSIONS,
    EXPERIMENT_PROPERTY,
    VARIANT_PROPERTY,
    Dimension,
    Filter,
    Granularity,
    Metric,
    Op,
    Query,
    Scope,
    Table,
)
from sightline.query.sql import (
    Params,
    and_all,
    column,
    count_all,
    count_if,
    epoch_seconds,
    first_by,
    fragment,
    is_in,
    number,
    or_all,
    ratio,
    subquery_in,
)

E = "e"
S = "s"


def alias_of(metric_name: str) -> str:
    """The SQL column alias of a metric (``pageViews`` -> ``page_views``)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", metric_name).lower()


def table_as(name: str, alias: str) -> exp.Table:
    return exp.Table(
        this=exp.to_identifier(name), alias=exp.TableAlias(this=exp.to_identifier(alias))
    )


def string(value: str) -> exp.Literal:
    """A string constant of our own (an event type), never a caller's value."""
    return exp.Literal.string(value)


def property_value(row: str, key: str) -> exp.Expr:
    """``properties ->> key`` as text ('' when absent); ``key`` passed KEY_PATTERN."""
    path = exp.JSONPath(expressions=[exp.JSONPathRoot(), exp.JSONPathKey(this=key)])
    extract = exp.JSONExtractScalar(this=column("properties", row), expression=path)
    return exp.Coalesce(this=extract, expressions=[string("")])


def filter_condition(value: exp.Expr, f: Filter, params: Params) -> exp.Expr:
    if f.op is Op.IS:
        return is_in(value, params, f.values)
    if f.op is Op.IS_NOT:
        return exp.not_(is_in(value, params, f.values))
    if f.op is Op.CONTAINS:
        return or_all(
            [
                fragment("strpos(lower(_v), lower(_p)) > 0", _v=value, _p=params.add(v))
                for v in f.values
            ]
        )
    return or_all(
        [fragment("regexp_matches(_v, _p)", _v=value, _p=params.add(v)) for v in f.values]
    )


# -- time buckets ------------------------------------------------------------------------


def offset_expr(ts: exp.Expr, buckets: Buckets, params: Params) -> exp.Expr:
    """The zone's UTC offset (seconds) at ``ts``: a constant, or a CASE over transitions."""
    offsets = buckets.offsets
    if not offsets.changes:
        return number(offsets.first)
    case = exp.Case()
    previous = offsets.first
    for when, value in offsets.changes:
        case = case.when(exp.LT(this=ts.copy(), expression=params.add(when)), number(previous))
        previous = value
    return case.else_(number(previous))


def bucket_expr(ts: exp.Expr, buckets: Buckets, params: Params) -> exp.Expr:
    """The integer bucket key of ``ts`` (see sightline.query.calendar)."""
    g = buckets.granularity
    if g is Granularity.MONTH:
        if not buckets.month_starts:
            return number(0)
        case = exp.Case()
        for index, start in enumerate(buckets.month_starts):
            case = case.when(exp.LT(this=ts.copy(), expression=params.add(start)), number(index))
        return case.else_(number(len(buckets.month_starts)))
    offset = offset_expr(ts, buckets, params)
    local = fragment("_s + _o", _s=epoch_seconds(ts), _o=offset)
    if g is Granularity.DAY:
        return fragment("(_l) // 86400", _l=local)
    if g is Granularity.WEEK:
        return fragment("((_l) // 86400 + 3) // 7", _l=local)
    size = number(60 if g is Granularity.MINUTE else 3600)
    return fragment("(_l) // _n * _n - (_o)", _l=local, _n=size, _o=offset)


# -- rows --------------------------------------------------------------------------------


@dataclass
class Scan:
    """What one statement shares: the query, its parameters and the range's bounds."""

    query: Query
    params: Params
    lo: datetime
    hi: datetime
    site: exp.Expr = field(init=False)
    lo_p: exp.Expr = field(init=False)
    hi_p: exp.Expr = field(init=False)

    def __post_init__(self) -> None:
        self.site = self.params.add(self.query.site_id)
        self.lo_p = self.params.add(self.lo)
        self.hi_p = self.params.add(self.hi)

    @property
    def goals(self) -> tuple[str, ...]:
        return self.query.goals


class Rows(abc.ABC):
    """A FROM clause with the joins its dimensions need, and a WHERE clause."""

    table = ""
    alias = ""

    def __init__(self, scan: Scan) -> None:
        self.scan = scan
        self.params = scan.params
        self.joins: dict[str, tuple[exp.Expr, exp.Expr, str]] = {}
        self.variants: dict[str, str] = {}
        self.where: list[exp.Expr] = []

    # -- values ----------------------------------------------------------------------

    @abc.abstractmethod
    def value(self, dimension: Dimension) -> exp.Expr:
        """The dimension's value for each row of this source."""

    def visitor_column(self) -> exp.Expr:
        return column("visitor_id", self.alias)

    def session_column(self) -> exp.Expr:
        return column("session_id", self.alias)

    def join(self, alias: str, table: exp.Expr, on: exp.Expr, kind: str = "left") -> None:
        if alias not in self.joins:
            self.joins[alias] = (table, on, kind)

    def variant_value(self, dimension: Dimension) -> exp.Expr:
        """The variant of ``dimension.key`` the row's visitor was first exposed to."""
        alias = self.variants.setdefault(dimension.key, f"v{len(self.variants)}")
        on = exp.EQ(this=column("visitor_id", alias), expression=self.visitor_column())
        self.join(alias, exposures(self.scan, dimension.key).subquery(alias, copy=False), on)
        return exp.Coalesce(this=column("variant", alias), expressions=[string("")])

    def first_event_value(self, dimension: Dimension) -> exp.Expr:
        """A session attribute read from the session's first event (alias ``sf``)."""
        on = exp.EQ(this=column("session_id", "sf"), expression=self.session_column())
        self.join("sf", first_events(self.scan).subquery("sf", copy=False), on)
        return exp.Coalesce(
            this=column(dimension.first_event_column, "sf"), expressions=[string("")]
        )

    # -- the statement -----------------------------------------------------------------

    def narrow(self, filters: tuple[Filter, ...]) -> None:
        """Add the WHERE conditions that keep only rows matching ``filters``.

        Sources built from already filtered rows (per-session sums, funnel anchors) are
        never narrowed again; asking them to is a planner bug."""
        raise TypeError(f"{type(self).__name__} rows are filtered where they are built")

    def source(self) -> exp.Expr:
        return table_as(self.table, self.alias)

    def select(self, *projections: exp.Expr) -> exp.Select:
        # (copy=False: SQLGlot's builders copy the statement at every step by default,
        # which made building cost more than running a small query. Each part is added
        # to one statement only: the joins and conditions are copied once, here.)
        select = exp.select(*projections, copy=False).from_(self.source(), copy=False)
        for table_expr, on, kind in self.joins.values():
            select = select.join(table_expr.copy(), on=on.copy(), join_type=kind, copy=False)
        return select.where(and_all(self.where), copy=False)


class EventRows(Rows):
    """Events in the range (``e``)."""

    table = "events"
    alias = E

    def __init__(self, scan: Scan, filters: tuple[Filter, ...] | None = None) -> None:
        super().__init__(scan)
        self.where = [
            exp.EQ(this=column("site_id", E), expression=scan.site),
            exp.GTE(this=column("ts", E), expression=scan.lo_p),
            exp.LT(this=column("ts", E), expression=scan.hi_p),
        ]
        self.narrow(scan.query.filters if filters is None else filters)

    def value(self, dimension: Dimension) -> exp.Expr:
        if dimension.scope is Scope.EVENT:
            if dimension.is_property:
                return property_value(E, dimension.key)
            return column(dimension.column, E)
        if dimension.scope is Scope.VISITOR:
            return self.variant_value(dimension)
        if dimension.first_event_column:
            return self.first_event_value(dimension)
        on = and_all(
            [
                exp.EQ(this=column("site_id", S), expression=column("site_id", E)),
                exp.EQ(this=column("session_id", S), expression=column("session_id", E)),
            ]
        )
        self.join(S, sessions_in_range(self.scan).subquery(S, copy=False), on)
        return exp.Coalesce(this=column(dimension.column, S), expressions=[string("")])

    def narrow(self, filters: tuple[Filter, ...]) -> None:
        session_filters = tuple(f for f in filters if f.dimension.scope is Scope.SESSION)
        for f in filters:
            if f.dimension.scope is not Scope.SESSION:
                self.where.append(filter_condition(self.value(f.dimension), f, self.params))
        if session_filters:
            # Events whose session passes every session filter.
            sessions = SessionRows(self.scan, session_filters, started_in_range=False)
            self.where.append(
                subquery_in(column("session_id", E), sessions.select(column("session_id", S)))
            )


class PerSessionRows(Rows):
    """Events in the range that pass the filters, summed per (session, visitor) (``x``).

    Event metrics grouped by a session or visitor dimension are computed from these
    sums: every event of a session has its session's value, so grouping the (much fewer)
    sums gives the same numbers as grouping the events, with one join per session
    instead of one per event.
    """

    alias = "x"

    def __init__(self, scan: Scan) -> None:
        super().__init__(scan)
        events = EventRows(scan)
        keys = [column("site_id", E), column("session_id", E), column("visitor_id", E)]
        sums = [exp.alias_(c, f"c_{n}") for n, c in event_components(scan).items()]
        self.inner = events.select(*keys, *sums).group_by(*[k.copy() for k in keys], copy=False)

    def source(self) -> exp.Expr:
        return self.inner.subquery(self.alias)

    def value(self, dimension: Dimension) -> exp.Expr:
        if dimension.scope is Scope.VISITOR:
            return self.variant_value(dimension)
        if dimension.scope is Scope.EVENT:
            raise ValueError("event dimensions group events directly")
        if dimension.first_event_column:
            return self.first_event_value(dimension)
        on = and_all(
            [
                exp.EQ(this=column("site_id", S), expression=column("site_id", "x")),
                exp.EQ(this=column("session_id", S), expression=column("session_id", "x")),
            ]
        )
        self.join(S, sessions_in_range(self.scan).subquery(S, copy=False), on)
        return exp.Coalesce(this=column(dimension.column, S), expressions=[string("")])

    def components(self) -> dict[str, exp.Expr]:
        return {n: fragment("sum(_c)", _c=column(f"c_{n}", "x")) for n in EVENT_COMPONENTS}


class SessionRows(Rows):
    """Sessions that started in the range (``s``); with ``started_in_range=False``, every
    session that has time in the range (for narrowing events)."""

    table = "session_stats"
    alias = S

    def __init__(
        self,
        scan: Scan,
        filters: tuple[Filter, ...] | None = None,
        *,
        started_in_range: bool = True,
    ) -> None:
        super().__init__(scan)
        self.where = [exp.EQ(this=column("site_id", S), expression=scan.site)]
        if started_in_range:
            self.where += [
                exp.GTE(this=column("started_at", S), expression=scan.lo_p),
                exp.LT(this=column("started_at", S), expression=scan.hi_p),
            ]
        else:
            self.where += [
                exp.LT(this=column("started_at", S), expression=scan.hi_p),
                exp.GTE(this=column("ended_at", S), expression=scan.lo_p),
            ]
        self.narrow(scan.query.filters if filters is None else filters)

    def value(self, dimension: Dimension) -> exp.Expr:
        if dimension.scope is Scope.SESSION:
            if dimension.first_event_column:
                return self.first_event_value(dimension)
            return exp.Coalesce(this=column(dimension.column, S), expressions=[string("")])
        if dimension.scope is Scope.VISITOR:
            return self.variant_value(dimension)
        raise ValueError("event dimensions reach sessions through pairs_by")

    def narrow(self, filters: tuple[Filter, ...]) -> None:
        event_filters = tuple(f for f in filters if f.dimension.scope is Scope.EVENT)
        for f in filters:
            if f.dimension.scope is not Scope.EVENT:
                self.where.append(filter_condition(self.value(f.dimension), f, self.params))
        self.with_events: exp.Expr | None = None
        if event_filters:
            # Sessions with an event in the range that passes every event filter.
            events = EventRows(self.scan, event_filters)
            self.with_events = subquery_in(
                column("session_id", S), events.select(column("session_id", E))
            )
            self.where.append(self.with_events)

    def pairs_by(self, dimension: Dimension) -> exp.Expr:
        """Group sessions by an event dimension: join (session, value) pairs of the
        session's events in the range that pass the event filters (alias ``m``)."""
        event_filters = tuple(
            f for f in self.scan.query.filters if f.dimension.scope is Scope.EVENT
        )
        events = EventRows(self.scan, event_filters)
        pairs = events.select(
            column("session_id", E), exp.alias_(events.value(dimension), "value")
        ).distinct()
        on = exp.EQ(this=column("session_id", "m"), expression=column("session_id", S))
        self.join("m", pairs.subquery("m"), on, kind="inner")
        if self.with_events is not None:
            # The pairs already hold only sessions with such events.
            self.where = [w for w in self.where if w is not self.with_events]
        return column("value", "m")


def overlapping(scan: Scan, alias: str) -> exp.Expr:
    """Session rows (``alias``) of the site with time in the range."""
    return and_all(
        [
            exp.EQ(this=column("site_id", alias), expression=scan.site),
            exp.LT(this=column("started_at", alias), expression=scan.hi_p),
            exp.GTE(this=column("ended_at", alias), expression=scan.lo_p),
        ]
    )


def sessions_in_range(scan: Scan) -> exp.Select:
    """Session rows with time in the range: the only ones events in the range belong to
    (saying so lets the engine skip the others)."""
    return (
        exp.select(exp.Star()).from_(table_as("session_stats", "ss")).where(overlapping(scan, "ss"))
    )


def exposures(scan: Scan, experiment: str) -> exp.Select:
    """visitor_id -> the variant of their first exposure to ``experiment`` before the
    range's end."""
    variant = property_value(E, VARIANT_PROPERTY)
    first = first_by(variant, column("ts", E), column("event_id", E))
    return (
        exp.select(column("visitor_id", E), exp.alias_(first, "variant"))
        .from_(table_as("events", E))
        .where(
            and_all(
                [
                    exp.EQ(this=column("site_id", E), expression=scan.site),
                    exp.EQ(this=column("event_type", E), expression=string("experiment_exposure")),
                    exp.EQ(
                        this=property_value(E, EXPERIMENT_PROPERTY),
                        expression=scan.params.add(experiment),
                    ),
                    exp.LT(this=column("ts", E), expression=scan.hi_p),
                ]
            )
        )
        .group_by(column("visitor_id", E))
    )


def first_events(scan: Scan) -> exp.Select:
    """session_id -> region, city, UTM term and content of the session's first event
    (its event at ``started_at``; the smallest event id among several), for sessions with
    time in the range."""
    names = [d.first_event_column for d in DIMENSIONS.values() if d.first_event_column]
    sessions = sessions_in_range(scan)
    earliest = (
        exp.select(fragment("min(_t)", _t=column("started_at", "ss")))
        .from_(table_as("session_stats", "ss"))
        .where(overlapping(scan, "ss"))
    )
    projections: list[exp.Expr] = [column("session_id", "fs")]
    for name in names:
        first = first_by(column(name, "fe"), column("event_id", "fe"))
        projections.append(exp.alias_(first, name))
    on = and_all(
        [
            exp.EQ(this=column("site_id", "fe"), expression=column("site_id", "fs")),
            exp.EQ(this=column("session_id", "fe"), expression=column("session_id", "fs")),
            exp.EQ(this=column("ts", "fe"), expression=column("started_at", "fs")),
        ]
    )
    return (
        exp.select(*projections, copy=False)
        .from_(sessions.subquery("fs", copy=False), copy=False)
        .join(table_as("events", "fe"), on=on, join_type="inner", copy=False)
        .where(
            and_all(
                [
                    # Bounds that let the engine skip events (first events lie within).
                    exp.EQ(this=column("site_id", "fe"), expression=scan.site),
                    exp.GTE(this=column("ts", "fe"), expression=exp.Subquery(this=earliest)),
                    exp.LT(this=column("ts", "fe"), expression=scan.hi_p),
                ]
            ),
            copy=False,
        )
        .group_by(column("session_id", "fs"), copy=False)
    )


# -- metrics -----------------------------------------------------------------------------


def event_type_is(name: str) -> exp.Expr:
    return exp.EQ(this=column("event_type", E), expression=string(name))


#: Event metrics are built from these sums, so they can be summed again after a
#: pre-aggregation per session (see :func:`aggregate`).
EVENT_COMPONENTS = ("events", "page_views", "product_views", "affiliate_clicks", "revenue")


def event_components(scan: Scan) -> dict[str, exp.Expr]:
    """Each component as an aggregate over events (``e``)."""
    goal = is_in(column("event_type", E), scan.params, scan.goals)
    return {
        "events": count_all(),
        "page_views": count_if(event_type_is("page_view")),
        "product_views": count_if(event_type_is("product_view")),
        "affiliate_clicks": count_if(event_type_is("affiliate_click")),
        "revenue": fragment(
            "coalesce(sum(_r) FILTER (WHERE _g), 0)", _r=column("revenue", E), _g=goal
        ),
    }


def distinct_visitors(visitor: exp.Expr) -> exp.Expr:
    return fragment("count(DISTINCT _v) FILTER (WHERE _v <> '')", _v=visitor)


def event_metric_expr(
    metric: Metric, component: dict[str, exp.Expr], visitors: exp.Expr
) -> exp.Expr:
    """An event metric from its components (aggregates) and the visitors aggregate."""
    name = metric.name
    direct = {
        "events": "events",
        "pageViews": "page_views",
        "productViews": "product_views",
        "affiliateClicks": "affiliate_clicks",
        "revenue": "revenue",
    }
    if name in direct:
        return component[direct[name]]
    if name == "visitors":
        return visitors
    if name == "ctr":
        return ratio(component["affiliate_clicks"], component["product_views"], 100)
    raise ValueError(f"no SQL for metric {name}")


def session_metric_expr(metric: Metric) -> exp.Expr:
    """A session metric as an aggregate over session rows (``s``)."""
    name = metric.name
    sessions = count_all()
    if name == "sessions":
        return sessions
    if name == "bounceRate":
        return ratio(count_if(column("bounce", S)), sessions, 100)
    if name == "avgSessionDuration":
        return ratio(fragment("sum(_d)", _d=column("duration", S)), sessions)
    if name == "viewsPerSession":
        return ratio(fragment("sum(_d)", _d=column("page_views", S)), sessions)
    if name == "conversions":
        return count_if(column("converted", S))
    if name == "conversionRate":
        return ratio(count_if(column("converted", S)), sessions, 100)
    raise ValueError(f"no SQL for metric {name}")


def metric_expr(metric: Metric, scan: Scan) -> exp.Expr:
    """The aggregate that computes ``metric`` over its rows (``e`` or ``s``)."""
    if metric.table is Table.EVENTS:
        return event_metric_expr(
            metric, event_components(scan), distinct_visitors(column("visitor_id", E))
        )
    return session_metric_expr(metric)


# -- the aggregate statements -------------------------------------------------------------


@dataclass(frozen=True)
class Grouping:
    """Group rows by a time bucket or by a dimension (or not at all)."""

    buckets: Buckets | None = None
    dimension: Dimension | None = None
    #: Breakdowns: sort by this metric (descending unless ``ascending``), then by value.
    sort: Metric | None = None
    ascending: bool = False
    limit: int | None = None
    offset: int = 0


def aggregate(
    query: Query,
    table: Table,
    metrics: tuple[Metric, ...],
    lo: datetime,
    hi: datetime,
    grouping: Grouping | None = None,
    params: Params | None = None,
) -> tuple[exp.Select, Params]:
    """One statement computing ``metrics`` (all of ``table``) for the query, grouped
    (its parameters join ``params`` when given, to build a larger statement)."""
    grouping = grouping or Grouping()
    params = params if params is not None else Params()
    scan = Scan(query, params, lo, hi)
    rows: Rows
    key: exp.Expr | None = None
    expressions: list[exp.Expr] = []
    if table is Table.EVENTS:
        dimension = grouping.dimension
        if dimension is not None and dimension.scope is not Scope.EVENT:
            per_session = PerSessionRows(scan)
            rows = per_session
            key = per_session.value(dimension)
            components = per_session.components()
            visitors = distinct_visitors(column("visitor_id", "x"))
        else:
            rows = EventRows(scan)
            if grouping.buckets is not None:
                key = bucket_expr(column("ts", E), grouping.buckets, params)
            elif dimension is not None:
                key = rows.value(dimension)
            components = event_components(scan)
            visitors = distinct_visitors(column("visitor_id", E))
        expressions = [event_metric_expr(m, components, visitors) for m in metrics]
    else:
        session_rows = SessionRows(scan)
        rows = session_rows
        if grouping.buckets is not None:
            key = bucket_expr(column("started_at", S), grouping.buckets, params)
        elif grouping.dimension is not None:
            if grouping.dimension.scope is Scope.EVENT:
                key = session_rows.pairs_by(grouping.dimension)
            else:
                key = session_rows.value(grouping.dimension)
        expressions = [session_metric_expr(m) for m in metrics]
    projections: list[exp.Expr] = []
    if key is not None:
        projections.append(exp.alias_(key, "k"))
    projections += [
        exp.alias_(e, alias_of(m.name)) for m, e in zip(metrics, expressions, strict=True)
    ]
    select = rows.select(*projections)
    if key is not None:
        select = select.group_by(column("k"), copy=False)
    if grouping.sort is not None:
        select = select.order_by(
            exp.Ordered(this=column(alias_of(grouping.sort.name)), desc=not grouping.ascending),
            exp.Ordered(this=column("k")),
            copy=False,
        )
    if grouping.limit is not None:
        select = select.limit(number(grouping.limit), copy=False)
        if grouping.offset:
            select = select.offset(number(grouping.offset), copy=False)
    return select, params
