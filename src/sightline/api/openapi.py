"""The OpenAPI 3.1 document of every HTTP route, served at ``/api/v1/openapi.json``.

:data:`OPERATIONS` describes each route, keyed by ``(METHOD, path)``. The document is
built by walking the app's own routes, so it never lists a route that does not exist;
:func:`missing_operations` names the routes that have no description (a test keeps it
empty). Request bodies of the administration API are the msgspec Structs that decode
them, so what is documented is what is checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sightline import __version__
from sightline.api.funnels import FunnelBody
from sightline.api.privacy import SitePrivacyUpdate, SubjectRequest
from sightline.api.session import LoginBody, PasswordBody, TokenBody
from sightline.api.sites import SiteCreate, SiteUpdate
from sightline.api.users import UserCreate, UserUpdate
from sightline.events import CollectRequest, Event, limits
from sightline.experiments import ExperimentCreate, ExperimentUpdate

Role = Literal["admin", "analyst", "viewer"]

# -- response shapes (documentation only; the handlers build the same keys) -------------


class SiteRole(msgspec.Struct, rename="camel"):
    site_id: str
    domain: str
    role: Role


class User(msgspec.Struct, rename="camel"):
    id: str
    email: str
    #: Role on every site; null when the user has roles only on the sites listed.
    role: Role | None
    sites: list[SiteRole]
    has_password: bool
    created_at: str | None


class Me(msgspec.Struct, rename="camel"):
    id: str
    email: str
    role: Role | None
    #: Every site the caller may see, with their role on it.
    sites: list[SiteRole]
    via: Literal["token", "session"]
    #: Signed in with the cookie: the token to send in X-CSRF-Token.
    csrf_token: str | msgspec.UnsetType = msgspec.UNSET
    expires_at: str | msgspec.UnsetType = msgspec.UNSET


class Site(msgspec.Struct, rename="camel"):
    id: str
    domain: str
    site_key: str
    allowed_origins: list[str]
    timezone: str
    created_at: str | None
    #: The caller's role on this site.
    role: Role | None
    consent_mode: Literal["cookieless", "consent-required"]
    #: Days raw events are kept; 0: for ever.
    retention_days: int


class Token(msgspec.Struct, rename="camel"):
    id: str
    name: str
    user_id: str
    email: str
    created_at: str | None
    last_used_at: str | None
    revoked_at: str | None


class NewToken(msgspec.Struct, rename="camel"):
    id: str
    #: The token itself: shown this once, only its SHA-256 is stored.
    token: str
    name: str
    email: str
    role: Role | None


class DeletedUser(msgspec.Struct):
    id: str
    email: str
    deleted: bool


class DeletedSite(msgspec.Struct):
    id: str
    domain: str
    deleted: bool


class AuditEntry(msgspec.Struct):
    at: str | None
    actor: str
    action: str
    target: str
    details: dict[str, Any]


class Rejected(msgspec.Struct):
    index: int
    error: str


class CollectAnswer(msgspec.Struct):
    success: bool
    queued: int
    rejected: list[Rejected]


class DailyStats(msgspec.Struct, rename="camel"):
    events: int
    page_views: int
    unique_visitors: int
    sessions: int
    avg_session_duration: float
    bounce_rate: float
    product_views: int
    affiliate_clicks: int
    conversions: int
    revenue: int


class DailyStatsOfDay(DailyStats, rename="camel"):
    date: str


class DashboardSite(msgspec.Struct, rename="camel"):
    id: str
    domain: str
    site_key: str | None
    allowed_origins: list[str]
    timezone: str


class Dashboard(msgspec.Struct, rename="camel"):
    site: DashboardSite
    start_date: str
    end_date: str
    totals: DailyStats
    series: list[DailyStatsOfDay]


class RealtimeStats(msgspec.Struct, rename="camel"):
    active_users: int
    page_views_last_minute: int
    clicks_last_minute: int
    events_last_minute: int
    conversion_rate: float


class ProductStats(msgspec.Struct, rename="camel"):
    """One row of products/top: the seed's ProductStats over the range, with the
    product's latest name ('' when no event in the range named it)."""

    product_id: str
    product_name: str
    views: int
    unique_views: int
    clicks: int
    unique_clicks: int
    ctr: float
    conversions: int
    revenue: int
    conversion_rate: float


class SitePrivacy(msgspec.Struct, rename="camel"):
    site: str
    domain: str
    consent_mode: Literal["cookieless", "consent-required"]
    retention_days: int


class ErasureReport(msgspec.Struct, rename="camel"):
    erased: bool
    erased_at: str
    #: visitorIds, userIds, linkedVisitorIds (found through the user ids), sites, allSites.
    subject: dict[str, Any]
    #: Records erased per tier (events, session_stats, spool, hot, cache, cold, ...).
    tiers: dict[str, int]
    failed_tiers: dict[str, str]
    #: Local days whose DailyStats and ProductStats were recomputed.
    rollups_recomputed: int
    seconds: float
    #: DuckDB only: row groups rewritten, free blocks overwritten, ids searched for.
    store_file: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class RetentionReport(msgspec.Struct, rename="camel"):
    sites: list[dict[str, Any]]
    tombstones_forgotten: int
    seconds: float


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct, rename="camel"):
    status: str
    queue_depth: int | msgspec.UnsetType = msgspec.UNSET
    problems: list[str] | msgspec.UnsetType = msgspec.UNSET


_STRUCTS: tuple[type, ...] = (
    User,
    Me,
    Site,
    Token,
    NewToken,
    DeletedUser,
    DeletedSite,
    AuditEntry,
    CollectAnswer,
    Dashboard,
    RealtimeStats,
    ProductStats,
    Health,
    Readiness,
    SitePrivacy,
    ErasureReport,
    RetentionReport,
    SubjectRequest,
    SitePrivacyUpdate,
    LoginBody,
    PasswordBody,
    TokenBody,
    UserCreate,
    UserUpdate,
    SiteCreate,
    SiteUpdate,
    FunnelBody,
    CollectRequest,
    Event,
    ExperimentCreate,
    ExperimentUpdate,
)

