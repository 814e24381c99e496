"""Plumbing shared by the administration API: JSON bodies decoded and validated by
msgspec, administrative refusals turned into 4xx, and one route per path.

The same Structs describe the bodies in the OpenAPI document, so what is documented is
what is checked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sightline.admin import AdminError
from sightline.errors import ApiError

T = TypeVar("T")

#: Largest administration request body, in bytes.
MAX_BODY_BYTES = 64 * 1024

#: Printable text without control characters.
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Role = Literal["admin", "analyst", "viewer"]
#: Neither "@", control characters nor any kind of space (as Python's str.isspace sees it).
_EMAIL_PART = r"[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+"
Email = Annotated[
    str, msgspec.Meta(min_length=3, max_length=254, pattern=f"^{_EMAIL_PART}@{_EMAIL_PART}$")
]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
NewPassword = Annotated[str, msgspec.Meta(min_length=8, max_length=1024)]
Label = Annotated[str, msgspec.Meta(max_length=100, pattern=_PRINTABLE)]
SiteRef = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=253, pattern=_PRINTABLE, description="a site id or domain"
    ),
]


async def read_json(request: Request, kind: type[T]) -> T:
    """The body as ``kind``: 415 unless JSON, 413 if too large, 400 if it does not fit."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(
                413, "body_too_large", f"the request body is larger than {MAX_BODY_BYTES} bytes"
            )
        chunks.append(chunk)
    try:
        return msgspec.json.decode(b"".join(chunks), type=kind)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "invalid_body", f"the request body does not fit: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ApiError(
            400, "malformed_json", f"the request body is not valid JSON: {exc}"
        ) from None


async def run_admin(operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run an administrative operation off the event loop; its refusals become 4xx."""
    try:
        return await run_in_threadpool(operation, *args, **kwargs)
    except AdminError as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from None


Endpoint = Callable[[Request], Awaitable[Response]]


def method_route(path: str, **handlers: Endpoint) -> Route:
    """One route for ``path`` whose methods go to their handlers (GET=..., POST=...), so a
    405 lists every allowed method in ``Allow``."""

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    name = "_".join(h.__name__ for h in handlers.values())
    return Route(path, dispatch, methods=list(handlers), name=name)
