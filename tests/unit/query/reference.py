"""An independent computation of every analytics number, in plain Python.

It reads the stored raw events (nothing else: not session_stats, not rollups, not the
query layer) and follows docs/metrics.md literally, with the standard library's time
zones. The analytics API must give exactly these numbers.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

PASSIVE = {
    "session_start",
    "session_end",
    "heartbeat",
    "idle_start",
    "idle_end",
    "page_exit",
    "js_error",
    "api_error",
    "slow_page",
    "scroll_depth",
    "experiment_exposure",
}
GOALS = ("affiliate_click",)

EVENT_COLUMNS = {
    "page": "page_path",
    "eventType": "event_type",
    "product": "product_id",
}
SESSION_FIRST = {
    "deviceType": "device_type",
    "browser": "browser",
    "os": "os",
    "country": "country",
    "region": "region",
    "city": "city",
    "referrerSource": "referrer_source",
    "channel": "channel",
    "utmSource": "utm_source",
    "utmMedium": "utm_medium",
    "utmCampaign": "utm_campaign",
    "utmTerm": "utm_term",
    "utmContent": "utm_content",
}
STORED_COLUMNS = [
    "site_id",
    "event_id",
    "event_type",
    "session_id",
    "visitor_id",
    "page_path",
    "referrer_source",
    "channel",
    "device_type",
    "browser",
    "os",
    "country",
    "region",
    "city",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "product_id",
    "properties",
]


def stored_select(epoch_ms: Callable[[str], str]) -> str:
    """What to SELECT to read stored events for this module; ``epoch_ms`` renders a
    timestamp column as epoch milliseconds in the store's dialect."""
    return (
        f"SELECT {epoch_ms('ts')} AS ts, {epoch_ms('received_at')} AS received, "
        + ", ".join(STORED_COLUMNS)
        + " FROM events"
    )


@dataclass
class Event:
    ts: int  # epoch milliseconds
    received: int
    row: dict[str, Any]
    props: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.row["event_type"])

    @property
    def id(self) -> str:
        return str(self.row["event_id"])

    @property
    def visitor(self) -> str:
        return str(self.row["visitor_id"])

    @property
    def session(self) -> str:
        return str(self.row["session_id"])

    @property
    def revenue(self) -> int:
        value = self.props.get("revenue")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return round(value * 100)
        return 0


def load(rows: Iterable[list[Any]]) -> list[Event]:
    out = []
    for r in rows:
        row = dict(zip(STORED_COLUMNS, r[2:], strict=True))
        props = row["properties"]
        props = json.loads(props) if isinstance(props, str) else (props or {})
        out.append(Event(int(r[0]), int(r[1]), row, props))
    return out