# -- the description of each route ----------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    where: Literal["query", "path", "header"] = "query"
    required: bool = False
    example: Any = None

    def render(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "in": self.where,
            "description": self.description,
            "required": self.required or self.where == "path",
            "schema": self.schema,
        }
        if self.example is not None:
            out["example"] = self.example
        if self.schema.get("type") == "array":
            out |= {"style": "form", "explode": True}
        return out


@dataclass(frozen=True)
class Answer:
    description: str
    #: A component name, an inline JSON Schema, or None (no body).
    schema: str | dict[str, Any] | None = None
    media_type: str | tuple[str, ...] = "application/json"
    headers: tuple[str, ...] = ()
    #: Media types whose body differs from ``schema``.
    schemas_by_type: dict[str, dict[str, Any]] = field(default_factory=dict)

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"description": self.description}
        if self.schema is not None:
            schema = _ref(self.schema) if isinstance(self.schema, str) else self.schema
            types = (self.media_type,) if isinstance(self.media_type, str) else self.media_type
            out["content"] = {
                media_type: {"schema": self.schemas_by_type.get(media_type, schema)}
                for media_type in types
            }
        if self.headers:
            out["headers"] = {name: _HEADERS[name] for name in self.headers}
        return out


Security = Literal["public", "user", "site_key", "control"]


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    security: Security
    description: str = ""
    params: tuple[Param, ...] = ()
    #: The request body's component name (JSON), if any.
    body: str | None = None
    answers: dict[int, Answer] = field(default_factory=dict)
    #: Error statuses this operation may answer with (the shared error shape).
    errors: tuple[int, ...] = ()


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _list_of(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}


_HEADERS: dict[str, dict[str, Any]] = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "integer"},
    },
    "Set-Cookie": {
        "description": "the sign-in cookie (HttpOnly) and the CSRF cookie",
        "schema": {"type": "string"},
    },
    "WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}},
    "ETag": {"description": "the file's version", "schema": {"type": "string"}},
    "Content-Disposition": {
        "description": "attachment; the file name names the site's range",
        "schema": {"type": "string"},
    },
}

_ERROR_TEXT = {
    400: "The request is malformed or a parameter is invalid",
    401: "No valid credential (API token or sign-in cookie)",
    403: "The caller's role is too low, or the CSRF token is missing",
    404: "No such resource, or none the caller may see",
    405: "Method not allowed",
    409: "The change conflicts with the current state",
    413: "The request body is too large",
    415: "Unsupported content type or encoding",
    429: "Too many requests or attempts",
    500: "An unexpected error",
    503: "Not ready, or too busy to accept more",
}

# Parameters of the analytics endpoints (see docs/api.md for their syntax).
SITE = Param(
    "site",
    "Site id or domain; optional when the caller may see exactly one site.",
    {"type": "string", "maxLength": 253},
)
START = Param(
    "startDate",
    "First day (inclusive, in the site's time zone); default: 29 days before endDate.",
    {"type": "string", "format": "date"},
    example="2026-11-01",
)
END = Param(
    "endDate",
    "Last day (inclusive, in the site's time zone); default: today.",
    {"type": "string", "format": "date"},
    example="2026-11-25",
)
FILTER = Param(
    "filter",
    "<dimension>:<is|is_not|contains|matches>:<value>[,<value>...], repeated for AND; "
    "e.g. country:is:DE,FR or prop:plan:is_not:free. A comma in a value is \\,.",
    {"type": "array", "items": {"type": "string", "maxLength": 8192}, "maxItems": 20},
    example=["page:contains:/blog"],
)
COMPARE = Param(
    "compare",
    "previous: also answer for the period of the same length just before.",
    {"type": "string", "enum": ["previous"]},
)
METRICS = Param(
    "metrics",
    "Comma-separated metrics: events, pageViews, visitors, productViews, affiliateClicks, "
    "revenue, ctr, sessions, bounceRate, avgSessionDuration, viewsPerSession, conversions, "
    "conversionRate. Default: visitors,pageViews.",
    example="visitors,pageViews",
)
DIMENSION = (
    "page, entryPage, exitPage, referrerSource, channel, utmSource, utmMedium, utmCampaign, "
    "utmTerm, utmContent, country, region, city, deviceType, browser, os, eventType, "
    "product, prop:<name> or variant:<experiment>"
)
LIMIT = Param(
    "limit", "Rows per answer.", {"type": "integer", "minimum": 1, "maximum": 1000}, example=10
)
CURSOR = Param(
    "cursor", "The nextCursor of the previous page.", {"type": "string", "maxLength": 200}
)
RANGE = (SITE, START, END, FILTER)
USER_ID = Param("user_id", "The user's id or e-mail.", where="path")
SITE_ID = Param("site_id", "The site's id or domain.", where="path")

_ANALYTICS_ERRORS = (400, 401, 403, 404)
_ADMIN_ERRORS = (401, 403)
_BODY_ERRORS = (400, 413, 415)


def _analytics(summary: str, description: str, answer: Answer, *params: Param) -> Operation:
    return Operation(
        summary=summary,
        tag="analytics",
        security="user",
        description=description,
        params=params,
        answers={200: answer},
        errors=_ANALYTICS_ERRORS,
    )


def _answer_object(description: str, *required: str, **properties: Any) -> Answer:
    """An analytics answer: its main keys are listed, more may come."""
    schema: dict[str, Any] = {"type": "object", "required": list(required)}
    schema["properties"] = {
        "startDate": {"type": "string", "format": "date"},
        "endDate": {"type": "string", "format": "date"},
        **properties,
    }
    return Answer(description, schema)


