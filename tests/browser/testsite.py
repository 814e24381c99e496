"""A small website for the browser tests, on its own origin (so CORS is exercised).

It serves the pages a test registers, the vendored React builds under ``/vendor/``, a
partner site for outbound and affiliate links on a second origin, and a reverse proxy to
Sightline under ``/insights/`` (a first-party setup: the tracker and its endpoint served
from the site's own domain under a path of its choosing).
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from tests.support.server import free_port

FIXTURES = Path(__file__).parent / "fixtures"
#: The path prefix under which the site proxies Sightline (first-party serving).
PROXY_PREFIX = "/insights/"
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


@dataclass
class Page:
    html: str
    #: Seconds to wait before answering (a slow page).
    delay: float = 0.0
    #: Also answer every path below this one (a single-page app's client-side routes).
    spa: bool = False


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A browser that navigates away mid-answer closes its connection: not an error."""


class TestSite:
    """Two origins on one server: ``origin`` (the site) and ``partner`` (another site)."""

    __test__ = False

    def __init__(self, sightline_url: str) -> None:
        self.sightline = urlsplit(sightline_url)
        self.pages: dict[str, Page] = {}
        #: Proxied POSTs still to be refused with a 503 (a struggling server).
        self.fail_next = 0
        #: (monotonic time, method, path, status) of every proxied request.
        self.proxied: list[tuple[float, str, str, int]] = []
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        #: Same server, another host name: a different origin, for outbound links.
        self.partner = f"http://localhost:{self.port}"
        self._server = _Server(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> TestSite:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, path: str, html: str, *, delay: float = 0.0, spa: bool = False) -> str:
        """Serve ``html`` at ``path``; returns the page's URL."""
        self.pages[path] = Page(html, delay, spa)
        return self.origin + path

    def find(self, path: str) -> Page | None:
        if path in self.pages:
            return self.pages[path]
        for prefix, page in self.pages.items():
            if page.spa and path.startswith(prefix.rstrip("/") + "/"):
                return page
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.answer()

            def do_POST(self) -> None:
                self.answer()

            def do_OPTIONS(self) -> None:
                self.answer()

            def answer(self) -> None:
                path = urlsplit(self.path).path
                if path.startswith(PROXY_PREFIX):
                    self.proxy(self.path[len(PROXY_PREFIX) - 1 :])
                elif path.startswith("/vendor/") and self.command == "GET":
                    file = FIXTURES / "vendor" / path.removeprefix("/vendor/")
                    if file.is_file() and file.parent == FIXTURES / "vendor":
                        self.send(200, file.read_bytes(), "text/javascript")
                    else:
                        self.send(404, b"not found", "text/plain")
                elif path == "/favicon.ico":
                    self.send(204, b"", "image/x-icon")
                elif path == "/blank":
                    # a page of the site without the tracker
                    self.send(200, b"<!doctype html><title>blank</title>")
                elif self.headers.get("host", "").startswith("localhost"):
                    # the partner site: every page exists
                    self.send(200, b"<!doctype html><title>Partner</title><h1>Partner</h1>")
                else:
                    page = site.find(path)
                    if page is None:
                        self.send(404, b"<!doctype html><title>Not found</title>")
                        return
                    if page.delay:
                        time.sleep(page.delay)
                    self.send(200, page.html.encode())

            def proxy(self, target: str) -> None:
                """Forward to Sightline, as nginx or Caddy would on the site's domain."""
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                if self.command == "POST" and site.fail_next > 0:
                    site.fail_next -= 1
                    site.proxied.append((time.monotonic(), self.command, target, 503))
                    self.send(503, b'{"error": {"code": "busy"}}', "application/json")
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                headers["X-Forwarded-For"] = self.client_address[0]
                host = site.sightline.hostname or "127.0.0.1"
                conn = http.client.HTTPConnection(host, site.sightline.port, timeout=30)
                try:
                    conn.request(self.command, target, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    site.proxied.append((time.monotonic(), self.command, target, response.status))
                    self.send_response(response.status)
                    for key, value in response.getheaders():
                        if key.lower() not in _HOP_HEADERS:
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    conn.close()

            def send(self, status: int, body: bytes, media_type: str = "text/html") -> None:
                self.send_response(status)
                self.send_header("Content-Type", f"{media_type}; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

        return Handler
