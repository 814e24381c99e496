"""The query model renders to DuckDB and to PostgreSQL from the same trees, with every
caller-supplied value bound as a parameter."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from sightline.query.calendar import Buckets, utc_bounds
from sightline.query.explorer import events_page, sessions_page
from sightline.query.exports import chunk_statements, day_counts
from sightline.query.funnels import Funnel, funnel_statement, parse_steps
from sightline.query.model import (
    METRICS,
    Granularity,
    Period,
    Query,
    Table,
    make_filter,
    parse_dimension,
)
from sightline.query.planner import Grouping, aggregate
from sightline.query.products import top_products_statement
from sightline.query.retention import retention_statements
from sightline.query.sql import Params, render
from tests.support.stores import WarmStore

HOSTILE = "x'); DROP TABLE events; --"
PERIOD = Period(date(2026, 3, 27), date(2026, 4, 2), "Europe/Berlin")
FILTERS = (
    make_filter(parse_dimension("page"), "contains", [HOSTILE]),
    make_filter(parse_dimension("channel"), "is_not", [HOSTILE, "direct"]),
    make_filter(parse_dimension("prop:plan"), "matches", ["^pro"]),
    make_filter(parse_dimension("variant:cta"), "is", ["B"]),
    make_filter(parse_dimension("utmTerm"), "is", [HOSTILE]),
)
QUERY = Query("site-1", PERIOD, FILTERS)


def statements() -> list[tuple[str, exp.Expr, Params]]:
    lo, hi = utc_bounds(PERIOD)
    out: list[tuple[str, exp.Expr, Params]] = []
    metrics = tuple(METRICS.values())
    for table in Table:
        wanted = tuple(m for m in metrics if m.table is table)
        for name, grouping in (
            ("totals", Grouping()),
            ("hour", Grouping(buckets=Buckets.of(PERIOD, Granularity.HOUR))),
            ("month", Grouping(buckets=Buckets.of(PERIOD, Granularity.MONTH))),
            ("page", Grouping(dimension=parse_dimension("page"), sort=wanted[0], limit=10)),
            ("channel", Grouping(dimension=parse_dimension("channel"), sort=wanted[0], limit=5)),
            ("variant", Grouping(dimension=parse_dimension("variant:layout"), sort=wanted[0])),
        ):
            select, params = aggregate(QUERY, table, wanted, lo, hi, grouping)
            out.append((f"{table.value}-{name}", select, params))
    steps = parse_steps(["page_view;page:is:/x", "product_view", "affiliate_click"])
    select, params = funnel_statement(
        QUERY, Funnel(steps, 3600, parse_dimension("country")), lo, hi
    )
    out.append(("funnel", select, params))
    sizes, returns, params = retention_statements(
        QUERY, Buckets.of(PERIOD, Granularity.WEEK), "page_view"
    )
    out += [("retention-sizes", sizes, params), ("retention-returns", returns, params)]
    select, params = top_products_statement(QUERY, lo, hi, "ctr", False, 10)
    out.append(("products", select, params))
    select, params = events_page(QUERY, lo, hi, limit=10, visitor_id=HOSTILE)
    out.append(("events", select, params))
    select, params = sessions_page(QUERY, lo, hi, limit=10)
    out.append(("sessions", select, params))
    return out


STATEMENTS = statements()


@pytest.mark.parametrize(("name", "tree", "params"), STATEMENTS, ids=[s[0] for s in STATEMENTS])
def test_the_same_tree_renders_for_duckdb_and_postgres(
    name: str, tree: exp.Expr, params: Params
) -> None:
    duck = render(tree, "duckdb")
    postgres = render(tree, "postgres")
    # Values are parameters in both: $p0 for DuckDB, %(p0)s for psycopg.
    assert HOSTILE not in duck and HOSTILE not in postgres
    assert set(re.findall(r"\$(p\d+)", duck)) <= set(params.values)
    assert set(re.findall(r"%\((p\d+)\)s", postgres)) == set(re.findall(r"\$(p\d+)", duck))
    assert "$p" not in postgres
    # PostgreSQL spellings, not DuckDB's.
    assert "//" not in postgres and "EPOCH(" not in postgres and "->> '$." not in postgres
    reparsed = sqlglot.parse_one(re.sub(r"%\((p\d+)\)s", r":\1", postgres), read="postgres")
    assert isinstance(reparsed, exp.Query)


def test_statements_run_on_an_empty_store(tmp_path: Path, store_engine: WarmStore) -> None:
    store = store_engine.open(tmp_path)
    dialect = store.engine
    for _, tree, params in STATEMENTS:
        assert isinstance(store.query(render(tree, dialect), params.values), list)
    select, params = day_counts(QUERY)
    assert store.query(render(select, dialect), params.values) == []
    days = {(PERIOD.start - date(1970, 1, 1)).days + i: 200_000 for i in range(PERIOD.days)}
    chunks = list(chunk_statements(QUERY, dialect, days))
    assert len(chunks) == 4  # 7 days of 200k rows, two days per statement
    for sql, values in chunks:
        assert store.query(sql, values) == []
    store.close()


def test_property_names_are_validated_before_they_reach_a_json_path() -> None:
    for bad in ("a'b", 'a"b', "a b", "a\\b", "", "x" * 65, "a;b", "a)b", "$.a[0]"):
        with pytest.raises(ValueError, match="prop:"):
            parse_dimension("prop:" + bad)
    assert parse_dimension("prop:$ipPrefix").key == "$ipPrefix"


def test_unknown_dialects_are_refused() -> None:
    with pytest.raises(ValueError, match="printer"):
        render(exp.select("1"), "mysql")


def test_values_go_through_parameters_untouched(tmp_path: Path, store_engine: WarmStore) -> None:
    store = store_engine.open(tmp_path)
    params = Params()
    tree = exp.select(exp.alias_(params.add(HOSTILE), "v"))
    assert store.query(render(tree, store.engine), params.values) == [(HOSTILE,)]
    store.close()


def test_duckdb_speed_ups_are_printing_passes() -> None:
    name, tree, _ = next(s for s in STATEMENTS if s[0] == "funnel")
    assert "ARG_MIN(" in render(tree, "duckdb") and "ARRAY_AGG(" not in render(tree, "duckdb")
    assert "ARRAY_AGG(" in render(tree, "postgres") and "ARG_MIN" not in render(tree, "postgres")
    # The tree itself is untouched by printing.
    assert "ARRAY_AGG(" in tree.sql()
    del name
