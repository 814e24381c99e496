"""The collector against a real server: valid and invalid events, bad input, CORS, limits.

Every bad request gets a precise 4xx with the JSON error body, and none of them disturbs
the events accepted before or after it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sightline.events import limits
from tests.support.server import BROWSER_UA, ServerProcess, running_server

COLLECT = "/api/v1/analytics/collect"
BATCH = "/api/v1/analytics/collect/batch"
ORIGIN = "https://shop.example"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("collect"), rate_limit_per_minute=0) as server:
        yield server


@pytest.fixture(scope="module")
def site(srv: ServerProcess) -> dict[str, Any]:
    return srv.add_site("shop.example", origins=[ORIGIN])


def now_ms() -> int:
    return int(time.time() * 1000)


def page_view(**extra: Any) -> dict[str, Any]:
    return {
        "eventId": str(uuid.uuid4()),
        "eventType": "page_view",
        "timestamp": now_ms(),
        "sessionId": "s-" + uuid.uuid4().hex[:8],
        "visitorId": "v-" + uuid.uuid4().hex[:8],
        "pagePath": "/",
        "pageUrl": "https://shop.example/",
        **extra,
    }


def body(site: dict[str, Any], events: list[Any]) -> dict[str, Any]:
    return {"siteKey": site["siteKey"], "events": events, "metadata": {"sentAt": now_ms()}}


def post(
    srv: ServerProcess, path: str, content: bytes | str | dict[str, Any], **headers: str
) -> httpx.Response:
    if isinstance(content, dict):
        content = json.dumps(content)
    return httpx.post(
        srv.url + path, content=content, headers={"user-agent": BROWSER_UA, **headers}, timeout=30
    )


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    return error


def stored_ids(srv: ServerProcess, ids: list[str]) -> set[str]:
    quoted = ",".join(f"'{i}'" for i in ids)
    return {
        row[0] for row in srv.query(f"SELECT event_id FROM events WHERE event_id IN ({quoted})")
    }


def test_batch_keeps_valid_events_and_rejects_invalid_ones_by_index(
    srv: ServerProcess, site: dict[str, Any]
) -> None:
    good = [page_view() for _ in range(3)]
    events = [
        good[0],
        {"eventType": "page_view", "timestamp": "noon"},
        good[1],
        {"eventType": "product_view", "properties": {}},
        good[2],
        {"nope": 1},
    ]
    response = post(srv, BATCH, body(site, events), **{"content-type": "application/json"})
    assert response.status_code == 200
    answer = response.json()
    assert answer["success"] is True and answer["queued"] == 3
    assert [r["index"] for r in answer["rejected"]] == [1, 3, 5]
    assert "$.timestamp" in answer["rejected"][0]["error"]
    assert "productId" in answer["rejected"][1]["error"]
    ids = [e["eventId"] for e in good]
    srv.wait_for_events(3, where=f"event_id IN ({','.join(repr(i) for i in ids)})")
    assert stored_ids(srv, ids) == set(ids)


def test_events_that_decode_but_break_a_limit_are_rejected_by_index(
    srv: ServerProcess, site: dict[str, Any]
) -> None:
    """Every event here decodes, so the body takes the one-pass path; the checks msgspec
    cannot make (property limits, typed properties) still reject events one by one."""
    good = [page_view() for _ in range(3)]
    too_long = {
        **page_view(),
        "properties": {"note": "x" * (limits.MAX_PROPERTY_STRING_LENGTH + 1)},
    }
    no_product = {**page_view(), "eventType": "product_view", "properties": {}}
    events = [good[0], too_long, good[1], no_product, good[2]]
    response = post(srv, BATCH, body(site, events), **{"content-type": "application/json"})
    assert response.status_code == 200
    answer = response.json()
    assert answer["queued"] == 3
    assert [r["index"] for r in answer["rejected"]] == [1, 3]
    assert "string longer" in answer["rejected"][0]["error"]
    assert "$.properties.note" in answer["rejected"][0]["error"]
    assert "productId" in answer["rejected"][1]["error"]
    ids = [e["eventId"] for e in good]
    srv.wait_for_events(3, where=f"event_id IN ({','.join(repr(i) for i in ids)})")
    assert stored_ids(srv, ids) == set(ids)


def test_dashboard_counts_exactly_the_valid_events(tmp_path: Path) -> None:
    with running_server(tmp_path, rate_limit_per_minute=0) as server:
        site = server.add_site("count.example", origins=["*"])
        valid = [
            page_view(sessionId="s1", visitorId="v1"),
            page_view(sessionId="s1", visitorId="v1", pagePath="/p"),
            page_view(sessionId="s2", visitorId="v2"),
            {
                **page_view(sessionId="s2", visitorId="v2"),
                "eventType": "affiliate_click",
                "properties": {"productId": "p1", "revenue": 2.5},
            },
        ]
        invalid = [{"eventType": "bad name"}, {"eventType": "scroll_depth", "properties": {}}]
        response = post(server, BATCH, body(site, [*valid, *invalid]))
        assert response.json()["queued"] == 4
        assert server.wait_for_events(4) == 4
        totals = server.get("/api/v1/analytics/dashboard").json()["totals"]
        assert totals == {
            "events": 4,
            "pageViews": 3,
            "uniqueVisitors": 2,
            "sessions": 2,
            "avgSessionDuration": totals["avgSessionDuration"],
            "bounceRate": 0.0,
            "productViews": 0,
            "affiliateClicks": 1,
            "conversions": 1,
            "revenue": 250,
        }


def test_single_collect_answers_204_and_accepts_text_plain(
    srv: ServerProcess, site: dict[str, Any]
) -> None:
    event = page_view()
    response = post(
        srv,
        COLLECT,
        json.dumps(body(site, [event])),
        **{"content-type": "text/plain;charset=UTF-8", "origin": ORIGIN},
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert srv.wait_for_events(1, where=f"event_id = '{event['eventId']}'") == 1


def test_collect_with_some_invalid_events_answers_202_with_details(
    srv: ServerProcess, site: dict[str, Any]
) -> None:
    response = post(srv, COLLECT, body(site, [page_view(), {"eventType": 5}]))
    assert response.status_code == 202
    assert response.json()["queued"] == 1
    assert response.json()["rejected"][0]["index"] == 1


def test_duplicate_event_ids_are_stored_once(srv: ServerProcess, site: dict[str, Any]) -> None:
    event = page_view()
    for _ in range(3):
        assert post(srv, COLLECT, body(site, [event, event])).status_code == 204
    time.sleep(0.5)
    assert srv.wait_for_events(1, where=f"event_id = '{event['eventId']}'") == 1
    time.sleep(0.5)
    assert srv.count_events(f"event_id = '{event['eventId']}'") == 1


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"{not json", {}, 400, "malformed_json"),
        (b"", {}, 400, "malformed_json"),
        (b'{"events": "lots"}', {}, 400, "invalid_body"),
        (b'{"siteKey": 5, "events": []}', {}, 400, "invalid_body"),
        (b'{"events": []}', {}, 400, "empty_batch"),
        (b'{"events": [{"eventType": "page_view"}]}', {}, 400, "missing_site_key"),
        (
            b'{"siteKey": "pk_nope", "events": [{"eventType": "page_view"}]}',
            {},
            401,
            "invalid_site_key",
        ),
        (b"<xml/>", {"content-type": "application/xml"}, 415, "unsupported_media_type"),
        (b"{}", {"content-encoding": "gzip"}, 415, "unsupported_encoding"),
    ],
)
def test_bad_requests_get_precise_errors(
    srv: ServerProcess, content: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    for path in (COLLECT, BATCH):
        assert_error(post(srv, path, content, **headers), status, code)


def test_wrong_types_in_every_event_is_a_400_listing_each(
    srv: ServerProcess, site: dict[str, Any]
) -> None:
    error = assert_error(
        post(srv, BATCH, body(site, [{"eventType": "page_view", "timestamp": "x"}, {}])),
        400,
        "invalid_events",
    )
    assert [d["index"] for d in error["details"]] == [0, 1]


def test_oversized_body_and_too_many_events(srv: ServerProcess, site: dict[str, Any]) -> None:
    huge = json.dumps(body(site, [page_view(pageTitle="x" * 500) for _ in range(3000)]))
    assert len(huge) > limits.MAX_BODY_BYTES
    assert_error(post(srv, BATCH, huge), 413, "body_too_large")
    many = body(site, [{"eventType": "signup"} for _ in range(limits.MAX_BATCH_EVENTS + 1)])
    assert_error(post(srv, BATCH, many), 413, "too_many_events")


def test_disallowed_origin_is_refused_and_preflight_answers_allowed_origins(
    srv: ServerProcess, site: dict[str, Any]
) -> None:
    event = page_view()
    refused = post(srv, COLLECT, body(site, [event]), origin="https://evil.example")
    assert_error(refused, 403, "origin_not_allowed")
    allowed = httpx.options(
        srv.url + COLLECT, headers={"origin": ORIGIN, "access-control-request-method": "POST"}
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    denied = httpx.options(srv.url + BATCH, headers={"origin": "https://evil.example"})
    assert_error(denied, 403, "origin_not_allowed")
    time.sleep(0.5)
    assert srv.count_events(f"event_id = '{event['eventId']}'") == 0


def test_bad_requests_do_not_disturb_good_ones_around_them(
    srv: ServerProcess, site: dict[str, Any]
) -> None:
    ids = []
    bad_requests: list[tuple[bytes | dict[str, Any], dict[str, str]]] = [
        (b"{garbage", {}),
        (b"<x/>", {"content-type": "text/xml"}),
        ({"siteKey": "pk_wrong", "events": [page_view()]}, {}),
        (body(site, [page_view()]), {"origin": "https://evil.example"}),
        ("x" * (limits.MAX_BODY_BYTES + 10), {}),
        (b"[" * 100_000, {}),
    ]
    for bad, headers in bad_requests:
        good = page_view()
        ids.append(good["eventId"])
        assert post(srv, COLLECT, body(site, [good])).status_code == 204
        assert 400 <= post(srv, COLLECT, bad, **headers).status_code < 500
    good = page_view()
    ids.append(good["eventId"])
    assert post(srv, COLLECT, body(site, [good])).status_code == 204
    where = f"event_id IN ({','.join(repr(i) for i in ids)})"
    assert srv.wait_for_events(len(ids), where=where) == len(ids)
    assert srv.get("/readyz").status_code == 200


def test_rate_limit_per_ip(tmp_path: Path) -> None:
    with running_server(tmp_path, rate_limit_per_minute=5) as server:
        site = server.add_site("limited.example", origins=["*"])
        statuses = [post(server, COLLECT, body(site, [page_view()])).status_code for _ in range(8)]
        assert statuses[:5] == [204] * 5
        limited = post(server, COLLECT, body(site, [page_view()]))
        error = assert_error(limited, 429, "rate_limited")
        assert "5 per minute" in error["message"]
        assert int(limited.headers["retry-after"]) >= 1
        assert server.wait_for_events(5) == 5
        time.sleep(0.3)
        assert server.count_events() == 5


def test_schema_health_and_metrics_endpoints(srv: ServerProcess, site: dict[str, Any]) -> None:
    schema = httpx.get(srv.url + "/api/v1/schema/event.json")
    assert schema.status_code == 200 and "Event" in schema.json()["$defs"]
    assert httpx.get(srv.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(srv.url + "/readyz").json()["status"] == "ready"
    post(srv, COLLECT, b"{bad")
    text = httpx.get(srv.url + "/metrics").text
    for name in (
        "sightline_events_accepted_total",
        "sightline_events_rejected_total",
        'reason="malformed_json"',
        "sightline_queue_depth",
        "sightline_write_latency_seconds_bucket",
        "sightline_pipeline_step_seconds",
    ):
        assert name in text


def test_analytics_endpoints_need_a_valid_token(srv: ServerProcess, site: dict[str, Any]) -> None:
    for path in ("/api/v1/analytics/dashboard", "/api/v1/analytics/realtime"):
        assert_error(httpx.get(srv.url + path), 401, "unauthenticated")
        assert_error(
            httpx.get(srv.url + path, headers={"authorization": "Bearer sl_nope"}),
            401,
            "invalid_token",
        )
        response = srv.get(path, site=site["domain"])
        assert response.status_code == 200
    assert_error(
        srv.get("/api/v1/analytics/dashboard", site=site["id"], startDate="2024-13-01"),
        400,
        "invalid_date",
    )
    assert_error(
        srv.get(
            "/api/v1/analytics/dashboard",
            site=site["id"],
            startDate="2024-02-01",
            endDate="2024-01-01",
        ),
        400,
        "invalid_range",
    )
    assert_error(
        srv.get("/api/v1/analytics/dashboard", site="unknown.example"), 404, "unknown_site"
    )


def test_realtime_counts_recent_activity(tmp_path: Path) -> None:
    with running_server(tmp_path, rate_limit_per_minute=0) as server:
        site = server.add_site("live.example", origins=["*"])
        events = [
            page_view(sessionId="a", visitorId="va"),
            page_view(sessionId="b", visitorId="vb"),
            {**page_view(sessionId="b", visitorId="vb"), "eventType": "click"},
            {
                **page_view(sessionId="b", visitorId="vb"),
                "eventType": "affiliate_click",
                "properties": {"productId": "p"},
            },
        ]
        post(server, BATCH, body(site, events))
        server.wait_for_events(4)
        stats = server.get("/api/v1/analytics/realtime").json()
        assert stats == {
            "activeUsers": 2,
            "pageViewsLastMinute": 2,
            "clicksLastMinute": 2,
            "eventsLastMinute": 4,
            "conversionRate": 50.0,
        }


def test_rate_limit_keys_on_forwarded_address_only_behind_trusted_proxies(
    tmp_path: Path,
) -> None:
    for trusted, expect_separate in ((["127.0.0.1"], True), ([], False)):
        with running_server(
            tmp_path / str(expect_separate), rate_limit_per_minute=2, trusted_proxies=trusted
        ) as server:
            site = server.add_site("proxied.example", origins=["*"])
            statuses = [
                post(
                    server,
                    COLLECT,
                    body(site, [page_view()]),
                    **{"x-forwarded-for": f"203.0.113.{i % 3}"},
                ).status_code
                for i in range(6)
            ]
            if expect_separate:
                assert statuses == [204] * 6  # three clients, two requests each
            else:
                assert statuses[:2] == [204, 204]
                assert statuses[2:] == [429] * 4  # one peer: the header is not believed
