"""Funnels: how many visitors go through ordered steps within a conversion window.

Exactly (docs/metrics.md, "Funnels"):

- Only events in the date range that pass the query's filters count; a step is an event
  type plus optional filters on event dimensions (page, property, product…).
- A visitor *enters* at their first event of step 1 in the range (the anchor, time t1).
- Step k is reached at the visitor's earliest event of step k strictly later than the
  time step k-1 was reached, and no later than t1 + window. Later step-1 events never
  start a second attempt (first occurrence).
- Per step: visitors who reached it; conversion from step 1 and from the previous step
  (%); drop-off from the previous step (visitors and %); the median time between
  reaching the previous step and this one (of whole milliseconds, the mean of the two
  middle values for an even count), in seconds.
- Broken down by a dimension, a visitor counts under the value of their anchor event
  (ties on time broken by event id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlglot import exp

from sightline.events.types import is_valid_event_type
from sightline.query.model import Dimension, Filter, Query, QueryError, Scope
from sightline.query.params import parse_filter, split_values
from sightline.query.planner import (
    E,
    EventRows,
    Rows,
    S,
    Scan,
    filter_condition,
    sessions_in_range,
    table_as,
)
from sightline.query.sql import Params, and_all, column, first_by, fragment

MIN_STEPS = 2
MAX_STEPS = 10


@dataclass(frozen=True, slots=True)
class Step:
    event_type: str
    filters: tuple[Filter, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {
            "eventType": self.event_type,
            "filters": [
                {"dimension": f.dimension.name, "op": f.op.value, "values": list(f.values)}
                for f in self.filters
            ],
        }


def parse_step(text: str) -> Step:
    """``<event type>[;<filter>…]``, e.g. ``page_view;page:is:/pricing`` (``\\;`` for a
    semicolon inside a filter)."""
    parts = split_values(text, ";", keep_escapes=True)
    event_type = parts[0].strip()
    if not is_valid_event_type(event_type):
        raise QueryError("invalid_step", f"not an event type: {event_type[:64]!r}")
    filters = []
    for part in parts[1:]:
        f = parse_filter(part)
        if f.dimension.scope is not Scope.EVENT:
            raise QueryError(
                "invalid_step",
                f"step filters are on event dimensions (page, prop:…); not {f.dimension.name}",
            )
        filters.append(f)
    return Step(event_type, tuple(filters))


def parse_steps(texts: list[str]) -> tuple[Step, ...]:
    if not MIN_STEPS <= len(texts) <= MAX_STEPS:
        raise QueryError(
            "invalid_step", f"a funnel has {MIN_STEPS} to {MAX_STEPS} steps (repeat step=…)"
        )
    return tuple(parse_step(t) for t in texts)


@dataclass(frozen=True, slots=True)
class Funnel:
    steps: tuple[Step, ...]
    #: Conversion window in seconds, counted from the anchor.
    window: int
    dimension: Dimension | None = None


def funnel_statement(
    query: Query, funnel: Funnel, lo: datetime, hi: datetime
) -> tuple[exp.Select, Params]:
    """Rows (value, entered, [reached_k, median_seconds_k] for k = 2…n)."""
    params = Params()
    scan = Scan(query, params, lo, hi)
    dimension = funnel.dimension
    # The anchor's value: an event dimension is read from the anchor event itself; a
    # session one from the anchor's session and a visitor one from the visitor, once the
    # anchor is chosen (one join per visitor, not per event).
    carried: str | None = None
    if dimension is not None:
        carried = "value" if dimension.scope is Scope.EVENT else "sid"

    def step_events(index: int) -> exp.Select:
        """The visitors' events of one step: in the range, passing every filter."""
        step = funnel.steps[index]
        rows = EventRows(scan)
        rows.where.append(fragment("_v <> ''", _v=column("visitor_id", E)))
        rows.where.append(
            exp.EQ(this=column("event_type", E), expression=params.add(step.event_type))
        )
        rows.where += [filter_condition(rows.value(f.dimension), f, params) for f in step.filters]
        columns = [
            exp.alias_(column("visitor_id", E), "visitor"),
            exp.alias_(column("ts", E), "ts"),
        ]
        if index == 0 and dimension is not None and carried is not None:
            value = rows.value(dimension) if carried == "value" else column("session_id", E)
            columns += [exp.alias_(value, carried), exp.alias_(column("event_id", E), "id")]
        return rows.select(*columns)

    anchor_columns: list[exp.Expr] = [
        column("visitor", "f"),
        exp.alias_(fragment("min(_t)", _t=column("ts", "f")), "t1"),
        exp.alias_(fragment("min(_t)", _t=column("ts", "f")), "t"),
    ]
    if carried is not None:
        first = first_by(column(carried, "f"), column("ts", "f"), column("id", "f"))
        anchor_columns.append(exp.alias_(first, carried))
    anchor = (
        exp.select(*anchor_columns)
        .from_(step_events(0).subquery("f"))
        .group_by(column("visitor", "f"))
    )
    window = exp.Interval(this=exp.Literal.string(str(funnel.window)), unit=exp.Var(this="SECOND"))
    statement = exp.select().with_("a1", as_=anchor)
    for k in range(2, len(funnel.steps) + 1):
        previous = f"a{k - 1}"
        reached = (
            exp.select(
                column("visitor", "p"),
                column("t1", "p"),
                exp.alias_(fragment("min(_t)", _t=column("ts", "f")), "t"),
            )
            .from_(table_as(previous, "p"))
            .join(
                step_events(k - 1).subquery("f"),
                on=and_all(
                    [
                        exp.EQ(this=column("visitor", "f"), expression=column("visitor", "p")),
                        exp.GT(this=column("ts", "f"), expression=column("t", "p")),
                        exp.LTE(
                            this=column("ts", "f"),
                            expression=fragment("_a + _w", _a=column("t1", "p"), _w=window),
                        ),
                    ]
                ),
                join_type="inner",
            )
            .group_by(column("visitor", "p"), column("t1", "p"))
        )
        statement = statement.with_(f"a{k}", as_=reached)

    anchors = AnchorRows(scan)
    value: exp.Expr = exp.Literal.string("")
    if dimension is not None:
        value = column("value", "a1") if carried == "value" else anchors.value(dimension)
    outputs: list[exp.Expr] = [
        exp.alias_(value, "value"),
        exp.alias_(fragment("count(*)"), "entered"),
    ]
    for k in range(2, len(funnel.steps) + 1):
        this, before = f"a{k}", f"a{k - 1}"
        outputs.append(exp.alias_(fragment("count(_t)", _t=column("t", this)), f"reached_{k}"))
        outputs.append(
            exp.alias_(
                fragment(
                    "median(date_diff('millisecond', _a, _b))",
                    _b=column("t", this),
                    _a=column("t", before),
                ),
                f"median_{k}",
            )
        )
    for k in range(2, len(funnel.steps) + 1):
        on = exp.EQ(this=column("visitor", f"a{k}"), expression=column("visitor", "a1"))
        anchors.join(f"a{k}", table_as(f"a{k}", f"a{k}"), on)
    final = anchors.select(*outputs)
    final.set("with_", statement.args.get("with_"))
    final = final.group_by(column("value")).order_by(
        exp.Ordered(this=column("entered"), desc=True), exp.Ordered(this=column("value"))
    )
    return final, params


