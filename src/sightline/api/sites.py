"""Site administration: list the sites a caller may see; admins change them.

Adding and deleting a site needs the admin role on every site; changing one (domain,
allowed origins, time zone, site key) needs the admin role on that site. A site the
caller has no role on answers 404, like one that does not exist. Every change reaches
the collector's site registry before the answer is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sightline import admin
from sightline.api.auth import Principal, require_admin
from sightline.api.bodies import SiteRef, method_route, read_json, run_admin
from sightline.errors import ApiError, json_response
from sightline.sites import Site

if TYPE_CHECKING:
    from sightline.app import Runtime

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Origin = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=255,
        pattern=_PRINTABLE,
        description="scheme://host[:port], or * for any origin",
    ),
]
Origins = Annotated[list[Origin], msgspec.Meta(min_length=1, max_length=100)]
TimeZone = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$",
        description="an IANA time zone",
        examples=["UTC", "Europe/Berlin", "America/New_York"],
    ),
]


class SiteCreate(msgspec.Struct, rename="camel"):
    domain: SiteRef
    #: Origins whose pages may send events; default: https://DOMAIN and https://www.DOMAIN.
    allowed_origins: Origins | None = None
    timezone: TimeZone = "UTC"


class SiteUpdate(msgspec.Struct, rename="camel"):
    domain: SiteRef | None = None
    allowed_origins: Origins | None = None
    timezone: TimeZone | None = None


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def site_answer(site: Site, principal: Principal) -> dict[str, Any]:
    return admin.site_json(site) | {
        "createdAt": admin.iso_time(site.created_at),
        "role": principal.role_on(site.id),
    }


def visible_site(runtime: Runtime, principal: Principal, key: str, minimum: str) -> Site:
    """The site named by id or domain, if the caller has at least ``minimum`` on it."""
    text = key.strip()
    site = runtime.store.get_site(text) or runtime.store.get_site(text.lower())
    if site is None or principal.role_on(site.id) is None:
        raise ApiError(404, "unknown_site", f"no site {key!r}")
    if not principal.may(site.id, minimum):
        raise ApiError(403, "forbidden", f"this needs the {minimum} role on {site.domain}")
    return site


def _fresh(runtime: Runtime, site_id: str) -> Site:
    site = runtime.store.get_site(site_id)
    if site is None:
        raise ApiError(404, "unknown_site", f"no site {site_id!r}")
    return site


async def list_sites(request: Request) -> Response:
    """The sites the caller has a role on."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    sites = await run_in_threadpool(runtime.store.list_sites)
    return json_response([site_answer(site, principal) for site in principal.visible(sites)])


async def create_site(request: Request) -> Response:
    """Add a site (admin of every site)."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    require_admin(principal)
    body = await read_json(request, SiteCreate)
    created = await run_admin(
        admin.add_site,
        runtime.store,
        body.domain,
        body.allowed_origins,
        body.timezone,
        actor=principal.email,
    )
    runtime.sites.reload()
    site = await run_in_threadpool(_fresh, runtime, created["id"])
    return json_response(site_answer(site, principal), status=201)


async def get_site(request: Request) -> Response:
    """One site the caller may see (by id or domain)."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    site = await run_in_threadpool(
        visible_site, runtime, principal, request.path_params["site_id"], "viewer"
    )
    return json_response(site_answer(site, principal))


async def update_site(request: Request) -> Response:
    """Change a site's domain, allowed origins or time zone (admin of the site)."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    site = await run_in_threadpool(
        visible_site, runtime, principal, request.path_params["site_id"], "admin"
    )
    body = await read_json(request, SiteUpdate)
    await run_admin(
        admin.update_site,
        runtime.store,
        site.id,
        domain=body.domain,
        origins=body.allowed_origins,
        timezone=body.timezone,
        goals=list(runtime.settings.conversion_events),
        actor=principal.email,
    )
    runtime.sites.reload()
    changed = await run_in_threadpool(_fresh, runtime, site.id)
    return json_response(site_answer(changed, principal))


async def rotate_key(request: Request) -> Response:
    """Give the site a new public site key; the old one is refused from now on."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    site = await run_in_threadpool(
        visible_site, runtime, principal, request.path_params["site_id"], "admin"
    )
    await run_admin(admin.rotate_site_key, runtime.store, site.id, actor=principal.email)
    runtime.sites.reload()
    changed = await run_in_threadpool(_fresh, runtime, site.id)
    return json_response(site_answer(changed, principal))


async def delete_site(request: Request) -> Response:
    """Delete a site and all its data (admin of every site)."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    site = await run_in_threadpool(
        visible_site, runtime, principal, request.path_params["site_id"], "viewer"
    )
    require_admin(principal)
    deleted = await run_admin(admin.delete_site, runtime.store, site.id, actor=principal.email)
    runtime.sites.reload()
    return json_response(deleted)


routes = [
    method_route("/api/v1/sites", GET=list_sites, POST=create_site),
    method_route("/api/v1/sites/{site_id}", GET=get_site, PATCH=update_site, DELETE=delete_site),
    Route("/api/v1/sites/{site_id}/rotate-key", rotate_key, methods=["POST"]),
]
