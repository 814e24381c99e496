"""Core Web Vitals: the 75th percentile of each vital over a range's page loads.

The tracker records the vitals as properties of ``page_view`` events (``lcp``, ``fcp``,
``ttfb``, ``cls``, ``fid``, checked numbers) and of its ``web_vitals`` events (also
``inp``). Each vital is summarised as Google does: its 75th percentile, rated good, needs
improvement or poor by Google's thresholds. Values that are not plain non-negative
numbers are ignored. Filters apply as everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from sightline.query.calendar import utc_bounds
from sightline.query.planner import E, EventRows, Scan, property_value
from sightline.query.sql import Params, column, is_in

if TYPE_CHECKING:
    from sightline.query.engine import QueryEngine
    from sightline.query.model import Query


@dataclass(frozen=True)
class Vital:
    name: str
    unit: str
    #: p75 at most this is good; above ``poor`` it is poor.
    good: float
    poor: float


VITALS = (
    Vital("lcp", "ms", 2500, 4000),
    Vital("inp", "ms", 200, 500),
    Vital("cls", "", 0.1, 0.25),
    Vital("fcp", "ms", 1800, 3000),
    Vital("ttfb", "ms", 800, 1800),
    Vital("fid", "ms", 100, 300),
)
VITAL_EVENTS = ("page_view", "web_vitals")
_NUMBER = r"^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"


def rating(vital: Vital, p75: float | None) -> str | None:
    if p75 is None:
        return None
    if p75 <= vital.good:
        return "good"
    return "poor" if p75 > vital.poor else "needs_improvement"


def vitals_statement(query: Query) -> tuple[exp.Select, Params]:
    params = Params()
    lo, hi = utc_bounds(query.period)
    rows = EventRows(Scan(query, params, lo, hi))
    rows.where.append(is_in(column("event_type", E), params, VITAL_EVENTS))
    pattern = params.add(_NUMBER)
    projections: list[exp.Expr] = []
    for vital in VITALS:
        raw = property_value(E, vital.name)
        numeric = exp.RegexpLike(this=raw, expression=pattern.copy())
        value = exp.Case(
            ifs=[exp.If(this=numeric, true=exp.cast(raw.copy(), exp.DataType.build("double")))]
        )
        projections.append(
            exp.alias_(
                exp.PercentileCont(this=value, expression=exp.Literal.number(0.75)),
                f"p_{vital.name}",
            )
        )
        projections.append(exp.alias_(exp.Count(this=value.copy()), f"n_{vital.name}"))
    return rows.select(*projections), params


def web_vitals(engine: QueryEngine, query: Query) -> list[dict[str, Any]]:
    """Each vital's p75 (ms, or unitless for CLS), its sample count and its rating."""
    select, params = vitals_statement(query)
    row = engine.run(select, params)[0]
    out = []
    for index, vital in enumerate(VITALS):
        p75 = row[2 * index]
        samples = int(row[2 * index + 1] or 0)
        value = (
            None if p75 is None or not samples else round(float(p75), 3 if not vital.unit else 0)
        )
        out.append(
            {
                "name": vital.name,
                "unit": vital.unit,
                "p75": value,
                "samples": samples,
                "rating": rating(vital, value),
            }
        )
    return out
