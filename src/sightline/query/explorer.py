"""Raw events and sessions, page by page, in a stable order.

Events are ordered by (timestamp, event id) and sessions by (start, session id); a page
ends with an opaque cursor naming the last row, and the next page starts strictly after
it, so pages never overlap or skip rows, even while new events arrive.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timedelta
from typing import Any

from sqlglot import exp

from sightline.query.model import Query, QueryError
from sightline.query.planner import E, EventRows, S, Scan, SessionRows
from sightline.query.sql import Params, and_all, column, number, or_all

EPOCH = datetime(1970, 1, 1)

#: API name -> events column, in the order rows are shown and exported.
EVENT_FIELDS: dict[str, str] = {
    "eventId": "event_id",
    "eventType": "event_type",
    "timestamp": "ts",
    "receivedAt": "received_at",
    "sessionId": "session_id",
    "visitorId": "visitor_id",
    "userId": "user_id",
    "pageUrl": "page_url",
    "pagePath": "page_path",
    "pageTitle": "page_title",
    "referrer": "referrer",
    "referrerSource": "referrer_source",
    "channel": "channel",
    "screenResolution": "screen_resolution",
    "viewport": "viewport",
    "deviceType": "device_type",
    "os": "os",
    "browser": "browser",
    "browserVersion": "browser_version",
    "country": "country",
    "region": "region",
    "city": "city",
    "utmSource": "utm_source",
    "utmMedium": "utm_medium",
    "utmCampaign": "utm_campaign",
    "utmTerm": "utm_term",
    "utmContent": "utm_content",
    "productId": "product_id",
    "revenue": "revenue",
    "sessionDuration": "session_duration",
    "properties": "properties",
}

#: API name -> session_stats column.
SESSION_FIELDS: dict[str, str] = {
    "sessionId": "session_id",
    "visitorId": "visitor_id",
    "startedAt": "started_at",
    "endedAt": "ended_at",
    "duration": "duration",
    "pageViews": "page_views",
    "events": "events",
    "bounce": "bounce",
    "converted": "converted",
    "revenue": "revenue",
    "entryPage": "landing_page",
    "exitPage": "exit_page",
    "referrer": "referrer",
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

TIME_FIELDS = frozenset({"timestamp", "receivedAt", "startedAt", "endedAt"})


def micros(instant: datetime) -> int:
    return (instant - EPOCH) // timedelta(microseconds=1)


def millis(instant: datetime) -> int:
    return (instant - EPOCH) // timedelta(milliseconds=1)


def encode_cursor(instant: datetime, row_id: str) -> str:
    raw = json.dumps([micros(instant), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = json.loads(raw)
        us, row_id = value
        if not isinstance(us, int) or not isinstance(row_id, str) or isinstance(us, bool):
            raise ValueError
        return EPOCH + timedelta(microseconds=us), row_id
    except (ValueError, TypeError, binascii.Error, OverflowError, UnicodeDecodeError):
        raise QueryError("invalid_cursor", "cursor is not one this API gave out") from None


def after(
    time_col: exp.Expr,
    id_col: exp.Expr,
    cursor: tuple[datetime, str],
    descending: bool,
    params: Params,
) -> exp.Expr:
    """Rows strictly after the cursor in (time, id) order."""
    instant, row_id = cursor
    t, i = params.add(instant), params.add(row_id)
    before = exp.LT if descending else exp.GT
    return or_all(
        [
            before(this=time_col.copy(), expression=t),
            and_all(
                [
                    exp.EQ(this=time_col.copy(), expression=t.copy()),
                    before(this=id_col.copy(), expression=i),
                ]
            ),
        ]
    )


def events_page(
    query: Query,
    lo: datetime,
    hi: datetime,
    *,
    limit: int,
    descending: bool = True,
    cursor: tuple[datetime, str] | None = None,
    visitor_id: str | None = None,
    session_id: str | None = None,
) -> tuple[exp.Select, Params]:
    """One page (``limit + 1`` rows, to tell whether more follow) of events."""
    params = Params()
    rows = EventRows(Scan(query, params, lo, hi))
    if visitor_id is not None:
        rows.where.append(exp.EQ(this=column("visitor_id", E), expression=params.add(visitor_id)))
    if session_id is not None:
        rows.where.append(exp.EQ(this=column("session_id", E), expression=params.add(session_id)))
    if cursor is not None:
        rows.where.append(after(column("ts", E), column("event_id", E), cursor, descending, params))
    select = rows.select(*[column(c, E) for c in EVENT_FIELDS.values()])
    select = select.order_by(
        exp.Ordered(this=column("ts", E), desc=descending),
        exp.Ordered(this=column("event_id", E), desc=descending),
    ).limit(number(limit + 1))
    return select, params


def sessions_page(
    query: Query,
    lo: datetime,
    hi: datetime,
    *,
    limit: int,
    cursor: tuple[datetime, str] | None = None,
    visitor_id: str | None = None,
) -> tuple[exp.Select, Params]:
    """One page of sessions started in the range, newest first."""
    params = Params()
    rows = SessionRows(Scan(query, params, lo, hi))
    if visitor_id is not None:
        rows.where.append(exp.EQ(this=column("visitor_id", S), expression=params.add(visitor_id)))
    if cursor is not None:
        rows.where.append(
            after(column("started_at", S), column("session_id", S), cursor, True, params)
        )
    select = rows.select(*[column(c, S) for c in SESSION_FIELDS.values()])
    select = select.order_by(
        exp.Ordered(this=column("started_at", S), desc=True),
        exp.Ordered(this=column("session_id", S), desc=True),
    ).limit(number(limit + 1))
    return select, params


def row_json(fields: dict[str, str], row: tuple[Any, ...]) -> dict[str, Any]:
    """A stored row as the API shows it: camelCase names, times in epoch milliseconds,
    properties as an object."""
    out: dict[str, Any] = {}
    for name, value in zip(fields, row, strict=True):
        if name in TIME_FIELDS and isinstance(value, datetime):
            out[name] = millis(value)
        elif name == "properties":
            out[name] = json.loads(value) if isinstance(value, str) and value else {}
        elif value is None:
            out[name] = "" if name in ("entryPage", "exitPage") else None
        else:
            out[name] = value
    return out


def cursor_of(fields: dict[str, str], row: tuple[Any, ...], time: str, key: str) -> str:
    """The cursor that continues after ``row``."""
    names = list(fields)
    return encode_cursor(row[names.index(time)], row[names.index(key)])
