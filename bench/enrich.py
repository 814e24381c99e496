"""Enrichment throughput per core: the whole pipeline (``build_pipeline``) in one thread.

Two workloads of the same shape, requests of ``--batch`` events (default 10, the
tracker's batch size: it sends when 10 events are queued or 5 seconds have passed):

- realistic: 200 distinct user agents (most traffic comes from a few browser versions),
  visitors who keep their browser and address over about five requests, a few hundred
  pages, a mix of referrers and campaigns, half the events cookieless, unique performance
  timings in every page view;
- distinct: every request has a user agent never seen before (worst case: every request
  pays a full ua-parser parse and the bot rules).

A small GeoIP database covering the client addresses is generated so the geo step does
real lookups. Throughput is counted in CPU time, which is what "per core" means on a
machine shared with other work; wall-clock figures are printed too. Smaller batches cost
more per event (each request has fixed costs: the client address, its GeoIP lookup, the
cookieless hash, the per-step bookkeeping); try ``--batch 1``.

    .venv/bin/python bench/enrich.py [--events N] [--batch N]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from pathlib import Path

from sightline.config import Settings
from sightline.events import Event
from sightline.pipeline import Pipeline, RequestContext, build_pipeline
from sightline.sites import Site

CHROME = (
    "Mozilla/5.0 ({os}) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.{b}.{p} {m}Safari/537.36"
)
FIREFOX = "Mozilla/5.0 ({os}; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS {v}_{b} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/{v}.{b} Mobile/15E148 Safari/604.1"
)
DESKTOP_OS = [
    "Windows NT 10.0; Win64; x64",
    "Macintosh; Intel Mac OS X 10_15_7",
    "X11; Linux x86_64",
]
ANDROID_OS = ["Linux; Android 10; K", "Linux; Android 14; Pixel 8", "Linux; Android 13; SM-X700"]
REFERRERS = [
    "",
    "",
    "",
    "https://www.google.com/",
    "https://www.google.de/",
    "https://duckduckgo.com/",
    "https://www.bing.com/search?q=headphones",
    "https://l.facebook.com/",
    "https://t.co/abc",
    "https://news.ycombinator.com/item?id=1",
    "https://mail.google.com/",
    "https://blog.example.net/best-headphones",
    "https://shop.example.com/products/1",
]
CAMPAIGNS = [
    "",
    "",
    "",
    "",
    "?utm_source=newsletter&utm_medium=email&utm_campaign=spring",
    "?gclid=EAIaIQobChMI",
    "?utm_source=facebook&utm_medium=social",
]


Requests = list[tuple[RequestContext, list[tuple[int, Event]]]]


def realistic_user_agents(count: int, rng: random.Random) -> list[str]:
    agents: set[str] = set()
    while len(agents) < count:
        kind = rng.random()
        if kind < 0.45:
            mobile = rng.random() < 0.5
            os_name = rng.choice(ANDROID_OS if mobile else DESKTOP_OS)
            agents.add(
                CHROME.format(
                    os=os_name,
                    v=rng.randint(110, 125),
                    b=rng.randint(5000, 6400),
                    p=rng.randint(0, 200),
                    m="Mobile " if mobile and "SM-X" not in os_name else "",
                )
            )
        elif kind < 0.7:
            agents.add(SAFARI_IOS.format(v=rng.randint(15, 17), b=rng.randint(0, 6)))
        else:
            os_name = rng.choice(["Windows NT 10.0; Win64; x64", "X11; Linux x86_64"])
            agents.add(FIREFOX.format(os=os_name, v=rng.randint(100, 126)))
    return sorted(agents)


def make_requests(
    events: int, batch: int, agents: list[str] | None, rng: random.Random
) -> Requests:
    site = Site(id="site1", domain="shop.example.com", site_key="pk_bench")
    now = int(time.time() * 1000)
    pages = [f"/products/item-{n}" for n in range(300)] + ["/", "/search", "/about"]
    requests = []
    serial = 0
    # Visitors keep their browser and address; each sends about five requests.
    visitors = max(1, events // batch // 5)
    for number in range(events // batch):
        if agents is not None:
            visitor_rng = random.Random(rng.randrange(visitors))
            ua = visitor_rng.choice(agents)
        else:
            visitor_rng = random.Random(number)
            ua = CHROME.format(
                os=rng.choice(DESKTOP_OS), v=100 + number % 30, b=number, p=number % 97, m=""
            )
        ip = f"198.51.{visitor_rng.randint(0, 99)}.{visitor_rng.randint(1, 254)}"
        ctx = RequestContext(
            site=site, ip=ip, user_agent=ua, received_at=now, sent_at=now - rng.randint(0, 900)
        )
        referrer = rng.choice(REFERRERS)
        campaign = rng.choice(CAMPAIGNS)
        consent = visitor_rng.random() < 0.5
        visitor = f"v-{visitor_rng.randint(0, 10**9)}" if consent else ""
        items = []
        for _ in range(batch):
            path = rng.choice(pages)
            serial += 1
            kind = rng.random()
            item = path[-3:]
            if kind < 0.4:  # performance timings: different in every page view
                event = Event(
                    event_type="page_view",
                    properties={
                        "loadTime": round(rng.uniform(300, 3000), 1),
                        "ttfb": round(rng.uniform(20, 400), 1),
                        "fcp": round(rng.uniform(200, 2000), 1),
                        "lcp": round(rng.uniform(400, 4000), 1),
                        "cls": round(rng.uniform(0, 0.3), 3),
                    },
                )
            elif kind < 0.65:
                event = Event(
                    event_type="product_view",
                    properties={
                        "productId": f"p{item}",
                        "productName": f"Wireless Headphones {item}",
                        "productSlug": f"wireless-headphones-{item}",
                        "productPrice": 129.99,
                        "categoryName": "Audio",
                        "source": rng.choice(["search", "category", "direct"]),
                    },
                )
            elif kind < 0.8:
                depth = rng.choice([25, 50, 75, 100])
                event = Event(
                    event_type="scroll_depth", properties={"depth": depth, "maxDepth": depth}
                )
            elif kind < 0.9:
                event = Event(
                    event_type="affiliate_click",
                    properties={
                        "productId": f"p{item}",
                        "linkId": f"l{item}",
                        "platform": "amazon",
                        "position": "hero",
                        "ctaText": "Check price",
                        "price": 129.99,
                    },
                )
            else:
                event = Event(
                    event_type="click", properties={"element": "button", "text": "Add to list"}
                )
            event.event_id = f"e{serial}"
            event.timestamp = now - rng.randint(1000, 60_000)
            event.session_id = f"s-{visitor}" if visitor else ""
            event.visitor_id = visitor
            event.page_url = f"https://shop.example.com{path}{campaign}"
            event.page_path = path
            event.page_title = f"Item {path[-3:]} | Shop"
            event.referrer = referrer
            event.user_agent = ua
            event.screen_resolution = "1920x1080"
            event.device_type = "desktop"
            items.append((len(items), event))
        requests.append((ctx, items))
    return requests


def make_geo_db(path: Path) -> None:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-City", ipv4_compatible=True)
    cities = [("DE", "Berlin", "Berlin"), ("FR", "Ile-de-France", "Paris"), ("US", "Ohio", "Ohio")]
    for third in range(100):
        country, region, city = cities[third % len(cities)]
        writer.insert_network(
            IPSet([f"198.51.{third}.0/24"]),
            {
                "country": {"iso_code": country},
                "subdivisions": [{"names": {"en": region}}],
                "city": {"names": {"en": city}},
            },
        )
    writer.to_db_file(str(path))


def run(pipeline: Pipeline, requests: Requests) -> tuple[float, float]:
    """(CPU seconds, wall seconds) to run every request through the pipeline.

    CPU time is what "per core" means on a machine shared with other work.
    """
    gc.collect()
    gc.freeze()  # the input is not garbage; a server never holds all of it at once
    try:
        return _timed(pipeline, requests)
    finally:
        gc.unfreeze()


def _timed(pipeline: Pipeline, requests: Requests) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for ctx, items in requests:
        pipeline.process(items, ctx)
    return time.process_time() - cpu, time.perf_counter() - wall


def report(name: str, pipeline: Pipeline, events: int, seconds: tuple[float, float]) -> None:
    cpu, wall = seconds
    print(f"\n{name}: {events:,} events")
    print(f"  {events / cpu:,.0f} events/s per core (CPU time {cpu:.2f} s)")
    print(f"  {events / wall:,.0f} events/s wall clock ({wall:.2f} s)")
    print(f"  {'step':<12} {'us/event':>9}  drops   (wall clock)")
    for step, stats in pipeline.stats.items():
        per_event = stats.seconds / stats.events * 1e6 if stats.events else 0.0
        drops = ", ".join(f"{k}={v}" for k, v in stats.drops.items()) or "-"
        print(f"  {step:<12} {per_event:>9.2f}  {drops}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--distinct-events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=10, help="events per request")
    args = parser.parse_args(argv)
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as tmp:
        geo = Path(tmp) / "geo.mmdb"
        make_geo_db(geo)
        settings = Settings(data_dir=tmp, geoip_db=str(geo))
        print(f"Python {sys.version.split()[0]}, batches of {args.batch} events, one thread")

        agents = realistic_user_agents(200, rng)
        requests = make_requests(args.events, args.batch, agents, rng)
        warm = make_requests(2_000, args.batch, agents, rng)
        pipeline = build_pipeline(settings)
        run(pipeline, warm)  # fill the caches as a running server has them
        pipeline = _fresh_stats(pipeline)
        seconds = run(pipeline, requests)
        report("realistic (200 distinct user agents)", pipeline, args.events, seconds)

        requests = make_requests(args.distinct_events, args.batch, None, rng)
        pipeline = build_pipeline(settings)
        seconds = run(pipeline, requests)
        report("distinct (a new user agent every request)", pipeline, args.distinct_events, seconds)
    return 0


def _fresh_stats(pipeline: Pipeline) -> Pipeline:
    return Pipeline(pipeline.steps)


if __name__ == "__main__":
    sys.exit(main())
