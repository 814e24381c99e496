"""The results of an experiment: who was exposed to which variant, who converted, and what
the difference means.

One statement reads the site's events (rendered for the store's engine like every other
query): each visitor's first ``experiment_exposure`` to the experiment in its window
(that exposure's variant is theirs for good), and their goal events at or after it. It
returns, per variant and pair of quarter-hours (exposed, first converted), the visitors
and their goal revenue; everything else — totals, the daily series in the site's time
zone, the statistics (sightline.query.stats) — is computed from those rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlglot import exp

from sightline.query import stats
from sightline.query.model import EXPERIMENT_PROPERTY, VARIANT_PROPERTY, Filter
from sightline.query.params import parse_filter
from sightline.query.planner import E, filter_condition, property_value
from sightline.query.sql import Params, and_all, column, first_by, fragment, render

#: Rows are counted per quarter-hour, so a day in any time zone (offsets are whole
#: quarter-hours) is a whole number of buckets.
BUCKET_SECONDS = 900
#: Results flag a sample-ratio mismatch below this p-value.
SRM_THRESHOLD = 0.001
#: Below this many exposures per variant no result is trusted, whatever the power analysis.
MIN_EXPOSURES = 100
GOAL = "g"

_RESULTS_SQL = """
WITH x AS (
    SELECT e.visitor_id AS visitor_id, _first AS variant, min(e.ts) AS exposed_at
    FROM events AS e
    WHERE e.site_id = _site AND e.event_type = 'experiment_exposure' AND _is_experiment
      AND e.ts >= _lo AND e.ts < _hi
    GROUP BY e.visitor_id
), c AS (
    SELECT x.visitor_id AS visitor_id, min(g.ts) AS converted_at,
           sum(g.revenue) AS revenue
    FROM x JOIN events AS g ON g.site_id = _site AND g.visitor_id = x.visitor_id
    WHERE g.event_type = _goal AND g.ts >= x.exposed_at AND g.ts < _hi AND _goal_filters
    GROUP BY x.visitor_id
)
SELECT x.variant AS variant,
       CAST(FLOOR(EPOCH(x.exposed_at) / 900) AS BIGINT) AS exposed_q,
       CAST(FLOOR(EPOCH(c.converted_at) / 900) AS BIGINT) AS converted_q,
       count(*) AS visitors,
       sum(CAST(COALESCE(c.revenue, 0) AS DOUBLE)) AS revenue,
       sum(CAST(COALESCE(c.revenue, 0) AS DOUBLE) * CAST(COALESCE(c.revenue, 0) AS DOUBLE))
           AS revenue_sq
