"""Experiments (A/B tests) of a site: define, start, stop, read results.

Every route names its site with ``?site=<id or domain>`` (optional when the caller sees
one site) and passes :func:`~sightline.api.auth.authorize`: viewers read, analysts and
admins change. Each change is audited. The tracker's public view of the running
experiments is ``GET /api/v1/experiments/config`` (sightline.collector.experiments).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sightline.api.analytics import AGGREGATE_TTL, _analytics, resolve_site
from sightline.api.auth import authorize
from sightline.api.bodies import method_route, read_json
from sightline.collector.experiments import forget_experiments
from sightline.errors import ApiError, json_response
from sightline.experiments import (
    STATUSES,
    ExperimentCreate,
    ExperimentError,
    ExperimentUpdate,
    check_goal,
    check_key,
    check_variants,
    experiment_json,
    to_record,
)
from sightline.query.experiments import experiment_results

if TYPE_CHECKING:
    from sightline.app import Runtime
    from sightline.sites import Site


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _site(request: Request, minimum: str) -> tuple[Runtime, Site, str]:
    runtime = _runtime(request)
    site = await run_in_threadpool(resolve_site, runtime, request)
    principal = authorize(request, runtime, site, minimum)
    return runtime, site, principal.email


def _experiment(runtime: Runtime, site: Site, key: str) -> dict[str, Any]:
    records = runtime.store.experiment_records(site.id, key=key)
    if not records:
        raise ApiError(404, "unknown_experiment", f"no experiment {key[:64]!r} on {site.domain}")
    return records[0]


def _checked(error: ExperimentError) -> ApiError:
    return ApiError(error.status, error.code, error.message)


def _audit(runtime: Runtime, actor: str, action: str, site: Site, key: str, details: Any) -> None:
    """Record a change (and let the tracker's view of the site's experiments see it)."""
    forget_experiments()
    runtime.store.record_audit(actor, action, f"{site.id}/{key}", details)


async def list_experiments(request: Request) -> Response:
    """The site's experiments, oldest first (``?status=draft|running|stopped``)."""
    runtime, site, _ = await _site(request, "viewer")
    status = request.query_params.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(400, "invalid_status", f"status is one of {', '.join(STATUSES)}")
    records = await run_in_threadpool(runtime.store.experiment_records, site.id, None, status)
    return json_response([experiment_json(r) for r in records])


async def create_experiment(request: Request) -> Response:
    """Define an experiment (a draft until started)."""
    runtime, site, actor = await _site(request, "analyst")
    body = await read_json(request, ExperimentCreate)
    try:
        check_key(body.key)
        check_variants(body.variants)
        check_goal(body.goal)
    except ExperimentError as exc:
        raise _checked(exc) from None
    record = to_record(body)
    added = await run_in_threadpool(runtime.store.add_experiment, site.id, record)
    if not added:
        raise ApiError(
            409, "experiment_exists", f"{site.domain} already has an experiment {body.key!r}"
        )
    await run_in_threadpool(
        _audit, runtime, actor, "experiment.create", site, body.key, {"name": record["name"]}
    )
    created = await run_in_threadpool(_experiment, runtime, site, body.key)
    return json_response(experiment_json(created), status=201)


async def get_experiment(request: Request) -> Response:
    runtime, site, _ = await _site(request, "viewer")
    record = await run_in_threadpool(_experiment, runtime, site, request.path_params["key"])
    return json_response(experiment_json(record))


