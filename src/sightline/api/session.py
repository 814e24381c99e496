"""The caller's own credentials: dashboard sign-in and sign-out, password, API tokens.

Signing in sets two cookies: ``sightline_session`` (HttpOnly, SameSite=Lax; the store
keeps only its SHA-256) and ``sightline_csrf`` (readable by the dashboard's scripts,
SameSite=Strict). A cookie-authenticated request that changes something must send the
CSRF token in ``X-CSRF-Token``. Failed sign-ins are throttled per address and e-mail,
and every refusal reads the same, whether or not the e-mail exists.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sightline import admin
from sightline.api.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    check_origin,
    expired_cookie,
    hash_session,
)
from sightline.api.bodies import (
    Email,
    Label,
    NewPassword,
    Password,
    method_route,
    read_json,
    run_admin,
)
from sightline.errors import ApiError, json_response

if TYPE_CHECKING:
    from sightline.app import Runtime


class LoginBody(msgspec.Struct, rename="camel"):
    email: Email
    password: Password


class PasswordBody(msgspec.Struct, rename="camel"):
    current_password: Password
    new_password: NewPassword


class TokenBody(msgspec.Struct, rename="camel"):
    #: A label to recognise the token by.
    name: Label = ""


class LoginThrottle:
    """Counts failed sign-ins in a sliding window and says how long to wait.

    Three limits: per address and e-mail (guessing one account), per address (guessing
    many), and per e-mail from anywhere (a distributed attack on one account, set high
    so that strangers cannot easily lock a user out).
    """

    WINDOW = 15 * 60.0
    PER_ADDRESS_AND_EMAIL = 5
    PER_ADDRESS = 30
    PER_EMAIL = 100

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}

    def _keys(self, address: str, email: str) -> list[tuple[str, int]]:
        return [
            (f"a+e:{address}:{email}", self.PER_ADDRESS_AND_EMAIL),
            (f"a:{address}", self.PER_ADDRESS),
            (f"e:{email}", self.PER_EMAIL),
        ]

    def retry_after(self, address: str, email: str, now: float | None = None) -> float:
        """Seconds until another attempt is allowed (0: now)."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        for key, limit in self._keys(address, email):
            times = self._failures.get(key)
            if not times:
                continue
            while times and times[0] <= now - self.WINDOW:
                times.popleft()
            if len(times) >= limit:
                wait = max(wait, times[0] + self.WINDOW - now)
        return wait

    def record_failure(self, address: str, email: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self._failures) > 100_000:
            self._failures = {
                k: v for k, v in self._failures.items() if v and v[-1] > now - self.WINDOW
            }
        for key, limit in self._keys(address, email):
            times = self._failures.setdefault(key, deque(maxlen=limit))
            times.append(now)

    def record_success(self, address: str, email: str) -> None:
        self._failures.pop(f"a+e:{address}:{email}", None)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def login_throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle | None = getattr(request.app.state, "login_throttle", None)
    if throttle is None:
        throttle = LoginThrottle()
        request.app.state.login_throttle = throttle
    return throttle


def _throttled(wait: float) -> ApiError:
    return ApiError(
        429,
        "too_many_attempts",
        "too many failed attempts; wait before trying again",
        headers={"Retry-After": str(max(1, int(wait) + 1))},
    )


def check_credentials(runtime: Runtime, email: str, password: str) -> str | None:
    """The user id if ``password`` is right for ``email``; same cost when it does not exist."""
    found = runtime.store.password_hash(email)
    stored = found[1] if found else None
    if not admin.verify_password(stored, password) or found is None or stored is None:
        return None
    if admin.password_needs_rehash(stored):
        runtime.store.set_password_hash(found[0], admin.hash_password(password))
    return found[0]


def cookies_secure(request: Request, runtime: Runtime) -> bool:
    mode = runtime.settings.cookie_secure
    if mode != "auto":
        return mode == "always"
    return request.url.scheme == "https" or runtime.settings.public_url.startswith("https://")


def me_json(runtime: Runtime, principal: Principal) -> dict[str, Any]:
    sites = principal.visible(runtime.store.list_sites())
    answer: dict[str, Any] = {
        "id": principal.user_id,
        "email": principal.email,
        "role": principal.role,
        "sites": [
            {"siteId": site.id, "domain": site.domain, "role": principal.role_on(site.id)}
            for site in sites
        ],
        "via": principal.via,
    }
    if principal.via == "session":
        answer["csrfToken"] = principal.csrf_token
        answer["expiresAt"] = admin.iso_time(principal.expires_at)
    return answer


