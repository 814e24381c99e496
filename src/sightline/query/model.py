"""The query model: what can be asked, decided once for every engine.

A query is a site, a range of local days, filters, and metrics; the endpoints add a
time bucket, a breakdown dimension, funnel steps or a retention period. Every name a
caller may use is looked up here: metrics and dimensions come from allow-lists, property
names and experiment keys are checked against a strict pattern. Nothing a caller sends
reaches SQL text except through these objects (values always travel as parameters).

Metric and dimension definitions are in docs/metrics.md.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date, timedelta


class QueryError(ValueError):
    """A query that cannot be answered as asked; ``code`` names the problem."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Table(enum.Enum):
    """Where a metric is counted: stored events, or stored sessions (SessionStats)."""

    EVENTS = "events"
    SESSIONS = "sessions"


class Scope(enum.Enum):
    """What a dimension's value belongs to."""

    #: A value of each event (page, event type, product, custom property).
    EVENT = "event"
    #: A value of the visit: from its first event (referrer source, channel, UTM fields,
    #: device type, browser, OS, country, region, city) or its first/last page view
    #: (entry and exit page).
    SESSION = "session"
    #: A value of the visitor (the experiment variant they were first exposed to).
    VISITOR = "visitor"


# -- metrics -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    table: Table
    #: "count" (an integer), "rate" (a percentage 0-100), "average" or "cents".
    kind: str
    description: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("events", Table.EVENTS, "count", "stored events"),
        Metric("pageViews", Table.EVENTS, "count", "page_view events"),
        Metric("visitors", Table.EVENTS, "count", "distinct visitors with an event"),
        Metric("productViews", Table.EVENTS, "count", "product_view events"),
        Metric("affiliateClicks", Table.EVENTS, "count", "affiliate_click events"),
        Metric("revenue", Table.EVENTS, "cents", "revenue of goal events, in cents"),
        Metric("ctr", Table.EVENTS, "rate", "affiliate clicks / product views x 100"),
        Metric("sessions", Table.SESSIONS, "count", "sessions started"),
        Metric("bounceRate", Table.SESSIONS, "rate", "bounced sessions / sessions x 100"),
        Metric("avgSessionDuration", Table.SESSIONS, "average", "mean session seconds"),
        Metric("viewsPerSession", Table.SESSIONS, "average", "page views per session"),
        Metric("conversions", Table.SESSIONS, "count", "sessions with a goal event"),
        Metric("conversionRate", Table.SESSIONS, "rate", "converted sessions / sessions x 100"),
    )
}

#: The seed's DailyStats, as the dashboard names them -> the metric each one is.
DAILY_STATS: dict[str, str] = {
    "events": "events",
    "pageViews": "pageViews",
    "uniqueVisitors": "visitors",
    "sessions": "sessions",
    "avgSessionDuration": "avgSessionDuration",
    "bounceRate": "bounceRate",
    "productViews": "productViews",
    "affiliateClicks": "affiliateClicks",
    "conversions": "conversions",
    "revenue": "revenue",
}


def parse_metrics(names: list[str] | tuple[str, ...]) -> tuple[Metric, ...]:
    out: list[Metric] = []
    for name in names:
        metric = METRICS.get(name)
        if metric is None:
            raise QueryError(
                "invalid_metric",
                f"unknown metric {name[:64]!r}; one of: {', '.join(METRICS)}",
            )
        if metric not in out:
            out.append(metric)
    if not out:
        raise QueryError("invalid_metric", "ask for at least one metric")
    return tuple(out)


# -- dimensions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dimension:
    #: The name callers use, e.g. ``page``, ``prop:plan``, ``variant:checkout-cta``.
    name: str
    scope: Scope
    #: The column holding the value: on ``events`` (EVENT scope) or ``session_stats``.
    column: str = ""
    #: Property name (``prop:``) or experiment key (``variant:``).
    key: str = ""
    #: SESSION dimensions the session rows do not hold: the value of the session's
    #: first event, read from this ``events`` column.
    first_event_column: str = ""

    @property
    def is_property(self) -> bool:
        return self.name.startswith(PROPERTY_PREFIX)

    @property
    def is_variant(self) -> bool:
        return self.name.startswith(VARIANT_PREFIX)


_EVENT_COLUMNS = {
    "page": "page_path",
    "eventType": "event_type",
    "product": "product_id",
}
_SESSION_COLUMNS = {
    "entryPage": "landing_page",
    "exitPage": "exit_page",
    "referrerSource": "referrer_source",
    "channel": "channel",
    "utmSource": "utm_source",
    "utmMedium": "utm_medium",
    "utmCampaign": "utm_campaign",
    "deviceType": "device_type",
    "browser": "browser",
    "os": "os",
    "country": "country",
}
#: Session attributes read from the session's first event (session rows lack them).
_SESSION_FIRST_EVENT = {
    "region": "region",
    "city": "city",
    "utmTerm": "utm_term",
    "utmContent": "utm_content",
}

DIMENSIONS: dict[str, Dimension] = {
    **{n: Dimension(n, Scope.EVENT, column=c) for n, c in _EVENT_COLUMNS.items()},
    **{n: Dimension(n, Scope.SESSION, column=c) for n, c in _SESSION_COLUMNS.items()},
    **{
        n: Dimension(n, Scope.SESSION, first_event_column=c)
        for n, c in _SESSION_FIRST_EVENT.items()
    },
}

