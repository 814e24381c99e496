"""The seed's RealtimeStats: what is happening on a site right now.

Counted by when events were *received* (``received_at``), so a visitor's clock cannot
push an event out of the last minute. With a hot store (``hot_store = redis``) the
counters come from it — every writer process records what it committed there, every API
process reads the same numbers without scanning the warm store — and only today's
conversion rate is read from the warm store; while the hot store is unreachable, the
counters are read from the warm store too.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from sqlglot import exp

from sightline.events.types import CLICK_TYPES
from sightline.query.planner import E, S, table_as
from sightline.query.sql import Params, and_all, column, count_if, fragment, is_in

if TYPE_CHECKING:
    from sightline.query.engine import QueryEngine

log = logging.getLogger(__name__)

#: A visitor is active if they sent any event within this window.
ACTIVE_WINDOW = timedelta(minutes=5)
#: The counters, in the order of the answer (conversionRate follows).
COUNTERS = ("activeUsers", "pageViewsLastMinute", "clicksLastMinute", "eventsLastMinute")


class HotCounters(Protocol):
    """Realtime counters shared by every process (sightline.stores.redis_hot)."""

    def realtime(self, site_id: str, now_ms: int | None = None) -> dict[str, int]: ...


def realtime_stats(
    engine: QueryEngine,
    site_id: str,
    tz: str,
    now: datetime | None = None,
    hot: HotCounters | None = None,
) -> dict[str, Any]:
    """activeUsers (last 5 min), pageViewsLastMinute, clicksLastMinute, eventsLastMinute
    and today's conversionRate (converted sessions / sessions started today in the site's
    zone, %)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    counters: dict[str, int] | None = None
    if hot is not None:
        try:
            counted = hot.realtime(site_id, int(moment.timestamp() * 1000))
            counters = {name: int(counted[name]) for name in COUNTERS}
        except Exception as exc:  # the hot store is down: count in the warm store
            log.warning("realtime: hot store unavailable (%r); reading the warm store", exc)
    if counters is None:
        counters = _counted_in_warm_store(engine, site_id, moment)
    return {**counters, "conversionRate": _conversion_rate_today(engine, site_id, tz, moment)}


def _counted_in_warm_store(engine: QueryEngine, site_id: str, moment: datetime) -> dict[str, int]:
    utc_now = moment.replace(tzinfo=None)
    params = Params()
    received = column("received_at", E)
    active = params.add(utc_now - ACTIVE_WINDOW)
    minute = params.add(utc_now - timedelta(minutes=1))
    events = (
        exp.select(
            fragment(
                "count(DISTINCT _v) FILTER (WHERE _v <> '' AND _r >= _a)",
                _v=column("visitor_id", E),
                _r=received,
                _a=active,
            ),
            count_if(
                and_all(
                    [
                        exp.EQ(
                            this=column("event_type", E), expression=exp.Literal.string("page_view")
                        ),
                        exp.GTE(this=received.copy(), expression=minute),
                    ]
                )
            ),
            count_if(
                and_all(
                    [
                        is_in(column("event_type", E), params, tuple(sorted(CLICK_TYPES))),
                        exp.GTE(this=received.copy(), expression=minute.copy()),
                    ]
                )
            ),
            count_if(exp.GTE(this=received.copy(), expression=minute.copy())),
        )
        .from_(table_as("events", E))
        .where(
            and_all(
                [
                    exp.EQ(this=column("site_id", E), expression=params.add(site_id)),
                    exp.GTE(this=received.copy(), expression=active.copy()),
                    exp.LTE(
                        this=received.copy(), expression=params.add(utc_now + timedelta(seconds=1))
                    ),
                ]
            )
        )
    )
    row = engine.run(events, params)[0]
    return {name: int(value) for name, value in zip(COUNTERS, row, strict=True)}


def _conversion_rate_today(engine: QueryEngine, site_id: str, tz: str, moment: datetime) -> float:
    local_midnight = (
        moment.astimezone(ZoneInfo(tz))
        .replace(hour=0, minute=0, second=0, microsecond=0)
        .astimezone(UTC)
        .replace(tzinfo=None)
    )
    params = Params()
    sessions = (
        exp.select(fragment("count(*)"), count_if(column("converted", S)))
        .from_(table_as("session_stats", S))
        .where(
            and_all(
                [
                    exp.EQ(this=column("site_id", S), expression=params.add(site_id)),
                    exp.GTE(this=column("started_at", S), expression=params.add(local_midnight)),
                ]
            )
        )
    )
    started, converted = engine.run(sessions, params)[0]
    return round(100.0 * converted / started, 2) if started else 0.0