async def login(request: Request) -> Response:
    """Sign in with e-mail and password; sets the sign-in and CSRF cookies."""
    runtime = _runtime(request)
    check_origin(request)
    body = await read_json(request, LoginBody)
    email = body.email.strip().lower()
    address = runtime.client_ip(request)
    throttle = login_throttle(request)
    wait = throttle.retry_after(address, email)
    if wait:
        raise _throttled(wait)
    user_id = await run_in_threadpool(check_credentials, runtime, email, body.password)
    if user_id is None:
        throttle.record_failure(address, email)
        raise ApiError(401, "invalid_credentials", "the e-mail or the password is wrong")
    throttle.record_success(address, email)
    value = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    lifetime = timedelta(hours=max(1, runtime.settings.session_hours))

    def start() -> dict[str, Any]:
        runtime.store.add_login_session(hash_session(value), user_id, csrf, lifetime)
        runtime.store.record_audit(email, "auth.login", user_id, {})
        principal = runtime.auth.authenticate_session(value)
        return me_json(runtime, principal)

    me = await run_in_threadpool(start)
    response = json_response(me)
    secure = cookies_secure(request, runtime)
    seconds = int(lifetime.total_seconds())
    response.set_cookie(
        SESSION_COOKIE, value, max_age=seconds, httponly=True, samesite="lax", secure=secure
    )
    response.set_cookie(
        CSRF_COOKIE, csrf, max_age=seconds, httponly=False, samesite="strict", secure=secure
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def logout(request: Request) -> Response:
    """End this sign-in (the cookie is checked for CSRF like any change). An ended or
    unknown sign-in answers 401, and its cookie is cleared all the same."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    if principal.via == "session":
        await run_in_threadpool(
            runtime.store.delete_login_sessions, id_hash=principal.credential_id
        )
    response = Response(status_code=204)
    response.headers.append("Set-Cookie", expired_cookie(SESSION_COOKIE))
    response.headers.append("Set-Cookie", f"{CSRF_COOKIE}=; Path=/; Max-Age=0; SameSite=Strict")
    return response


async def me(request: Request) -> Response:
    """Who is signed in, with their role on every site and on each site they may see."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    answer = await run_in_threadpool(me_json, runtime, principal)
    return json_response(answer, headers={"Cache-Control": "no-store"})


async def change_password(request: Request) -> Response:
    """Change the caller's password; every other sign-in of theirs ends."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    body = await read_json(request, PasswordBody)
    address = runtime.client_ip(request)
    throttle = login_throttle(request)
    wait = throttle.retry_after(address, principal.email)
    if wait:
        raise _throttled(wait)
    user_id = await run_in_threadpool(
        check_credentials, runtime, principal.email, body.current_password
    )
    if user_id != principal.user_id:
        throttle.record_failure(address, principal.email)
        raise ApiError(403, "invalid_credentials", "the current password is wrong")
    keep = principal.credential_id if principal.via == "session" else None
    await run_admin(
        admin.set_password,
        runtime.store,
        principal.user_id,
        body.new_password,
        actor=principal.email,
        keep_session=keep,
    )
    return Response(status_code=204)


async def list_tokens(request: Request) -> Response:
    """The caller's API tokens (never the tokens themselves)."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    records = await run_in_threadpool(runtime.store.api_token_records, principal.user_id)
    return json_response([admin.token_json(r) for r in records])


async def create_token(request: Request) -> Response:
    """A new API token for the caller, shown once."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    body = await read_json(request, TokenBody)
    token = await run_admin(
        admin.create_token, runtime.store, principal.user_id, body.name, actor=principal.email
    )
    return json_response(token, status=201, headers={"Cache-Control": "no-store"})


async def revoke_token(request: Request) -> Response:
    """Revoke one of the caller's tokens (an admin of every site may revoke any)."""
    runtime = _runtime(request)
    principal = runtime.auth.authenticate(request)
    token_id = request.path_params["token_id"]
    records = await run_in_threadpool(runtime.store.api_token_records, None, token_id)
    if not records or (records[0]["user_id"] != principal.user_id and not principal.is_admin):
        raise ApiError(404, "unknown_token", f"no API token {token_id!r}")
    revoked = await run_admin(admin.revoke_token, runtime.store, token_id, actor=principal.email)
    return json_response(revoked)


routes = [
    Route("/api/v1/auth/login", login, methods=["POST"]),
    Route("/api/v1/auth/logout", logout, methods=["POST"]),
    Route("/api/v1/auth/me", me, methods=["GET"]),
    Route("/api/v1/auth/password", change_password, methods=["POST"]),
    method_route("/api/v1/auth/tokens", GET=list_tokens, POST=create_token),
    Route("/api/v1/auth/tokens/{token_id}", revoke_token, methods=["DELETE"]),
]
