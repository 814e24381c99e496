"""Consent modes, Do Not Track and Global Privacy Control, server-side, on a real server:
what is refused is never stored, and every refusal is counted on /metrics."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from tests.support.server import BROWSER_UA, ServerProcess


def event(**fields: Any) -> dict[str, Any]:
    return {"eventId": str(uuid.uuid4()), "eventType": "page_view", "pagePath": "/", **fields}


def post(
    server: ServerProcess, key: str, events: list[dict[str, Any]], **headers: str
) -> httpx.Response:
    return httpx.post(
        server.url + "/api/v1/analytics/collect/batch",
        json={"siteKey": key, "events": events},
        headers={"User-Agent": BROWSER_UA, **headers},
    )


def dropped(server: ServerProcess, reason: str) -> float:
    text = httpx.get(server.url + "/metrics").text
    found = re.search(
        rf'^sightline_events_dropped_total{{reason="{reason}",step="consent"}} (\S+)$',
        text,
        re.M,
    )
    return float(found.group(1)) if found else 0.0


def test_a_consent_required_site_stores_nothing_without_consent(server: ServerProcess) -> None:
    site = server.add_site("shop.example", origins=["*"])
    other = server.add_site("blog.example", origins=["*"])
    changed = server.cli("site", "privacy", site["id"], "--consent-mode", "consent-required")
    assert changed["consentMode"] == "consent-required"
    visitor = str(uuid.uuid4())
    refused = [
        event(),  # undecided, cookieless
        event(consent="unknown", visitorId=visitor),
        event(consent="denied", visitorId=visitor),
    ]
    answer = post(server, site["siteKey"], refused).json()
    assert answer["queued"] == 0
    assert [r["error"] for r in answer["rejected"]] == [
        "dropped: consent_required",
        "dropped: consent_required",
    ]
    accepted = [event(consent="granted", visitorId=visitor), event(visitorId=visitor)]
    assert post(server, site["siteKey"], accepted).json()["queued"] == 2
    # The cookieless site next door takes the undecided visitor, without their ids.
    assert post(server, other["siteKey"], [event(userId="u-1", visitorId="")]).json()["queued"] == 1
    assert server.wait_for_events(3) == 3
    stored = server.query("SELECT site_id, visitor_id, user_id FROM events ORDER BY site_id")
    assert sorted(r[0] for r in stored) == sorted([site["id"], site["id"], other["id"]])
    assert {r[1] for r in stored if r[0] == site["id"]} == {visitor}
    cookieless = next(r for r in stored if r[0] == other["id"])
    assert len(cookieless[1]) == 32 and cookieless[2] == ""
    assert dropped(server, "consent_required") == 2
    assert dropped(server, "consent_denied") == 1


def test_do_not_track_and_global_privacy_control_store_nothing(server: ServerProcess) -> None:
    site = server.add_site("shop.example", origins=["*"])
    visitor = str(uuid.uuid4())
    for headers in ({"DNT": "1"}, {"Sec-GPC": "1"}, {"DNT": "1", "Sec-GPC": "1"}):
        response = post(
            server, site["siteKey"], [event(consent="granted", visitorId=visitor)], **headers
        )
        assert response.status_code == 200
        assert response.json() == {"success": True, "queued": 0, "rejected": []}
    beacon = httpx.post(
        server.url + "/api/v1/analytics/collect",
        content=f'{{"siteKey": "{site["siteKey"]}", "events": [{{"eventType": "page_view"}}]}}',
        headers={"User-Agent": BROWSER_UA, "Content-Type": "text/plain", "Sec-GPC": "1"},
    )
    assert beacon.status_code == 204
    assert post(server, site["siteKey"], [event()], DNT="0").json()["queued"] == 1
    assert server.wait_for_events(1) == 1
    assert server.count_events() == 1
    assert dropped(server, "do_not_track") == 1
    assert dropped(server, "global_privacy_control") == 3