_ROWS = {"type": "array", "items": {"type": "object"}}
_NEXT = {"type": ["string", "null"], "description": "cursor of the next page; null at the end"}

_OBJECT = {"type": "object"}

OPERATIONS: dict[tuple[str, str], Operation] = {
    # -- collector ----------------------------------------------------------------------
    ("POST", "/api/v1/analytics/collect"): Operation(
        summary="Send events",
        tag="collect",
        security="site_key",
        description=(
            "The tracker's endpoint. Also accepts the same JSON as text/plain (sendBeacon). "
            "Answers once every kept event is durable."
        ),
        body="CollectRequest",
        answers={
            204: Answer("Every event was kept"),
            202: Answer("Some events were rejected; the others were kept", "CollectAnswer"),
        },
        errors=(400, 401, 403, 413, 415, 429, 503),
    ),
    ("POST", "/api/v1/analytics/collect/batch"): Operation(
        summary="Send a batch of events",
        tag="collect",
        security="site_key",
        body="CollectRequest",
        answers={200: Answer("What was kept and what was rejected", "CollectAnswer")},
        errors=(400, 401, 403, 413, 415, 429, 503),
    ),
    ("OPTIONS", "/api/v1/analytics/collect"): Operation(
        summary="CORS preflight",
        tag="collect",
        security="public",
        params=(Param("Origin", "The page's origin.", where="header"),),
        answers={204: Answer("The origin may send events")},
        errors=(403,),
    ),
    ("OPTIONS", "/api/v1/analytics/collect/batch"): Operation(
        summary="CORS preflight",
        tag="collect",
        security="public",
        params=(Param("Origin", "The page's origin.", where="header"),),
        answers={204: Answer("The origin may send events")},
        errors=(403,),
    ),
    # -- analytics ----------------------------------------------------------------------
    ("GET", "/api/v1/analytics/dashboard"): _analytics(
        "Totals and a daily series",
        "The seed's DailyStats for the range, and one entry per day. Viewer.",
        Answer("Totals and series", "Dashboard"),
        *RANGE,
        COMPARE,
    ),
    ("GET", "/api/v1/analytics/realtime"): _analytics(
        "What happens right now",
        "The seed's RealtimeStats (fresh within 1 s). Viewer.",
        Answer("Realtime figures", "RealtimeStats"),
        SITE,
    ),
    ("GET", "/api/v1/analytics/realtime/stream"): Operation(
        summary="Live events and realtime figures (server-sent events)",
        tag="analytics",
        security="user",
        description=(
            "With Accept: text/event-stream, pushes `stats` (RealtimeStats) at once and "
            "after each commit with events of the site, and `events` (the new events); "
            "otherwise answers the first `stats` message only. Viewer."
        ),
        params=(SITE,),
        answers={
            200: Answer(
                "An event stream: each event is `stats` or `events` with JSON data",
                {
                    "type": "object",
                    "properties": {
                        "event": {"type": "string", "enum": ["stats", "events"]},
                        "data": {"type": "string", "description": "JSON"},
                    },
                },
                "text/event-stream",
            )
        },
        errors=_ANALYTICS_ERRORS,
    ),
    ("GET", "/api/v1/analytics/vitals"): _analytics(
        "Core Web Vitals",
        "The 75th percentile of LCP, INP, CLS, FCP, TTFB and FID over the range's page "
        "loads, with sample counts and Google's rating. Viewer.",
        _answer_object(
            "The vitals",
            "vitals",
            vitals={"type": "array", "items": {"type": "object"}},
        ),
        *RANGE,
    ),
    ("GET", "/api/v1/analytics/timeseries"): _analytics(
        "Metrics per time bucket",
        "Zero-filled buckets in the site's time zone. Viewer.",
        _answer_object(
            "The series",
            "series",
            granularity={"type": "string"},
            metrics={"type": "array", "items": {"type": "string"}},
            series=_ROWS,
        ),
        *RANGE,
        METRICS,
        Param(
            "granularity",
            "Bucket size (default day).",
            {"type": "string", "enum": ["minute", "hour", "day", "week", "month"]},
            example="day",
        ),
        COMPARE,
    ),
    ("GET", "/api/v1/analytics/breakdown"): _analytics(
        "Top values of a dimension",
        "Rows sorted by a metric, paged by limit and offset. Viewer.",
        _answer_object("The rows", "rows", dimension={"type": "string"}, rows=_ROWS),
        *RANGE,
        Param(
            "dimension",
            f"What to break down by: {DIMENSION}.",
            {"type": "string", "maxLength": 100},
            required=True,
            example="page",
        ),
        METRICS,
        Param("sort", "<metric>[:asc|:desc]; default: the first metric, descending."),
        LIMIT,
        Param("offset", "Rows to skip.", {"type": "integer", "minimum": 0, "maximum": 1000000}),
        COMPARE,
    ),
    ("GET", "/api/v1/analytics/products/top"): _analytics(
        "Top products",
        "The seed's ProductStats per product. Viewer.",
        _answer_object(
            "The products",
            "products",
            products=_list_of("ProductStats"),
        ),
        *RANGE,
        Param(
            "sort",
            "views, uniqueViews, clicks, uniqueClicks, ctr, conversions, revenue or "
            "conversionRate, optionally :asc or :desc (default views:desc).",
            example="revenue:desc",
        ),
        LIMIT,
    ),
    ("GET", "/api/v1/analytics/funnel"): _analytics(
        "Funnel",
        "Visitors through ordered steps within a conversion window: per-step visitors, "
        "conversion, drop-off, median time between steps. Viewer.",
        _answer_object("The steps", "steps", steps=_ROWS),
        *RANGE,
        Param(
            "step",
            "2 to 10 steps, in order: <event type>[;<filter>...], e.g. page_view;page:is:/pricing.",
            {"type": "array", "items": {"type": "string", "maxLength": 8192}, "maxItems": 10},
            required=True,
            example=["product_view", "affiliate_click"],
        ),
        Param(
            "window", "Conversion window: seconds, or like 30m, 2h, 7d (default 1d).", example="7d"
        ),
        Param("dimension", f"Break the funnel down by: {DIMENSION}."),
    ),
    ("GET", "/api/v1/analytics/retention"): _analytics(
        "Retention cohorts",
        "Daily or weekly cohorts by first visit, returning on any event or a chosen one. Viewer.",
        _answer_object("The cohorts", "cohorts", cohorts=_ROWS),
        *RANGE,
        Param("period", "Cohort size (default week).", {"type": "string", "enum": ["day", "week"]}),
        Param("returnEvent", "Count a return only on this event type.", example="page_view"),
    ),
    ("GET", "/api/v1/analytics/sessions"): _analytics(
        "Sessions",
        "Sessions started in the range, newest first; with visitorId, that visitor's journey "
        "(their sessions and events in order). Analyst: rows about single visitors.",
        _answer_object("Sessions", "sessions", sessions=_ROWS, nextCursor=_NEXT),
        *RANGE,
        LIMIT,
        CURSOR,
        Param("visitorId", "One visitor's journey.", {"type": "string", "maxLength": 128}),
    ),
    ("GET", "/api/v1/analytics/events"): _analytics(
        "Raw events",
        "The event explorer, newest first (order=asc for oldest first), paged by cursor. "
        "Analyst: rows about single visitors.",
        _answer_object("Events", "events", events=_ROWS, nextCursor=_NEXT),
        *RANGE,
        LIMIT,
        CURSOR,
        Param("order", "desc (default) or asc.", {"type": "string", "enum": ["asc", "desc"]}),
        Param("visitorId", "Only this visitor's events.", {"type": "string", "maxLength": 128}),
        Param("sessionId", "Only this session's events.", {"type": "string", "maxLength": 128}),
    ),
    ("GET", "/api/v1/analytics/export"): Operation(
        summary="Export events",
        tag="analytics",
        security="user",
        description=(
            "The range's events as a file, streamed: CSV, JSON, NDJSON or Parquet, with a "
            "Content-Disposition file name. Admin of the site only."
        ),
        params=(
            *RANGE,
            Param(
                "format",
                "File format (default csv).",
                {"type": "string", "enum": ["csv", "json", "ndjson", "parquet"]},
                example="csv",
            ),
        ),
        answers={
            200: Answer(
                "The file",
                {"type": "string", "format": "binary"},
                (
                    "text/csv",
                    "application/json",
                    "application/x-ndjson",
                    "application/vnd.apache.parquet",
                ),
                headers=("Content-Disposition",),
                schemas_by_type={"application/json": _ROWS},
            )
        },
        errors=_ANALYTICS_ERRORS,
    ),
    # -- sign-in and the caller's credentials ---------------------------------------------
    ("POST", "/api/v1/auth/login"): Operation(
        summary="Sign in",
        tag="auth",
        security="public",
        description=(
            "Sets the sightline_session cookie (HttpOnly, SameSite=Lax, Secure over https) "
            "and the sightline_csrf cookie. Failed attempts are throttled per address and "
            "e-mail; a wrong e-mail and a wrong password get the same answer."
        ),
        body="LoginBody",
        answers={200: Answer("Signed in", "Me", headers=("Set-Cookie",))},
        errors=(*_BODY_ERRORS, 401, 429),
    ),
    ("POST", "/api/v1/auth/logout"): Operation(
        summary="Sign out",
        tag="auth",
        security="user",
        answers={204: Answer("Signed out; the cookies are cleared", headers=("Set-Cookie",))},
        errors=(401, 403),
    ),
    ("GET", "/api/v1/auth/me"): Operation(
        summary="Who am I",
        tag="auth",
        security="user",
        answers={200: Answer("The caller and the sites they may see", "Me")},
        errors=(401,),
    ),
    ("POST", "/api/v1/auth/password"): Operation(
        summary="Change my password",
        tag="auth",
        security="user",
        description="Every other sign-in of the caller ends.",
        body="PasswordBody",
        answers={204: Answer("Changed")},
        errors=(*_BODY_ERRORS, 401, 403, 429),
    ),
    ("GET", "/api/v1/auth/tokens"): Operation(
        summary="My API tokens",
        tag="auth",
        security="user",
        answers={200: Answer("The caller's tokens, newest first", _list_of("Token"))},
        errors=(401,),
    ),
    ("POST", "/api/v1/auth/tokens"): Operation(
        summary="Create an API token",
        tag="auth",
        security="user",
        description="The token acts with the caller's roles. It is shown once.",
        body="TokenBody",
        answers={201: Answer("The new token", "NewToken")},
        errors=(*_BODY_ERRORS, 401, 403),
    ),
    ("DELETE", "/api/v1/auth/tokens/{token_id}"): Operation(
        summary="Revoke an API token",
        tag="auth",
        security="user",
        description="Own tokens; an admin of every site may revoke any. Refused at once.",
        params=(Param("token_id", "The token's id.", where="path"),),
        answers={200: Answer("The revoked token", "Token")},
        errors=(401, 403, 404, 409),
    ),
    # -- users --------------------------------------------------------------------------
    ("GET", "/api/v1/users"): Operation(
        summary="List users",
        tag="users",
        security="user",
        description="Admin of every site only.",
        answers={200: Answer("Every user", _list_of("User"))},
        errors=_ADMIN_ERRORS,
    ),
    ("POST", "/api/v1/users"): Operation(
        summary="Add a user",
        tag="users",
        security="user",
        description="Admin of every site only.",
        body="UserCreate",
        answers={201: Answer("The new user", "User")},
        errors=(*_BODY_ERRORS, *_ADMIN_ERRORS, 404, 409),
    ),
    ("GET", "/api/v1/users/{user_id}"): Operation(
        summary="One user",
        tag="users",
        security="user",
        params=(USER_ID,),
        answers={200: Answer("The user", "User")},
        errors=(*_ADMIN_ERRORS, 404),
    ),
    ("PATCH", "/api/v1/users/{user_id}"): Operation(
        summary="Change a user's roles or password",
        tag="users",
        security="user",
        description="A new password ends the user's sign-ins. The last admin stays admin.",
        params=(USER_ID,),
        body="UserUpdate",
        answers={200: Answer("The user", "User")},
        errors=(*_BODY_ERRORS, *_ADMIN_ERRORS, 404, 409),
    ),
    ("DELETE", "/api/v1/users/{user_id}"): Operation(
        summary="Delete a user",
        tag="users",
        security="user",
        description="With their roles, sign-ins and API tokens. The last admin stays.",
        params=(USER_ID,),
        answers={200: Answer("Deleted", "DeletedUser")},
        errors=(*_ADMIN_ERRORS, 404, 409),
    ),
    ("GET", "/api/v1/users/{user_id}/tokens"): Operation(
        summary="A user's API tokens",
        tag="users",
        security="user",
        params=(USER_ID,),
        answers={200: Answer("Their tokens, newest first", _list_of("Token"))},
        errors=(*_ADMIN_ERRORS, 404),
    ),
    ("GET", "/api/v1/audit"): Operation(
        summary="Audit log",
        tag="users",
        security="user",
        description="Administrative changes and sign-ins, newest first. Admin of every site.",
        params=(
            Param(
                "limit",
                "How many entries (1-1000, default 100).",
                {"type": "integer", "minimum": 1, "maximum": 1000},
            ),
            Param(
                "before",
                "Only entries before this time (ms since the epoch), to page back.",
                {"type": "integer", "minimum": 0, "maximum": 253402300799999},
            ),
        ),
        answers={200: Answer("Entries", _list_of("AuditEntry"))},
        errors=(400, *_ADMIN_ERRORS),
    ),
    # -- sites --------------------------------------------------------------------------
    ("GET", "/api/v1/sites"): Operation(
        summary="Sites I may see",
        tag="sites",
        security="user",
        answers={200: Answer("The caller's sites with their role", _list_of("Site"))},
        errors=(401,),
    ),
    ("POST", "/api/v1/sites"): Operation(
        summary="Add a site",
        tag="sites",
        security="user",
        description="Admin of every site only.",
        body="SiteCreate",
        answers={201: Answer("The new site and its public site key", "Site")},
        errors=(*_BODY_ERRORS, *_ADMIN_ERRORS, 409),
    ),
    ("GET", "/api/v1/sites/{site_id}"): Operation(
        summary="One site",
        tag="sites",
        security="user",
        params=(SITE_ID,),
        answers={200: Answer("The site", "Site")},
        errors=(401, 404),
    ),
    ("PATCH", "/api/v1/sites/{site_id}"): Operation(
        summary="Change a site",
        tag="sites",
        security="user",
        description=(
            "Domain, allowed origins, time zone (daily rollups are rebuilt). Admin of the site."
        ),
        params=(SITE_ID,),
        body="SiteUpdate",
        answers={200: Answer("The site", "Site")},
        errors=(*_BODY_ERRORS, *_ADMIN_ERRORS, 404, 409),
    ),
    ("DELETE", "/api/v1/sites/{site_id}"): Operation(
        summary="Delete a site and its data",
        tag="sites",
        security="user",
        description="Every event, session and rollup of the site goes. Admin of every site.",
        params=(SITE_ID,),
        answers={200: Answer("Deleted", "DeletedSite")},
        errors=(*_ADMIN_ERRORS, 404),
    ),
    ("POST", "/api/v1/sites/{site_id}/rotate-key"): Operation(
        summary="Give a site a new site key",
        tag="sites",
        security="user",
        description="The old key is refused from now on. Admin of the site.",
        params=(SITE_ID,),
        answers={200: Answer("The site with its new key", "Site")},
        errors=(*_ADMIN_ERRORS, 404),
    ),
    ("GET", "/api/v1/sites/{site_id}/funnels"): Operation(
        summary="The site's saved funnels",
        tag="sites",
        security="user",
        description="Funnel definitions saved from the dashboard, by name. Viewer.",
        params=(SITE_ID,),
        answers={200: Answer("Saved funnels", {"type": "array", "items": _OBJECT})},
        errors=(*_ADMIN_ERRORS, 404),
    ),
    ("POST", "/api/v1/sites/{site_id}/funnels"): Operation(
        summary="Save a funnel",
        tag="sites",
        security="user",
        description=(
            "Steps and window as the funnel endpoint takes them; saving under an existing "
            "name replaces that funnel. Analyst."
        ),
        params=(SITE_ID,),
        body="FunnelBody",
        answers={201: Answer("The saved funnel", _OBJECT)},
        errors=(*_BODY_ERRORS, *_ADMIN_ERRORS, 404, 409),
    ),
    ("DELETE", "/api/v1/sites/{site_id}/funnels/{funnel_id}"): Operation(
        summary="Delete a saved funnel",
        tag="sites",
        security="user",
        description="Analyst.",
        params=(SITE_ID, Param("funnel_id", "The saved funnel's id.", where="path")),
        answers={204: Answer("Deleted")},
        errors=(*_ADMIN_ERRORS, 404),
    ),
    # -- privacy ------------------------------------------------------------------------
    ("POST", "/api/v1/privacy/export"): Operation(
        summary="Export everything about a visitor or user",
        tag="privacy",
        security="user",
        description=(
            "A zip archive: for each tier holding records of the subject (events, "
            "session_stats, spool, hot, cold, ...) <tier>.json and <tier>.csv, and "
            "manifest.json with the sites and tiers searched and the records found per "
            "tier. A user id also searches the visitor ids its events carried. Admin of the "
            "site named, or of every site. Audited."
        ),
        body="SubjectRequest",
        answers={
            200: Answer(
                "The archive",
                {"type": "string", "contentMediaType": "application/zip"},
                "application/zip",
                headers=("Content-Disposition",),
            )
        },
        errors=(*_BODY_ERRORS, *_ADMIN_ERRORS, 404),
    ),
    ("GET", "/api/v1/privacy/export"): Operation(
        summary="Export everything about a visitor or user (query form)",
        tag="privacy",
        security="user",
        description="As POST, with the subject in the query string.",
        params=(
            Param("visitorId", "A visitor id.", {"type": "string", "maxLength": 128}),
            Param("userId", "A user id.", {"type": "string", "maxLength": 128}),
            Param("site", "Only this site (id or domain); default: every site."),
        ),
        answers={
            200: Answer(
                "The archive",
                {"type": "string", "contentMediaType": "application/zip"},
                "application/zip",
                headers=("Content-Disposition",),
            )
        },
        errors=(400, *_ADMIN_ERRORS, 404),
    ),
    ("POST", "/api/v1/privacy/erase"): Operation(
        summary="Erase a visitor or user from every tier",
        tag="privacy",
        security="user",
        description=(
            "Deletes every record of the subject from the warm store, the spool and queues "
            "(tombstones discard events still in flight), the hot store and caches and the "
            "cold tier; recomputes the rollups of the days touched; on DuckDB purges the "
            "file's bytes. Answers when done, with counts per tier. Audited with a keyed hash "
            "of the id, never the id. Admin of the site named, or of every site."
        ),
        body="SubjectRequest",
        answers={200: Answer("What was erased", "ErasureReport")},
        errors=(*_BODY_ERRORS, *_ADMIN_ERRORS, 404),
    ),
    ("POST", "/api/v1/privacy/retention"): Operation(
        summary="Apply every site's retention now",
        tag="privacy",
        security="user",
        description=(
            "Raw events (and sessions) older than each site's retentionDays are deleted; "
            "rollups are kept. The server also runs this every retention_interval_minutes. "
            "Admin of every site."
        ),
        answers={200: Answer("What was deleted", "RetentionReport")},
        errors=_ADMIN_ERRORS,
    ),
    ("GET", "/api/v1/privacy/sites/{site_id}"): Operation(
        summary="A site's consent mode and retention",
        tag="privacy",
        security="user",
        params=(SITE_ID,),
        answers={200: Answer("The site's privacy settings", "SitePrivacy")},
        errors=(*_ADMIN_ERRORS, 404),
    ),
    ("PATCH", "/api/v1/privacy/sites/{site_id}"): Operation(
        summary="Change a site's consent mode or retention",
        tag="privacy",
        security="user",
        description=(
            "consentMode: cookieless or consent-required; retentionDays: 0 (for ever) or "
            "at least the collector's maximum event age in days + 2. Admin of the site."
        ),
        params=(SITE_ID,),
        body="SitePrivacyUpdate",
        answers={200: Answer("The site's privacy settings", "SitePrivacy")},
        errors=(*_BODY_ERRORS, *_ADMIN_ERRORS, 404),
    ),
    # -- documents, health, metrics, tracker, dashboard ----------------------------------
    ("GET", "/api/v1/openapi.json"): Operation(
        summary="This document",
        tag="meta",
        security="public",
        answers={200: Answer("OpenAPI 3.1", _OBJECT)},
    ),
    ("GET", "/api/v1/schema/event.json"): Operation(
        summary="The event JSON Schema",
        tag="meta",
        security="public",
        answers={200: Answer("JSON Schema", _OBJECT, "application/schema+json")},
    ),
    ("GET", "/healthz"): Operation(
        summary="Liveness",
        tag="meta",
        security="public",
        answers={200: Answer("The process runs", "Health")},
    ),
    ("GET", "/readyz"): Operation(
        summary="Readiness",
        tag="meta",
        security="public",
        answers={
            200: Answer("Store, transport and writer run", "Readiness"),
            503: Answer("Starting, stopping or broken", "Readiness"),
        },
    ),
    ("GET", "/metrics"): Operation(
        summary="Prometheus metrics",
        tag="meta",
        security="public",
        answers={200: Answer("Prometheus text format", {"type": "string"}, "text/plain")},
    ),
    ("POST", "/api/v1/control/{op}"): Operation(
        summary="Local administration (the CLI)",
        tag="meta",
        security="control",
        description="Needs the control secret from <data_dir>/server.json.",
        params=(Param("op", "The operation, e.g. site-add or token-revoke.", where="path"),),
        answers={200: Answer("The operation's result", {})},
        errors=(400, 403, 404),
    ),
    ("GET", "/sdk/v1/{name}"): Operation(
        summary="The tracker",
        tag="meta",
        security="public",
        params=(
            Param("name", "sightline.js, sightline-extras.js or sightline-react.js", where="path"),
        ),
        answers={
            200: Answer(
                "JavaScript", {"type": "string"}, "application/javascript", headers=("ETag",)
            ),
            304: Answer("Not modified (If-None-Match)"),
        },
        errors=(404,),
    ),
    ("GET", "/"): Operation(
        summary="The dashboard",
        tag="meta",
        security="public",
        answers={200: Answer("HTML", {"type": "string"}, "text/html")},
    ),
    ("GET", "/{view}"): Operation(
        summary="A page of the dashboard",
        tag="meta",
        security="public",
        params=(Param("view", "realtime, funnels, settings, … (docs/dashboard.md)", where="path"),),
        answers={200: Answer("HTML", {"type": "string"}, "text/html")},
        errors=(404,),
    ),
    ("GET", "/static/{version}/{name}"): Operation(
        summary="A dashboard script, style sheet or image",
        tag="meta",
        security="public",
        params=(
            Param("version", "Digest of the dashboard's files (cached for a year)", where="path"),
            Param("name", "The file, e.g. main.js", where="path"),
        ),
        answers={200: Answer("The file", {"type": "string"}, "text/javascript")},
        errors=(404,),
    ),
}

