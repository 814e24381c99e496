"""The browser tracker, served at ``/sdk/v1/``.

- ``sightline.js``: the core (``<script src=".../sdk/v1/sightline.js" data-site-key=...>``);
- ``sightline-extras.js``: its optional features, which the core loads by itself;
- ``sightline-react.js``: React bindings for pages that have ``window.React``.

Answers carry a strong ETag and ``Cache-Control``; ``If-None-Match`` gets a 304, and
clients that accept gzip get the gzipped bytes. The source and the build are in ``sdk/``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sightline.errors import ApiError
from sightline.tracker.assets import (
    CACHE_CONTROL,
    MEDIA_TYPE,
    Asset,
    accepts_gzip,
    etag_matches,
    load_assets,
)

__all__ = ["ASSETS", "Asset", "routes", "serve_asset"]

#: The built files by name, loaded when Sightline starts.
ASSETS: dict[str, Asset] = load_assets()


async def serve_asset(request: Request) -> Response:
    asset = ASSETS.get(request.path_params["name"])
    if asset is None:
        raise ApiError(
            404, "not_found", f"no tracker file is called {request.path_params['name']!r}"
        )
    gzipped = accepts_gzip(request.headers.get("accept-encoding", ""))
    body, etag = (asset.gzipped, asset.gzip_etag) if gzipped else (asset.body, asset.etag)
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE_CONTROL,
        "Vary": "Accept-Encoding",
        # any site may load the script, also with crossorigin="anonymous" or under COEP
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    if etag_matches(request.headers.get("if-none-match"), asset.validators()):
        return Response(status_code=304, headers=headers)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        body = b""
    return Response(body, media_type=MEDIA_TYPE, headers=headers)


routes: list[BaseRoute] = [Route("/sdk/v1/{name}", serve_asset, methods=["GET", "HEAD"])]
