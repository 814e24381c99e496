"""The authorisation guard: an analytics answer that skipped authorize() fails closed."""

from __future__ import annotations

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sightline.api.auth import AuthorizationGuard


async def leaky(request: Request) -> Response:
    return JSONResponse({"secret": 42})


async def checked(request: Request) -> Response:
    request.scope.setdefault("state", {}).setdefault("authorized_sites", set()).add("site-a")
    return JSONResponse({"figures": 1})


async def refused(request: Request) -> Response:
    return JSONResponse({"error": {"code": "forbidden"}}, status_code=403)


async def collect(request: Request) -> Response:
    return Response(status_code=204)


APP = Starlette(
    routes=[
        Route("/api/v1/analytics/leaky", leaky),
        Route("/api/v1/analytics/checked", checked),
        Route("/api/v1/analytics/refused", refused),
        Route("/api/v1/analytics/collect", collect, methods=["POST"]),
        Route("/elsewhere", leaky),
    ],
    middleware=[Middleware(AuthorizationGuard)],
)


@pytest.mark.parametrize(
    ("method", "path", "status", "secret_visible"),
    [
        ("GET", "/api/v1/analytics/leaky", 500, False),
        ("GET", "/api/v1/analytics/checked", 200, False),
        ("GET", "/api/v1/analytics/refused", 403, False),
        ("POST", "/api/v1/analytics/collect", 204, False),
        ("GET", "/elsewhere", 200, True),
    ],
)
def test_guard(method: str, path: str, status: int, secret_visible: bool) -> None:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=APP)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path)

    response = anyio.run(call)
    assert response.status_code == status
    assert ("42" in response.text) is secret_visible
    if status == 500:
        assert response.json()["error"]["code"] == "unauthorized_route"
