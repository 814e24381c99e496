"""Analytics endpoints: what happened on a site, for callers allowed to see it.

Every handler resolves the site, passes :func:`authorize` for it, parses its parameters
into the query model (any mistake is a 400) and asks the query engine. Answers of the
aggregate endpoints go through the result cache (see sightline.query.cache).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from sightline import admin
from sightline.api.auth import authorize
from sightline.errors import ApiError, json_response
from sightline.events.limits import MAX_ID_LENGTH
from sightline.events.types import is_valid_event_type
from sightline.query import params as qp
from sightline.query import realtime
from sightline.query.cache import ResultCache
from sightline.query.engine import QueryEngine, change
from sightline.query.explorer import decode_cursor
from sightline.query.exports import FORMATS, file_name
from sightline.query.funnels import Funnel, parse_steps
from sightline.query.model import (
    DAILY_STATS,
    Period,
    Query,
    QueryError,
    parse_dimension,
    parse_metrics,
)
from sightline.query.params import parse_duration, parse_int
from sightline.query.products import parse_product_sort
from sightline.query.retention import RetentionPeriod
from sightline.query.rollups import daily_series
from sightline.sites import Site

if TYPE_CHECKING:
    from sightline.app import Runtime

T = TypeVar("T")

#: Freshness each answer promises: realtime within 1 s, the rest within 5 s.
REALTIME_TTL = 1.0
AGGREGATE_TTL = 5.0
#: Largest funnel conversion window.
MAX_WINDOW_SECONDS = 90 * 86_400


class Analytics:
    """The query engine and result cache of one running app."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.engine = QueryEngine(runtime.store, runtime.cold)
        # With a hot store, answers and their data version are shared by every process.
        self.cache = ResultCache(self.data_version, shared=runtime.hot)
        #: Requests being answered now (the start-up warm-up gives way to them).
        self.answering = 0
        self._answering = threading.Lock()

    @contextlib.contextmanager
    def answering_request(self) -> Iterator[None]:
        with self._answering:
            self.answering += 1
        try:
            yield
        finally:
            with self._answering:
                self.answering -= 1

    def data_version(self) -> Hashable:
        """Changes whenever a writer commits events (read before computing): this
        process's writer, or with a hot store every writer of the installation."""
        if self.runtime.hot is not None:
            try:
                return self.runtime.hot.data_version()
            except Exception:  # unreachable: a version nothing else has (no reuse)
                return object()
        families = list(self.runtime.metrics.written.collect())
        return tuple(sample.value for family in families for sample in family.samples)

    def cached(self, key: Hashable, ttl: float, compute: Callable[[], T]) -> T:
        return self.cache.get_or_compute(key, ttl, compute)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _analytics(request: Request) -> Analytics:
    return analytics_of(request.app.state)


def analytics_of(state: State) -> Analytics:
    """The app's Analytics (made at first use) for the app's runtime."""
    analytics: Analytics | None = getattr(state, "analytics", None)
    if analytics is None or analytics.runtime is not state.runtime:
        analytics = Analytics(state.runtime)
        state.analytics = analytics
    return analytics


def resolve_site(runtime: Runtime, request: Request) -> Site:
    """The ``site`` parameter (id or domain); optional when the caller sees one site."""
    wanted = request.query_params.get("site", "").strip()
    if wanted:
        site = runtime.store.get_site(wanted.lower()) or runtime.store.get_site(wanted)
        if site is None:
            raise ApiError(404, "unknown_site", f"no site {wanted[:253]!r}")
        return site
    sites = runtime.store.list_sites()
    principal = runtime.auth.authenticate(request)
    visible = principal.visible(sites)
    if len(visible) == 1:
        return visible[0]
    if not sites:
        raise ApiError(404, "no_sites", "there are no sites yet; add one with `sightline site add`")
    if not visible:
        raise ApiError(404, "unknown_site", "no such site")
    raise ApiError(400, "site_required", "there are several sites: pass ?site=<id or domain>")


def _query(runtime: Runtime, request: Request, site: Site) -> Query:
    params = request.query_params
    query = Query(
        site_id=site.id,
        period=qp.parse_period(params, site.timezone),
        filters=qp.parse_filters(params),
        goals=tuple(runtime.settings.conversion_events),
    )
    _analytics(request).engine.check_patterns(query.filters)
    return query


