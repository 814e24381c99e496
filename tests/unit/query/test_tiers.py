"""The cold-tier pass: which archived files each events reference asks for."""

from __future__ import annotations

from datetime import date, datetime

import sqlglot
from sqlglot import exp

from sightline.query.explorer import events_page
from sightline.query.funnels import Funnel, funnel_statement, parse_steps
from sightline.query.model import Period, Query
from sightline.query.tiers import cold_select, with_cold

LO = datetime(2026, 1, 10)
HI = datetime(2026, 1, 12)


class Recorder:
    """A cold source that records what it is asked and answers one file per ask."""

    def __init__(self) -> None:
        self.asked: list[tuple[str | None, datetime | None, datetime | None]] = []

    def source(
        self, site_id: str | None, lo: datetime | None, hi: datetime | None
    ) -> exp.Expr | None:
        self.asked.append((site_id, lo, hi))
        return cold_select([f"/cold/{site_id}/{len(self.asked)}.parquet"])


def parse(sql: str) -> exp.Expr:
    return sqlglot.parse_one(sql, read="duckdb")


def test_bounds_come_from_the_references_own_conditions() -> None:
    tree = parse(
        "SELECT count(*) FROM events AS e WHERE e.site_id = :p0 AND e.ts >= :p1 AND e.ts < :p2"
    )
    cold = Recorder()
    out = with_cold(tree, {"p0": "s", "p1": LO, "p2": HI}, cold)
    assert cold.asked == [("s", LO, HI)]
    sql = out.sql("duckdb")
    assert "UNION ALL BY NAME" in sql
    assert "READ_PARQUET(['/cold/s/1.parquet'], union_by_name = TRUE)" in sql
    assert sql.endswith("AS e WHERE e.site_id = $p0 AND e.ts >= $p1 AND e.ts < $p2")
    # The tree given is left as it was.
    assert "READ_PARQUET" not in tree.sql("duckdb")


def test_flipped_and_inclusive_comparisons() -> None:
    tree = parse("SELECT 1 FROM events AS x WHERE :a <= x.ts AND x.ts <= :b AND :c = x.site_id")
    cold = Recorder()
    with_cold(tree, {"a": LO, "b": HI, "c": "s"}, cold)
    site, lo, hi = cold.asked[0]
    assert (site, lo) == ("s", LO)
    assert hi is not None and hi > HI  # inclusive: the bound's own instant is wanted


def test_missing_bounds_are_unbounded_and_other_tables_are_left_alone() -> None:
    tree = parse(
        "SELECT 1 FROM session_stats AS s JOIN events AS fe ON fe.session_id = s.session_id "
        "WHERE fe.ts < :hi AND s.site_id = :site"
    )
    cold = Recorder()
    out = with_cold(tree, {"hi": HI, "site": "s"}, cold)
    assert cold.asked == [(None, None, HI)]
    assert "session_stats AS s" in out.sql("duckdb")


def test_no_events_reference_means_no_question() -> None:
    cold = Recorder()
    tree = parse("SELECT count(*) FROM session_stats WHERE site_id = :p0")
    assert with_cold(tree, {"p0": "s"}, cold) is tree
    assert cold.asked == []


def test_an_empty_answer_keeps_the_warm_table() -> None:
    class Nothing:
        def source(self, *args: object) -> None:
            return None

    tree = parse("SELECT 1 FROM events AS e WHERE e.ts >= :p0")
    assert "READ_PARQUET" not in with_cold(tree, {"p0": LO}, Nothing()).sql("duckdb")


def test_every_reference_of_a_real_statement_is_bounded() -> None:
    query = Query("s", Period(date(2026, 1, 10), date(2026, 1, 11), "UTC"))
    select, params = funnel_statement(
        query, Funnel(parse_steps(["page_view", "signup"]), 3600), LO, HI
    )
    cold = Recorder()
    with_cold(select, params.values, cold)
    assert cold.asked and all(ask == ("s", LO, HI) for ask in cold.asked)

    page, values = events_page(query, LO, HI, limit=10, descending=True)
    cold = Recorder()
    with_cold(page, values.values, cold)
    assert cold.asked == [("s", LO, HI)]
