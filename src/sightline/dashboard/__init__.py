"""The dashboard: one HTML shell for every page, ES modules and CSS under ``static/``.

Every page (``/``, ``/realtime``, ``/funnels``, …) answers the same small shell; the
scripts read the page and its state (site, range, filters, granularity, …) from the URL
and draw it from the analytics API. Static files are served under
``/static/<version>/`` where the version is a digest of their contents, so they are
cached for a year and a new release is fetched at once.

Security: a strict Content-Security-Policy (scripts and styles from this origin only,
no inline code, no framing), and the scripts build the page with ``textContent``, never
with markup made of data. Changes go through the API, which wants the sign-in's CSRF
token (see api/session.py).
"""

from __future__ import annotations

import gzip
import hashlib
import html
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from sightline.errors import ApiError

STATIC_DIR = Path(__file__).parent / "static"

#: The pages of the dashboard (the first path segment); all answer the same shell.
VIEWS = frozenset(
    {
        "login",
        "realtime",
        "products",
        "funnels",
        "retention",
        "sessions",
        "exports",
        "settings",
        "users",
        "experiments",
        "privacy",
        "account",
    }
)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}

_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    gzipped: bytes
    media_type: str


def load_static(root: Path = STATIC_DIR) -> tuple[str, dict[str, StaticFile]]:
    """Every file under ``root`` by its relative path, and a digest of them all."""
    files: dict[str, StaticFile] = {}
    digest = hashlib.sha256()
    for path in sorted(p for p in root.iterdir() if p.is_file()):
        name = path.name
        body = path.read_bytes()
        digest.update(name.encode() + b"\0" + body + b"\0")
        media = _MEDIA_TYPES.get(path.suffix) or mimetypes.guess_type(name)[0] or "text/plain"
        files[name] = StaticFile(body, gzip.compress(body, 9, mtime=0), media)
    return digest.hexdigest()[:12], files


VERSION, FILES = load_static()

_SHELL = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Sightline</title>
<link rel="icon" href="{static}/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{static}/app.css">
<link rel="modulepreload" href="{static}/dom.js">
<link rel="modulepreload" href="{static}/api.js">
<link rel="modulepreload" href="{static}/state.js">
<link rel="modulepreload" href="{static}/controls.js">
<link rel="modulepreload" href="{static}/chart.js">
<link rel="modulepreload" href="{static}/page-overview.js">
<script type="module" src="{static}/main.js"></script>
</head><body>
<a class="skip" href="#main">Skip to content</a>
<div id="app" data-static="{static}" aria-busy="true">
<noscript><p class="notice">The Sightline dashboard needs JavaScript.
The analytics API works without it: see /api/v1/openapi.json.</p></noscript>
</div>
</body></html>"""


def shell_page() -> HTMLResponse:
    static = html.escape(f"/static/{VERSION}")
    return HTMLResponse(
        _SHELL.format(static=static),
        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
    )


async def start_page(request: Request) -> HTMLResponse:
    """The overview (or the sign-in form, which the scripts show when signed out)."""
    return shell_page()


async def view_page(request: Request) -> HTMLResponse:
    """Any other page of the dashboard."""
    view = request.path_params["view"]
    if view not in VIEWS:
        raise ApiError(404, "not_found", f"no page {view[:100]!r}")
    return shell_page()


async def static_file(request: Request) -> Response:
    """A dashboard script, style sheet or image; cached for a year under its version."""
    name = request.path_params["name"]
    found = FILES.get(name)
    if found is None:
        raise ApiError(404, "not_found", f"no static file {name[:200]!r}")
    current = request.path_params["version"] == VERSION
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable" if current else "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept-Encoding",
    }
    body = found.body
    if "gzip" in request.headers.get("accept-encoding", ""):
        body = found.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=found.media_type, headers=headers)


routes: list[BaseRoute] = [
    Route("/", start_page, methods=["GET"]),
    Route("/static/{version}/{name}", static_file, methods=["GET"]),
    Route("/{view}", view_page, methods=["GET"]),
]
