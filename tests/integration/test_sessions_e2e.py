"""SessionStats through the real collector and writer equal an independent computation
over the same raw events, whatever order the events arrive in."""

from __future__ import annotations

import itertools
import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from sightline.events.types import PASSIVE_TYPES
from tests.support.server import BROWSER_UA, running_server

MIN = 60_000
INTERACTIVE = ["click", "product_view", "search_query", "affiliate_click"]
PASSIVE = ["heartbeat", "scroll_depth", "page_exit"]


def generate(rng: random.Random, base: int) -> list[dict[str, Any]]:
    events = []
    for v in range(60):
        visitor = f"visitor-{v}"
        t = base + rng.randint(0, 600) * MIN
        for s in range(rng.randint(1, 3)):
            session = f"{visitor}-s{s}"
            t += rng.randint(40, 300) * MIN
            for _ in range(rng.randint(1, 8)):
                t += rng.randint(0, 20) * MIN + rng.randint(0, 59_999)
                kind = rng.choice(["page_view"] * 5 + INTERACTIVE + PASSIVE)
                props: dict[str, Any] = {}
                if kind in ("product_view", "affiliate_click"):
                    props = {"productId": f"p{rng.randint(1, 5)}"}
                if kind == "affiliate_click" and rng.random() < 0.5:
                    props["revenue"] = rng.choice([1.25, 3.5, 10])
                if kind == "scroll_depth":
                    props = {"depth": 50}
                events.append(
                    {
                        "eventId": str(uuid.uuid4()),
                        "eventType": kind,
                        "timestamp": t,
                        "sessionId": session,
                        "visitorId": visitor,
                        "pagePath": f"/page/{rng.randint(1, 9)}",
                        "properties": props,
                    }
                )
    return events


def expected_sessions(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    sessions: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        sessions.setdefault(e["sessionId"], []).append(e)
    out = {}
    for sid, items in sessions.items():
        items.sort(key=lambda e: (e["timestamp"], e["eventId"]))
        views = [e for e in items if e["eventType"] == "page_view"]
        interactions = [e for e in items if e["eventType"] not in PASSIVE_TYPES | {"page_view"}]
        goals = [e for e in items if e["eventType"] == "affiliate_click"]
        out[sid] = {
            "events": len(items),
            "page_views": len(views),
            "duration": (items[-1]["timestamp"] - items[0]["timestamp"]) // 1000,
            "bounce": len(views) <= 1 and not interactions,
            "converted": bool(goals),
            "revenue": sum(round(e["properties"].get("revenue", 0) * 100) for e in goals),
            "landing_page": views[0]["pagePath"] if views else None,
            "exit_page": views[-1]["pagePath"] if views else None,
        }
    return out


def test_session_stats_match_an_independent_computation_with_shuffled_input(
    tmp_path: Path,
) -> None:
    rng = random.Random(11)
    base = int(time.time() * 1000) - 3 * 24 * 3600 * 1000
    events = generate(rng, base)
    shuffled = events[:]
    rng.shuffle(shuffled)
    with running_server(tmp_path, rate_limit_per_minute=0) as server:
        site = server.add_site("sessions.example", origins=["*"])
        with httpx.Client(headers={"user-agent": BROWSER_UA}, timeout=30) as client:
            for start in range(0, len(shuffled), 37):
                chunk = shuffled[start : start + 37]
                body = {
                    "siteKey": site["siteKey"],
                    "events": chunk,
                    "metadata": {"sentAt": int(time.time() * 1000)},
                }
                response = client.post(
                    server.url + "/api/v1/analytics/collect/batch", content=json.dumps(body)
                )
                assert response.json()["queued"] == len(chunk), response.text
        assert server.wait_for_events(len(events)) == len(events)
        rows = server.query(
            "SELECT session_id, events, page_views, duration, bounce, converted, revenue, "
            "landing_page, exit_page FROM session_stats"
        )
        got = {
            r[0]: dict(
                zip(
                    [
                        "events",
                        "page_views",
                        "duration",
                        "bounce",
                        "converted",
                        "revenue",
                        "landing_page",
                        "exit_page",
                    ],
                    r[1:],
                    strict=True,
                )
            )
            for r in rows
        }
        want = expected_sessions(events)
        assert got.keys() == want.keys()
        for sid in want:
            assert got[sid] == want[sid], sid
        # The dashboard's session metrics are these rows, aggregated.
        today = datetime.now(UTC).date()
        totals = server.get(
            "/api/v1/analytics/dashboard",
            startDate=(today - timedelta(days=10)).isoformat(),
            endDate=(today + timedelta(days=1)).isoformat(),
        ).json()["totals"]
        assert totals["sessions"] == len(want)
        bounce = 100 * sum(s["bounce"] for s in want.values()) / len(want)
        assert totals["bounceRate"] == round(bounce, 2)
        duration = sum(s["duration"] for s in want.values()) / len(want)
        assert totals["avgSessionDuration"] == round(duration, 2)
        assert totals["conversions"] == sum(s["converted"] for s in want.values())


def gap_sessions(events: list[dict[str, Any]], timeout_ms: int = 30 * MIN) -> list[set[str]]:
    """Independent computation of server sessions: split each visitor's sorted events
    at gaps longer than the timeout."""
    by_visitor: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_visitor.setdefault(e["visitorId"], []).append(e)
    groups = []
    for items in by_visitor.values():
        items.sort(key=lambda e: e["timestamp"])
        current = {items[0]["eventId"]}
        for a, b in itertools.pairwise(items):
            if b["timestamp"] - a["timestamp"] > timeout_ms:
                groups.append(current)
                current = set()
            current.add(b["eventId"])
        groups.append(current)
    return sorted(groups, key=min)


def test_server_sessions_match_the_gap_rule_in_any_arrival_order(tmp_path: Path) -> None:
    rng = random.Random(23)
    base = int(time.time() * 1000) - 2 * 24 * 3600 * 1000
    events = []
    for v in range(25):
        t = base + rng.randint(0, 300) * MIN
        for _ in range(rng.randint(2, 14)):
            t += rng.choice([1, 10, 25, 29, 31, 40, 70]) * MIN
            events.append(
                {
                    "eventId": str(uuid.uuid4()),
                    "eventType": "page_view",
                    "timestamp": t,
                    "visitorId": f"cookieless-{v}",
                    "pagePath": "/",
                }
            )
    arrival = events[:]
    rng.shuffle(arrival)
    with running_server(tmp_path, rate_limit_per_minute=0, writer_flush_ms=20) as server:
        site = server.add_site("gaps.example", origins=["*"])
        with httpx.Client(headers={"user-agent": BROWSER_UA}, timeout=30) as client:
            for start in range(0, len(arrival), 5):
                body = {"siteKey": site["siteKey"], "events": arrival[start : start + 5]}
                client.post(
                    server.url + "/api/v1/analytics/collect/batch", content=json.dumps(body)
                ).raise_for_status()
                time.sleep(0.03)  # separate commits, so late events really arrive late
        assert server.wait_for_events(len(events)) == len(events)
        rows = server.query("SELECT session_id, event_id FROM events")
        stored: dict[str, set[str]] = {}
        for session_id, event_id in rows:
            stored.setdefault(session_id, set()).add(event_id)
        assert sorted(stored.values(), key=min) == gap_sessions(events)
        stats = server.query("SELECT session_id, events FROM session_stats")
        assert {sid: n for sid, n in stats} == {sid: len(ids) for sid, ids in stored.items()}