# -- experiments ----------------------------------------------------------------------------

EXPERIMENT_KEY = Param("key", "The experiment's key.", where="path")
_EXPERIMENT = {
    "type": "object",
    "required": ["key", "name", "status", "variants", "control", "goal", "targeting"],
    "properties": {
        "key": {"type": "string"},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "status": {"type": "string", "enum": ["draft", "running", "stopped"]},
        "variants": {"type": "array", "items": _ref("Variant")},
        "control": {"type": "string", "description": "the first variant's key"},
        "goal": _ref("Goal"),
        "targeting": _ref("Targeting"),
        "minimumDetectableEffect": {"type": "number"},
        "createdAt": {"type": ["string", "null"], "format": "date-time"},
        "updatedAt": {"type": ["string", "null"], "format": "date-time"},
        "startedAt": {"type": ["string", "null"], "format": "date-time"},
        "stoppedAt": {"type": ["string", "null"], "format": "date-time"},
    },
}
_EXPERIMENT_ERRORS = (401, 403, 404)


def _experiment_operation(
    summary: str, description: str, answer: Answer, *, body: str | None = None, status: int = 200
) -> Operation:
    params = (SITE,) if "{key}" not in summary else (SITE, EXPERIMENT_KEY)
    return Operation(
        summary=summary.replace(" {key}", ""),
        tag="experiments",
        security="user",
        description=description,
        params=params,
        body=body,
        answers={status: answer},
        errors=(400, *_EXPERIMENT_ERRORS, *((409, 413, 415) if body or status == 201 else ())),
    )


