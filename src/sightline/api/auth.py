"""Who is asking, and which sites they may see.

Two credentials: API tokens (``Authorization: Bearer sl_…``) and the dashboard's sign-in
cookie (``sightline_session``). The store keeps only the SHA-256 of either. A
cookie-authenticated request that changes something must also carry the CSRF token
bound to its sign-in in ``X-CSRF-Token``.

A user has a role on every site (``users.role``) and/or roles on single sites
(``site_grants``); their role on a site is the higher of the two: admin > analyst >
viewer. :func:`authorize` is the one gate every analytics endpoint passes, and
:class:`AuthorizationGuard` turns an analytics answer that did not pass it into an error.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sightline.admin import NO_ROLE, hash_token
from sightline.errors import ApiError, error_response

if TYPE_CHECKING:
    from sightline.app import Runtime
    from sightline.sites import Site
    from sightline.stores.base import Store

log = logging.getLogger(__name__)

#: admin > analyst > viewer
ROLE_RANK = {"viewer": 1, "analyst": 2, "admin": 3}
#: A credential lookup is remembered this long. Changes made through this process (revoke,
#: sign-out, new grants) drop the cache at once; other processes see them within this time.
CACHE_SECONDS = 5.0
SESSION_COOKIE = "sightline_session"
CSRF_COOKIE = "sightline_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ANALYTICS_PREFIX = "/api/v1/analytics/"
#: Analytics routes that take events in (authorised by site key, not by a user).
COLLECT_PREFIX = "/api/v1/analytics/collect"

#: The least role each analytics route needs on the site, whatever its handler asks for.
#: Aggregates are for viewers; per-visitor rows for analysts; export is admin-only (the
#: seed's ``@Roles('ADMIN')``).
ROUTE_MINIMUM: dict[str, str] = {
    "/api/v1/analytics/export": "admin",
    "/api/v1/analytics/events": "analyst",
    "/api/v1/analytics/sessions": "analyst",
}


def rank(role: str | None) -> int:
    return ROLE_RANK.get(role or "", 0)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user and what they may see."""

    user_id: str
    email: str
    #: Role on every site, or None.
    role: str | None
    #: Site id -> role, for sites granted one by one.
    grants: Mapping[str, str] = field(default_factory=dict)
    #: "token" or "session".
    via: str = "token"
    #: The API token's id, or the sign-in's hash.
    credential_id: str = ""
    csrf_token: str = ""
    #: When a sign-in ends (ms since the epoch); 0 for tokens.
    expires_at: int = 0

    @property
    def token_id(self) -> str:
        return self.credential_id if self.via == "token" else ""

    @property
    def is_admin(self) -> bool:
        """Admin of every site: may manage users and add or delete sites."""
        return self.role == "admin"

    def role_on(self, site_id: str) -> str | None:
        """The higher of the user's role on every site and their grant on this one."""
        granted = self.grants.get(site_id)
        return granted if rank(granted) > rank(self.role) else self.role

    def may(self, site_id: str, minimum: str = "viewer") -> bool:
        return rank(self.role_on(site_id)) >= ROLE_RANK[minimum]

    def has_role(self, minimum: str) -> bool:
        """The role on every site is at least ``minimum``."""
        return rank(self.role) >= ROLE_RANK[minimum]

    def visible(self, sites: Iterable[Site]) -> list[Site]:
        """The sites this user has any role on, in the given order."""
        return [site for site in sites if self.role_on(site.id) is not None]


def _principal(row: Mapping[str, Any], via: str) -> Principal:
    role = row["role"]
    return Principal(
        user_id=row["user_id"],
        email=row["email"],
        role=None if role == NO_ROLE or role not in ROLE_RANK else role,
        grants={g["siteId"]: g["role"] for g in row["grants"] if g["role"] in ROLE_RANK},
        via=via,
        credential_id=row["credential_id"],
        csrf_token=row.get("csrf_token") or "",
        expires_at=int(row.get("expires_at") or 0),
    )


def hash_session(value: str) -> str:
    return hashlib.sha256(b"session:" + value.encode()).hexdigest()


