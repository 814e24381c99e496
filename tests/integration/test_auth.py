"""Authentication and authorisation against a real server.

Users with roles on single sites must never see another site: every GET route under
/api/v1/analytics/ (discovered from the app) is tried with every way of naming a site.
Role gates, revocation, dashboard sign-in with CSRF, and the login throttle are checked
over HTTP as a browser or a script would meet them.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from sightline.app import create_app
from sightline.config import Settings
from tests.support.server import BROWSER_UA, ServerProcess, running_server

COLLECT = "/api/v1/analytics/collect"
PASSWORD = "correct horse battery"
#: Page path stored only for site B: it must never appear in an answer to a user of site A
#: (unless their request itself contains it, as in an error message).
SECRET_B = "/only-on-b-7f3a"
#: Page title stored only for site B, and never sent in a request.
TITLE_B = "Title only site B has 91c2"


def analytics_get_routes() -> list[str]:
    """Every GET route under /api/v1/analytics/ that the app serves (collect excluded)."""
    app = create_app(Settings())
    paths = {
        route.path
        for route in app.routes
        if getattr(route, "path", "").startswith("/api/v1/analytics/")
        and "GET" in (getattr(route, "methods", None) or ())
    }
    return sorted(paths)


def now_ms() -> int:
    return int(time.time() * 1000)


def send_events(srv: ServerProcess, site: dict[str, Any], path: str, n: int) -> None:
    visitor = "v-" + uuid.uuid4().hex[:8]
    events = [
        {
            "eventId": str(uuid.uuid4()),
            "eventType": event_type,
            "timestamp": now_ms() - 1000 * i,
            "sessionId": "s-" + visitor,
            "visitorId": visitor,
            "pagePath": path,
            "pageUrl": f"https://{site['domain']}{path}",
            "pageTitle": TITLE_B if path == SECRET_B else "A page",
            "properties": {"productId": path.strip("/")} if event_type != "page_view" else {},
        }
        for i, event_type in enumerate(["page_view", "product_view", "affiliate_click"] * n)
    ]
    response = httpx.post(
        srv.url + COLLECT,
        json={"siteKey": site["siteKey"], "events": events, "metadata": {"sentAt": now_ms()}},
        headers={"User-Agent": BROWSER_UA},
        timeout=30,
    )
    assert response.status_code == 204, response.text


class Caller:
    """A user with an API token."""

    def __init__(self, srv: ServerProcess, email: str, token: str) -> None:
        self.srv = srv
        self.email = email
        self.token = token

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.srv.url + path, headers=headers, timeout=60, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)


def admin_caller(srv: ServerProcess) -> Caller:
    return Caller(srv, "admin@test.invalid", srv.token)


def make_user(
    srv: ServerProcess, email: str, role: str | None = None, sites: dict[str, str] | None = None
) -> Caller:
    admin = admin_caller(srv)
    created = admin.request(
        "POST",
        "/api/v1/users",
        json={
            "email": email,
            "password": PASSWORD,
            "role": role,
            "sites": [{"site": s, "role": r} for s, r in (sites or {}).items()],
        },
    )
    assert created.status_code == 201, created.text
    token = srv.cli("token", "create", "--email", email, "--name", "test")["token"]
    return Caller(srv, email, token)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("auth"), rate_limit_per_minute=0) as server:
        yield server


@pytest.fixture(scope="module")
def world(srv: ServerProcess) -> dict[str, Any]:
    """Sites A, B, C with events; users with roles on A only."""
    a = srv.add_site("a.example", origins=["*"])
    b = srv.add_site("b.example", origins=["*"])
    c = srv.add_site("c.example", origins=["*"])
    send_events(srv, a, "/page-on-a", 3)
    send_events(srv, b, SECRET_B, 3)
    assert srv.wait_for_events(18) >= 18
    return {
        "a": a,
        "b": b,
        "c": c,
        "viewer": make_user(srv, "viewer-a@example.com", sites={a["domain"]: "viewer"}),
        "analyst": make_user(srv, "analyst-a@example.com", sites={a["id"]: "analyst"}),
        "site_admin": make_user(srv, "admin-a@example.com", sites={a["id"]: "admin"}),
    }


def documented_params(srv: ServerProcess, path: str) -> list[dict[str, Any]]:
    doc = httpx.get(srv.url + "/api/v1/openapi.json", timeout=30).json()
    operation = doc["paths"].get(path, {}).get("get", {})
    return [p for p in operation.get("parameters", []) if p["in"] == "query"]


def example_query(srv: ServerProcess, path: str) -> dict[str, Any]:
    """A valid request to ``path`` from the examples of its documented parameters."""
    query = {p["name"]: p["example"] for p in documented_params(srv, path) if "example" in p}
    query.pop("startDate", None)
    query.pop("endDate", None)
    return query


def assert_no_b(response: httpx.Response, b: dict[str, Any]) -> None:
    """Nothing about site B in the answer, beyond what the request itself named."""
    text = response.text.lower()
    asked = unquote(str(response.request.url)).lower()
    assert TITLE_B.lower() not in text, (response.request.url, text[:500])
    for name in (SECRET_B, b["id"], b["domain"], b["siteKey"]):
        if name.lower() not in asked:
            assert name.lower() not in text, (response.request.url, name, text[:500])


def test_the_app_has_analytics_routes_to_check() -> None:
    routes = analytics_get_routes()
    assert "/api/v1/analytics/dashboard" in routes
    assert "/api/v1/analytics/realtime" in routes


@pytest.mark.parametrize("route", analytics_get_routes())
def test_a_user_of_site_a_cannot_read_site_b(
    srv: ServerProcess, world: dict[str, Any], route: str
) -> None:
    a, b = world["a"], world["b"]
    for who in ("viewer", "analyst", "site_admin"):
        caller: Caller = world[who]
        b_names = [b["id"], b["domain"], b["domain"].upper(), f"  {b['domain']} ", b["siteKey"]]
        for name in b_names:
            response = caller.get(route, params={"site": name})
            assert response.status_code in (403, 404), (who, route, name, response.text)
            assert_no_b(response, b)
        # repeated, bracketed and alternative spellings of the parameter
        for query in (
            f"site={a['id']}&site={b['id']}",
            f"site={b['id']}&site={a['id']}",
            f"site[]={b['id']}",
            f"siteId={b['id']}",
            f"site_id={b['id']}",
            f"sites={b['id']}",
            f"site={b['id']}%00",
            f"site={a['id']}%20OR%201%3D1",
            "",
        ):
            response = caller.get(f"{route}?{query}")
            assert response.status_code != 500, (who, route, query, response.text)
            assert_no_b(response, b)
        # every documented parameter pointed at B while the site is A
        valid = example_query(srv, route)
        for param in documented_params(srv, route):
            if param["name"] == "site":
                continue
            for value in (b["id"], b["domain"], SECRET_B):
                query = valid | {"site": a["id"], param["name"]: value}
                response = caller.get(route, params=query)
                assert response.status_code != 500, (who, route, param, response.text)
                assert_no_b(response, b)
        # a valid request about A answers about A only
        answer = caller.get(route, params=valid | {"site": a["id"]})
        assert answer.status_code in (200, 403), (who, route, answer.text[:300])
        assert_no_b(answer, b)


def test_site_a_answers_are_allowed_and_about_a(world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    dashboard = world["viewer"].get("/api/v1/analytics/dashboard", params={"site": a["domain"]})
    assert dashboard.status_code == 200, dashboard.text
    assert dashboard.json()["site"]["id"] == a["id"]
    assert dashboard.json()["totals"]["pageViews"] == 3
    assert_no_b(dashboard, b)
    realtime = world["viewer"].get("/api/v1/analytics/realtime", params={"site": a["id"]})
    assert realtime.status_code == 200, realtime.text
    # the markers the isolation test looks for do show where they belong
    admin = admin_caller(world["viewer"].srv)
    own = admin.get("/api/v1/analytics/events", params={"site": b["id"]})
    assert own.status_code == 200, own.text
    assert TITLE_B in own.text
    assert SECRET_B in own.text


def test_roles_gate_the_analytics_routes(world: dict[str, Any]) -> None:
    from sightline.api.auth import ROUTE_MINIMUM

    a = world["a"]
    routes = analytics_get_routes()
    rank = {"viewer": 1, "analyst": 2, "admin": 3}
    checked = 0
    for route in routes:
        needed = ROUTE_MINIMUM.get(route, "viewer")
        for who, role in (("viewer", "viewer"), ("analyst", "analyst"), ("site_admin", "admin")):
            response = world[who].get(route, params={"site": a["id"]})
            if rank[role] < rank[needed]:
                assert response.status_code == 403, (who, route, response.text)
                assert response.json()["error"]["code"] == "forbidden"
                checked += 1
            else:
                assert response.status_code not in (401, 403, 404), (who, route, response.text)
    if "/api/v1/analytics/export" in routes:
        export = world["viewer"].get("/api/v1/analytics/export", params={"site": a["id"]})
        assert export.status_code == 403, export.text
        export = world["analyst"].get("/api/v1/analytics/export", params={"site": a["id"]})
        assert export.status_code == 403, export.text
        assert checked >= 2


def test_without_credentials_every_analytics_route_answers_401(
    srv: ServerProcess, world: dict[str, Any]
) -> None:
    for route in analytics_get_routes():
        response = httpx.get(srv.url + route, params={"site": world["a"]["id"]}, timeout=30)
        assert response.status_code == 401, (route, response.text)
        bad = httpx.get(
            srv.url + route,
            params={"site": world["a"]["id"]},
            headers={"Authorization": "Bearer sl_not-a-token"},
            timeout=30,
        )
        assert bad.status_code == 401, (route, bad.text)
        assert bad.json()["error"]["code"] == "invalid_token"


def test_lists_show_only_permitted_sites(world: dict[str, Any]) -> None:
    a = world["a"]
    for who in ("viewer", "analyst", "site_admin"):
        sites = world[who].get("/api/v1/sites")
        assert sites.status_code == 200
        assert [s["id"] for s in sites.json()] == [a["id"]]
        me = world[who].get("/api/v1/auth/me").json()
        assert [s["siteId"] for s in me["sites"]] == [a["id"]]
        assert me["role"] is None
        b = world[who].get(f"/api/v1/sites/{world['b']['id']}")
        assert b.status_code == 404
        assert b.json()["error"]["code"] == "unknown_site"
    everything = admin_caller(world["viewer"].srv).get("/api/v1/sites").json()
    assert {s["domain"] for s in everything} >= {"a.example", "b.example", "c.example"}


def test_admin_endpoints_are_gated_by_role(world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    for who in ("viewer", "analyst", "site_admin"):
        caller: Caller = world[who]
        assert caller.get("/api/v1/users").status_code == 403
        assert caller.get("/api/v1/audit").status_code == 403
        created = caller.request("POST", "/api/v1/users", json={"email": f"x-{who}@example.com"})
        assert created.status_code == 403
        site = caller.request("POST", "/api/v1/sites", json={"domain": f"{who}.example"})
        assert site.status_code == 403
        assert caller.request("DELETE", f"/api/v1/sites/{a['id']}").status_code == 403
        # B is invisible: 404, never 403
        for method, path in (
            ("PATCH", f"/api/v1/sites/{b['id']}"),
            ("POST", f"/api/v1/sites/{b['id']}/rotate-key"),
            ("DELETE", f"/api/v1/sites/{b['id']}"),
        ):
            response = caller.request(method, path, json={"timezone": "UTC"})
            assert response.status_code == 404, (who, method, path, response.text)
    for who in ("viewer", "analyst"):
        patch = world[who].request("PATCH", f"/api/v1/sites/{a['id']}", json={"timezone": "UTC"})
        assert patch.status_code == 403
    # the admin of site A may change A
    patch = world["site_admin"].request(
        "PATCH", f"/api/v1/sites/{a['id']}", json={"allowedOrigins": ["*"]}
    )
    assert patch.status_code == 200, patch.text
    assert patch.json()["role"] == "admin"


def test_revoked_tokens_stop_working_at_once(srv: ServerProcess, world: dict[str, Any]) -> None:
    viewer: Caller = world["viewer"]
    own = viewer.request("POST", "/api/v1/auth/tokens", json={"name": "laptop"})
    assert own.status_code == 201, own.text
    token = own.json()
    caller = Caller(srv, viewer.email, token["token"])
    assert (
        caller.get("/api/v1/analytics/dashboard", params={"site": "a.example"}).status_code == 200
    )
    listed = viewer.get("/api/v1/auth/tokens").json()
    assert token["id"] in [t["id"] for t in listed]
    assert "token" not in listed[0]
    # another user's token is invisible
    other = world["analyst"].request("DELETE", f"/api/v1/auth/tokens/{token['id']}")
    assert other.status_code == 404
    revoked = viewer.request("DELETE", f"/api/v1/auth/tokens/{token['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["revokedAt"] is not None
    # no waiting: the cache of this process was dropped
    for path in ("/api/v1/analytics/dashboard", "/api/v1/auth/me", "/api/v1/sites"):
        refused = caller.get(path, params={"site": "a.example"})
        assert refused.status_code == 401, (path, refused.text)
        assert refused.json()["error"]["code"] == "invalid_token"
    again = viewer.request("DELETE", f"/api/v1/auth/tokens/{token['id']}")
    assert again.status_code == 409

    # revoked with the CLI, through the running server: refused at once as well
    fresh = srv.cli("token", "create", "--email", viewer.email, "--name", "cli")
    cli_caller = Caller(srv, viewer.email, fresh["token"])
    assert cli_caller.get("/api/v1/auth/me").status_code == 200
    srv.cli("token", "revoke", fresh["id"])
    assert cli_caller.get("/api/v1/auth/me").status_code == 401
    tokens = srv.cli("token", "list", "--email", viewer.email)
    assert {t["id"]: t["revokedAt"] is not None for t in tokens}[fresh["id"]]
    used = {t["id"]: t["lastUsedAt"] for t in tokens}
    assert used[fresh["id"]] is not None


def test_new_grants_apply_at_once(srv: ServerProcess, world: dict[str, Any]) -> None:
    b = world["b"]
    user = make_user(srv, "late@example.com", sites={world["a"]["id"]: "viewer"})
    assert user.get("/api/v1/analytics/dashboard", params={"site": b["id"]}).status_code == 404
    srv.cli("user", "grant", user.email, "--site", b["domain"], "--role", "viewer")
    granted = user.get("/api/v1/analytics/dashboard", params={"site": b["id"]})
    assert granted.status_code == 200, granted.text
    srv.cli("user", "revoke", user.email, "--site", b["id"])
    assert user.get("/api/v1/analytics/dashboard", params={"site": b["id"]}).status_code == 404
    admin = admin_caller(srv)
    promoted = admin.request("PATCH", f"/api/v1/users/{user.email}", json={"role": "analyst"})
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["role"] == "analyst"
    assert user.get("/api/v1/analytics/dashboard", params={"site": b["id"]}).status_code == 200
    deleted = admin.request("DELETE", f"/api/v1/users/{user.email}")
    assert deleted.status_code == 200
    assert user.get("/api/v1/auth/me").status_code == 401


def test_the_last_admin_cannot_be_removed(srv: ServerProcess, world: dict[str, Any]) -> None:
    admin = admin_caller(srv)
    me = admin.get("/api/v1/auth/me").json()
    assert me["role"] == "admin"
    demote = admin.request("PATCH", f"/api/v1/users/{me['id']}", json={"role": "viewer"})
    assert demote.status_code == 409
    assert demote.json()["error"]["code"] == "last_admin"
    assert admin.request("DELETE", f"/api/v1/users/{me['id']}").status_code == 409
    unknown = admin.request("PATCH", "/api/v1/users/nobody@example.com", json={"role": None})
    assert unknown.status_code == 404


# -- dashboard sign-in ------------------------------------------------------------------


@contextlib.contextmanager
def sign_in(srv: ServerProcess, email: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=30) as client:
        response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        yield client


def test_cookie_sessions_need_csrf_for_changes(srv: ServerProcess, world: dict[str, Any]) -> None:
    login = httpx.post(
        srv.url + "/api/v1/auth/login",
        json={"email": "Viewer-A@Example.com", "password": PASSWORD},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    cookies = {c.split("=", 1)[0]: c for c in login.headers.get_list("set-cookie")}
    session_cookie = cookies["sightline_session"].lower()
    assert "httponly" in session_cookie
    assert "samesite=lax" in session_cookie
    assert "path=/" in session_cookie
    assert "secure" not in session_cookie  # plain http, cookie_secure=auto
    assert "httponly" not in cookies["sightline_csrf"].lower()
    csrf = login.json()["csrfToken"]
    assert login.cookies["sightline_csrf"] == csrf
    assert login.json()["via"] == "session"
    assert login.headers["cache-control"] == "no-store"

    with httpx.Client(base_url=srv.url, timeout=30, cookies=login.cookies) as client:
        check_csrf_flow(client, csrf)
    after = httpx.get(srv.url + "/api/v1/auth/me", cookies=login.cookies, timeout=30)
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "session_expired"


def check_csrf_flow(client: httpx.Client, csrf: str) -> None:
    me = client.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json()["email"] == "viewer-a@example.com"
    assert (
        client.get("/api/v1/analytics/dashboard", params={"site": "a.example"}).status_code == 200
    )
    assert (
        client.get("/api/v1/analytics/dashboard", params={"site": "b.example"}).status_code == 404
    )

    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": ""}):
        refused = client.post("/api/v1/auth/tokens", json={"name": "x"}, headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "csrf_failed"
        assert client.post("/api/v1/auth/logout", headers=headers).status_code == 403
    allowed = client.post("/api/v1/auth/tokens", json={"name": "x"}, headers={"X-CSRF-Token": csrf})
    assert allowed.status_code == 201, allowed.text
    # the API takes JSON only, so a cross-site HTML form cannot post to it
    form = client.post(
        "/api/v1/auth/tokens",
        content="name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrf},
    )
    assert form.status_code == 415

    out = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204


def test_bad_sign_ins_look_alike(srv: ServerProcess, world: dict[str, Any]) -> None:
    wrong_password = httpx.post(
        srv.url + "/api/v1/auth/login",
        json={"email": "analyst-a@example.com", "password": "not the password"},
        timeout=30,
    )
    unknown_email = httpx.post(
        srv.url + "/api/v1/auth/login",
        json={"email": "nobody-here@example.com", "password": "not the password"},
        timeout=30,
    )
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()
    assert "set-cookie" not in wrong_password.headers


def test_password_change_ends_other_sign_ins(srv: ServerProcess, world: dict[str, Any]) -> None:
    make_user(srv, "changer@example.com", sites={world["a"]["id"]: "viewer"})
    with (
        sign_in(srv, "changer@example.com") as first,
        sign_in(srv, "changer@example.com") as second,
    ):
        change_password(srv, first, second)


def change_password(srv: ServerProcess, first: httpx.Client, second: httpx.Client) -> None:
    csrf = first.cookies["sightline_csrf"]
    wrong = first.post(
        "/api/v1/auth/password",
        json={"currentPassword": "not it at all", "newPassword": "a new long password"},
        headers={"X-CSRF-Token": csrf},
    )
    assert wrong.status_code == 403
    short = first.post(
        "/api/v1/auth/password",
        json={"currentPassword": PASSWORD, "newPassword": "short"},
        headers={"X-CSRF-Token": csrf},
    )
    assert short.status_code == 400
    changed = first.post(
        "/api/v1/auth/password",
        json={"currentPassword": PASSWORD, "newPassword": "a new long password"},
        headers={"X-CSRF-Token": csrf},
    )
    assert changed.status_code == 204, changed.text
    assert first.get("/api/v1/auth/me").status_code == 200
    assert second.get("/api/v1/auth/me").status_code == 401
    old = httpx.post(
        srv.url + "/api/v1/auth/login",
        json={"email": "changer@example.com", "password": PASSWORD},
        timeout=30,
    )
    assert old.status_code == 401
    with sign_in(srv, "changer@example.com", "a new long password") as again:
        assert again.get("/api/v1/auth/me").status_code == 200


def test_site_changes_reach_the_collector(srv: ServerProcess, world: dict[str, Any]) -> None:
    admin = admin_caller(srv)
    site = admin.request(
        "POST",
        "/api/v1/sites",
        json={"domain": "rotating.example", "allowedOrigins": ["https://rotating.example"]},
    )
    assert site.status_code == 201, site.text
    old_key = site.json()["siteKey"]
    send_events(srv, site.json(), "/before", 1)
    rotated = admin.request("POST", f"/api/v1/sites/{site.json()['id']}/rotate-key")
    assert rotated.status_code == 200
    new = rotated.json()
    assert new["siteKey"] != old_key
    event = {"eventType": "page_view", "pagePath": "/"}
    refused = httpx.post(
        srv.url + COLLECT,
        json={"siteKey": old_key, "events": [event]},
        headers={"User-Agent": BROWSER_UA},
        timeout=30,
    )
    assert refused.status_code == 401
    origin = "https://new.rotating.example"
    blocked = httpx.post(
        srv.url + COLLECT,
        json={"siteKey": new["siteKey"], "events": [event]},
        headers={"User-Agent": BROWSER_UA, "Origin": origin},
        timeout=30,
    )
    assert blocked.status_code == 403
    patched = admin.request(
        "PATCH", f"/api/v1/sites/{new['id']}", json={"allowedOrigins": [origin]}
    )
    assert patched.status_code == 200
    accepted = httpx.post(
        srv.url + COLLECT,
        json={"siteKey": new["siteKey"], "events": [event]},
        headers={"User-Agent": BROWSER_UA, "Origin": origin},
        timeout=30,
    )
    assert accepted.status_code == 204, accepted.text
    where = f"site_id = '{new['id']}'"
    assert srv.wait_for_events(4, where=where) == 4
    deleted = admin.request("DELETE", f"/api/v1/sites/{new['id']}")
    assert deleted.status_code == 200
    gone = httpx.post(
        srv.url + COLLECT,
        json={"siteKey": new["siteKey"], "events": [event]},
        headers={"User-Agent": BROWSER_UA, "Origin": origin},
        timeout=30,
    )
    assert gone.status_code == 401
    assert srv.count_events(where) == 0
    assert srv.query(f"SELECT count(*) FROM session_stats WHERE {where}")[0][0] == 0


def test_a_new_time_zone_rebuilds_daily_rollups(srv: ServerProcess) -> None:
    admin = admin_caller(srv)
    site = admin.request("POST", "/api/v1/sites", json={"domain": "zones.example"}).json()
    send_events(srv, site, "/zones", 2)
    where = f"site_id = '{site['id']}'"
    assert srv.wait_for_events(6, where=where) == 6
    zone = "Pacific/Kiritimati"  # UTC+14: most UTC times fall on another local day
    patched = admin.request("PATCH", f"/api/v1/sites/{site['id']}", json={"timezone": zone})
    assert patched.status_code == 200, patched.text
    assert patched.json()["timezone"] == zone
    expected = srv.query(
        f"SELECT DISTINCT CAST(timezone('{zone}', ts::TIMESTAMPTZ) AS DATE) FROM events "
        f"WHERE {where}"
    )
    rollups = srv.query(f"SELECT date, page_views FROM daily_stats WHERE {where}")
    assert {row[0] for row in rollups} == {row[0] for row in expected}
    assert sum(row[1] for row in rollups) == 2
    bad = admin.request("PATCH", f"/api/v1/sites/{site['id']}", json={"timezone": "Mars/Base"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_timezone"


def test_audit_log_records_changes(srv: ServerProcess, world: dict[str, Any]) -> None:
    entries = admin_caller(srv).get("/api/v1/audit", params={"limit": 1000})
    assert entries.status_code == 200
    actions = {e["action"] for e in entries.json()}
    assert {"user.create", "site.create", "token.create", "token.revoke", "auth.login"} <= actions
    assert PASSWORD not in entries.text


# -- sign-in throttle and secure cookies ---------------------------------------------------


def test_sign_in_is_throttled_and_cookies_secure_when_configured(tmp_path: Path) -> None:
    with running_server(tmp_path, cookie_secure="always") as srv:
        srv.cli(
            "user",
            "add",
            "t@example.com",
            "--role",
            "viewer",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        for _ in range(5):
            wrong = httpx.post(
                srv.url + "/api/v1/auth/login",
                json={"email": "t@example.com", "password": "wrong password"},
                timeout=30,
            )
            assert wrong.status_code == 401
        blocked = httpx.post(
            srv.url + "/api/v1/auth/login",
            json={"email": "t@example.com", "password": PASSWORD},
            timeout=30,
        )
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
        assert blocked.json()["error"]["code"] == "too_many_attempts"
        # another account from the same address is not locked by that
        srv.cli(
            "user",
            "add",
            "u@example.com",
            "--role",
            "viewer",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        ok = httpx.post(
            srv.url + "/api/v1/auth/login",
            json={"email": "u@example.com", "password": PASSWORD},
            timeout=30,
        )
        assert ok.status_code == 200
        for cookie in ok.headers.get_list("set-cookie"):
            assert "secure" in cookie.lower()