def _site_json(site: Site) -> dict[str, Any]:
    return admin.site_json(site) | {"siteKey": None}


def _range_json(period: Period) -> dict[str, str]:
    return {"startDate": period.start.isoformat(), "endDate": period.end.isoformat()}


async def _answer(request: Request, minimum: str, compute: Callable[[Runtime, Site], Any]) -> Any:
    """Authenticate, resolve and authorise the site, then compute in a worker thread;
    query-model errors become 400s."""
    runtime = _runtime(request)
    runtime.auth.authenticate(request)

    def work() -> Any:
        site = resolve_site(runtime, request)
        authorize(request, runtime, site, minimum)
        try:
            with _analytics(request).answering_request():
                return compute(runtime, site)
        except QueryError as exc:
            raise ApiError(400, exc.code, exc.message) from None

    return await run_in_threadpool(work)


# -- dashboard and realtime ----------------------------------------------------------------


def _daily_stats(values: dict[str, int | float]) -> dict[str, int | float]:
    return {name: values[metric] for name, metric in DAILY_STATS.items()}


async def dashboard(request: Request) -> Response:
    """Totals and a daily series (the seed's DailyStats names) for a date range."""

    def compute(runtime: Runtime, site: Site) -> dict[str, Any]:
        analytics = _analytics(request)
        query = _query(runtime, request, site)
        compare = qp.parse_compare(request.query_params)
        metrics = parse_metrics(list(dict.fromkeys(DAILY_STATS.values())))

        def figures(q: Query) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            totals = _daily_stats(analytics.engine.totals(q, metrics))
            today = datetime.now(ZoneInfo(site.timezone)).date()
            series = [
                {"date": point["bucket"], **_daily_stats(point)}
                for point in daily_series(analytics.engine, q, metrics, today)
            ]
            return totals, series

        def answer() -> dict[str, Any]:
            totals, series = figures(query)
            out: dict[str, Any] = {
                "site": _site_json(site),
                **_range_json(query.period),
                "totals": totals,
                "series": series,
            }
            if compare:
                previous = query.with_period(query.period.previous())
                before, before_series = figures(previous)
                out["comparison"] = {
                    **_range_json(previous.period),
                    "totals": before,
                    "change": {k: change(totals[k], before[k]) for k in totals},
                    "series": before_series,
                }
            return out

        return analytics.cached(("dashboard", query, compare), AGGREGATE_TTL, answer)

    return json_response(await _answer(request, "viewer", compute))


async def realtime_stats(request: Request) -> Response:
    """The seed's RealtimeStats for one site."""

    def compute(runtime: Runtime, site: Site) -> dict[str, Any]:
        analytics = _analytics(request)
        return analytics.cached(
            ("realtime", site.id, site.timezone),
            REALTIME_TTL,
            lambda: realtime.realtime_stats(
                analytics.engine, site.id, site.timezone, hot=runtime.hot
            ),
        )

    return json_response(await _answer(request, "viewer", compute))


# -- time series and breakdowns ---------------------------------------------------------------


async def timeseries(request: Request) -> Response:
    """Metrics per time bucket (minute … month, in the site's time zone), zero-filled."""

    def compute(runtime: Runtime, site: Site) -> dict[str, Any]:
        analytics = _analytics(request)
        params = request.query_params
        query = _query(runtime, request, site)
        metrics = qp.parse_metric_list(params, ("visitors", "pageViews"))
        granularity = qp.parse_granularity(params)
        compare = qp.parse_compare(params)

        def answer() -> dict[str, Any]:
            out: dict[str, Any] = {
                **_range_json(query.period),
                "timezone": site.timezone,
                "granularity": granularity.value,
                "metrics": [m.name for m in metrics],
                "series": analytics.engine.timeseries(query, metrics, granularity),
            }
            if compare:
                previous = query.with_period(query.period.previous())
                out["comparison"] = {
                    **_range_json(previous.period),
                    "series": analytics.engine.timeseries(previous, metrics, granularity),
                }
            return out

        key = ("timeseries", query, metrics, granularity, compare)
        return analytics.cached(key, AGGREGATE_TTL, answer)

    return json_response(await _answer(request, "viewer", compute))


