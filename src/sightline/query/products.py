"""Top products: the seed's ProductStats over a range, per product.

Per ``properties.productId`` of events in the range that pass the filters: views
(``product_view``), uniqueViews (distinct visitors who viewed), clicks
(``affiliate_click``), uniqueClicks, conversions (goal events on the product), revenue
(theirs, in cents), ctr = clicks / views x 100 and conversionRate = conversions / views
x 100 (0 without views). Each row also names the product: ``productName``, the
``properties.productName`` of the product's latest event in the range that has one (''
when none does).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlglot import exp

from sightline.query.model import Query, QueryError
from sightline.query.planner import E, EventRows, Scan, event_type_is, property_value
from sightline.query.sql import (
    Params,
    column,
    count_if,
    fragment,
    is_in,
    last_by,
    number,
    ratio,
)

#: The fields, in the seed's order; each can be sorted on.
PRODUCT_FIELDS = (
    "views",
    "uniqueViews",
    "clicks",
    "uniqueClicks",
    "ctr",
    "conversions",
    "revenue",
    "conversionRate",
)
_RATES = frozenset({"ctr", "conversionRate"})


def parse_product_sort(text: str | None) -> tuple[str, bool]:
    if not text:
        return "views", False
    name, _, direction = text.partition(":")
    if name not in PRODUCT_FIELDS or direction not in ("", "asc", "desc"):
        raise QueryError(
            "invalid_sort", f"sort is one of {', '.join(PRODUCT_FIELDS)}, optionally :asc/:desc"
        )
    return name, direction == "asc"


def product_rows_of(scan: Scan) -> EventRows:
    """Events in the range that pass the filters and name a product."""
    rows = EventRows(scan)
    rows.where.append(fragment("_p <> ''", _p=column("product_id", E)))
    return rows


def product_fields(scan: Scan) -> dict[str, exp.Expr]:
    """The ProductStats fields as aggregates over a product's events (``e``)."""
    views = count_if(event_type_is("product_view"))
    clicks = count_if(event_type_is("affiliate_click"))
    goal = is_in(column("event_type", E), scan.params, scan.goals)
    conversions = count_if(goal)

    def unique(kind: str) -> exp.Expr:
        return fragment(
            "count(DISTINCT _v) FILTER (WHERE _k AND _v <> '')",
            _v=column("visitor_id", E),
            _k=event_type_is(kind),
        )

    return {
        "views": views,
        "uniqueViews": unique("product_view"),
        "clicks": clicks,
        "uniqueClicks": unique("affiliate_click"),
        "ctr": ratio(clicks, views, 100),
        "conversions": conversions,
        "revenue": fragment(
            "coalesce(sum(_r) FILTER (WHERE _g), 0)", _r=column("revenue", E), _g=goal
        ),
        "conversionRate": ratio(conversions, views, 100),
    }


def product_name() -> exp.Expr:
    """The product's name: ``properties.productName`` of its latest event naming it."""
    name = property_value(E, "productName")
    return last_by(
        name,
        fragment("_n <> ''", _n=name),
        column("ts", E),
        column("event_id", E),
    )


def top_products_statement(
    query: Query, lo: datetime, hi: datetime, sort: str, ascending: bool, limit: int
) -> tuple[exp.Select, Params]:
    params = Params()
    scan = Scan(query, params, lo, hi)
    rows = product_rows_of(scan)
    fields = product_fields(scan)
    select = (
        rows.select(
            exp.alias_(column("product_id", E), "product"),
            exp.alias_(product_name(), "product_name"),
            *[exp.alias_(value, f"f_{i}") for i, value in enumerate(fields.values())],
        )
        .group_by(column("product_id", E))
        .order_by(
            exp.Ordered(this=column(f"f_{PRODUCT_FIELDS.index(sort)}"), desc=not ascending),
            exp.Ordered(this=column("product")),
        )
        .limit(number(limit))
    )
    return select, params


def product_rows(found: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    out = []
    for row in found:
        entry: dict[str, Any] = {"productId": row[0], "productName": row[1] or ""}
        for name, value in zip(PRODUCT_FIELDS, row[2:], strict=True):
            entry[name] = round(float(value or 0), 2) if name in _RATES else int(value or 0)
        out.append(entry)
    return out
