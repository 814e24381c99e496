"""The HTTP API's routes: analytics, schema, health, metrics and the local control endpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sightline import admin
from sightline.api import analytics
from sightline.errors import ApiError, json_response
from sightline.events import event_json_schema
from sightline.privacy import service as privacy_service
from sightline.stores.parquet import ColdError
from sightline.workers import archive

if TYPE_CHECKING:
    from sightline.app import Runtime


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


_SCHEMA_BODY: bytes | None = None


async def event_schema(request: Request) -> Response:
    global _SCHEMA_BODY
    if _SCHEMA_BODY is None:
        _SCHEMA_BODY = msgspec.json.encode(event_json_schema())
    return Response(
        _SCHEMA_BODY,
        media_type="application/schema+json",
        headers={"Cache-Control": "public, max-age=300"},
    )


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    runtime = _runtime(request)
    problems = runtime.readiness_problems()
    if problems:
        return json_response({"status": "unavailable", "problems": problems}, status=503)
    return json_response({"status": "ready", "queueDepth": runtime.transport.pending()})


async def metrics(request: Request) -> Response:
    runtime = _runtime(request)
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def control(request: Request) -> Response:
    """Local administration for the CLI, authorised by the secret in server.json."""
    runtime = _runtime(request)
    if not runtime.is_control(request):
        raise ApiError(403, "forbidden", "a valid control secret is required")
    op = request.path_params["op"]
    if op in archive.OPERATIONS:
        return await _archive_control(runtime, op, request)
    operation = admin.OPERATIONS.get(op)
    privacy_operation = privacy_service.OPERATIONS.get(op)
    if operation is None and privacy_operation is None:
        raise ApiError(404, "unknown_operation", f"no control operation {op!r}")
    try:
        args = msgspec.json.decode(await request.body())
    except msgspec.DecodeError:
        raise ApiError(400, "malformed_json", "the request body is not valid JSON") from None
    if not isinstance(args, dict):
        raise ApiError(400, "invalid_body", "the request body must be a JSON object")
    try:
        if privacy_operation is not None:
            result = await run_in_threadpool(privacy_operation, runtime.privacy, args)
        else:
            assert operation is not None
            result = await run_in_threadpool(operation, runtime.store, args)
    except admin.AdminError as exc:
        raise ApiError(400, exc.code, str(exc)) from None
    except KeyError as exc:
        raise ApiError(400, "invalid_body", f"missing argument {exc}") from None
    if op == "site-add":
        runtime.sites.reload()
    return json_response(result)


async def _archive_control(runtime: Runtime, op: str, request: Request) -> Response:
    if runtime.archiver is None:
        raise ApiError(
            409, "no_archiver", "this server does not archive (store, role or warm_days = 0)"
        )
    try:
        args = msgspec.json.decode(await request.body() or b"{}")
    except msgspec.DecodeError:
        raise ApiError(400, "malformed_json", "the request body is not valid JSON") from None
    if not isinstance(args, dict):
        raise ApiError(400, "invalid_body", "the request body must be a JSON object")
    try:
        result = await run_in_threadpool(archive.OPERATIONS[op], runtime.archiver, args)
    except archive.ArchiveRequestError as exc:
        raise ApiError(400, "invalid_body", str(exc)) from None
    except ColdError as exc:
        raise ApiError(409, "archive_failed", str(exc)) from None
    except KeyError as exc:
        raise ApiError(400, "invalid_body", f"missing argument {exc}") from None
    return json_response(result)


routes = [
    *analytics.routes,
    Route("/api/v1/schema/event.json", event_schema, methods=["GET"]),
    Route("/api/v1/control/{op}", control, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