OPERATIONS.update(
    {
        ("GET", "/api/v1/experiments"): Operation(
            summary="A site's experiments",
            tag="experiments",
            security="user",
            description="Oldest first. Viewer of the site.",
            params=(
                SITE,
                Param(
                    "status",
                    "Only experiments with this status.",
                    {"type": "string", "enum": ["draft", "running", "stopped"]},
                ),
            ),
            answers={200: Answer("Experiments", {"type": "array", "items": _EXPERIMENT})},
            errors=(400, *_EXPERIMENT_ERRORS),
        ),
        ("POST", "/api/v1/experiments"): _experiment_operation(
            "Define an experiment",
            "A draft until started. Analyst or admin of the site.",
            Answer("The new experiment", _EXPERIMENT),
            body="ExperimentCreate",
            status=201,
        ),
        ("GET", "/api/v1/experiments/{key}"): _experiment_operation(
            "One experiment {key}", "Viewer of the site.", Answer("The experiment", _EXPERIMENT)
        ),
        ("PATCH", "/api/v1/experiments/{key}"): _experiment_operation(
            "Change an experiment {key}",
            "Variants and weights only while a draft (409 otherwise). Analyst or admin.",
            Answer("The experiment", _EXPERIMENT),
            body="ExperimentUpdate",
        ),
        ("DELETE", "/api/v1/experiments/{key}"): _experiment_operation(
            "Delete an experiment {key}",
            "Its definition only; its events stay. Analyst or admin.",
            Answer(
                "Deleted",
                {"type": "object", "properties": {"deleted": {"type": "string"}}},
            ),
        ),
        ("POST", "/api/v1/experiments/{key}/start"): _experiment_operation(
            "Start an experiment {key}",
            "draft -> running (409 otherwise): the tracker starts assigning visitors.",
            Answer("The experiment", _EXPERIMENT),
        ),
        ("POST", "/api/v1/experiments/{key}/stop"): _experiment_operation(
            "Stop an experiment {key}",
            "running -> stopped (409 otherwise): results cover the time it ran.",
            Answer("The experiment", _EXPERIMENT),
        ),
        ("GET", "/api/v1/experiments/{key}/results"): _experiment_operation(
            "An experiment's results {key}",
            "Per variant: exposures, conversions, rates, uplift with 95 % intervals, "
            "p-value, probability of being best, revenue per visitor; the SRM check, the "
            "minimum-sample warning and a cumulative daily series (docs/experiments.md).",
            Answer(
                "Results",
                {
                    "type": "object",
                    "required": ["experiment", "variants", "srm", "sample", "series"],
                    "properties": {
                        "experiment": _OBJECT,
                        "window": _OBJECT,
                        "totals": _OBJECT,
                        "variants": _ROWS,
                        "srm": _OBJECT,
                        "sample": _OBJECT,
                        "warnings": _ROWS,
                        "series": _OBJECT,
                        "methods": _OBJECT,
                    },
                },
            ),
        ),
        ("GET", "/api/v1/experiments/config"): Operation(
            summary="Running experiments, for the tracker",
            tag="experiments",
            security="site_key",
            description=(
                "Public, CORS-enabled for the site's origins. Each running experiment's key, "
                "variants with weights and targeted pages, and the caller's cookieless "
                "assignments."
            ),
            params=(
                Param(
                    "siteKey",
                    "The site's public key (or the X-Site-Key header).",
                    {"type": "string", "maxLength": 64},
                ),
            ),
            answers={
                200: Answer(
                    "Definitions and assignments",
                    {
                        "type": "object",
                        "required": ["experiments", "assignments"],
                        "properties": {
                            "experiments": _ROWS,
                            "assignments": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                        },
                    },
                )
            },
            errors=(400, 401, 403),
        ),
        ("OPTIONS", "/api/v1/experiments/config"): Operation(
            summary="CORS preflight",
            tag="experiments",
            security="public",
            answers={204: Answer("Allowed")},
            errors=(403,),
        ),
    }
)