class Authenticator:
    """Finds the user behind a request's credential, with a short cache."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, tuple[Principal | None, float]] = {}
        store.watch_auth(self.forget)

    def authenticate(self, request: Request) -> Principal:
        """The caller, or 401; for cookie sign-ins, 403 on an unsafe request without CSRF."""
        known: Principal | None = getattr(request.state, "principal", None)
        if known is not None:
            return known
        header = request.headers.get("authorization")
        if header is not None:
            principal = self._from_token(header)
        else:
            cookie = request.cookies.get(SESSION_COOKIE)
            if not cookie:
                raise ApiError(
                    401,
                    "unauthenticated",
                    "send an API token as `Authorization: Bearer <token>` or sign in",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            principal = self._from_session(cookie)
            if request.method not in SAFE_METHODS:
                check_csrf(request, principal)
        request.state.principal = principal
        return principal

    def _from_token(self, header: str) -> Principal:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "unauthenticated",
                "send an API token as `Authorization: Bearer <token>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        principal = self._lookup("t:" + hash_token(token), "token")
        if principal is None:
            raise ApiError(
                401,
                "invalid_token",
                "this API token is unknown or revoked",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return principal

    def _from_session(self, cookie: str) -> Principal:
        principal = self._lookup("s:" + hash_session(cookie), "session")
        if principal is None or principal.expires_at <= time.time() * 1000:
            raise ApiError(
                401,
                "session_expired",
                "the sign-in has ended; sign in again",
                headers={"Set-Cookie": expired_cookie(SESSION_COOKIE)},
            )
        return principal

    def authenticate_session(self, value: str) -> Principal:
        """The user behind a sign-in cookie's value (just after signing in)."""
        return self._from_session(value)

    def _lookup(self, key: str, via: str) -> Principal | None:
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        digest = key[2:]
        if via == "token":
            row = self.store.principal_for_token(digest)
            if row is not None:
                self.store.record_token_use(row["credential_id"])
        else:
            row = self.store.principal_for_session(digest)
        principal = _principal(row, via) if row else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (principal, now + CACHE_SECONDS)
        return principal

    def forget(self) -> None:
        """Drop cached lookups (after a revocation, a sign-out or a change of roles)."""
        self._cache.clear()


def check_origin(request: Request) -> None:
    """A browser request from another site's page is refused (its ``Origin`` names a
    host other than this one): sign-in forms and cookie-authenticated changes."""
    origin = request.headers.get("origin")
    if not origin:
        return
    host = request.headers.get("host", "")
    if urlsplit(origin).netloc.lower() != host.lower():
        raise ApiError(403, "csrf_failed", "this request came from another site's page")


def check_csrf(request: Request, principal: Principal) -> None:
    """A cookie-authenticated unsafe request must come from a page of this site and echo
    its sign-in's CSRF token."""
    check_origin(request)
    given = request.headers.get(CSRF_HEADER, "")
    if not principal.csrf_token or not hmac.compare_digest(
        given.encode(), principal.csrf_token.encode()
    ):
        raise ApiError(
            403,
            "csrf_failed",
            f"send the sign-in's CSRF token (cookie {CSRF_COOKIE}) in the X-CSRF-Token header",
        )


def expired_cookie(name: str) -> str:
    return f"{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"


def require_role(principal: Principal, minimum: str) -> None:
    """The caller's role on every site must be at least ``minimum``."""
    if not principal.has_role(minimum):
        raise ApiError(403, "forbidden", f"this needs the {minimum} role on every site")


def require_admin(principal: Principal) -> None:
    require_role(principal, "admin")


def authorize(request: Request, runtime: Runtime, site: Site, minimum: str = "viewer") -> Principal:
    """The caller, if they may act on ``site`` with at least the ``minimum`` role.

    The route's own minimum (:data:`ROUTE_MINIMUM`) applies too. Raises 401 without valid
    credentials, 404 ``unknown_site`` when the caller has no role on the site (so its
    existence is not revealed) and 403 when their role is too low.
    """
    principal = runtime.auth.authenticate(request)
    needed = max(minimum, ROUTE_MINIMUM.get(request.scope["path"], "viewer"), key=rank)
    role = principal.role_on(site.id)
    if role is None:
        wanted = request.query_params.get("site", "").strip()
        raise ApiError(404, "unknown_site", f"no site {wanted!r}" if wanted else "no such site")
    if rank(role) < ROLE_RANK[needed]:
        raise ApiError(
            403, "forbidden", f"this needs the {needed} role on {site.domain}; you are {role}"
        )
    state: dict[str, Any] = request.scope.setdefault("state", {})
    state.setdefault("authorized_sites", set()).add(site.id)
    return principal


class AuthorizationGuard:
    """ASGI middleware: an analytics answer (2xx/3xx) given without an :func:`authorize`
    call becomes a 500, so an endpoint that forgets the gate fails closed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not path.startswith(ANALYTICS_PREFIX)
            or path.startswith(COLLECT_PREFIX)
            or scope.get("method") == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        blocked = False

        async def guarded(message: Message) -> None:
            nonlocal blocked
            if blocked:
                return
            if (
                message["type"] == "http.response.start"
                and message["status"] < 400
                and not state.get("authorized_sites")
            ):
                blocked = True
                log.error("%s answered without authorize(); refused", path)
                response = error_response(
                    ApiError(500, "unauthorized_route", "this endpoint did not check access")
                )
                await response(scope, receive, send)
                return
            await send(message)

        await self.app(scope, receive, guarded)
