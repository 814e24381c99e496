"""The privacy API: data-subject export and erasure, and each site's privacy settings.

Admin only: of the site named in the request, or of every site when none is named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sightline.api.auth import Principal, require_admin
from sightline.api.bodies import SiteRef, method_route, read_json, run_admin
from sightline.api.sites import visible_site
from sightline.errors import ApiError, json_response
from sightline.privacy.retention import set_site_privacy, site_privacy_json

if TYPE_CHECKING:
    from sightline.app import Runtime
    from sightline.privacy.service import Subject

SubjectId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")
]


class SubjectRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Whose data: a visitor id and/or a user id, on one site or (none given) all."""

    visitor_id: SubjectId | None = None
    user_id: SubjectId | None = None
    site: SiteRef | None = None


class SitePrivacyUpdate(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    consent_mode: Literal["cookieless", "consent-required"] | None = None
    retention_days: Annotated[int, msgspec.Meta(ge=0, le=36500)] | None = None


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _subject(request: Request, runtime: Runtime) -> tuple[Subject, Principal]:
    principal = runtime.auth.authenticate(request)
    if request.method == "GET":
        query = request.query_params
        try:
            body = msgspec.convert(
                {
                    k: v
                    for k, v in {
                        "visitorId": query.get("visitorId"),
                        "userId": query.get("userId"),
                        "site": query.get("site"),
                    }.items()
                    if v is not None
                },
                SubjectRequest,
            )
        except msgspec.ValidationError as exc:
            raise ApiError(400, "invalid_query", f"the query does not fit: {exc}") from None
    else:
        body = await read_json(request, SubjectRequest)
    if body.visitor_id is None and body.user_id is None:
        raise ApiError(400, "missing_subject", "give a visitorId or a userId")
    if body.site is not None:
        await run_in_threadpool(visible_site, runtime, principal, body.site, "admin")
    else:
        require_admin(principal)
    subject = await run_admin(
        runtime.privacy.subject,
        [body.visitor_id] if body.visitor_id else [],
        [body.user_id] if body.user_id else [],
        body.site,
    )
    return subject, principal


async def export_subject(request: Request) -> Response:
    """A zip archive of everything stored about the subject, with its manifest."""
    runtime = _runtime(request)
    subject, principal = await _subject(request, runtime)
    archive, manifest = await run_admin(runtime.privacy.export, subject, principal.email)
    total = sum(manifest["found"].values())
    return Response(
        archive,
        media_type="application/zip",
        headers={
            "Content-Disposition": 'attachment; filename="sightline-subject-export.zip"',
            "X-Sightline-Records": str(total),
            "Cache-Control": "no-store",
        },
    )


async def erase_subject(request: Request) -> Response:
    """Erase the subject from every tier; answers when done, with the counts per tier."""
    runtime = _runtime(request)
    subject, principal = await _subject(request, runtime)
    report: dict[str, Any] = await run_admin(runtime.privacy.erase, subject, principal.email)
    runtime.sites.reload()
    return json_response(report)


async def get_site_privacy(request: Request) -> Response:
    """A site's consent mode and retention."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    site = await run_in_threadpool(
        visible_site, runtime, principal, request.path_params["site_id"], "viewer"
    )
    return json_response(
        site_privacy_json(site.id, site.domain, site.consent_mode, site.retention_days)
    )


async def update_site_privacy(request: Request) -> Response:
    """Change a site's consent mode and/or retention (admin of the site)."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    site = await run_in_threadpool(
        visible_site, runtime, principal, request.path_params["site_id"], "admin"
    )
    body = await read_json(request, SitePrivacyUpdate)
    result = await run_admin(
        set_site_privacy,
        runtime.privacy,
        site.id,
        body.consent_mode,
        body.retention_days,
        principal.email,
    )
    runtime.sites.reload()
    return json_response(result)


async def run_retention(request: Request) -> Response:
    """Apply every site's retention now (admin of every site)."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    require_admin(principal)
    report = await run_admin(runtime.privacy.apply_retention, None, principal.email)
    return json_response(report)


routes = [
    method_route("/api/v1/privacy/export", GET=export_subject, POST=export_subject),
    Route("/api/v1/privacy/erase", erase_subject, methods=["POST"]),
    Route("/api/v1/privacy/retention", run_retention, methods=["POST"]),
    method_route(
        "/api/v1/privacy/sites/{site_id}", GET=get_site_privacy, PATCH=update_site_privacy
    ),
]
