"""Saved funnels: the dashboard's funnel definitions, kept per site and shared by everyone
who may see the site (viewers read them; analysts and admins save and delete them).

A definition is the funnel endpoint's own parameters: ``steps`` (each
``<event type>[;<filter>…]``) and ``window``; both are checked as the funnel endpoint
checks them, so a saved funnel always runs.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sightline.api.analytics import MAX_WINDOW_SECONDS
from sightline.api.bodies import method_route, read_json
from sightline.api.sites import visible_site
from sightline.errors import ApiError, json_response
from sightline.query.funnels import parse_steps
from sightline.query.model import QueryError
from sightline.query.params import parse_duration

if TYPE_CHECKING:
    from sightline.app import Runtime

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
FunnelName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=_PRINTABLE)]
Step = Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
#: Saved funnels per site at most.
MAX_FUNNELS = 200


class FunnelBody(msgspec.Struct, rename="camel"):
    #: Shown in the list; saving under an existing name replaces that funnel.
    name: FunnelName
    #: 2 to 10 steps, as the funnel endpoint's ``step`` parameter.
    steps: Annotated[list[Step], msgspec.Meta(min_length=2, max_length=10)]
    #: The conversion window, as the funnel endpoint's ``window`` (default 1d).
    window: Annotated[str, msgspec.Meta(min_length=1, max_length=16)] = "1d"


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _answer(row: dict[str, Any]) -> dict[str, Any]:
    definition = msgspec.json.decode(row["definition"])
    return {
        "id": row["id"],
        "name": row["name"],
        "steps": definition["steps"],
        "window": definition["window"],
        "createdBy": row["created_by"],
        "createdAt": row["created_at"],
    }


async def list_funnels(request: Request) -> Response:
    """The site's saved funnels, by name (viewer)."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)

    def work() -> list[dict[str, Any]]:
        site = visible_site(runtime, principal, request.path_params["site_id"], "viewer")
        return [_answer(row) for row in runtime.store.saved_funnels(site.id)]

    return json_response(await run_in_threadpool(work))


async def save_funnel(request: Request) -> Response:
    """Save a funnel (analyst); the same name replaces the saved one → 201 with it."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    body = await read_json(request, FunnelBody)
    try:
        parse_steps(body.steps)
        parse_duration(body.window, "window", MAX_WINDOW_SECONDS)
    except QueryError as exc:
        raise ApiError(400, exc.code, exc.message) from None
    definition = msgspec.json.encode({"steps": body.steps, "window": body.window}).decode()

    def work() -> dict[str, Any]:
        site = visible_site(runtime, principal, request.path_params["site_id"], "analyst")
        saved = runtime.store.saved_funnels(site.id)
        if len(saved) >= MAX_FUNNELS and all(row["name"] != body.name for row in saved):
            raise ApiError(409, "too_many_funnels", f"a site keeps at most {MAX_FUNNELS} funnels")
        funnel_id = runtime.store.save_funnel(
            site.id, secrets.token_hex(8), body.name, definition, principal.email
        )
        return next(
            _answer(r) for r in runtime.store.saved_funnels(site.id) if r["id"] == funnel_id
        )

    return json_response(await run_in_threadpool(work), status=201)


async def delete_funnel(request: Request) -> Response:
    """Delete a saved funnel (analyst) → 204."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    funnel_id = request.path_params["funnel_id"]

    def work() -> None:
        site = visible_site(runtime, principal, request.path_params["site_id"], "analyst")
        if not runtime.store.delete_funnel(site.id, funnel_id):
            raise ApiError(404, "unknown_funnel", f"no saved funnel {funnel_id[:64]!r}")

    await run_in_threadpool(work)
    return Response(status_code=204)


routes = [
    method_route("/api/v1/sites/{site_id}/funnels", GET=list_funnels, POST=save_funnel),
    Route("/api/v1/sites/{site_id}/funnels/{funnel_id}", delete_funnel, methods=["DELETE"]),
]
