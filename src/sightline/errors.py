"""The one shape every HTTP error takes: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

_encode = msgspec.json.Encoder().encode


class ApiError(Exception):
    """Raised anywhere under a route; rendered as a JSON error with ``status``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def error_response(error: ApiError, extra_headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details is not None:
        body["details"] = error.details
    return Response(
        _encode({"error": body}),
        status_code=error.status,
        media_type="application/json",
        headers={**error.headers, **(extra_headers or {})},
    )


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        _encode(data), status_code=status, media_type="application/json", headers=headers
    )
