"""The query engine: runs model queries on a store and shapes the answers.

It renders each statement for the store's engine (``store.engine``: ``duckdb`` or
``postgres``), so the same queries serve every backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pyarrow as pa
from sqlglot import exp

from sightline.query.calendar import Buckets, utc_bounds
from sightline.query.explorer import (
    EVENT_FIELDS,
    SESSION_FIELDS,
    cursor_of,
    events_page,
    row_json,
    sessions_page,
)
from sightline.query.exports import Format, export_events
from sightline.query.funnels import Funnel, funnel_statement, shape_steps
from sightline.query.model import (
    METRICS,
    Dimension,
    Filter,
    Granularity,
    Metric,
    Op,
    Query,
    QueryError,
    Scope,
    Table,
)
from sightline.query.planner import Grouping, aggregate
from sightline.query.products import product_rows, top_products_statement
from sightline.query.retention import RetentionPeriod, retention_statements
from sightline.query.sql import Params, fragment, render
from sightline.query.tiers import ColdSource, with_cold

#: Most values the top-by-visitors pass counts one by one before sorting all in SQL.
PRUNE_LIMIT = 500


class Store(Protocol):
    """What the engine needs from a warm store."""

    engine: str

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]: ...

    def stream(
        self, sql: str, params: dict[str, Any], batch_rows: int
    ) -> Iterator[pa.RecordBatch]: ...


def format_value(metric: Metric, raw: Any) -> int | float:
    if metric.kind in ("count", "cents"):
        return int(raw or 0)
    return round(float(raw or 0.0), 2)


def change(current: int | float, previous: int | float) -> float | None:
    """Relative change in percent (one decimal); None when there was nothing before."""
    if not previous:
        return None
    return round(100.0 * (current - previous) / previous, 1)


@dataclass
class QueryEngine:
    store: Store
    #: Archived events, read with the warm ones (DuckDB store only).
    cold: ColdSource | None = None

    @property
    def dialect(self) -> str:
        return getattr(self.store, "engine", "duckdb")

    def run(self, select: exp.Expr, params: Params) -> list[tuple[Any, ...]]:
        if self.cold is not None:
            select = with_cold(select, params.values, self.cold)
        return self.store.query(render(select, self.dialect), params.values)

    def check_patterns(self, filters: tuple[Filter, ...]) -> None:
        """Ask the store's own regular-expression engine whether it accepts every
        ``matches`` pattern (RE2 and PostgreSQL refuse some that Python takes), so a
        refused pattern is a 400, not a failed query."""
        for f in filters:
            if f.op is not Op.MATCHES:
                continue
            for pattern in f.values:
                params = Params()
                probe = exp.select(fragment("regexp_matches('', _p)", _p=params.add(pattern)))
                try:
                    self.run(probe, params)
                except Exception as exc:  # the engine's own error type
                    raise QueryError(
                        "invalid_filter", f"the store cannot use the pattern {pattern[:64]!r}"
                    ) from exc

    # -- aggregates ----------------------------------------------------------------------

    def _by_table(
        self,
        query: Query,
        metrics: tuple[Metric, ...],
        grouping: Grouping | None = None,
    ) -> dict[Any, dict[str, int | float]]:
        """key (None without grouping) -> metric name -> value, for both tables."""
        grouping = grouping or Grouping()
        lo, hi = utc_bounds(query.period)
        out: dict[Any, dict[str, int | float]] = {}
        for table in (Table.EVENTS, Table.SESSIONS):
            wanted = tuple(m for m in metrics if m.table is table)
            if not wanted:
                continue
            select, params = aggregate(query, table, wanted, lo, hi, grouping)
            keyed = grouping.buckets is not None or grouping.dimension is not None
            for row in self.run(select, params):
                key = row[0] if keyed else None
                values = row[1:] if keyed else row
                slot = out.setdefault(key, {})
                for metric, raw in zip(wanted, values, strict=True):
                    slot[metric.name] = format_value(metric, raw)
        return out

    def totals(self, query: Query, metrics: tuple[Metric, ...]) -> dict[str, int | float]:
        values = self._by_table(query, metrics).get(None, {})
        return {m.name: values.get(m.name, format_value(m, 0)) for m in metrics}

    def timeseries(
        self, query: Query, metrics: tuple[Metric, ...], granularity: Granularity
    ) -> list[dict[str, Any]]:
        """One entry per bucket of the period (zeros where nothing happened)."""
        buckets = Buckets.of(query.period, granularity)
        found = self._by_table(query, metrics, Grouping(buckets=buckets))
        series = []
        for key in buckets.all_keys():
            values = found.get(key, {})
            series.append(
                {
                    "bucket": buckets.label(key),
                    **{m.name: values.get(m.name, format_value(m, 0)) for m in metrics},
                }
            )
        return series

    def breakdown(
        self,
        query: Query,
        metrics: tuple[Metric, ...],
        dimension: Dimension,
        sort: Metric,
        ascending: bool = False,
        limit: int = 10,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Rows ``{"value", <metrics>}`` sorted by ``sort`` then value, and whether more
        rows follow."""
        first = tuple(m for m in metrics if m.table is sort.table)
        if sort.name == "visitors" and not ascending and dimension.scope is Scope.EVENT:
            rows, more = self._top_by_visitors(query, first, dimension, limit, offset)
        else:
            rows, more = self._top_by_sql(query, first, dimension, sort, ascending, limit, offset)
        rest = tuple(m for m in metrics if m.table is not sort.table)
        if rest and rows:
            others = self.values_for(query, rest, dimension, [r["value"] for r in rows])
            for entry in rows:
                values = others.get(entry["value"], {})
                for metric in rest:
                    entry[metric.name] = values.get(metric.name, format_value(metric, 0))
        ordered = [{"value": r["value"], **{m.name: r[m.name] for m in metrics}} for r in rows]
        return ordered, more

    def _top_by_sql(
        self,
        query: Query,
        metrics: tuple[Metric, ...],
        dimension: Dimension,
        sort: Metric,
        ascending: bool,
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], bool]:
        lo, hi = utc_bounds(query.period)
        grouping = Grouping(
            dimension=dimension, sort=sort, ascending=ascending, limit=limit + 1, offset=offset
        )
        select, params = aggregate(query, sort.table, metrics, lo, hi, grouping)
        found = self.run(select, params)
        rows: list[dict[str, Any]] = []
        for row in found[:limit]:
            entry: dict[str, Any] = {"value": "" if row[0] is None else str(row[0])}
            for metric, raw in zip(metrics, row[1:], strict=True):
                entry[metric.name] = format_value(metric, raw)
            rows.append(entry)
        return rows, len(found) > limit

    def _top_by_visitors(
        self,
        query: Query,
        metrics: tuple[Metric, ...],
        dimension: Dimension,
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], bool]:
        """The top values by visitors, counting distinct visitors only for values that
        can be in the top: a value has at most as many visitors as events, so once the
        ``offset + limit + 1``-th best of the values counted has T visitors, no value with
        fewer than T events can rank higher. Same rows as sorting everything in SQL."""
        events = METRICS["events"]
        counts = self._by_table(query, (events,), Grouping(dimension=dimension))
        by_events = sorted(
            (("" if k is None else str(k), int(v["events"])) for k, v in counts.items()),
            key=lambda item: (-item[1], item[0]),
        )
        need = offset + limit + 1
        chosen = [value for value, _ in by_events[: max(2 * need, need + 10)]]
        exact: dict[str, dict[str, int | float]] = {}
        while True:
            if len(exact) + len(chosen) > PRUNE_LIMIT:
                # Too many values could rank: sorting them all in SQL is cheaper.
                return self._top_by_sql(
                    query, metrics, dimension, METRICS["visitors"], False, limit, offset
                )
            missing = [v for v in chosen if v not in exact]
            exact.update(self.values_for(query, metrics, dimension, missing))
            ranked = sorted(exact, key=lambda v: (-exact[v]["visitors"], v))
            threshold = exact[ranked[need - 1]]["visitors"] if len(ranked) >= need else 0
            more_values = [v for v, n in by_events if v not in exact and n >= threshold]
            if not more_values:
                break
            chosen = more_values
        rows = [{"value": v, **exact[v]} for v in ranked[offset : offset + limit]]
        return rows, len(ranked) > offset + limit

    def values_for(
        self,
        query: Query,
        metrics: tuple[Metric, ...],
        dimension: Dimension,
        values: list[str],
    ) -> dict[str, dict[str, int | float]]:
        """``metrics`` for these values of ``dimension`` only."""
        if not values:
            return {}
        narrowed = query.with_filters((*query.filters, Filter(dimension, Op.IS, tuple(values))))
        found = self._by_table(narrowed, metrics, Grouping(dimension=dimension))
        return {"" if k is None else str(k): v for k, v in found.items()}

    # -- funnels and retention -------------------------------------------------------------

    def funnel(self, query: Query, funnel: Funnel) -> dict[str, Any]:
        lo, hi = utc_bounds(query.period)

        def groups(f: Funnel) -> list[tuple[str, list[dict[str, Any]]]]:
            select, params = funnel_statement(query, f, lo, hi)
            out = []
            n = len(f.steps)
            for row in self.run(select, params):
                reached = [int(row[2 + 2 * i]) for i in range(n - 1)]
                medians = [
                    None if row[3 + 2 * i] is None else float(row[3 + 2 * i]) for i in range(n - 1)
                ]
                out.append(
                    (
                        "" if row[0] is None else str(row[0]),
                        shape_steps(f, int(row[1]), reached, medians),
                    )
                )
            return out

        overall = Funnel(funnel.steps, funnel.window)
        found = groups(overall)
        answer: dict[str, Any] = {
            "window": funnel.window,
            "steps": found[0][1]
            if found
            else shape_steps(
                overall, 0, [0] * (len(funnel.steps) - 1), [None] * (len(funnel.steps) - 1)
            ),
        }
        if funnel.dimension is not None:
            answer["breakdown"] = {
                "dimension": funnel.dimension.name,
                "groups": [{"value": value, "steps": steps} for value, steps in groups(funnel)],
            }
        return answer

    def retention(
        self, query: Query, period: RetentionPeriod, return_event: str | None
    ) -> dict[str, Any]:
        buckets = Buckets.of(query.period, period.granularity)
        sizes_sql, returns_sql, params = retention_statements(query, buckets, return_event)
        sizes = {int(k): int(n) for k, n in self.run(sizes_sql, params)}
        returns: dict[tuple[int, int], int] = {
            (int(k), int(n)): int(v) for k, n, v in self.run(returns_sql, params)
        }
        last = buckets.all_keys()[-1]
        cohorts = []
        for key in buckets.all_keys():
            size = sizes.get(key, 0)
            cohorts.append(
                {
                    "cohort": buckets.label(key),
                    "visitors": size,
                    "periods": [
                        {
                            "period": n,
                            "visitors": returns.get((key, n), 0),
                            "rate": round(100.0 * returns.get((key, n), 0) / size, 2)
                            if size
                            else 0.0,
                        }
                        for n in range(last - key + 1)
                    ],
                }
            )
        return {"period": period.value, "returnEvent": return_event, "cohorts": cohorts}

    # -- rows --------------------------------------------------------------------------------

    def top_products(
        self, query: Query, sort: str, ascending: bool, limit: int
    ) -> list[dict[str, Any]]:
        lo, hi = utc_bounds(query.period)
        select, params = top_products_statement(query, lo, hi, sort, ascending, limit)
        return product_rows(self.run(select, params))

    def events(
        self,
        query: Query,
        *,
        limit: int,
        descending: bool = True,
        cursor: tuple[datetime, str] | None = None,
        visitor_id: str | None = None,
        session_id: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        lo, hi = utc_bounds(query.period)
        select, params = events_page(
            query,
            lo,
            hi,
            limit=limit,
            descending=descending,
            cursor=cursor,
            visitor_id=visitor_id,
            session_id=session_id,
        )
        found = self.run(select, params)
        more = len(found) > limit
        found = found[:limit]
        following = (
            cursor_of(EVENT_FIELDS, found[-1], "timestamp", "eventId") if more and found else None
        )
        return [row_json(EVENT_FIELDS, row) for row in found], following

    def sessions(
        self,
        query: Query,
        *,
        limit: int,
        cursor: tuple[datetime, str] | None = None,
        visitor_id: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        lo, hi = utc_bounds(query.period)
        select, params = sessions_page(
            query, lo, hi, limit=limit, cursor=cursor, visitor_id=visitor_id
        )
        found = self.run(select, params)
        more = len(found) > limit
        found = found[:limit]
        following = (
            cursor_of(SESSION_FIELDS, found[-1], "startedAt", "sessionId")
            if more and found
            else None
        )
        return [row_json(SESSION_FIELDS, row) for row in found], following

    def export(self, query: Query, fmt: Format) -> Iterator[bytes]:
        return export_events(self.store, query, fmt, self.cold)
