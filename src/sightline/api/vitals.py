"""``GET /api/v1/analytics/vitals``: the Core Web Vitals summary of the overview."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sightline.api.analytics import AGGREGATE_TTL, _analytics, _answer, _query, _range_json
from sightline.errors import json_response
from sightline.query.vitals import web_vitals

if TYPE_CHECKING:
    from sightline.app import Runtime
    from sightline.sites import Site


async def vitals(request: Request) -> Response:
    """The 75th percentile of each web vital over the range's page loads (with filters)."""

    def compute(runtime: Runtime, site: Site) -> dict[str, Any]:
        analytics = _analytics(request)
        query = _query(runtime, request, site)

        def answer() -> dict[str, Any]:
            return {**_range_json(query.period), "vitals": web_vitals(analytics.engine, query)}

        return analytics.cached(("vitals", query), AGGREGATE_TTL, answer)

    return json_response(await _answer(request, "viewer", compute))


routes = [Route("/api/v1/analytics/vitals", vitals, methods=["GET"])]