# -- building the document --------------------------------------------------------------


def route_operations(routes: Iterable[BaseRoute]) -> Iterator[tuple[str, str]]:
    """(METHOD, path) of every route (HEAD is implied by GET)."""
    for route in routes:
        if isinstance(route, Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield method, route.path


def missing_operations(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """Routes of the app that :data:`OPERATIONS` does not describe."""
    return [key for key in route_operations(routes) if key not in OPERATIONS]


_CONVERTOR = re.compile(r"{(\w+)(:\w+)?}")

_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "public": [],
    "user": [{"bearerAuth": []}, {"sessionCookie": []}],
    "site_key": [{"siteKey": []}, {}],
    "control": [{"controlSecret": []}],
}


def _render(method: str, path: str, op: Operation) -> dict[str, Any]:
    name = re.sub(r"[^a-z0-9]+", "_", f"{method} {path}".lower()).strip("_")
    out: dict[str, Any] = {
        "operationId": name,
        "summary": op.summary,
        "tags": [op.tag],
        "security": _SECURITY[op.security],
    }
    if op.description:
        out["description"] = op.description
    params = [p.render() for p in op.params]
    if op.security == "user" and method not in ("GET", "HEAD", "OPTIONS"):
        params.append(
            Param(
                "X-CSRF-Token",
                "With the sign-in cookie: the CSRF token of the sign-in.",
                where="header",
            ).render()
        )
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    responses: dict[str, Any] = {str(code): a.render() for code, a in sorted(op.answers.items())}
    for code in op.errors:
        responses.setdefault(str(code), {"$ref": f"#/components/responses/E{code}"})
    responses.setdefault("default", {"$ref": "#/components/responses/Error"})
    out["responses"] = responses
    return out


def _components() -> dict[str, Any]:
    _, schemas = msgspec.json.schema_components(
        _STRUCTS, ref_template="#/components/schemas/{name}"
    )
    # the collector checks these itself (one bad event must not reject the others)
    events = schemas["CollectRequest"]["properties"]["events"]
    events.update({"items": _ref("Event"), "minItems": 1, "maxItems": limits.MAX_BATCH_EVENTS})
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "machine-readable reason"},
                    "message": {"type": "string"},
                    "details": {"description": "more about the error, when there is more"},
                },
            }
        },
    }
    error_content = {"application/json": {"schema": _ref("Error")}}
    responses: dict[str, Any] = {
        f"E{code}": {"description": text, "content": error_content}
        for code, text in _ERROR_TEXT.items()
    }
    # the HTTP server itself refuses what it cannot parse (e.g. a URL over 64 KiB) in text
    responses["E400"]["content"] = error_content | {"text/plain": {"schema": {"type": "string"}}}
    responses["E400"]["description"] += "; text/plain when the HTTP request cannot be parsed"
    responses["E401"]["headers"] = {"WWW-Authenticate": _HEADERS["WWW-Authenticate"]}
    responses["E429"]["headers"] = {"Retry-After": _HEADERS["Retry-After"]}
    responses["E503"]["headers"] = {"Retry-After": _HEADERS["Retry-After"]}
    responses["Error"] = {"description": "An error", "content": error_content}
    return {
        "schemas": dict(sorted(schemas.items())),
        "responses": responses,
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API token (`sightline token create`, POST /api/v1/auth/tokens).",
            },
            "sessionCookie": {
                "type": "apiKey",
                "in": "cookie",
                "name": "sightline_session",
                "description": (
                    "The dashboard sign-in (POST /api/v1/auth/login). Unsafe methods also "
                    "need the X-CSRF-Token header."
                ),
            },
            "siteKey": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Site-Key",
                "description": "The site's public key; may instead be siteKey in the body.",
            },
            "controlSecret": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Sightline-Control",
                "description": "The local control secret from <data_dir>/server.json.",
            },
        },
    }


