"""Generated traffic for the query tests, with the edge cases numbers go wrong on.

Days around the site zone's latest daylight-saving transitions (both directions),
sessions that cross local midnight or sit in the repeated hour, visitors with and without
consent (tracker ids, server sessions, cookieless ids), several browsers and countries,
campaigns, products with revenue, experiment exposures, custom properties, duplicate
deliveries of the same event and events that arrive late, after the rest is stored.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from mmdb_writer import MMDBWriter
from netaddr import IPSet

DAY_MS = 86_400_000

USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
]

#: Client networks of the generated GeoIP database, and one it does not know.
GEO_RECORDS: dict[str, dict[str, Any]] = {
    "203.0.113.0/24": {
        "country": {"iso_code": "DE", "names": {"en": "Germany"}},
        "subdivisions": [{"iso_code": "BE", "names": {"en": "Berlin"}}],
        "city": {"names": {"en": "Berlin"}},
    },
    "198.51.100.0/24": {
        "country": {"iso_code": "US", "names": {"en": "United States"}},
        "subdivisions": [{"iso_code": "NY", "names": {"en": "New York"}}],
        "city": {"names": {"en": "New York"}},
    },
    "192.0.2.0/24": {
        "country": {"iso_code": "FR", "names": {"en": "France"}},
        "subdivisions": [{"iso_code": "IDF", "names": {"en": "Ile-de-France"}}],
        "city": {"names": {"en": "Paris"}},
    },
}
CLIENT_IPS = ["203.0.113.7", "203.0.113.9", "198.51.100.20", "192.0.2.44", "100.64.0.5"]

PAGES = ["/", "/pricing", "/blog/dst", "/blog/midnight", "/p/1", "/p/2", "/docs/a,b"]
REFERRERS = [
    "",
    "https://www.google.com/",
    "https://www.facebook.com/",
    "https://news.example.org/story",
]
CAMPAIGN = (
    "?utm_source=newsletter&utm_medium=email&utm_campaign=launch&utm_term=dst&utm_content=top"
)
PRODUCTS = ["p-1", "p-2", "p-3"]
LATER_TYPES = [
    "page_view",
    "page_view",
    "page_view",
    "product_view",
    "affiliate_click",
    "click",
    "scroll_depth",
    "heartbeat",
    "search_query",
    "signup",
]


def write_geo_db(path: Path) -> Path:
    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-City", ipv4_compatible=True)
    for network, record in GEO_RECORDS.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


def transitions(tz: str, now: datetime, days: int = 330) -> list[date]:
    """Local dates of the zone's offset changes in the last ``days`` days."""
    zone = ZoneInfo(tz)
    found = []
    day = (now - timedelta(days=days)).astimezone(zone).date()
    end = now.astimezone(zone).date() - timedelta(days=2)
    while day < end:
        a = datetime.combine(day, datetime.min.time(), zone).utcoffset()
        b = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone).utcoffset()
        if a != b:
            found.append(day)
        day += timedelta(days=1)
    return found


@dataclass
class Request:
    events: list[dict[str, Any]]
    user_agent: str
    ip: str


@dataclass
class Traffic:
    tz: str
    #: Local dates that hold data.
    days: list[date]
    requests: list[Request] = field(default_factory=list)
    #: Sent after ``requests`` are stored: duplicates and events that come late.
    later: list[Request] = field(default_factory=list)

    @property
    def unique_events(self) -> int:
        return len({e["eventId"] for r in self.requests + self.later for e in r.events})


def local_ms(zone: ZoneInfo, day: date, hour: int, minute: int, fold: int = 0) -> int:
    moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone, fold=fold)
    return int(moment.astimezone(UTC).timestamp() * 1000)


