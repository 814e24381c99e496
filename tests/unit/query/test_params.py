"""Request parameters: the filter syntax and every way a parameter can be wrong."""

from __future__ import annotations

from datetime import date

import pytest
from starlette.datastructures import QueryParams

from sightline.query.funnels import parse_step
from sightline.query.model import (
    Op,
    QueryError,
    Scope,
    make_filter,
    parse_dimension,
    parse_metrics,
)
from sightline.query.params import (
    parse_duration,
    parse_filter,
    parse_filters,
    parse_granularity,
    parse_int,
    parse_period,
    parse_sort,
    split_values,
)


def test_filters_name_a_dimension_an_operator_and_values() -> None:
    f = parse_filter("country:is:DE,FR")
    assert (f.dimension.name, f.op, f.values) == ("country", Op.IS, ("DE", "FR"))
    f = parse_filter("prop:plan:is_not:free")
    assert (f.dimension.key, f.dimension.scope, f.op, f.values) == (
        "plan",
        Scope.EVENT,
        Op.IS_NOT,
        ("free",),
    )
    f = parse_filter("variant:checkout-cta:is:B")
    assert (f.dimension.key, f.dimension.scope) == ("checkout-cta", Scope.VISITOR)
    f = parse_filter(r"page:contains:/a\,b,/c:d")
    assert f.values == ("/a,b", "/c:d")
    assert parse_filter("utmSource:is:").values == ("",)
    assert parse_filter("entryPage:matches:^/p/").dimension.scope is Scope.SESSION


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("country", "invalid_filter"),
        ("country:is", "invalid_filter"),
        ("nope:is:x", "invalid_dimension"),
        ("country:like:x", "invalid_filter"),
        ("prop:a'b:is:x", "invalid_dimension"),
        ("prop:plan:is", "invalid_filter"),
        ("page:matches:(", "invalid_filter"),
        ("page:matches:(a)\\1", "invalid_filter"),
        ("page:matches:" + "a" * 300, "invalid_filter"),
        ("page:is:" + ",".join(str(i) for i in range(101)), "invalid_filter"),
        ("page:is:a\x00b", "invalid_filter"),
    ],
)
def test_malformed_filters_are_refused_with_a_code(text: str, code: str) -> None:
    with pytest.raises(QueryError) as error:
        parse_filter(text)
    assert error.value.code == code


@pytest.mark.parametrize("pattern", ["\\bpro\\b", "x\\B", "/p\\Z", "(?i:/P)", "^/(?s-i:x)"])
def test_patterns_the_stores_read_differently_are_refused(pattern: str) -> None:
    with pytest.raises(QueryError, match="read them differently") as error:
        make_filter(parse_dimension("page"), "matches", [pattern])
    assert error.value.code == "invalid_filter"


@pytest.mark.parametrize(
    "pattern", ["\\\\b", "^/p[0-9]+$", "(?i)^/blog", "(?:a|b)\\.html", "\\d{2}"]
)
def test_patterns_both_stores_read_alike_are_taken(pattern: str) -> None:
    assert make_filter(parse_dimension("page"), "matches", [pattern]).values == (pattern,)


def test_at_most_twenty_filters() -> None:
    params = QueryParams([("filter", "country:is:DE")] * 21)
    with pytest.raises(QueryError, match="at most 20"):
        parse_filters(params)


def test_escapes() -> None:
    assert split_values(r"a\,b,c\\,d") == ["a,b", "c\\", "d"]
    assert split_values(r"^/p/\d+$,x") == [r"^/p/\d+$", "x"]
    assert split_values(r"x;page:is:a\,b\;c", ";", keep_escapes=True) == ["x", r"page:is:a\,b;c"]
    step = parse_step(r"page_view;page:is:/a\,b,/c;prop:plan:is:pro")
    assert step.event_type == "page_view"
    assert [f.values for f in step.filters] == [("/a,b", "/c"), ("pro",)]
    with pytest.raises(QueryError):
        parse_step("not a type;page:is:/")
    with pytest.raises(QueryError, match="event dimensions"):
        parse_step("page_view;channel:is:direct")


def test_dates_granularity_numbers_and_durations() -> None:
    p = QueryParams({"startDate": "2026-03-01", "endDate": "2026-03-31"})
    assert parse_period(p, "UTC").days == 31
    assert parse_period(QueryParams({}), "UTC", today=date(2026, 5, 30)).start == date(2026, 5, 1)
    for bad in (
        {"startDate": "2026-02-30"},
        {"startDate": "2026-03-02", "endDate": "2026-03-01"},
        {"startDate": "1900-01-01", "endDate": "2026-01-01"},
        {"endDate": "'; --"},
    ):
        with pytest.raises(QueryError):
            parse_period(QueryParams(bad), "UTC")
    assert parse_granularity(QueryParams({"granularity": "week"})).value == "week"
    with pytest.raises(QueryError):
        parse_granularity(QueryParams({"granularity": "year"}))
    assert parse_int(QueryParams({"limit": "5"}), "limit", 10, 1, 100) == 5
    for bad in ("0", "101", "x", "1e3"):
        with pytest.raises(QueryError):
            parse_int(QueryParams({"limit": bad}), "limit", 10, 1, 100)
    assert parse_duration("30m", "window", 86_400) == 1800
    assert parse_duration("90", "window", 86_400) == 90
    for bad in ("0", "2d", "-1h", "1.5h", "h", "99999999999"):
        with pytest.raises(QueryError):
            parse_duration(bad, "window", 86_400)


def test_metrics_and_sort() -> None:
    metrics = parse_metrics(["visitors", "bounceRate", "visitors"])
    assert [m.name for m in metrics] == ["visitors", "bounceRate"]
    assert parse_sort(QueryParams({"sort": "bounceRate:asc"}), metrics) == (metrics[1], True)
    assert parse_sort(QueryParams({}), metrics) == (metrics[0], False)
    for bad in ("events", "visitors:up", "visitors;drop"):
        with pytest.raises(QueryError):
            parse_sort(QueryParams({"sort": bad}), metrics)
    with pytest.raises(QueryError):
        parse_metrics(["visitors", "1; DROP TABLE events"])
    with pytest.raises(QueryError):
        parse_dimension("page; DROP TABLE events")