def build_document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` (undescribed routes are left out)."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in route_operations(routes):
        op = OPERATIONS.get((method, path))
        if op is None:
            continue
        template = _CONVERTOR.sub(r"{\1}", path)
        paths.setdefault(template, {})[method.lower()] = _render(method, path, op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sightline",
            "version": __version__,
            "description": (
                "Self-hosted, privacy-first web and product analytics. Errors are "
                '`{"error": {"code", "message", "details"}}`. Roles: admin > analyst > '
                "viewer, on every site or per site."
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "tags": [
            {"name": "collect", "description": "Events in (site key)"},
            {"name": "analytics", "description": "Figures out (per-site roles)"},
            {"name": "auth", "description": "Sign-in, the caller, API tokens"},
            {"name": "users", "description": "User administration"},
            {"name": "sites", "description": "Site administration"},
            {"name": "privacy", "description": "GDPR export and erasure, consent, retention"},
            {"name": "meta", "description": "Documents, health, metrics, tracker"},
        ],
        "paths": dict(sorted(paths.items())),
        "components": _components(),
    }


_DOCUMENT_KEY = "openapi_document"


async def openapi_document(request: Request) -> Response:
    """The OpenAPI document of this server's routes (built once)."""
    body: bytes | None = getattr(request.app.state, _DOCUMENT_KEY, None)
    if body is None:
        body = msgspec.json.encode(build_document(request.app.routes))
        setattr(request.app.state, _DOCUMENT_KEY, body)
    return Response(
        body, media_type="application/json", headers={"Cache-Control": "public, max-age=60"}
    )


routes = [Route("/api/v1/openapi.json", openapi_document, methods=["GET"])]
