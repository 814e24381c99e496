"""``GET /api/v1/experiments/config``: the running experiments, for the tracker.

Public like the collector: authorised by the site key (``?siteKey=`` or ``X-Site-Key``),
refused for origins the site does not allow, CORS-enabled for the ones it does. It
answers each running experiment's key, variants with weights and targeted pages, and
``assignments``: the variant of each for the caller's cookieless identity — the same
keyed hash of (site, address, user agent) the identity step gives their events — so a
tracker without consent, which knows no visitor id, shows the variant its events will be
counted under. With consent the tracker assigns from its own visitor id instead.

Definitions are cached per site for a few seconds; assignments are computed per request
and never cached by the browser (``Cache-Control: no-store``).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sightline.errors import ApiError, error_response, json_response
from sightline.experiments import variant_for
from sightline.pipeline.identity import VisitorIdentity

if TYPE_CHECKING:
    from sightline.app import Runtime
    from sightline.sites import Site

#: How long a site's running experiments are reused before the store is asked again.
CACHE_SECONDS = 5.0

_cache: dict[tuple[int, str], tuple[float, list[dict[str, Any]]]] = {}
_cache_lock = threading.Lock()


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def running_experiments(runtime: Runtime, site_id: str) -> list[dict[str, Any]]:
    key = (id(runtime), site_id)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
    records = runtime.store.experiment_records(site_id, status="running")
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[key] = (now + CACHE_SECONDS, records)
    return records


def forget_experiments() -> None:
    """Drop cached definitions (after a change through this process)."""
    with _cache_lock:
        _cache.clear()


def cookieless_visitor(runtime: Runtime, request: Request, site: Site) -> str | None:
    """The visitor id the identity step would give an event from this request."""
    for name, step in runtime.pipeline.steps:
        owner = getattr(step, "__self__", None)
        if name == "identity" and isinstance(owner, VisitorIdentity):
            user_agent = request.headers.get("user-agent", "")[:512]
            return owner.visitor_id(
                site.id, runtime.client_ip(request), user_agent, int(time.time() * 1000)
            )
    return None


def _site(runtime: Runtime, request: Request, origin: str | None) -> Site:
    site_key = request.query_params.get("siteKey") or request.headers.get("x-site-key", "")
    if not site_key:
        raise ApiError(400, "missing_site_key", "siteKey is required (in the query or X-Site-Key)")
    site = runtime.sites.by_key(site_key[:64])
    if site is None:
        raise ApiError(401, "invalid_site_key", "no site has this site key")
    if not site.allows_origin(origin):
        raise ApiError(
            403, "origin_not_allowed", f"origin {origin!r} may not read this site's experiments"
        )
    return site


async def experiment_config(request: Request) -> Response:
    runtime = _runtime(request)
    origin = request.headers.get("origin")
    if request.method == "OPTIONS":
        if not runtime.sites.origin_known(origin or ""):
            return error_response(
                ApiError(403, "origin_not_allowed", f"origin {origin!r} is not a site's origin")
            )
        return Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin or "",
                "Access-Control-Allow-Methods": "GET, OPTIONS",
                "Access-Control-Allow-Headers": "X-Site-Key",
                "Access-Control-Max-Age": "86400",
                "Vary": "Origin",
            },
        )
    cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}
    try:
        site = _site(runtime, request, origin)
    except ApiError as error:
        return error_response(error, cors)
    records = await run_in_threadpool(running_experiments, runtime, site.id)
    visitor = cookieless_visitor(runtime, request, site) if records else None
    experiments = [
        {
            "key": r["key"],
            "variants": [{"key": v["key"], "weight": v["weight"]} for v in r["variants"]],
            "pages": r["targeting"].get("pages", []),
        }
        for r in records
    ]
    assignments = {r["key"]: variant_for(r, visitor) for r in records} if visitor else {}
    return json_response(
        {"experiments": experiments, "assignments": assignments},
        headers={**cors, "Cache-Control": "no-store"},
    )


routes = [Route("/api/v1/experiments/config", experiment_config, methods=["GET", "OPTIONS"])]
