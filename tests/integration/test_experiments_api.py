"""The experiments API over HTTP against a real server: roles, validation, the life cycle,
the tracker's config endpoint (site key, origins, CORS, cookieless assignments) and the
results of events sent through the collector."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sightline.experiments import variant_for
from tests.integration.test_auth import Caller, admin_caller, make_user
from tests.support.server import BROWSER_UA, ServerProcess, running_server

COLLECT = "/api/v1/analytics/collect"
CONFIG = "/api/v1/experiments/config"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(
        tmp_path_factory.mktemp("experiments"), rate_limit_per_minute=0, bot_filter=False
    ) as server:
        yield server


@pytest.fixture(scope="module")
def world(srv: ServerProcess) -> dict[str, Any]:
    a = srv.add_site("exp-a.example", origins=["https://exp-a.example"])
    b = srv.add_site("exp-b.example", origins=["*"])
    return {
        "a": a,
        "b": b,
        "admin": admin_caller(srv),
        "viewer": make_user(srv, "exp-viewer@example.com", sites={a["id"]: "viewer"}),
        "analyst": make_user(srv, "exp-analyst@example.com", sites={a["id"]: "analyst"}),
    }


def body(key: str, **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "name": f"Experiment {key}",
        "variants": [{"key": "control", "weight": 1}, {"key": "green", "weight": 1}],
        "goal": {"eventType": "affiliate_click", "filters": ["product:is:sku-1"]},
        **extra,
    }


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def create(caller: Caller, site: dict[str, Any], key: str, **extra: Any) -> httpx.Response:
    return caller.request(
        "POST", "/api/v1/experiments", params={"site": site["id"]}, json=body(key, **extra)
    )


def test_roles_viewers_read_analysts_write_others_see_nothing(world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    viewer, analyst = world["viewer"], world["analyst"]
    assert error_of(create(viewer, a, "roles"), 403)["code"] == "forbidden"
    created = create(analyst, a, "roles")
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["status"] == "draft" and record["control"] == "control"
    assert record["startedAt"] is None and record["minimumDetectableEffect"] == 0.1
    assert viewer.get("/api/v1/experiments", params={"site": a["id"]}).json()[0]["key"] == "roles"
    assert viewer.get("/api/v1/experiments/roles", params={"site": a["domain"]}).status_code == 200
    results = viewer.get("/api/v1/experiments/roles/results", params={"site": a["id"]})
    assert results.status_code == 200 and results.json()["totals"]["exposures"] == 0
    for method, path in (
        ("POST", "/api/v1/experiments/roles/start"),
        ("PATCH", "/api/v1/experiments/roles"),
        ("DELETE", "/api/v1/experiments/roles"),
    ):
        response = viewer.request(method, path, params={"site": a["id"]}, json={"name": "x"})
        assert error_of(response, 403)["code"] == "forbidden", (method, path)
    # a site the caller has no role on does not exist for them
    for path in ("/api/v1/experiments", "/api/v1/experiments/roles"):
        assert error_of(analyst.get(path, params={"site": b["id"]}), 404)["code"] == "unknown_site"
    anonymous = httpx.get(world["admin"].srv.url + "/api/v1/experiments?site=" + a["id"])
    assert error_of(anonymous, 401)["code"] == "unauthenticated"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"key": "config"}, 400, "invalid_key"),
        ({"key": "bad key"}, 400, "invalid_body"),
        ({"variants": [{"key": "only"}]}, 400, "invalid_body"),
        ({"variants": [{"key": "A"}, {"key": "A"}]}, 400, "duplicate_variant"),
        (
            {"variants": [{"key": "A", "weight": 0}, {"key": "B", "weight": 0}]},
            400,
            "invalid_weights",
        ),
        ({"variants": [{"key": "A", "weight": 1.5}, {"key": "B"}]}, 400, "invalid_body"),
        (
            {"goal": {"eventType": "affiliate_click", "filters": ["country:is:DE"]}},
            400,
            "invalid_goal",
        ),
        (
            {"goal": {"eventType": "affiliate_click", "filters": ["product:equals:x"]}},
            400,
            "invalid_goal",
        ),
        ({"goal": {"eventType": "9lives"}}, 400, "invalid_goal"),
        ({"targeting": {"pages": ["no-slash"]}}, 400, "invalid_body"),
        ({"minimumDetectableEffect": 0}, 400, "invalid_body"),
        ({"surprise": True}, 400, "invalid_body"),
    ],
)
def test_invalid_definitions_are_refused_precisely(
    world: dict[str, Any], change: dict[str, Any], status: int, code: str
) -> None:
    payload = {**body("valid-key"), **change}
    response = world["analyst"].request(
        "POST", "/api/v1/experiments", params={"site": world["a"]["id"]}, json=payload
    )
    error = error_of(response, status)
    assert error["code"] == code, error
    assert error["message"]


def test_bodies_must_be_json_and_keys_unique(world: dict[str, Any]) -> None:
    analyst, a = world["analyst"], world["a"]
    response = analyst.request(
        "POST",
        "/api/v1/experiments",
        params={"site": a["id"]},
        content=b"key=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert error_of(response, 415)["code"] == "unsupported_media_type"
    response = analyst.request(
        "POST",
        "/api/v1/experiments",
        params={"site": a["id"]},
        content=b"{",
        headers={"Content-Type": "application/json"},
    )
    assert error_of(response, 400)["code"] == "malformed_json"
    assert create(analyst, a, "unique").status_code == 201
    assert error_of(create(analyst, a, "unique"), 409)["code"] == "experiment_exists"
    missing = analyst.get("/api/v1/experiments/nope", params={"site": a["id"]})
    assert error_of(missing, 404)["code"] == "unknown_experiment"
    listed = analyst.get("/api/v1/experiments", params={"site": a["id"], "status": "paused"})
    assert error_of(listed, 400)["code"] == "invalid_status"


def test_life_cycle_draft_running_stopped(srv: ServerProcess, world: dict[str, Any]) -> None:
    analyst, a = world["analyst"], world["a"]
    site = {"site": a["id"]}
    assert create(analyst, a, "cycle").status_code == 201
    patched = analyst.request(
        "PATCH",
        "/api/v1/experiments/cycle",
        params=site,
        json={
            "name": "Renamed",
            "variants": [{"key": "A", "weight": 1}, {"key": "B", "weight": 3}],
            "targeting": {"pages": ["/products/*"]},
        },
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["variants"][1] == {"key": "B", "weight": 3, "name": ""}
    assert patched.json()["targeting"] == {"pages": ["/products/*"]}
    stop_draft = analyst.request("POST", "/api/v1/experiments/cycle/stop", params=site)
    assert error_of(stop_draft, 409)["code"] == "invalid_transition"
    started = analyst.request("POST", "/api/v1/experiments/cycle/start", params=site)
    assert started.status_code == 200 and started.json()["status"] == "running"
    assert started.json()["startedAt"] is not None
    again = analyst.request("POST", "/api/v1/experiments/cycle/start", params=site)
    assert error_of(again, 409)["code"] == "invalid_transition"
    moved = analyst.request(
        "PATCH",
        "/api/v1/experiments/cycle",
        params=site,
        json={"variants": [{"key": "A", "weight": 1}, {"key": "B", "weight": 1}]},
    )
    assert error_of(moved, 409)["code"] == "experiment_not_draft"
    running = analyst.get("/api/v1/experiments", params={**site, "status": "running"}).json()
    assert [e["key"] for e in running] == ["cycle"]
    stopped = analyst.request("POST", "/api/v1/experiments/cycle/stop", params=site)
    assert stopped.json()["status"] == "stopped" and stopped.json()["stoppedAt"] is not None
    restart = analyst.request("POST", "/api/v1/experiments/cycle/start", params=site)
    assert error_of(restart, 409)["code"] == "invalid_transition"
    deleted = analyst.request("DELETE", "/api/v1/experiments/cycle", params=site)
    assert deleted.json() == {"deleted": "cycle"}
    gone = analyst.get("/api/v1/experiments/cycle", params=site)
    assert error_of(gone, 404)["code"] == "unknown_experiment"
    actions = [
        r[0]
        for r in srv.query("SELECT action FROM audit_log WHERE target LIKE '%/cycle' ORDER BY ts")
    ]
    assert actions == [
        "experiment.create",
        "experiment.update",
        "experiment.start",
        "experiment.stop",
        "experiment.delete",
    ]


def test_config_endpoint_checks_the_site_key_and_origin(
    srv: ServerProcess, world: dict[str, Any]
) -> None:
    a = world["a"]
    assert error_of(httpx.get(srv.url + CONFIG), 400)["code"] == "missing_site_key"
    bad = httpx.get(srv.url + CONFIG, params={"siteKey": "pk_nope"})
    assert error_of(bad, 401)["code"] == "invalid_site_key"
    foreign = httpx.get(
        srv.url + CONFIG, params={"siteKey": a["siteKey"]}, headers={"Origin": "https://evil.test"}
    )
    assert error_of(foreign, 403)["code"] == "origin_not_allowed"
    ok = httpx.get(
        srv.url + CONFIG,
        params={"siteKey": a["siteKey"]},
        headers={"Origin": "https://exp-a.example"},
    )
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://exp-a.example"
    assert ok.headers["cache-control"] == "no-store"
    preflight = httpx.request(
        "OPTIONS", srv.url + CONFIG, headers={"Origin": "https://exp-a.example"}
    )
    assert preflight.status_code == 204
    assert "GET" in preflight.headers["access-control-allow-methods"]


def collect(srv: ServerProcess, site: dict[str, Any], events: list[dict[str, Any]]) -> None:
    now = int(time.time() * 1000)
    for event in events:
        event.setdefault("eventId", str(uuid.uuid4()))
        event.setdefault("timestamp", now)
        event.setdefault("pagePath", "/")
    response = httpx.post(
        srv.url + COLLECT,
        json={"siteKey": site["siteKey"], "events": events, "metadata": {"sentAt": now}},
        headers={"User-Agent": BROWSER_UA},
        timeout=30,
    )
    assert response.status_code == 204, response.text


def test_cookieless_assignments_follow_the_identity_events_are_counted_under(
    srv: ServerProcess, world: dict[str, Any]
) -> None:
    b, admin = world["b"], world["admin"]
    for key in ("cookieless-1", "cookieless-2", "cookieless-3"):
        assert create(admin, b, key).status_code == 201
        started = admin.request(
            "POST", f"/api/v1/experiments/{key}/start", params={"site": b["id"]}
        )
        assert started.status_code == 200
    assert create(admin, b, "still-draft").status_code == 201
    config = httpx.get(
        srv.url + CONFIG, params={"siteKey": b["siteKey"]}, headers={"User-Agent": BROWSER_UA}
    ).json()
    keys = [e["key"] for e in config["experiments"]]
    assert keys == ["cookieless-1", "cookieless-2", "cookieless-3"]
    assert config["experiments"][0]["variants"] == [
        {"key": "control", "weight": 1},
        {"key": "green", "weight": 1},
    ]
    # an event from the same browser without a visitor id: the server's cookieless id
    marker = "/marker-" + uuid.uuid4().hex[:8]
    collect(srv, b, [{"eventType": "page_view", "pagePath": marker}])
    srv.wait_for_events(1, where=f"page_path = '{marker}'")
    (visitor,) = srv.query(f"SELECT visitor_id FROM events WHERE page_path = '{marker}'")[0]
    records = {
        r["key"]: r for r in admin.get("/api/v1/experiments", params={"site": b["id"]}).json()
    }
    for key in keys:
        assert config["assignments"][key] == variant_for(records[key], visitor)
    # another browser (user agent) is another identity, assigned on its own
    other = httpx.get(
        srv.url + CONFIG, params={"siteKey": b["siteKey"]}, headers={"User-Agent": "curl/8"}
    ).json()
    assert set(other["assignments"]) == set(keys)


def test_results_count_exposed_visitors_and_their_later_goal_events(
    srv: ServerProcess, world: dict[str, Any]
) -> None:
    b, admin = world["b"], world["admin"]
    assert create(admin, b, "results").status_code == 201
    admin.request("POST", "/api/v1/experiments/results/start", params={"site": b["id"]})
    time.sleep(0.05)
    now = int(time.time() * 1000)
    events: list[dict[str, Any]] = []
    plan = {"control": (5, 1), "green": (5, 3)}
    for variant, (exposed, converted) in plan.items():
        for i in range(exposed):
            visitor = f"{variant}-{i}"
            events.append(
                {
                    "eventType": "experiment_exposure",
                    "visitorId": visitor,
                    "timestamp": now,
                    "properties": {"experiment": "results", "variant": variant},
                }
            )
            if i < converted:
                events.append(
                    {
                        "eventType": "affiliate_click",
                        "visitorId": visitor,
                        "timestamp": now + 1000,
                        "properties": {"productId": "sku-1", "revenue": 2},
                    }
                )
            else:  # a click on another product is not the goal
                events.append(
                    {
                        "eventType": "affiliate_click",
                        "visitorId": visitor,
                        "timestamp": now + 1000,
                        "properties": {"productId": "sku-9"},
                    }
                )
    collect(srv, b, events)
    srv.wait_for_events(len(events), where=f"site_id = '{b['id']}' AND visitor_id LIKE '%-_'")
    answer = admin.get("/api/v1/experiments/results/results", params={"site": b["id"]}).json()
    by_key = {v["key"]: v for v in answer["variants"]}
    assert (by_key["control"]["exposures"], by_key["control"]["conversions"]) == (5, 1)
    assert (by_key["green"]["exposures"], by_key["green"]["conversions"]) == (5, 3)
    assert by_key["green"]["revenue"] == 6.0
    assert by_key["green"]["uplift"]["absolute"] == pytest.approx(0.4)
    assert answer["srm"]["mismatch"] is False
    assert {w["code"] for w in answer["warnings"]} == {"minimum_sample"}
    assert answer["series"]["variants"]["green"]["conversions"][-1] == 3
    assert set(answer["methods"]) >= {"pValue", "probabilityBest", "srm"}
