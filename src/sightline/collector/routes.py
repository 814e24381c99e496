"""``POST /api/v1/analytics/collect`` and ``/collect/batch``.

Order of work, cheapest refusal first: rate limit -> body size -> content type -> decode
the envelope -> site key -> origin -> each event on its own -> enrichment -> transport.
The answer is sent only after the transport has made the kept events durable.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sightline.collector import experiments as experiment_config
from sightline.errors import ApiError, error_response, json_response
from sightline.events import (
    Event,
    InvalidEvent,
    decode_event,
    decode_request,
    decode_whole_request,
    limits,
    validate_event,
)
from sightline.pipeline import RequestContext
from sightline.transport import TransportFull

if TYPE_CHECKING:
    from sightline.app import Runtime
    from sightline.events import Event

_ACCEPTED_TYPES = ("application/json", "text/plain", "")
_CORS_ALLOW_HEADERS = "Content-Type, X-Site-Key"


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def collect(request: Request) -> Response:
    """One event or a batch; 204 when all were kept, 202 with details when some were not."""
    return await _handle(request, batch_answer=False)


async def collect_batch(request: Request) -> Response:
    """A batch; always answers ``{"success", "queued", "rejected"}``."""
    return await _handle(request, batch_answer=True)


async def _handle(request: Request, *, batch_answer: bool) -> Response:
    runtime = _runtime(request)
    origin = request.headers.get("origin")
    cors: dict[str, str] = {}
    try:
        result = await _accept(request, runtime, origin, cors)
    except ApiError as error:
        runtime.metrics.requests.labels(str(error.status)).inc()
        runtime.metrics.rejected.labels(error.code).inc()
        return error_response(error, cors)
    queued, rejected = result
    if not batch_answer and not rejected:
        runtime.metrics.requests.labels("204").inc()
        return Response(status_code=204, headers=cors)
    status = 200 if batch_answer else 202
    runtime.metrics.requests.labels(str(status)).inc()
    return json_response(
        {"success": True, "queued": queued, "rejected": rejected}, status=status, headers=cors
    )


async def _accept(
    request: Request, runtime: Runtime, origin: str | None, cors: dict[str, str]
) -> tuple[int, list[dict[str, Any]]]:
    ip = runtime.client_ip(request)
    wait = 0.0 if runtime.is_control(request) else runtime.rate_limiter.check(ip)
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            "too many requests from this address; at most "
            f"{runtime.settings.rate_limit_per_minute} per minute",
            headers={"Retry-After": str(runtime.rate_limiter.retry_after(wait))},
        )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in _ACCEPTED_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send JSON as application/json or text/plain, not {content_type!r}",
        )
    if request.headers.get("content-encoding", "identity").lower() not in ("identity", ""):
        raise ApiError(415, "unsupported_encoding", "compressed bodies are not accepted")
    body = await _read_body(request)
    # Usually every event decodes: one pass over the body. Otherwise the body is decoded
    # again with its events left raw, so each bad one is named by its index.
    whole = decode_whole_request(body)
    try:
        envelope = whole if whole is not None else decode_request(body)
    except msgspec.ValidationError as exc:
        raise ApiError(
            400, "invalid_body", f"the request body does not match the schema: {exc}"
        ) from None
    except msgspec.DecodeError as exc:
        raise ApiError(
            400, "malformed_json", f"the request body is not valid JSON: {exc}"
        ) from None
    if not envelope.events:
        raise ApiError(400, "empty_batch", "the request holds no events")
    if len(envelope.events) > limits.MAX_BATCH_EVENTS:
        raise ApiError(
            413,
            "too_many_events",
            f"{len(envelope.events)} events in one request; at most {limits.MAX_BATCH_EVENTS}",
        )
    site_key = envelope.site_key or request.headers.get("x-site-key", "")
    if not site_key:
        raise ApiError(400, "missing_site_key", "siteKey is required (in the body or X-Site-Key)")
    site = runtime.sites.by_key(site_key)
    if site is None:
        raise ApiError(401, "invalid_site_key", "no site has this site key")
    if not site.allows_origin(origin):
        raise ApiError(
            403, "origin_not_allowed", f"origin {origin!r} may not send events for this site"
        )
    if origin:
        cors.update({"Access-Control-Allow-Origin": origin, "Vary": "Origin"})

    rejected: list[dict[str, Any]] = []
    decoded: list[tuple[int, Event]] = []
    items: list[Event | msgspec.Raw] = list(envelope.events)
    for index, item in enumerate(items):
        try:
            if isinstance(item, Event):
                validate_event(item)
                decoded.append((index, item))
            else:
                decoded.append((index, decode_event(item)))
        except InvalidEvent as exc:
            rejected.append({"index": index, "error": str(exc)})
            runtime.metrics.rejected.labels("invalid_event").inc()
    ctx = RequestContext(
        site=site,
        ip=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", ""),
        received_at=int(time.time() * 1000),
        sent_at=envelope.metadata.sent_at,
        headers=request.headers,
    )
    kept, dropped = runtime.pipeline.process(decoded, ctx)
    for index, drop in dropped:
        if drop.report:
            rejected.append({"index": index, "error": f"dropped: {drop.reason}"})
    rejected.sort(key=lambda item: item["index"])
    if not kept and any(not item["error"].startswith("dropped:") for item in rejected):
        raise ApiError(400, "invalid_events", "no event in the request is valid", rejected)
    if kept:
        try:
            await runtime.transport.publish(kept)
        except TransportFull as exc:
            raise ApiError(
                503,
                "busy",
                "the event buffer is full; retry later",
                headers={"Retry-After": str(exc.retry_after)},
            ) from None
        runtime.metrics.accepted.inc(len(kept))
    return len(kept), rejected


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    too_large = ApiError(
        413, "body_too_large", f"the request body is larger than {limits.MAX_BODY_BYTES} bytes"
    )
    if declared is not None:
        try:
            if int(declared) > limits.MAX_BODY_BYTES:
                raise too_large
        except ValueError:
            raise ApiError(400, "bad_content_length", "Content-Length is not a number") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def preflight(request: Request) -> Response:
    """CORS preflight: allowed when some site accepts the requesting origin."""
    runtime = _runtime(request)
    origin = request.headers.get("origin", "")
    if not runtime.sites.origin_known(origin):
        return error_response(
            ApiError(403, "origin_not_allowed", f"origin {origin!r} may not send events")
        )
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": _CORS_ALLOW_HEADERS,
            "Access-Control-Max-Age": "86400",
            "Vary": "Origin",
        },
    )


async def collect_route(request: Request) -> Response:
    return await (preflight if request.method == "OPTIONS" else collect)(request)


async def collect_batch_route(request: Request) -> Response:
    return await (preflight if request.method == "OPTIONS" else collect_batch)(request)


# One route per path, so a 405 lists every allowed method.
routes = [
    Route("/api/v1/analytics/collect", collect_route, methods=["POST", "OPTIONS"]),
    Route("/api/v1/analytics/collect/batch", collect_batch_route, methods=["POST", "OPTIONS"]),
    *experiment_config.routes,
]