FROM x LEFT JOIN c ON c.visitor_id = x.visitor_id
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
"""


class Store(Protocol):
    engine: str

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]: ...


def goal_filters(goal: dict[str, Any]) -> tuple[Filter, ...]:
    return tuple(parse_filter(text) for text in goal.get("filters", ()))


def _goal_value(f: Filter) -> exp.Expr:
    dimension = f.dimension
    if dimension.is_property:
        return property_value(GOAL, dimension.key)
    return column(dimension.column, GOAL)


def results_statement(
    site_id: str, experiment: dict[str, Any], lo: datetime, hi: datetime
) -> tuple[exp.Expr, Params]:
    params = Params()
    first = first_by(property_value(E, VARIANT_PROPERTY), column("ts", E), column("event_id", E))
    conditions = [
        filter_condition(_goal_value(f), f, params) for f in goal_filters(experiment["goal"])
    ]
    tree = fragment(
        _RESULTS_SQL,
        _first=first,
        _site=params.add(site_id),
        _is_experiment=exp.EQ(
            this=property_value(E, EXPERIMENT_PROPERTY), expression=params.add(experiment["key"])
        ),
        _lo=params.add(lo.replace(tzinfo=None)),
        _hi=params.add(hi.replace(tzinfo=None)),
        _goal=params.add(experiment["goal"]["eventType"]),
        _goal_filters=and_all(conditions),
    )
    return tree, params


#: A running experiment also counts events stamped this far ahead of the server's clock
#: (client clocks within the collector's tolerance).
FUTURE_SLACK_MS = 600_000


def window(experiment: dict[str, Any], now_ms: int) -> tuple[datetime, datetime]:
    """The time the experiment ran: from its start (or creation, for a draft) to its stop
    (or now)."""
    start = experiment["started_at"] or experiment["created_at"]
    end = experiment["stopped_at"] or now_ms
    return _from_ms(start), _from_ms(max(end, start) + 1)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def experiment_results(
    store: Store,
    site_id: str,
    timezone: str,
    experiment: dict[str, Any],
    now_ms: int,
) -> dict[str, Any]:
    """The results document of ``experiment`` (see docs/experiments.md)."""
    lo, hi = window(experiment, now_ms)
    reach = hi if experiment["stopped_at"] else hi + timedelta(milliseconds=FUTURE_SLACK_MS)
    tree, params = results_statement(site_id, experiment, lo, reach)
    dialect = getattr(store, "engine", "duckdb")
    rows = store.query(render(tree, dialect), params.values)
    return shape_results(experiment, rows, timezone, lo, hi)


def shape_results(
    experiment: dict[str, Any],
    rows: Sequence[tuple[Any, ...]],
    timezone: str,
    lo: datetime,
    hi: datetime,
) -> dict[str, Any]:
    variants = experiment["variants"]
    keys = [v["key"] for v in variants]
    index = {key: i for i, key in enumerate(keys)}
    k = len(keys)
    exposures = [0] * k
    conversions = [0] * k
    revenue = [0.0] * k
    revenue_sq = [0.0] * k
    unknown = 0
    zone = ZoneInfo(timezone)
    exposed_days: dict[date, list[int]] = {}
    converted_days: dict[date, list[int]] = {}
    day_cache: dict[int, date] = {}

    def day_of(quarter: int) -> date:
        found = day_cache.get(quarter)
        if found is None:
            instant = datetime.fromtimestamp(quarter * BUCKET_SECONDS, UTC)
            found = day_cache[quarter] = instant.astimezone(zone).date()
        return found

    for variant, exposed_q, converted_q, visitors, cents, cents_sq in rows:
        i = index.get(variant)
        if i is None:
            unknown += int(visitors)
            continue
        exposures[i] += int(visitors)
        exposed_days.setdefault(day_of(int(exposed_q)), [0] * k)[i] += int(visitors)
        if converted_q is not None:
            conversions[i] += int(visitors)
            revenue[i] += float(cents or 0) / 100.0
            revenue_sq[i] += float(cents_sq or 0) / 10_000.0
            converted_days.setdefault(day_of(int(converted_q)), [0] * k)[i] += int(visitors)

    weights = [float(v["weight"]) for v in variants]
    weight_total = sum(weights) or 1.0
    total_exposed = sum(exposures)
    best = stats.probability_best(conversions, exposures)
    has_revenue = any(revenue)
    out_variants: list[dict[str, Any]] = []
    for i, variant in enumerate(variants):
        n, c = exposures[i], conversions[i]
        entry: dict[str, Any] = {
            "key": variant["key"],
            "name": variant.get("name") or variant["key"],
            "isControl": i == 0,
            "weight": variant["weight"],
            "expectedShare": weights[i] / weight_total,
            "observedShare": n / total_exposed if total_exposed else None,
            "exposures": n,
            "conversions": c,
            "conversionRate": c / n if n else None,
            "conversionRateCi": _wilson(c, n),
            "revenue": round(revenue[i], 2),
            "revenuePerVisitor": revenue[i] / n if n else None,
            "probabilityBest": best[i],
            "uplift": None,
            "revenueUplift": None,
        }
        if i > 0:
            compared = stats.compare_proportions(conversions[0], exposures[0], c, n)
            if compared is not None:
                entry["uplift"] = {
                    "absolute": compared.absolute,
                    "absoluteCi": list(compared.absolute_ci),
                    "relative": compared.relative,
                    "relativeCi": list(compared.relative_ci) if compared.relative_ci else None,
                    "z": compared.z,
                    "pValue": compared.p_value,
                    "significant": compared.p_value is not None and compared.p_value < 0.05,
                }
            if has_revenue:
                means = stats.compare_means(
                    revenue[0], revenue_sq[0], exposures[0], revenue[i], revenue_sq[i], n
                )
                if means is not None:
                    entry["revenueUplift"] = {
                        "absolute": means.absolute,
                        "absoluteCi": list(means.ci),
                        "relative": means.relative,
                    }
        out_variants.append(entry)

    warnings: list[dict[str, str]] = []
    srm = stats.sample_ratio_test(exposures, weights)
    srm_json: dict[str, Any] = {
        "test": "chi-square goodness of fit of exposures to weights",
        "threshold": SRM_THRESHOLD,
        "chiSquare": srm.chi_square if srm else None,
        "degreesOfFreedom": srm.degrees_of_freedom if srm else None,
        "pValue": srm.p_value if srm else None,
        "mismatch": bool(srm and srm.p_value < SRM_THRESHOLD),
    }
    if any(exposures[i] and weights[i] == 0 for i in range(k)):
        srm_json["mismatch"] = True
    if srm_json["mismatch"]:
        warnings.append(
            {
                "code": "sample_ratio_mismatch",
                "message": "exposures do not match the configured weights (p < 0.001): "
                "assignment or exposure tracking is broken, so the results cannot be trusted",
            }
        )
    if unknown:
        warnings.append(
            {
                "code": "unknown_variants",
                "message": f"{unknown} visitors were exposed to variants the experiment "
                "does not have; they are left out",
            }
        )

    effect = float(experiment["minimum_detectable_effect"])
    baseline = conversions[0] / exposures[0] if exposures[0] else 0.0
    required = stats.required_sample_size(baseline, effect)
    needed = max(required or 0, MIN_EXPOSURES)
    enough = required is not None and all(
        exposures[i] >= needed for i in range(k) if weights[i] > 0
    )
    if not enough:
        warnings.append(
            {
                "code": "minimum_sample",
                "message": (
                    f"each variant needs at least {needed} exposures to detect a "
                    f"{effect:.0%} relative change from the control's "
                    f"{baseline:.2%} (95 % confidence, 80 % power); results may change"
                    if required is not None
                    else "the control has no conversions yet, so the sample needed cannot "
                    "be estimated; keep the experiment running"
                ),
            }
        )

    return {
        "experiment": {
            "key": experiment["key"],
            "name": experiment["name"],
            "status": experiment["status"],
            "goal": experiment["goal"],
            "control": keys[0],
        },
        "window": {"from": _iso(lo), "to": _iso(hi)},
        "totals": {
            "exposures": total_exposed,
            "conversions": sum(conversions),
            "revenue": round(sum(revenue), 2),
        },
        "variants": out_variants,
        "srm": srm_json,
        "sample": {
            "minimumDetectableEffect": effect,
            "baselineRate": baseline if exposures[0] else None,
            "requiredPerVariant": needed if required is not None else None,
            "enough": enough,
        },
        "warnings": warnings,
        "series": _series(keys, exposed_days, converted_days, lo, hi, zone),
        "methods": METHODS,
    }


METHODS = {
    "confidenceLevel": 0.95,
    "conversion": "a visitor converts when they have a goal event at or after their first "
    "exposure, before the experiment stopped",
    "conversionRateCi": "Wilson score interval",
    "absoluteUplift": "p_variant - p_control; Wald interval with the unpooled standard error",
    "relativeUplift": "p_variant / p_control - 1; interval from the log risk ratio (Katz)",
    "pValue": "two-sided pooled two-proportion z-test against the control",
    "probabilityBest": "posterior Beta(1 + conversions, 1 + exposures - conversions) per "
    "variant (Beta(1, 1) prior); exact numerical integration (Simpson's rule), no sampling",
    "srm": f"Pearson chi-square goodness of fit; mismatch when p < {SRM_THRESHOLD}",
    "revenueUplift": "difference of revenue per visitor; normal interval with the Welch "
    "standard error",
    "series": "cumulative per local day in the site's time zone: exposures by first "
    "exposure, conversions by first goal event",
}


def _wilson(c: int, n: int) -> list[float] | None:
    if n <= 0:
        return None
    z = stats.Z_95
    p = c / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return [max(0.0, centre - half), min(1.0, centre + half)]


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _series(
    keys: list[str],
    exposed_days: dict[date, list[int]],
    converted_days: dict[date, list[int]],
    lo: datetime,
    hi: datetime,
    zone: ZoneInfo,
) -> dict[str, Any]:
    """Cumulative exposures, conversions and conversion rate per variant and local day."""
    first = lo.astimezone(zone).date()
    last = (hi - timedelta(milliseconds=1)).astimezone(zone).date()
    days: list[date] = []
    day = first
    while day <= last and len(days) < 3660:
        days.append(day)
        day += timedelta(days=1)
    zero = [0] * len(keys)
    per_variant: dict[str, dict[str, list[Any]]] = {
        key: {"exposures": [], "conversions": [], "conversionRate": []} for key in keys
    }
    cum_exposed = [0] * len(keys)
    cum_converted = [0] * len(keys)
    for day in days:
        for i, key in enumerate(keys):
            cum_exposed[i] += exposed_days.get(day, zero)[i]
            cum_converted[i] += converted_days.get(day, zero)[i]
            series = per_variant[key]
            series["exposures"].append(cum_exposed[i])
            series["conversions"].append(cum_converted[i])
            series["conversionRate"].append(
                cum_converted[i] / cum_exposed[i] if cum_exposed[i] else None
            )
    return {
        "granularity": "day",
        "timezone": zone.key,
        "cumulative": True,
        "dates": [d.isoformat() for d in days],
        "variants": per_variant,
    }