async def breakdown(request: Request) -> Response:
    """The top values of one dimension with metrics, sorted, paged by limit/offset."""

    def compute(runtime: Runtime, site: Site) -> dict[str, Any]:
        analytics = _analytics(request)
        params = request.query_params
        query = _query(runtime, request, site)
        name = params.get("dimension")
        if not name:
            raise QueryError("invalid_dimension", "dimension is required, e.g. dimension=page")
        dimension = parse_dimension(name)
        metrics = qp.parse_metric_list(params, ("visitors", "pageViews"))
        sort, ascending = qp.parse_sort(params, metrics)
        limit = parse_int(params, "limit", 10, 1, 1000)
        offset = parse_int(params, "offset", 0, 0, 1_000_000)
        compare = qp.parse_compare(params)

        def answer() -> dict[str, Any]:
            engine = analytics.engine
            rows, more = engine.breakdown(query, metrics, dimension, sort, ascending, limit, offset)
            out: dict[str, Any] = {
                **_range_json(query.period),
                "dimension": dimension.name,
                "metrics": [m.name for m in metrics],
                "sort": f"{sort.name}:{'asc' if ascending else 'desc'}",
                "limit": limit,
                "offset": offset,
                "hasMore": more,
                "rows": rows,
            }
            if compare:
                previous = query.with_period(query.period.previous())
                values = [r["value"] for r in rows]
                before = engine.values_for(previous, metrics, dimension, values)
                out["comparison"] = {
                    **_range_json(previous.period),
                    "rows": [
                        {
                            "value": v,
                            **{m.name: before.get(v, {}).get(m.name, 0) for m in metrics},
                        }
                        for v in values
                    ],
                }
            return out

        key = ("breakdown", query, metrics, dimension, sort, ascending, limit, offset, compare)
        return analytics.cached(key, AGGREGATE_TTL, answer)

    return json_response(await _answer(request, "viewer", compute))


# -- products, funnels, retention ----------------------------------------------------------


async def top_products(request: Request) -> Response:
    """The seed's ProductStats per product over the range, top ``limit`` by ``sort``."""

    def compute(runtime: Runtime, site: Site) -> dict[str, Any]:
        analytics = _analytics(request)
        params = request.query_params
        query = _query(runtime, request, site)
        sort, ascending = parse_product_sort(params.get("sort"))
        limit = parse_int(params, "limit", 10, 1, 1000)

        def answer() -> dict[str, Any]:
            return {
                **_range_json(query.period),
                "sort": f"{sort}:{'asc' if ascending else 'desc'}",
                "products": analytics.engine.top_products(query, sort, ascending, limit),
            }

        key = ("products", query, sort, ascending, limit)
        return analytics.cached(key, AGGREGATE_TTL, answer)

    return json_response(await _answer(request, "viewer", compute))


async def funnel(request: Request) -> Response:
    """Visitors through ordered steps within a conversion window (see query.funnels)."""

    def compute(runtime: Runtime, site: Site) -> dict[str, Any]:
        analytics = _analytics(request)
        params = request.query_params
        query = _query(runtime, request, site)
        steps = parse_steps(params.getlist("step"))
        for step in steps:
            analytics.engine.check_patterns(step.filters)
        window = parse_duration(params.get("window") or "1d", "window", MAX_WINDOW_SECONDS)
        name = params.get("dimension")
        spec = Funnel(steps, window, parse_dimension(name) if name else None)

        def answer() -> dict[str, Any]:
            return {**_range_json(query.period), **analytics.engine.funnel(query, spec)}

        return analytics.cached(("funnel", query, spec), AGGREGATE_TTL, answer)

    return json_response(await _answer(request, "viewer", compute))


async def retention(request: Request) -> Response:
    """Daily or weekly cohorts by first visit, returning on any event or a chosen one."""

    def compute(runtime: Runtime, site: Site) -> dict[str, Any]:
        analytics = _analytics(request)
        params = request.query_params
        query = _query(runtime, request, site)
        try:
            period = RetentionPeriod(params.get("period") or "week")
        except ValueError:
            raise QueryError("invalid_period", "period is day or week") from None
        return_event = params.get("returnEvent") or None
        if return_event is not None and not is_valid_event_type(return_event):
            raise QueryError("invalid_return_event", "returnEvent is an event type")

        def answer() -> dict[str, Any]:
            return {
                **_range_json(query.period),
                **analytics.engine.retention(query, period, return_event),
            }

        key = ("retention", query, period, return_event)
        return analytics.cached(key, AGGREGATE_TTL, answer)

    return json_response(await _answer(request, "viewer", compute))