def generate(tz: str, seed: int, now: datetime, visitors: int = 40) -> Traffic:
    rng = random.Random(seed)
    zone = ZoneInfo(tz)
    changes = transitions(tz, now)
    assert changes, f"{tz} has no transition in the last year"
    days: list[date] = []
    for change in changes[-2:]:
        days += [change + timedelta(days=d) for d in (-1, 0, 1)]
    traffic = Traffic(tz, sorted(set(days)))
    visitor_ids = [f"{tz.split('/')[-1].lower()}-v{i}" for i in range(visitors)]
    for index, visitor in enumerate(visitor_ids):
        mode = "consent" if index % 5 < 3 else "server_sessions" if index % 5 == 3 else "cookieless"
        ua = USER_AGENTS[index % len(USER_AGENTS)]
        ip = CLIENT_IPS[index % len(CLIENT_IPS)]
        exposures = {"cta": rng.choice(["A", "B"])} if index % 3 else {}
        if index % 4 == 0:
            exposures["layout"] = rng.choice(["wide", "narrow"])
        for s in range(rng.randint(1, 4)):
            day = rng.choice(traffic.days)
            kind = rng.random()
            if kind < 0.2:
                start = local_ms(zone, day, 23, rng.randint(35, 58))  # crosses midnight
            elif kind < 0.35 and day in changes:
                # In the hour around the change (the repeated hour when clocks go back).
                start = local_ms(
                    zone, day, rng.choice([1, 2]), rng.randint(0, 59), rng.randint(0, 1)
                )
            else:
                start = local_ms(zone, day, rng.randint(0, 23), rng.randint(0, 59))
            start += rng.randint(0, 59_999)
            session_id = f"{visitor}-s{s}" if mode == "consent" else ""
            events = session_events(rng, visitor, session_id, start, exposures if s == 0 else {})
            if mode == "cookieless":
                for e in events:
                    del e["visitorId"]
            withheld = [e for e in events[1:] if rng.random() < 0.08]
            sent = [e for e in events if e not in withheld]
            traffic.requests.append(Request(sent, ua, ip))
            dupes = [dict(e) for e in sent if rng.random() < 0.06]
            if withheld or dupes:
                traffic.later.append(Request(withheld + dupes, ua, ip))
    rng.shuffle(traffic.requests)
    return traffic


def session_events(
    rng: random.Random,
    visitor: str,
    session_id: str,
    start: int,
    exposures: dict[str, str],
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    t = start
    campaign = rng.random() < 0.25
    referrer = rng.choice(REFERRERS)
    path = rng.choice(PAGES)
    plan = rng.choice(["free", "pro", None])
    for n in range(rng.randint(1, 12)):
        kind = "page_view" if n == 0 else rng.choice(LATER_TYPES)
        if kind == "page_view" and n:
            path = rng.choice(PAGES)
        props: dict[str, Any] = {}
        if kind == "page_view" and plan is not None:
            props["plan"] = plan
        if kind in ("product_view", "affiliate_click"):
            props["productId"] = rng.choice(PRODUCTS)
        if kind == "affiliate_click" and rng.random() < 0.6:
            props["revenue"] = rng.choice([1.25, 3.5, 10])
        if kind == "scroll_depth":
            props["depth"] = rng.choice([25, 50, 75, 100])
        if kind == "search_query":
            props["results"] = rng.randint(0, 3)
        url = "https://site.example" + path + (CAMPAIGN if n == 0 and campaign else "")
        event: dict[str, Any] = {
            "eventId": str(uuid.UUID(int=rng.getrandbits(128))),
            "eventType": kind,
            "timestamp": t,
            "visitorId": visitor,
            "pagePath": path,
            "pageUrl": url,
            "referrer": referrer if n == 0 else "https://site.example/",
            "properties": props,
        }
        if session_id:
            event["sessionId"] = session_id
        events.append(event)
        if n == 0:
            for experiment, variant in exposures.items():
                t += rng.randint(1, 900)
                events.append(
                    {
                        **event,
                        "eventId": str(uuid.UUID(int=rng.getrandbits(128))),
                        "eventType": "experiment_exposure",
                        "timestamp": t,
                        "properties": {"experiment": experiment, "variant": variant},
                    }
                )
        t += rng.randint(1_000, 9 * 60_000)
    return events


def send(base_url: str, site_key: str, requests: list[Request]) -> int:
    """POST each request as the visitor's browser would; returns events queued."""
    queued = 0
    with httpx.Client(timeout=60) as client:
        for request in requests:
            if not request.events:
                continue
            response = client.post(
                base_url + "/api/v1/analytics/collect/batch",
                content=json.dumps({"siteKey": site_key, "events": request.events}),
                headers={
                    "content-type": "application/json",
                    "user-agent": request.user_agent,
                    "x-forwarded-for": request.ip,
                },
            )
            body = response.json()
            assert response.status_code == 200, response.text
            assert body["rejected"] == [], body
            queued += body["queued"]
    return queued
