"""Request parameters -> query model objects (the API's syntax, checked strictly).

Filters: ``filter=<dimension>:<operator>:<value>[,<value>…]``, repeated for AND, e.g.
``filter=country:is:DE,FR`` ``filter=prop:plan:is_not:free`` ``filter=page:contains:/blog``.
In values, ``\\,`` is a comma and ``\\\\`` a backslash (other backslashes are kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sightline.query.model import (
    MAX_RANGE_DAYS,
    PROPERTY_PREFIX,
    VARIANT_PREFIX,
    Filter,
    Granularity,
    Metric,
    Period,
    QueryError,
    make_filter,
    parse_dimension,
    parse_metrics,
)

#: Most filters one request may combine.
MAX_FILTERS = 20


class Parameters(Protocol):
    """What a request's query string offers (Starlette's QueryParams fits)."""

    def get(self, key: str, /) -> str | None: ...

    def getlist(self, key: str, /) -> list[str]: ...


def split_values(text: str, separator: str = ",", *, keep_escapes: bool = False) -> list[str]:
    """Split on unescaped ``separator``. ``\\<separator>`` and ``\\\\`` are escapes; any
    other backslash is kept (regular expressions keep their ``\\d``). With
    ``keep_escapes``, only the separator's escapes are consumed (for a later split)."""
    values: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        following = text[i + 1] if i + 1 < len(text) else ""
        if ch == "\\" and following == separator:
            current.append(following)
            i += 2
        elif ch == "\\" and following == "\\":
            current.append("\\\\" if keep_escapes else "\\")
            i += 2
        elif ch == separator:
            values.append("".join(current))
            current = []
            i += 1
        else:
            current.append(ch)
            i += 1
    values.append("".join(current))
    return values


def parse_filter(text: str) -> Filter:
    """``dimension:operator:values`` (see the module docstring)."""
    if len(text) > 8192:
        raise QueryError("invalid_filter", "a filter is at most 8192 characters")
    parts = text.split(":", 3 if text.startswith((PROPERTY_PREFIX, VARIANT_PREFIX)) else 2)
    if text.startswith((PROPERTY_PREFIX, VARIANT_PREFIX)):
        if len(parts) < 4:
            raise QueryError("invalid_filter", f"expected {parts[0]}:<name>:<op>:<values>")
        name, op, values = f"{parts[0]}:{parts[1]}", parts[2], parts[3]
    else:
        if len(parts) < 3:
            raise QueryError(
                "invalid_filter",
                f"expected <dimension>:<operator>:<values>, got {text[:80]!r}",
            )
        name, op, values = parts
    return make_filter(parse_dimension(name), op, split_values(values))


def parse_filters(params: Parameters) -> tuple[Filter, ...]:
    texts = params.getlist("filter")
    if len(texts) > MAX_FILTERS:
        raise QueryError("invalid_filter", f"at most {MAX_FILTERS} filters")
    return tuple(parse_filter(t) for t in texts)


def parse_metric_list(params: Parameters, default: Sequence[str]) -> tuple[Metric, ...]:
    text = params.get("metrics")
    names = [n.strip() for n in text.split(",") if n.strip()] if text else list(default)
    return parse_metrics(names)


def parse_granularity(params: Parameters, default: Granularity = Granularity.DAY) -> Granularity:
    text = params.get("granularity")
    if not text:
        return default
    try:
        return Granularity(text)
    except ValueError:
        raise QueryError(
            "invalid_granularity",
            f"granularity is one of {', '.join(g.value for g in Granularity)}",
        ) from None


def parse_int(params: Parameters, name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise QueryError(f"invalid_{name.lower()}", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise QueryError(f"invalid_{name.lower()}", f"{name} must be between {low} and {high}")
    return value


def parse_period(params: Parameters, tz: str, today: date | None = None) -> Period:
    """``startDate``/``endDate`` (inclusive ISO dates in ``tz``); default: the last 30 days."""
    today = today or datetime.now(ZoneInfo(tz)).date()
    try:
        end_text = params.get("endDate")
        end = date.fromisoformat(end_text) if end_text else today
        start_text = params.get("startDate")
        start = date.fromisoformat(start_text) if start_text else end - timedelta(days=29)
    except ValueError:
        raise QueryError(
            "invalid_date", "startDate and endDate must be ISO dates (YYYY-MM-DD)"
        ) from None
    if start > end:
        raise QueryError("invalid_range", "startDate is after endDate")
    if (end - start).days >= MAX_RANGE_DAYS:
        raise QueryError("invalid_range", f"a range may span at most {MAX_RANGE_DAYS} days")
    if start.year < 1971 or end.year > 9998:
        raise QueryError("invalid_range", "dates must be between 1971 and 9998")
    return Period(start, end, tz)


def parse_compare(params: Parameters) -> bool:
    text = params.get("compare")
    if not text:
        return False
    if text != "previous":
        raise QueryError("invalid_compare", "compare=previous is the one comparison offered")
    return True


def parse_sort(params: Parameters, metrics: tuple[Metric, ...]) -> tuple[Metric, bool]:
    """``sort=<metric>[:asc|:desc]`` (default: the first metric, descending)."""
    text = params.get("sort")
    if not text:
        return metrics[0], False
    name, _, direction = text.partition(":")
    if direction not in ("", "asc", "desc"):
        raise QueryError("invalid_sort", "sort is <metric>, <metric>:asc or <metric>:desc")
    for metric in metrics:
        if metric.name == name:
            return metric, direction == "asc"
    raise QueryError("invalid_sort", "sort by one of the requested metrics")


def parse_duration(text: str, name: str, maximum_seconds: int) -> int:
    """``90``, ``90s``, ``30m``, ``2h``, ``7d`` -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    raw = text.strip().lower()
    scale = 1
    if raw and raw[-1] in units:
        scale = units[raw[-1]]
        raw = raw[:-1]
    if not raw.isdigit() or len(raw) > 9:
        raise QueryError(f"invalid_{name}", f"{name} is a number of seconds or like 30m, 2h, 7d")
    seconds = int(raw) * scale
    if not 1 <= seconds <= maximum_seconds:
        raise QueryError(f"invalid_{name}", f"{name} must be between 1s and {maximum_seconds}s")
    return seconds