class AnchorRows(Rows):
    """Each visitor's anchor (``a1``: visitor, t1, and the anchor's session ``sid``)."""

    table = "a1"
    alias = "a1"

    def session_column(self) -> exp.Expr:
        return column("sid", self.alias)

    def visitor_column(self) -> exp.Expr:
        return column("visitor", self.alias)

    def value(self, dimension: Dimension) -> exp.Expr:
        if dimension.scope is Scope.VISITOR:
            return self.variant_value(dimension)
        if dimension.first_event_column:
            return self.first_event_value(dimension)
        on = exp.EQ(this=column("session_id", S), expression=self.session_column())
        self.join(S, sessions_in_range(self.scan).subquery(S), on)
        return exp.Coalesce(this=column(dimension.column, S), expressions=[exp.Literal.string("")])


def shape_steps(
    funnel: Funnel, entered: int, reached: list[int], medians: list[float | None]
) -> list[dict[str, Any]]:
    """Per-step figures from the counts (reached[k] for steps 2…n)."""
    counts = [entered, *reached]
    out = []
    for index, step in enumerate(funnel.steps):
        visitors = counts[index]
        previous = counts[index - 1] if index else visitors
        entry: dict[str, Any] = {
            "step": index + 1,
            **step.describe(),
            "visitors": visitors,
            "conversionRate": round(100.0 * visitors / entered, 2) if entered else 0.0,
            "stepConversionRate": round(100.0 * visitors / previous, 2) if previous else 0.0,
            "dropOff": previous - visitors,
            "dropOffRate": round(100.0 * (previous - visitors) / previous, 2) if previous else 0.0,
            "medianSecondsFromPrevious": None,
        }
        if index:
            median = medians[index - 1]
            entry["medianSecondsFromPrevious"] = None if median is None else median / 1000
        out.append(entry)
    return out
