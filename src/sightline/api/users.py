"""User administration and the audit log: for admins of every site only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sightline import admin
from sightline.api.auth import Principal, require_admin
from sightline.api.bodies import (
    Email,
    NewPassword,
    Role,
    SiteRef,
    method_route,
    read_json,
    run_admin,
)
from sightline.errors import ApiError, json_response

if TYPE_CHECKING:
    from sightline.app import Runtime


class SiteGrant(msgspec.Struct, rename="camel"):
    """A role on one site."""

    site: SiteRef
    role: Role


class UserCreate(msgspec.Struct, rename="camel"):
    email: Email
    #: Omit for a user who signs in only with API tokens.
    password: NewPassword | None = None
    #: Role on every site; null for a user who sees only the sites in ``sites``.
    role: Role | None = None
    sites: Annotated[list[SiteGrant], msgspec.Meta(max_length=1000)] = []


class UserUpdate(msgspec.Struct, rename="camel"):
    #: Role on every site (null: none); omit to keep it.
    role: Role | msgspec.UnsetType | None = msgspec.UNSET
    #: Replaces every per-site role; omit to keep them.
    sites: Annotated[list[SiteGrant], msgspec.Meta(max_length=1000)] | None = None
    #: A new password; ends the user's dashboard sign-ins.
    password: NewPassword | None = None


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _admin(request: Request) -> tuple[Runtime, Principal]:
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    require_admin(principal)
    return runtime, principal


def _grants(sites: list[SiteGrant]) -> dict[str, str]:
    """Site -> role; a site listed twice gets its last role."""
    return {grant.site: grant.role for grant in sites}


async def list_users(request: Request) -> Response:
    """Every user with their roles."""
    runtime, _ = _admin(request)
    return json_response(await run_in_threadpool(admin.list_users, runtime.store))


async def create_user(request: Request) -> Response:
    """Add a user with a role on every site and/or roles on some sites."""
    runtime, principal = _admin(request)
    body = await read_json(request, UserCreate)
    created = await run_admin(
        admin.add_user,
        runtime.store,
        body.email,
        body.role,
        body.password,
        _grants(body.sites),
        actor=principal.email,
    )
    user = await run_admin(admin.get_user, runtime.store, created["id"])
    return json_response(user, status=201)


async def get_user(request: Request) -> Response:
    """One user (by id or e-mail)."""
    runtime, _ = _admin(request)
    return json_response(
        await run_admin(admin.get_user, runtime.store, request.path_params["user_id"])
    )


async def update_user(request: Request) -> Response:
    """Change a user's role on every site, their per-site roles or their password."""
    runtime, principal = _admin(request)
    body = await read_json(request, UserUpdate)
    changes: dict[str, Any] = {}
    if body.role is not msgspec.UNSET:
        changes["role"] = body.role
    user = await run_admin(
        admin.update_user,
        runtime.store,
        request.path_params["user_id"],
        grants=None if body.sites is None else _grants(body.sites),
        password=body.password,
        actor=principal.email,
        **changes,
    )
    return json_response(user)


async def delete_user(request: Request) -> Response:
    """Delete a user with their per-site roles, sign-ins and API tokens."""
    runtime, principal = _admin(request)
    return json_response(
        await run_admin(
            admin.delete_user, runtime.store, request.path_params["user_id"], actor=principal.email
        )
    )


async def user_tokens(request: Request) -> Response:
    """A user's API tokens (never the tokens themselves)."""
    runtime, _ = _admin(request)
    user = await run_admin(admin.get_user, runtime.store, request.path_params["user_id"])
    return json_response(await run_admin(admin.list_tokens, runtime.store, user["email"]))


async def audit_log(request: Request) -> Response:
    """Administrative changes and sign-ins, newest first."""
    runtime, _ = _admin(request)
    try:
        limit = int(request.query_params.get("limit", "100"))
        before_text = request.query_params.get("before")
        before = int(before_text) if before_text else None
    except ValueError:
        raise ApiError(400, "invalid_parameter", "limit and before are integers") from None
    if not 1 <= limit <= 1000:
        raise ApiError(400, "invalid_parameter", "limit is between 1 and 1000")
    if before is not None and not 0 <= before <= 253_402_300_799_999:
        raise ApiError(400, "invalid_parameter", "before is milliseconds since the epoch")
    records = await run_in_threadpool(runtime.store.audit_records, limit, before)
    return json_response([admin.audit_json(r) for r in records])


routes = [
    method_route("/api/v1/users", GET=list_users, POST=create_user),
    method_route("/api/v1/users/{user_id}", GET=get_user, PATCH=update_user, DELETE=delete_user),
    Route("/api/v1/users/{user_id}/tokens", user_tokens, methods=["GET"]),
    Route("/api/v1/audit", audit_log, methods=["GET"]),
]