PROPERTY_PREFIX = "prop:"
VARIANT_PREFIX = "variant:"
#: Property names and experiment keys: what the tracker's custom properties look like.
#: Anything else is refused, so a name can be printed into a JSON path safely.
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_$][A-Za-z0-9_$.:\-]{0,63}$")
#: The properties of an ``experiment_exposure`` event that name the experiment and variant.
EXPERIMENT_PROPERTY = "experiment"
VARIANT_PROPERTY = "variant"


def parse_dimension(name: str) -> Dimension:
    dimension = DIMENSIONS.get(name)
    if dimension is not None:
        return dimension
    for prefix, scope in ((PROPERTY_PREFIX, Scope.EVENT), (VARIANT_PREFIX, Scope.VISITOR)):
        if name.startswith(prefix):
            key = name[len(prefix) :]
            if not KEY_PATTERN.match(key):
                raise QueryError(
                    "invalid_dimension",
                    f"{prefix}<name>: a name of letters, digits and _ $ . : - "
                    f"(at most 64), got {key[:64]!r}",
                )
            return Dimension(name, scope, key=key)
    raise QueryError(
        "invalid_dimension",
        f"unknown dimension {name[:64]!r}; one of: {', '.join(DIMENSIONS)}, "
        "prop:<name>, variant:<experiment>",
    )


# -- filters -----------------------------------------------------------------------------


class Op(enum.Enum):
    IS = "is"
    IS_NOT = "is_not"
    CONTAINS = "contains"
    MATCHES = "matches"


MAX_FILTER_VALUES = 100
MAX_VALUE_LENGTH = 2048
MAX_PATTERN_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Filter:
    """``dimension op values``: is (any of), is_not (none of), contains (any, ignoring
    case), matches (any regular expression, RE2 syntax, searched anywhere)."""

    dimension: Dimension
    op: Op
    values: tuple[str, ...]


def make_filter(dimension: Dimension, op: str, values: list[str]) -> Filter:
    try:
        operator = Op(op)
    except ValueError:
        raise QueryError(
            "invalid_filter",
            f"unknown filter operator {op[:32]!r}; one of: {', '.join(o.value for o in Op)}",
        ) from None
    if not values:
        raise QueryError("invalid_filter", f"filter on {dimension.name} has no value")
    if len(values) > MAX_FILTER_VALUES:
        raise QueryError("invalid_filter", f"at most {MAX_FILTER_VALUES} values per filter")
    for value in values:
        if len(value) > MAX_VALUE_LENGTH:
            raise QueryError("invalid_filter", f"filter values are at most {MAX_VALUE_LENGTH}")
        if "\x00" in value:
            raise QueryError("invalid_filter", "filter values may not contain NUL")
        if operator is Op.MATCHES:
            check_pattern(value)
    return Filter(dimension, operator, tuple(dict.fromkeys(values)))


_NESTED_QUANTIFIER = re.compile(r"[+*}]\)?[+*{]")


def check_pattern(pattern: str) -> None:
    """Refuse patterns that are too long, malformed, or use what RE2 lacks."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise QueryError("invalid_filter", f"patterns are at most {MAX_PATTERN_LENGTH}")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise QueryError("invalid_filter", f"invalid regular expression: {exc}") from None
    if re.search(r"\\[1-9]|\(\?[=!<]", pattern):
        raise QueryError(
            "invalid_filter", "back-references and look-around are not supported (RE2 syntax)"
        )
    escapes = set(re.findall(r"\\(.)", pattern))  # (a pair at a time: "\\\\" is one)
    if escapes & _DIFFERING_ESCAPES or _SCOPED_FLAGS.search(pattern):
        raise QueryError(
            "invalid_filter",
            "\\b, \\B, \\Z and (?flags:…) groups are not supported: the stores' "
            "regular-expression engines read them differently (use ^, $ or (?i) at the start)",
        )


#: Escapes RE2 (DuckDB) and PostgreSQL read differently: \b is a word boundary to RE2 and
#: a backspace to PostgreSQL; \Z is refused by one and is end-of-text to the other.
_DIFFERING_ESCAPES = {"b", "B", "Z"}
#: Flags for a group only, "(?i:x)": RE2 takes them, PostgreSQL does not.
_SCOPED_FLAGS = re.compile(r"(?<!\\)\(\?[a-zA-Z-]+:")


# -- time --------------------------------------------------------------------------------


class Granularity(enum.Enum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


#: Most buckets one time series may have.
MAX_BUCKETS = 10_000
#: Longest date range one request may ask for.
MAX_RANGE_DAYS = 3660


@dataclass(frozen=True, slots=True)
class Period:
    """Local days ``start``..``end`` (inclusive) in time zone ``tz``."""

    start: date
    end: date
    tz: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The same number of days just before this period."""
        length = timedelta(days=self.days)
        return Period(self.start - length, self.end - length, self.tz)


# -- the query ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    """What every aggregate endpoint shares: whose data, when, and which of it."""

    site_id: str
    period: Period
    filters: tuple[Filter, ...] = ()
    #: Event types that count as conversions (settings.conversion_events).
    goals: tuple[str, ...] = ("affiliate_click",)

    def with_period(self, period: Period) -> Query:
        return Query(self.site_id, period, self.filters, self.goals)

    def with_filters(self, filters: tuple[Filter, ...]) -> Query:
        return Query(self.site_id, self.period, filters, self.goals)

    def filters_in(self, scope: Scope) -> tuple[Filter, ...]:
        return tuple(f for f in self.filters if f.dimension.scope is scope)
