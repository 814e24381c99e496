"""Months of varied events written straight into a store, for cold-tier tests."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sightline.events import Event

PAGES = ["/", "/pricing", "/blog/a", "/blog/b", "/products/1", "/products/2", "/checkout"]
COUNTRIES = [("DE", "Berlin", "Berlin"), ("FR", "IDF", "Paris"), ("US", "NY", "New York")]
SOURCES = [("", "", ""), ("google", "cpc", "spring"), ("newsletter", "email", "june")]


def history(
    site_id: str, first: date, last: date, *, seed: int = 7, sessions_per_day: int = 12
) -> list[Event]:
    """Sessions on every UTC day in [first, last], from a pool of returning visitors
    (some signed in, some in an experiment), some crossing midnight."""
    rng = random.Random(seed)
    visitors = [f"v{i:03d}" for i in range(60)]
    events: list[Event] = []
    day = first
    while day <= last:
        start_of_day = datetime.combine(day, datetime.min.time(), UTC)
        for n in range(sessions_per_day):
            visitor = rng.choice(visitors)
            user = f"user-{visitor}" if visitor.endswith(("1", "5")) else ""
            country, region, city = rng.choice(COUNTRIES)
            source, medium, campaign = rng.choice(SOURCES)
            # The last session of a day starts just before midnight.
            offset = 86_400 - 90 if n == sessions_per_day - 1 else rng.randrange(0, 86_000)
            t = int((start_of_day + timedelta(seconds=offset)).timestamp() * 1000)
            session = f"s-{visitor}-{t}"
            device = rng.choice(["desktop", "mobile"])
            for k in range(rng.randint(1, 6)):
                kind = rng.choices(
                    ["page_view", "product_view", "affiliate_click", "signup"], [6, 3, 2, 1]
                )[0]
                properties: dict[str, Any] = {}
                if kind in ("product_view", "affiliate_click"):
                    properties["productId"] = rng.choice(["p1", "p2", "p3"])
                if kind == "affiliate_click":
                    properties["revenue"] = rng.choice([1.5, 3, 12.25])
                if k == 0 and visitor.endswith(("2", "4")):
                    events.append(
                        _event(
                            site_id,
                            "experiment_exposure",
                            t,
                            session,
                            visitor,
                            user,
                            "/",
                            device,
                            country,
                            region,
                            city,
                            source,
                            medium,
                            campaign,
                            {"experiment": "cta", "variant": "b" if visitor < "v030" else "a"},
                        )
                    )
                    t += 1
                events.append(
                    _event(
                        site_id,
                        kind,
                        t,
                        session,
                        visitor,
                        user,
                        rng.choice(PAGES),
                        device,
                        country,
                        region,
                        city,
                        source,
                        medium,
                        campaign,
                        properties,
                    )
                )
                t += rng.randint(5_000, 40_000)
        day += timedelta(days=1)
    # The tracker's event ids: the page load's random UUID and a count (one page load per
    # session here). The UUIDs come from the global generator: two histories differ.
    pages: dict[str, tuple[str, int]] = {}
    for event in events:
        page, count = pages.get(event.session_id) or (
            str(uuid.UUID(int=random.getrandbits(128), version=4)),
            0,
        )
        pages[event.session_id] = (page, count + 1)
        event.event_id = f"{page}.{count + 1}"
    return events


def _event(
    site_id: str,
    kind: str,
    t: int,
    session: str,
    visitor: str,
    user: str,
    page: str,
    device: str,
    country: str,
    region: str,
    city: str,
    source: str,
    medium: str,
    campaign: str,
    properties: dict[str, Any],
) -> Event:
    return Event(
        event_type=kind,
        timestamp=t,
        session_id=session,
        visitor_id=visitor,
        user_id=user,
        page_url=f"https://shop.example{page}",
        page_path=page,
        page_title=page.strip("/") or "home",
        device_type=device,
        os="Linux" if device == "desktop" else "Android",
        browser="Firefox",
        utm_source=source,
        utm_medium=medium,
        utm_campaign=campaign,
        utm_term="shoes" if source == "google" else "",
        properties=properties,
        site_id=site_id,
        server_timestamp=t + 150,
        country=country,
        region=region,
        city=city,
        referrer_source=source or "Direct",
        channel="Paid Search" if medium == "cpc" else "Direct",
    )