def text(value: Any) -> str:
    """A JSON property as ``->>`` gives it: strings as they are, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def ms(instant: datetime) -> int:
    return int(instant.astimezone(UTC).timestamp() * 1000)


def day_bounds(tz: str, start: date, end: date) -> tuple[int, int]:
    zone = ZoneInfo(tz)
    lo = datetime.combine(start, datetime.min.time(), zone)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), zone)
    return ms(lo), ms(hi)


@dataclass
class Session:
    id: str
    events: list[Event]

    @property
    def start(self) -> int:
        return self.events[0].ts

    @property
    def first(self) -> Event:
        return self.events[0]

    @property
    def visitor(self) -> str:
        return self.events[0].visitor

    @property
    def views(self) -> list[Event]:
        return [e for e in self.events if e.type == "page_view"]

    @property
    def bounce(self) -> bool:
        interactions = [e for e in self.events if e.type not in PASSIVE | {"page_view"}]
        return len(self.views) <= 1 and not interactions

    @property
    def converted(self) -> bool:
        return any(e.type in GOALS for e in self.events)

    @property
    def duration(self) -> int:
        return (self.events[-1].ts - self.events[0].ts) // 1000

    def attribute(self, name: str) -> str:
        if name == "entryPage":
            return self.views[0].row["page_path"] if self.views else ""
        if name == "exitPage":
            return self.views[-1].row["page_path"] if self.views else ""
        return str(self.first.row[SESSION_FIRST[name]])


@dataclass
class Data:
    """One site's stored events, with sessions and exposures derived from them."""

    events: list[Event]
    tz: str
    sessions: dict[str, Session] = field(init=False)
    _variants: dict[tuple[str, str, int], str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.events.sort(key=lambda e: (e.ts, e.id))
        grouped: dict[str, list[Event]] = defaultdict(list)
        for e in self.events:
            grouped[e.session].append(e)
        self.sessions = {sid: Session(sid, evs) for sid, evs in grouped.items()}

    # -- dimensions ------------------------------------------------------------------

    def variant(self, visitor: str, experiment: str, hi: int) -> str:
        key = (visitor, experiment, hi)
        if key not in self._variants:
            self._variants[key] = self._first_variant(visitor, experiment, hi)
        return self._variants[key]

    def _first_variant(self, visitor: str, experiment: str, hi: int) -> str:
        for e in self.events:
            if (
                e.visitor == visitor
                and e.type == "experiment_exposure"
                and e.ts < hi
                and text(e.props.get("experiment")) == experiment
            ):
                return text(e.props.get("variant"))
        return ""

    def event_value(self, e: Event, dim: str, hi: int) -> str:
        if dim in EVENT_COLUMNS:
            return str(e.row[EVENT_COLUMNS[dim]])
        if dim.startswith("prop:"):
            return text(e.props.get(dim[5:]))
        if dim.startswith("variant:"):
            return self.variant(e.visitor, dim[8:], hi)
        return self.sessions[e.session].attribute(dim)

    def session_value(self, s: Session, dim: str, hi: int) -> str:
        if dim.startswith("variant:"):
            return self.variant(s.visitor, dim[8:], hi)
        return s.attribute(dim)


def scope(dim: str) -> str:
    if dim in EVENT_COLUMNS or dim.startswith("prop:"):
        return "event"
    if dim.startswith("variant:"):
        return "visitor"
    return "session"


def passes(value: str, op: str, values: list[str]) -> bool:
    if op == "is":
        return value in values
    if op == "is_not":
        return value not in values
    if op == "contains":
        return any(v.lower() in value.lower() for v in values)
    if op == "matches":
        return any(re.search(v, value) for v in values)
    raise ValueError(op)


Filter = tuple[str, str, list[str]]


@dataclass
class Selection:
    """Events in [lo, hi) and sessions started in [lo, hi) that pass the filters."""

    data: Data
    lo: int
    hi: int
    filters: list[Filter]

    def event_ok(self, e: Event) -> bool:
        return all(
            passes(self.data.event_value(e, d, self.hi), op, vs)
            for d, op, vs in self.filters
            if scope(d) == "event"
        )

    def events(self) -> list[Event]:
        out = []
        for e in self.data.events:
            if not self.lo <= e.ts < self.hi or not self.event_ok(e):
                continue
            session = self.data.sessions[e.session]
            if all(
                passes(self.data.session_value(session, d, self.hi), op, vs)
                for d, op, vs in self.filters
                if scope(d) == "session"
            ) and all(
                passes(self.data.variant(e.visitor, d[8:], self.hi), op, vs)
                for d, op, vs in self.filters
                if scope(d) == "visitor"
            ):
                out.append(e)
        return out

    def matching_events(self, s: Session) -> list[Event]:
        """The session's events in the range that pass every event filter."""
        return [e for e in s.events if self.lo <= e.ts < self.hi and self.event_ok(e)]

    def sessions(self) -> list[Session]:
        has_event_filters = any(scope(d) == "event" for d, _, _ in self.filters)
        out = []
        for s in self.data.sessions.values():
            if not self.lo <= s.start < self.hi:
                continue
            if not all(
                passes(self.data.session_value(s, d, self.hi), op, vs)
                for d, op, vs in self.filters
                if scope(d) != "event"
            ):
                continue
            if has_event_filters and not self.matching_events(s):
                continue
            out.append(s)
        return out


# -- metrics -----------------------------------------------------------------------------

EVENT_METRICS = {
    "events",
    "pageViews",
    "visitors",
    "productViews",
    "affiliateClicks",
    "revenue",
    "ctr",
}


def rate(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def event_metric(name: str, events: list[Event]) -> int | float:
    kinds = defaultdict(int)
    for e in events:
        kinds[e.type] += 1
    if name == "events":
        return len(events)
    if name == "pageViews":
        return kinds["page_view"]
    if name == "productViews":
        return kinds["product_view"]
    if name == "affiliateClicks":
        return kinds["affiliate_click"]
    if name == "visitors":
        return len({e.visitor for e in events if e.visitor})
    if name == "revenue":
        return sum(e.revenue for e in events if e.type in GOALS)
    if name == "ctr":
        return rate(kinds["affiliate_click"], kinds["product_view"])
    raise ValueError(name)


def session_metric(name: str, sessions: list[Session]) -> int | float:
    n = len(sessions)
    if name == "sessions":
        return n
    if name == "bounceRate":
        return rate(sum(s.bounce for s in sessions), n)
    if name == "avgSessionDuration":
        return round(sum(s.duration for s in sessions) / n, 2) if n else 0.0
    if name == "viewsPerSession":
        return round(sum(len(s.views) for s in sessions) / n, 2) if n else 0.0
    if name == "conversions":
        return sum(s.converted for s in sessions)
    if name == "conversionRate":
        return rate(sum(s.converted for s in sessions), n)
    raise ValueError(name)


def metric(
    name: str,
    sel: Selection,
    events: list[Event] | None = None,
    sessions: list[Session] | None = None,
) -> int | float:
    if name in EVENT_METRICS:
        return event_metric(name, sel.events() if events is None else events)
    return session_metric(name, sel.sessions() if sessions is None else sessions)


def totals(sel: Selection, metrics: list[str]) -> dict[str, int | float]:
    events, sessions = sel.events(), sel.sessions()
    return {m: metric(m, sel, events, sessions) for m in metrics}


# -- time buckets ----------------------------------------------------------------------------


def bucket(ts: int, tz: str, granularity: str) -> str:
    local = datetime.fromtimestamp(ts / 1000, UTC).astimezone(ZoneInfo(tz))
    offset = local.utcoffset()
    assert offset is not None
    wall = local.astimezone(timezone(offset))  # the wall clock, in the offset in effect
    if granularity == "minute":
        return wall.replace(second=0, microsecond=0).isoformat()
    if granularity == "hour":
        return wall.replace(minute=0, second=0, microsecond=0).isoformat()
    day = local.date()
    if granularity == "day":
        return day.isoformat()
    if granularity == "week":
        return (day - timedelta(days=day.weekday())).isoformat()
    return day.replace(day=1).isoformat()


def timeseries(
    sel: Selection, metrics: list[str], granularity: str
) -> dict[str, dict[str, int | float]]:
    """bucket label -> metrics, for buckets holding any counted row."""
    tz = sel.data.tz
    events_by: dict[str, list[Event]] = defaultdict(list)
    sessions_by: dict[str, list[Session]] = defaultdict(list)
    for e in sel.events():
        events_by[bucket(e.ts, tz, granularity)].append(e)
    for s in sel.sessions():
        sessions_by[bucket(s.start, tz, granularity)].append(s)
    out = {}
    for label in set(events_by) | set(sessions_by):
        out[label] = {
            m: metric(m, sel, events_by.get(label, []), sessions_by.get(label, [])) for m in metrics
        }
    return out


def all_buckets(tz: str, lo: int, hi: int, granularity: str) -> list[str]:
    """Every bucket label of [lo, hi), in order, probing every minute."""
    labels: list[str] = []
    t = lo
    while t < hi:
        label = bucket(t, tz, granularity)
        if not labels or labels[-1] != label:
            labels.append(label)
        t += 60_000
    return labels


# -- breakdowns ---------------------------------------------------------------------------


def breakdown(sel: Selection, dim: str, metrics: list[str]) -> dict[str, dict[str, int | float]]:
    """value -> metrics, for every value with counted rows on either side."""
    data, hi = sel.data, sel.hi
    events_by: dict[str, list[Event]] = defaultdict(list)
    sessions_by: dict[str, list[Session]] = defaultdict(list)
    for e in sel.events():
        events_by[data.event_value(e, dim, hi)].append(e)
    for s in sel.sessions():
        if scope(dim) == "event":
            for value in {data.event_value(e, dim, hi) for e in sel.matching_events(s)}:
                sessions_by[value].append(s)
        else:
            sessions_by[data.session_value(s, dim, hi)].append(s)
    return {
        v: {m: metric(m, sel, events_by.get(v, []), sessions_by.get(v, [])) for m in metrics}
        for v in set(events_by) | set(sessions_by)
    }


# -- products -----------------------------------------------------------------------------


def products(sel: Selection) -> dict[str, dict[str, int | float]]:
    by: dict[str, list[Event]] = defaultdict(list)
    for e in sel.events():
        if e.row["product_id"]:
            by[e.row["product_id"]].append(e)
    out = {}
    for product, events in by.items():
        views = [e for e in events if e.type == "product_view"]
        clicks = [e for e in events if e.type == "affiliate_click"]
        goals = [e for e in events if e.type in GOALS]
        out[product] = {
            "views": len(views),
            "uniqueViews": len({e.visitor for e in views if e.visitor}),
            "clicks": len(clicks),
            "uniqueClicks": len({e.visitor for e in clicks if e.visitor}),
            "ctr": rate(len(clicks), len(views)),
            "conversions": len(goals),
            "revenue": sum(e.revenue for e in goals),
            "conversionRate": rate(len(goals), len(views)),
        }
    return out


# -- funnels ------------------------------------------------------------------------------


@dataclass
class Step:
    event_type: str
    filters: list[Filter] = field(default_factory=list)


def funnel(
    sel: Selection, steps: list[Step], window_s: int, dim: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """value ('' without a dimension) -> per step: visitors and median seconds."""
    data = sel.data
    considered = [e for e in sel.events() if e.visitor]
    by_visitor: dict[str, list[Event]] = defaultdict(list)
    for e in considered:
        by_visitor[e.visitor].append(e)

    def matches(e: Event, step: Step) -> bool:
        return e.type == step.event_type and all(
            passes(data.event_value(e, d, sel.hi), op, vs) for d, op, vs in step.filters
        )

    groups: dict[str, list[list[int]]] = defaultdict(list)  # value -> per visitor times
    for events in by_visitor.values():
        events.sort(key=lambda e: (e.ts, e.id))
        anchor = next((e for e in events if matches(e, steps[0])), None)
        if anchor is None:
            continue
        times = [anchor.ts]
        for step in steps[1:]:
            nxt = next(
                (
                    e
                    for e in events
                    if matches(e, step) and e.ts > times[-1] and e.ts <= anchor.ts + window_s * 1000
                ),
                None,
            )
            if nxt is None:
                break
            times.append(nxt.ts)
        value = data.event_value(anchor, dim, sel.hi) if dim else ""
        groups[value].append(times)
    out = {}
    for value, visitors in groups.items():
        rows = []
        for k in range(len(steps)):
            reached = [t for t in visitors if len(t) > k]
            gaps = [t[k] - t[k - 1] for t in reached] if k else []
            rows.append(
                {
                    "visitors": len(reached),
                    "median": statistics.median(gaps) / 1000 if gaps else None,
                }
            )
        out[value] = rows
    return out


# -- retention ----------------------------------------------------------------------------


def retention(
    data: Data,
    tz: str,
    start: date,
    end: date,
    period: str,
    return_event: str | None,
    filters: list[Filter] | None = None,
) -> dict[str, dict[int, int]]:
    """cohort label -> {period n: visitors} (n = 0 included), plus "size" under -1."""
    lo, hi = day_bounds(tz, start, end)
    everything = Selection(data, -(10**15), hi, filters or [])
    in_range = Selection(data, lo, hi, filters or [])
    zone = ZoneInfo(tz)

    def index(ts: int) -> int:
        d = datetime.fromtimestamp(ts / 1000, UTC).astimezone(zone).date()
        days = (d - date(1970, 1, 1)).days
        return days if period == "day" else (days + 3) // 7

    def label(i: int) -> str:
        if period == "day":
            return (date(1970, 1, 1) + timedelta(days=i)).isoformat()
        return (date(1969, 12, 29) + timedelta(days=7 * i)).isoformat()

    first: dict[str, int] = {}
    for e in everything.events():
        if e.visitor and e.visitor not in first:
            first[e.visitor] = e.ts  # events are in time order
    active: dict[str, set[int]] = defaultdict(set)
    for e in in_range.events():
        if e.visitor and (return_event is None or e.type == return_event):
            active[e.visitor].add(index(e.ts))
    out: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for visitor, ts in first.items():
        if not lo <= ts < hi:
            continue
        cohort = index(ts)
        out[label(cohort)][-1] += 1
        for k in active.get(visitor, set()):
            if k >= cohort:
                out[label(cohort)][k - cohort] += 1
    return out


def count_by(items: Iterable[Any], key: Callable[[Any], Any]) -> dict[Any, int]:
    out: dict[Any, int] = defaultdict(int)
    for item in items:
        out[key(item)] += 1
    return dict(out)
