"""The dashboard's HTTP side against a real server: the live event stream (server-sent
events), the HTML shell's security headers and the versioned static files."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sightline.dashboard import VERSION
from tests.support.server import BROWSER_UA, ServerProcess, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("dash"), rate_limit_per_minute=0) as srv:
        yield srv


@pytest.fixture(scope="module")
def site(server: ServerProcess) -> dict[str, Any]:
    return server.add_site("stream.example", origins=["*"])


def read_stream(
    server: ServerProcess, site: dict[str, Any], found: list[tuple[str, Any, float]]
) -> threading.Thread:
    """Read the stream in a thread, appending (event name, data, monotonic time)."""
    ready = threading.Event()

    def run() -> None:
        headers = {"Authorization": f"Bearer {server.token}", "Accept": "text/event-stream"}
        url = server.url + "/api/v1/analytics/realtime/stream"
        with httpx.stream(
            "GET", url, params={"site": site["id"]}, headers=headers, timeout=10
        ) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            name = ""
            for line in r.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    found.append((name, json.loads(line[6:]), time.monotonic()))
                    ready.set()
                    if name == "events":
                        return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10), "no first message on the stream"
    return thread


def test_the_stream_pushes_an_event_within_a_second_of_its_acknowledgement(
    server: ServerProcess, site: dict[str, Any]
) -> None:
    found: list[tuple[str, Any, float]] = []
    thread = read_stream(server, site, found)
    assert found[0][0] == "stats" and "activeUsers" in found[0][1]
    event = {
        "eventId": str(uuid.uuid4()),
        "eventType": "page_view",
        "visitorId": "v-stream",
        "sessionId": "s-stream",
        "pagePath": "/live",
        "pageTitle": "<b>title</b>",
    }
    response = httpx.post(
        server.url + "/api/v1/analytics/collect",
        json={"siteKey": site["siteKey"], "events": [event]},
        headers={"User-Agent": BROWSER_UA},
    )
    assert response.status_code == 204
    acknowledged = time.monotonic()
    thread.join(10)
    pushed = [(data, at) for name, data, at in found if name == "events"]
    assert pushed, found
    data, at = pushed[0]
    assert data[0]["pagePath"] == "/live" and data[0]["pageTitle"] == "<b>title</b>"
    assert at - acknowledged < 1.0


def test_the_stream_needs_credentials_and_is_finite_for_other_clients(
    server: ServerProcess, site: dict[str, Any]
) -> None:
    url = server.url + "/api/v1/analytics/realtime/stream"
    plain = httpx.get(url, params={"site": site["id"]}, headers={"Accept": "text/event-stream"})
    assert plain.status_code == 401
    # without Accept: text/event-stream, the current figures once, and the answer ends
    once = httpx.get(
        url, params={"site": site["id"]}, headers={"Authorization": f"Bearer {server.token}"}
    )
    assert once.status_code == 200
    assert once.text.count("event: ") == 1 and "event: stats" in once.text
    unknown = httpx.get(
        url,
        params={"site": "nope.example"},
        headers={"Authorization": f"Bearer {server.token}", "Accept": "text/event-stream"},
    )
    assert unknown.status_code == 404


def test_every_page_is_the_shell_with_a_strict_policy(server: ServerProcess) -> None:
    for path in ("/", "/realtime", "/funnels", "/login"):
        response = httpx.get(server.url + path)
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert "<script>" not in response.text and "style=" not in response.text
        assert f"/static/{VERSION}/main.js" in response.text
    missing = httpx.get(server.url + "/no-such-page")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_static_files_are_versioned_and_cached(server: ServerProcess) -> None:
    current = httpx.get(f"{server.url}/static/{VERSION}/main.js")
    assert current.status_code == 200
    assert current.headers["content-type"].startswith("text/javascript")
    assert "immutable" in current.headers["cache-control"]
    assert current.headers["content-encoding"] == "gzip"
    old = httpx.get(f"{server.url}/static/000000000000/app.css")
    assert old.status_code == 200 and old.headers["cache-control"] == "no-cache"
    assert httpx.get(f"{server.url}/static/{VERSION}/nope.js").status_code == 404
    # every module the entry point imports is served
    for name in set(re.findall(r'"\./([a-z-]+\.js)"', current.text)):
        assert httpx.get(f"{server.url}/static/{VERSION}/{name}").status_code == 200, name


def test_saved_funnels_are_shared_checked_and_guarded(
    server: ServerProcess, site: dict[str, Any]
) -> None:
    url = f"{server.url}/api/v1/sites/{site['id']}/funnels"
    admin = {"Authorization": f"Bearer {server.token}"}
    body = {"name": "Views to clicks", "steps": ["page_view;page:contains:/p/", "affiliate_click"]}
    created = httpx.post(url, json=body, headers=admin)
    assert created.status_code == 201, created.text
    saved = created.json()
    assert saved["steps"] == body["steps"] and saved["window"] == "1d"
    # the same name replaces the definition, keeping the id
    again = httpx.post(url, json={**body, "window": "2h"}, headers=admin)
    assert again.json()["id"] == saved["id"] and again.json()["window"] == "2h"
    listed = httpx.get(url, headers=admin).json()
    assert [f["name"] for f in listed] == ["Views to clicks"]
    # a saved funnel runs
    answer = server.get(
        "/api/v1/analytics/funnel", site=site["id"], step=listed[0]["steps"], window="2h"
    )
    assert answer.status_code == 200
    for bad in (
        {"name": "x", "steps": ["page_view"]},
        {"name": "x", "steps": ["page_view", "nope;country:bad:DE"]},
        {"name": "x", "steps": ["page_view", "click"], "window": "99y"},
        {"name": "", "steps": ["page_view", "click"]},
    ):
        refused = httpx.post(url, json=bad, headers=admin)
        assert refused.status_code == 400, (bad, refused.text)
    # viewers read but do not change
    server.cli("user", "add", "viewer@dash.test", "--role", "viewer")
    token = server.cli("token", "create", "--email", "viewer@dash.test")["token"]
    viewer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(url, headers=viewer).status_code == 200
    assert httpx.post(url, json=body, headers=viewer).status_code == 403
    assert httpx.delete(f"{url}/{saved['id']}", headers=viewer).status_code == 403
    assert httpx.delete(f"{url}/{saved['id']}", headers=admin).status_code == 204
    assert httpx.delete(f"{url}/{saved['id']}", headers=admin).status_code == 404
    assert httpx.get(url, headers=admin).json() == []