# -- sessions, events, export ------------------------------------------------------------------


def _cursor(request: Request) -> tuple[datetime, str] | None:
    text = request.query_params.get("cursor")
    return decode_cursor(text) if text else None


def _identifier(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_ID_LENGTH:
        raise QueryError(f"invalid_{name.lower()}", f"{name} is at most {MAX_ID_LENGTH} characters")
    return value


async def sessions(request: Request) -> Response:
    """Sessions started in the range, newest first; with ``visitorId``, that visitor's
    journey: their sessions and their events in order."""

    def compute(runtime: Runtime, site: Site) -> dict[str, Any]:
        engine = _analytics(request).engine
        params = request.query_params
        query = _query(runtime, request, site)
        limit = parse_int(params, "limit", 50, 1, 1000)
        cursor = _cursor(request)
        visitor = _identifier(request, "visitorId")
        if visitor is None:
            rows, following = engine.sessions(query, limit=limit, cursor=cursor)
            return {**_range_json(query.period), "sessions": rows, "nextCursor": following}
        journey, _ = engine.sessions(query, limit=1000, visitor_id=visitor)
        events, following = engine.events(
            query, limit=limit, descending=False, cursor=cursor, visitor_id=visitor
        )
        return {
            **_range_json(query.period),
            "visitorId": visitor,
            "sessions": journey,
            "events": events,
            "nextCursor": following,
        }

    return json_response(await _answer(request, "viewer", compute))


async def events(request: Request) -> Response:
    """Raw events, newest first (``order=asc`` for oldest first), by cursor."""

    def compute(runtime: Runtime, site: Site) -> dict[str, Any]:
        engine = _analytics(request).engine
        params = request.query_params
        query = _query(runtime, request, site)
        limit = parse_int(params, "limit", 100, 1, 1000)
        order = params.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise QueryError("invalid_order", "order is asc or desc")
        rows, following = engine.events(
            query,
            limit=limit,
            descending=order == "desc",
            cursor=_cursor(request),
            visitor_id=_identifier(request, "visitorId"),
            session_id=_identifier(request, "sessionId"),
        )
        return {
            **_range_json(query.period),
            "order": order,
            "events": rows,
            "nextCursor": following,
        }

    return json_response(await _answer(request, "viewer", compute))


async def export(request: Request) -> Response:
    """The range's events as a file (admins only): CSV, JSON, NDJSON or Parquet."""

    def compute(runtime: Runtime, site: Site) -> Response:
        engine = _analytics(request).engine
        query = _query(runtime, request, site)
        name = request.query_params.get("format") or "csv"
        fmt = FORMATS.get(name)
        if fmt is None:
            raise QueryError("invalid_format", f"format is one of {', '.join(FORMATS)}")
        return StreamingResponse(
            engine.export(query, fmt),
            media_type=fmt.media_type,
            headers={
                "Content-Disposition": f'attachment; filename="{file_name(query.period, fmt)}"',
                "Cache-Control": "no-store",
            },
        )

    response: Response = await _answer(request, "admin", compute)
    return response


routes = [
    Route("/api/v1/analytics/dashboard", dashboard, methods=["GET"]),
    Route("/api/v1/analytics/realtime", realtime_stats, methods=["GET"]),
    Route("/api/v1/analytics/timeseries", timeseries, methods=["GET"]),
    Route("/api/v1/analytics/breakdown", breakdown, methods=["GET"]),
    Route("/api/v1/analytics/products/top", top_products, methods=["GET"]),
    Route("/api/v1/analytics/funnel", funnel, methods=["GET"]),
    Route("/api/v1/analytics/retention", retention, methods=["GET"]),
    Route("/api/v1/analytics/sessions", sessions, methods=["GET"]),
    Route("/api/v1/analytics/events", events, methods=["GET"]),
    Route("/api/v1/analytics/export", export, methods=["GET"]),
]