async def update_experiment(request: Request) -> Response:
    """Change name, description, goal, targeting or minimum effect; variants and weights
    only while a draft (changing them later would move visitors between variants)."""
    runtime, site, actor = await _site(request, "analyst")
    key = request.path_params["key"]
    record = await run_in_threadpool(_experiment, runtime, site, key)
    body = await read_json(request, ExperimentUpdate)
    changes: dict[str, Any] = {}
    try:
        if body.variants is not None:
            if record["status"] != "draft":
                raise ExperimentError(
                    "experiment_not_draft",
                    f"experiment {key!r} is {record['status']}: variants and weights change "
                    "only while it is a draft",
                    status=409,
                )
            check_variants(body.variants)
            changes["variants"] = msgspec.to_builtins(body.variants)
        if body.goal is not None:
            check_goal(body.goal)
            changes["goal"] = msgspec.to_builtins(body.goal)
    except ExperimentError as exc:
        raise _checked(exc) from None
    if body.targeting is not None:
        changes["targeting"] = msgspec.to_builtins(body.targeting)
    if body.name is not None:
        changes["name"] = body.name or key
    if body.description is not None:
        changes["description"] = body.description
    if body.minimum_detectable_effect is not None:
        changes["minimum_detectable_effect"] = body.minimum_detectable_effect
    if changes:
        await run_in_threadpool(runtime.store.update_experiment, site.id, key, changes)
        await run_in_threadpool(
            _audit, runtime, actor, "experiment.update", site, key, {"fields": sorted(changes)}
        )
    changed = await run_in_threadpool(_experiment, runtime, site, key)
    return json_response(experiment_json(changed))


async def delete_experiment(request: Request) -> Response:
    """Remove an experiment's definition (its events stay)."""
    runtime, site, actor = await _site(request, "analyst")
    key = request.path_params["key"]
    await run_in_threadpool(_experiment, runtime, site, key)
    await run_in_threadpool(runtime.store.delete_experiment, site.id, key)
    await run_in_threadpool(_audit, runtime, actor, "experiment.delete", site, key, None)
    return json_response({"deleted": key})


async def _transition(request: Request, wanted: str) -> Response:
    runtime, site, actor = await _site(request, "analyst")
    key = request.path_params["key"]
    record = await run_in_threadpool(_experiment, runtime, site, key)
    now = int(time.time() * 1000)
    if wanted == "running":
        if record["status"] != "draft":
            raise ApiError(
                409,
                "invalid_transition",
                f"experiment {key!r} is {record['status']}; only a draft can start "
                "(create a new experiment to run it again)",
            )
        changes: dict[str, Any] = {"status": "running", "started_at": now}
    else:
        if record["status"] != "running":
            raise ApiError(
                409,
                "invalid_transition",
                f"experiment {key!r} is {record['status']}; only a running one can stop",
            )
        changes = {"status": "stopped", "stopped_at": now}
    await run_in_threadpool(runtime.store.update_experiment, site.id, key, changes)
    action = "experiment.start" if wanted == "running" else "experiment.stop"
    await run_in_threadpool(_audit, runtime, actor, action, site, key, None)
    changed = await run_in_threadpool(_experiment, runtime, site, key)
    return json_response(experiment_json(changed))


async def start_experiment(request: Request) -> Response:
    """draft -> running: the tracker starts assigning visitors."""
    return await _transition(request, "running")


async def stop_experiment(request: Request) -> Response:
    """running -> stopped: the tracker stops assigning; results cover the time it ran."""
    return await _transition(request, "stopped")


async def results(request: Request) -> Response:
    """Exposures, conversions and the statistics per variant, with a daily series; like
    the analytics answers, fresh within AGGREGATE_TTL seconds."""
    runtime, site, _ = await _site(request, "viewer")
    key = request.path_params["key"]
    record = await run_in_threadpool(_experiment, runtime, site, key)

    def compute() -> dict[str, Any]:
        now = int(time.time() * 1000)
        return experiment_results(runtime.store, site.id, site.timezone, record, now)

    # the analytics result cache: reused until new events are written (or AGGREGATE_TTL)
    cache_key = ("experiment", site.id, site.timezone, key, record["updated_at"])
    answer = await run_in_threadpool(_analytics(request).cached, cache_key, AGGREGATE_TTL, compute)
    return json_response(answer)


routes = [
    method_route("/api/v1/experiments", GET=list_experiments, POST=create_experiment),
    method_route(
        "/api/v1/experiments/{key}",
        GET=get_experiment,
        PATCH=update_experiment,
        DELETE=delete_experiment,
    ),
    Route("/api/v1/experiments/{key}/start", start_experiment, methods=["POST"]),
    Route("/api/v1/experiments/{key}/stop", stop_experiment, methods=["POST"]),
    Route("/api/v1/experiments/{key}/results", results, methods=["GET"]),
]
