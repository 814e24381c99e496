"""Every analytics number equals an independent computation over the same raw events.

Traffic for two sites (America/New_York and Europe/Berlin) around their latest DST
transitions goes through the real collector and writer of a real server, duplicates and
late events included; tests/unit/query/reference.py recomputes each figure in plain
Python from the stored events and the API must agree exactly — on DuckDB and on
PostgreSQL alike (the module runs once per warm store).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.support.server import ServerProcess, running_server
from tests.support.stores import WarmStore
from tests.unit.query import reference as ref
from tests.unit.query.traffic import Traffic, generate, send, write_geo_db

pytestmark = pytest.mark.slow

ZONES = {"ny": "America/New_York", "berlin": "Europe/Berlin"}
EVENT_METRICS = [
    "events",
    "pageViews",
    "visitors",
    "productViews",
    "affiliateClicks",
    "revenue",
    "ctr",
]
SESSION_METRICS = [
    "sessions",
    "bounceRate",
    "avgSessionDuration",
    "viewsPerSession",
    "conversions",
    "conversionRate",
]
ALL_METRICS = EVENT_METRICS + SESSION_METRICS
DIMENSIONS = [
    "page",
    "entryPage",
    "exitPage",
    "referrerSource",
    "channel",
    "utmSource",
    "utmMedium",
    "utmCampaign",
    "utmTerm",
    "utmContent",
    "country",
    "region",
    "city",
    "deviceType",
    "browser",
    "os",
    "eventType",
    "product",
    "prop:plan",
    "prop:productId",
    "prop:depth",
    "variant:cta",
    "variant:layout",
]
FILTER_SETS: list[list[str]] = [
    [],
    ["country:is:DE,FR"],
    ["page:contains:BLOG"],
    ["channel:is_not:direct"],
    ["prop:plan:is:pro"],
    ["variant:cta:is:B"],
    ["entryPage:matches:^/p/"],
    ["utmTerm:is:dst"],
    ["deviceType:is:mobile", "eventType:is_not:heartbeat"],
    ["browser:is:Firefox,Safari", "channel:is:organic_search,direct", "page:is:/pricing,/"],
    ["page:is:/docs/a\\,b"],
    ["region:is:"],
]


@dataclass
class Site:
    key: str
    id: str
    site_key: str
    tz: str
    traffic: Traffic
    data: ref.Data

    @property
    def first(self) -> date:
        return self.traffic.days[0]

    @property
    def last(self) -> date:
        return self.traffic.days[-1]


@dataclass
class World:
    server: ServerProcess
    sites: dict[str, Site]

    def get(self, path: str, site: Site, **params: Any) -> Any:
        response = self.server.get(f"/api/v1/analytics/{path}", site=site.id, **params)
        assert response.status_code == 200, response.text
        return response.json()


def parse_filters(texts: list[str]) -> list[ref.Filter]:
    out = []
    for text in texts:
        parts = text.split(":", 3 if text.startswith(("prop:", "variant:")) else 2)
        if text.startswith(("prop:", "variant:")):
            dim, op, values = f"{parts[0]}:{parts[1]}", parts[2], parts[3]
        else:
            dim, op, values = parts
        out.append(
            (dim, op, [v.replace("\x00", ",") for v in values.replace("\\,", "\x00").split(",")])
        )
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, store_engine: WarmStore) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("analytics")
    geo = write_geo_db(tmp / "city.mmdb")
    now = datetime.now(UTC)
    with running_server(
        tmp,
        **store_engine.settings,
        rate_limit_per_minute=0,
        max_event_age_hours=9000,
        geoip_db=str(geo),
        trusted_proxies=["127.0.0.1"],
    ) as server:
        sites: dict[str, Site] = {}
        traffic: dict[str, Traffic] = {}
        for seed, (key, tz) in enumerate(ZONES.items()):
            created = server.add_site(f"{key}.example", origins=["*"], timezone=tz)
            traffic[key] = generate(tz, seed=seed + 1, now=now)
            send(server.url, created["siteKey"], traffic[key].requests)
            sites[key] = Site(
                key, created["id"], created["siteKey"], tz, traffic[key], ref.Data([], tz)
            )
        total = sum(t.unique_events for t in traffic.values())
        in_time = sum(
            len({e["eventId"] for r in t.requests for e in r.events}) for t in traffic.values()
        )
        assert server.wait_for_events(in_time, timeout=60) == in_time
        for key, site in sites.items():
            # Late events and duplicate deliveries, after the rest is stored.
            send(server.url, site.site_key, traffic[key].later)
        assert server.wait_for_events(total, timeout=60) == total
        time.sleep(0.5)
        assert server.count_events() == total  # duplicates were not stored twice
        for site in sites.values():
            rows = server.query(
                ref.stored_select(store_engine.epoch_ms) + f" WHERE site_id = '{site.id}'"
            )
            site.data = ref.Data(ref.load(rows), site.tz)
        yield World(server, sites)


def selection(site: Site, start: date, end: date, filters: list[str]) -> ref.Selection:
    lo, hi = ref.day_bounds(site.tz, start, end)
    return ref.Selection(site.data, lo, hi, parse_filters(filters))


def test_stored_events_are_the_generated_ones(world: World) -> None:
    for site in world.sites.values():
        generated = {
            e["eventId"] for r in site.traffic.requests + site.traffic.later for e in r.events
        }
        assert {e.id for e in site.data.events} == generated
        # The edge cases are present: sessions across local midnight and in DST days.
        zone = site.tz
        crossing = [
            s
            for s in site.data.sessions.values()
            if ref.bucket(s.events[0].ts, zone, "day") != ref.bucket(s.events[-1].ts, zone, "day")
        ]
        assert len(crossing) >= 3
        assert {e.row["country"] for e in site.data.events} >= {"DE", "US", "FR", ""}
        assert len({e.row["browser"] for e in site.data.events}) >= 3
        assert any(s.id.startswith("srv_") for s in site.data.sessions.values())


@pytest.mark.parametrize("site_key", list(ZONES))
def test_dashboard_totals_and_daily_series(world: World, site_key: str) -> None:
    site = world.sites[site_key]
    for start, end in (
        (site.first, site.last),
        (site.first + timedelta(days=1), site.first + timedelta(days=2)),
    ):
        answer = world.get("dashboard", site, startDate=start.isoformat(), endDate=end.isoformat())
        sel = selection(site, start, end, [])
        names = {"uniqueVisitors": "visitors"}
        dashboard_metrics = [
            "events",
            "pageViews",
            "uniqueVisitors",
            "sessions",
            "avgSessionDuration",
            "bounceRate",
            "productViews",
            "affiliateClicks",
            "conversions",
            "revenue",
        ]
        want = ref.totals(sel, [names.get(m, m) for m in dashboard_metrics])
        assert answer["totals"] == {m: want[names.get(m, m)] for m in dashboard_metrics}
        series = ref.timeseries(sel, [names.get(m, m) for m in dashboard_metrics], "day")
        days = [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
        assert [p["date"] for p in answer["series"]] == days
        for point in answer["series"]:
            expected = series.get(point["date"])
            got = {m: point[m] for m in dashboard_metrics}
            if expected is None:
                assert not any(got.values())
            else:
                assert got == {m: expected[names.get(m, m)] for m in dashboard_metrics}


@pytest.mark.parametrize("filters", FILTER_SETS, ids=lambda f: "&".join(f) or "none")
@pytest.mark.parametrize("site_key", list(ZONES))
def test_every_metric_under_filters(world: World, site_key: str, filters: list[str]) -> None:
    site = world.sites[site_key]
    answer = world.get(
        "timeseries",
        site,
        startDate=site.first.isoformat(),
        endDate=site.last.isoformat(),
        metrics=",".join(ALL_METRICS),
        granularity="week",
        filter=filters,
    )
    sel = selection(site, site.first, site.last, filters)
    want = ref.timeseries(sel, ALL_METRICS, "week")
    got = {p["bucket"]: {m: p[m] for m in ALL_METRICS} for p in answer["series"]}
    assert {k: v for k, v in got.items() if any(v.values())} == want
    assert sel.events() or filters  # the unfiltered set is not empty


@pytest.mark.parametrize("granularity", ["minute", "hour", "day", "week", "month"])
@pytest.mark.parametrize("site_key", list(ZONES))
def test_timeseries_buckets_in_the_site_zone(world: World, site_key: str, granularity: str) -> None:
    site = world.sites[site_key]
    change = ref_changes(site)[-1]  # a day whose length is not 24 hours
    start, end = (change, change) if granularity == "minute" else (site.first, site.last)
    metrics = ["events", "visitors", "sessions", "bounceRate", "revenue"]
    answer = world.get(
        "timeseries",
        site,
        startDate=start.isoformat(),
        endDate=end.isoformat(),
        metrics=",".join(metrics),
        granularity=granularity,
    )
    sel = selection(site, start, end, [])
    lo, hi = ref.day_bounds(site.tz, start, end)
    labels = ref.all_buckets(site.tz, lo, hi, granularity)
    assert [p["bucket"] for p in answer["series"]] == labels
    want = ref.timeseries(sel, metrics, granularity)
    got = {p["bucket"]: {m: p[m] for m in metrics} for p in answer["series"]}
    assert {k: v for k, v in got.items() if any(v.values())} == want
    if granularity == "hour":
        day_hours = [b for b in labels if b.startswith(change.isoformat())]
        assert len(day_hours) in (23, 25)  # the DST day, in local hours


def ref_changes(site: Site) -> list[date]:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(site.tz)
    out = []
    for day in site.traffic.days:
        a = datetime.combine(day, datetime.min.time(), zone).utcoffset()
        b = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone).utcoffset()
        if a != b:
            out.append(day)
    return out


@pytest.mark.parametrize("dimension", DIMENSIONS)
def test_breakdown_of_every_dimension(world: World, dimension: str) -> None:
    for site in world.sites.values():
        for sort in ("visitors", "sessions"):
            answer = world.get(
                "breakdown",
                site,
                startDate=site.first.isoformat(),
                endDate=site.last.isoformat(),
                dimension=dimension,
                metrics=",".join(ALL_METRICS),
                sort=sort,
                limit=1000,
            )
            sel = selection(site, site.first, site.last, [])
            check_breakdown(
                answer, ref.breakdown(sel, dimension, ALL_METRICS), sort, sel, dimension
            )


def check_breakdown(
    answer: dict[str, Any],
    want: dict[str, dict[str, int | float]],
    sort: str,
    sel: ref.Selection,
    dimension: str,
) -> None:
    event_side = sort in EVENT_METRICS
    present = {
        v
        for v, values in want.items()
        if (event_side and values["events"]) or (not event_side and values["sessions"])
    }
    rows = answer["rows"]
    assert {r["value"] for r in rows} == present, dimension
    for row in rows:
        assert {m: row[m] for m in ALL_METRICS} == want[row["value"]], (dimension, row["value"])
    keys = [(-r[sort], r["value"]) for r in rows]
    assert keys == sorted(keys)
    assert answer["hasMore"] is False
    del sel


@pytest.mark.parametrize(
    ("dimension", "filters"),
    [
        ("page", ["country:is:DE", "channel:is_not:direct"]),
        ("channel", ["page:contains:blog"]),
        ("entryPage", ["prop:plan:is_not:free"]),
        ("variant:cta", ["eventType:is:affiliate_click,page_view"]),
        ("country", ["variant:layout:is:wide,narrow"]),
        ("utmCampaign", ["browser:matches:^(Chrome|Firefox)$"]),
    ],
)
@pytest.mark.parametrize("sort", ["pageViews", "visitors"])
def test_breakdown_under_filters_with_paging(
    world: World, dimension: str, filters: list[str], sort: str
) -> None:
    site = world.sites["berlin"]
    sel = selection(site, site.first, site.last, filters)
    want = ref.breakdown(sel, dimension, ALL_METRICS)
    full = world.get(
        "breakdown",
        site,
        startDate=site.first.isoformat(),
        endDate=site.last.isoformat(),
        dimension=dimension,
        metrics=",".join(ALL_METRICS),
        filter=filters,
        sort=sort,
        limit=1000,
    )
    check_breakdown(full, want, sort, sel, dimension)
    paged: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = world.get(
            "breakdown",
            site,
            startDate=site.first.isoformat(),
            endDate=site.last.isoformat(),
            dimension=dimension,
            metrics=",".join(ALL_METRICS),
            filter=filters,
            sort=sort,
            limit=2,
            offset=offset,
        )
        paged += page["rows"]
        offset += 2
        if not page["hasMore"]:
            break
    assert paged == full["rows"]


@pytest.mark.parametrize("site_key", list(ZONES))
def test_top_products(world: World, site_key: str) -> None:
    site = world.sites[site_key]
    for filters in ([], ["country:is:US,FR"], ["channel:is:organic_search"]):
        answer = world.get(
            "products/top",
            site,
            startDate=site.first.isoformat(),
            endDate=site.last.isoformat(),
            filter=filters,
            limit=2,
            sort="clicks",
        )
        want = ref.products(selection(site, site.first, site.last, filters))
        order = sorted(want, key=lambda p: (-want[p]["clicks"], p))[:2]
        assert [p["productId"] for p in answer["products"]] == order
        for product in answer["products"]:
            assert product["productName"] == ""  # (this traffic names no product)
            named = ("productId", "productName")
            assert {k: v for k, v in product.items() if k not in named} == want[
                product["productId"]
            ]


FUNNELS = [
    (["page_view", "product_view", "affiliate_click"], "1d", None, []),
    (["page_view", "product_view", "affiliate_click"], "10m", None, []),
    (
        [
            "page_view;page:contains:/p/",
            "product_view;prop:productId:is:p-1,p-2",
            "affiliate_click",
        ],
        "1d",
        None,
        [],
    ),
    (["page_view", "click", "page_view;page:is:/pricing", "signup"], "2h", None, []),
    (["page_view", "affiliate_click"], "1d", "country", []),
    (
        ["page_view", "product_view", "affiliate_click"],
        "1d",
        "variant:cta",
        ["deviceType:is_not:tablet"],
    ),
    (["page_view", "page_view", "page_view"], "30m", "channel", []),
    (["page_view", "search_query"], "7d", "entryPage", ["channel:is_not:direct"]),
]


@pytest.mark.parametrize(("steps", "window", "dimension", "filters"), FUNNELS)
def test_funnels(
    world: World, steps: list[str], window: str, dimension: str | None, filters: list[str]
) -> None:
    seconds = {"m": 60, "h": 3600, "d": 86_400}[window[-1]] * int(window[:-1])
    for site in world.sites.values():
        params: dict[str, Any] = {
            "startDate": site.first.isoformat(),
            "endDate": site.last.isoformat(),
            "step": steps,
            "window": window,
            "filter": filters,
        }
        if dimension:
            params["dimension"] = dimension
        answer = world.get("funnel", site, **params)
        sel = selection(site, site.first, site.last, filters)
        ref_steps = []
        for text in steps:
            event_type, *step_filters = text.split(";")
            ref_steps.append(ref.Step(event_type, parse_filters(step_filters)))
        overall = ref.funnel(sel, ref_steps, seconds).get("", [])
        check_funnel(answer["steps"], overall, len(steps))
        assert answer["steps"][0]["visitors"] > 0
        if dimension:
            groups = ref.funnel(sel, ref_steps, seconds, dimension)
            got = {g["value"]: g["steps"] for g in answer["breakdown"]["groups"]}
            assert set(got) == set(groups)
            for value, rows in groups.items():
                check_funnel(got[value], rows, len(steps))


def check_funnel(got: list[dict[str, Any]], want: list[dict[str, Any]], n: int) -> None:
    entered = want[0]["visitors"] if want else 0
    assert len(got) == n
    for k, step in enumerate(got):
        visitors = want[k]["visitors"] if want else 0
        previous = (want[k - 1]["visitors"] if k else visitors) if want else 0
        assert step["visitors"] == visitors
        assert step["conversionRate"] == (round(100 * visitors / entered, 2) if entered else 0.0)
        assert step["dropOff"] == previous - visitors
        assert step["stepConversionRate"] == (
            round(100 * visitors / previous, 2) if previous else 0.0
        )
        assert step["medianSecondsFromPrevious"] == (want[k]["median"] if want and k else None)


@pytest.mark.parametrize("period", ["day", "week"])
@pytest.mark.parametrize("return_event", [None, "affiliate_click"])
@pytest.mark.parametrize("filters", [[], ["deviceType:is:desktop"]])
def test_retention(world: World, period: str, return_event: str | None, filters: list[str]) -> None:
    for site in world.sites.values():
        start, end = site.first, site.last
        params: dict[str, Any] = {
            "startDate": start.isoformat(),
            "endDate": end.isoformat(),
            "period": period,
            "filter": filters,
        }
        if return_event:
            params["returnEvent"] = return_event
        answer = world.get("retention", site, **params)
        want = ref.retention(
            site.data, site.tz, start, end, period, return_event, parse_filters(filters)
        )
        assert sum(c["visitors"] for c in answer["cohorts"]) > 0 or filters
        for cohort in answer["cohorts"]:
            expected = want.get(cohort["cohort"], {})
            assert cohort["visitors"] == expected.get(-1, 0), cohort["cohort"]
            for p in cohort["periods"]:
                assert p["visitors"] == expected.get(p["period"], 0), (cohort["cohort"], p)
        assert set(want) <= {c["cohort"] for c in answer["cohorts"]}


def test_sessions_list_and_one_visitors_journey(world: World) -> None:
    site = world.sites["ny"]
    start, end = site.first, site.last
    sel = selection(site, start, end, ["country:is:DE,US"])
    want = sorted(sel.sessions(), key=lambda s: (s.start, s.id), reverse=True)
    got: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {
            "startDate": start.isoformat(),
            "endDate": end.isoformat(),
            "filter": "country:is:DE,US",
            "limit": 7,
        }
        if cursor:
            params["cursor"] = cursor
        page = world.get("sessions", site, **params)
        got += page["sessions"]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert [s["sessionId"] for s in got] == [s.id for s in want]
    for row, session in zip(got, want, strict=True):
        assert row["startedAt"] == session.start
        assert row["pageViews"] == len(session.views)
        assert row["bounce"] == session.bounce
        assert row["duration"] == session.duration
        assert row["entryPage"] == session.attribute("entryPage")
    visitor = max(
        {e.visitor for e in site.data.events},
        key=lambda v: sum(1 for e in site.data.events if e.visitor == v),
    )
    journey = world.get(
        "sessions",
        site,
        startDate=start.isoformat(),
        endDate=end.isoformat(),
        visitorId=visitor,
        limit=1000,
    )
    lo, hi = ref.day_bounds(site.tz, start, end)
    events = [e for e in site.data.events if e.visitor == visitor and lo <= e.ts < hi]
    assert [e["eventId"] for e in journey["events"]] == [e.id for e in events]
    assert {s["sessionId"] for s in journey["sessions"]} == {
        s.id for s in site.data.sessions.values() if s.visitor == visitor and lo <= s.start < hi
    }


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_event_explorer_pages_through_everything_in_a_stable_order(
    world: World, order: str
) -> None:
    site = world.sites["berlin"]
    filters = ["prop:plan:is:pro,free"]
    sel = selection(site, site.first, site.last, filters)
    want = [e.id for e in sorted(sel.events(), key=lambda e: (e.ts, e.id), reverse=order == "desc")]
    got: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {
            "startDate": site.first.isoformat(),
            "endDate": site.last.isoformat(),
            "filter": filters,
            "limit": 37,
            "order": order,
        }
        if cursor:
            params["cursor"] = cursor
        page = world.get("events", site, **params)
        got += [e["eventId"] for e in page["events"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert got == want


@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson", "parquet"])
def test_export_holds_every_event_in_order(world: World, fmt: str) -> None:
    site = world.sites["ny"]
    start, end = site.first, site.last
    response = world.server.get(
        "/api/v1/analytics/export",
        site=site.id,
        startDate=start.isoformat(),
        endDate=end.isoformat(),
        format=fmt,
        filter="channel:is_not:internal",
    )
    assert response.status_code == 200, response.text
    ext = {"csv": "csv", "json": "json", "ndjson": "ndjson", "parquet": "parquet"}[fmt]
    assert response.headers["content-disposition"] == (
        f'attachment; filename="analytics-{start.isoformat()}-to-{end.isoformat()}.{ext}"'
    )
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(response.text)))
    elif fmt == "json":
        rows = response.json()
    elif fmt == "ndjson":
        rows = [json.loads(line) for line in response.text.splitlines()]
    else:
        rows = pq.read_table(io.BytesIO(response.content)).to_pylist()
    sel = selection(site, start, end, ["channel:is_not:internal"])
    want = sorted(sel.events(), key=lambda e: (e.ts, e.id))
    assert [r["eventId"] for r in rows] == [e.id for e in want]
    for row, event in zip(rows, want, strict=True):
        assert int(row["timestamp"]) == event.ts
        assert row["pagePath"] == event.row["page_path"]
        props = row["properties"]
        assert (json.loads(props) if isinstance(props, str) else props) == event.props


def test_empty_ranges_are_zeros_not_errors(world: World) -> None:
    site = world.sites["berlin"]
    day = site.last + timedelta(days=3)
    params = {"startDate": day.isoformat(), "endDate": day.isoformat()}
    dashboard = world.get("dashboard", site, **params)
    assert not any(dashboard["totals"].values())
    assert len(dashboard["series"]) == 1
    series = world.get(
        "timeseries", site, granularity="hour", metrics=",".join(ALL_METRICS), **params
    )
    assert len(series["series"]) == 24
    assert not any(v for p in series["series"] for k, v in p.items() if k != "bucket")
    assert world.get("breakdown", site, dimension="page", **params)["rows"] == []
    funnel = world.get("funnel", site, step=["page_view", "click"], **params)
    assert [s["visitors"] for s in funnel["steps"]] == [0, 0]
    retention = world.get("retention", site, period="day", **params)
    assert retention["cohorts"] == [
        {
            "cohort": day.isoformat(),
            "visitors": 0,
            "periods": [{"period": 0, "visitors": 0, "rate": 0.0}],
        }
    ]
    assert world.get("products/top", site, **params)["products"] == []
    assert world.get("events", site, **params) | {"order": "desc"} == {
        **params,
        "order": "desc",
        "events": [],
        "nextCursor": None,
    }
    csv_text = world.server.get("/api/v1/analytics/export", site=site.id, **params).text
    assert csv_text.startswith('"eventId","eventType","timestamp"') and csv_text.count("\n") == 1


def test_compare_with_the_previous_period(world: World) -> None:
    site = world.sites["ny"]
    start, end = site.last - timedelta(days=1), site.last
    previous = (start - timedelta(days=2), start - timedelta(days=1))
    metrics = ["visitors", "pageViews", "sessions", "bounceRate"]
    answer = world.get(
        "timeseries",
        site,
        startDate=start.isoformat(),
        endDate=end.isoformat(),
        metrics=",".join(metrics),
        compare="previous",
    )
    assert answer["comparison"]["startDate"] == previous[0].isoformat()
    want = ref.timeseries(selection(site, *previous, []), metrics, "day")
    got = {p["bucket"]: {m: p[m] for m in metrics} for p in answer["comparison"]["series"]}
    assert {k: v for k, v in got.items() if any(v.values())} == want
    dashboard = world.get(
        "dashboard", site, startDate=start.isoformat(), endDate=end.isoformat(), compare="previous"
    )
    before = ref.totals(selection(site, *previous, []), ["visitors", "pageViews"])
    assert dashboard["comparison"]["totals"]["uniqueVisitors"] == before["visitors"]
    now_views, then_views = dashboard["totals"]["pageViews"], before["pageViews"]
    assert dashboard["comparison"]["change"]["pageViews"] == (
        round(100 * (now_views - then_views) / then_views, 1) if then_views else None
    )
    rows = world.get(
        "breakdown",
        site,
        startDate=start.isoformat(),
        endDate=end.isoformat(),
        dimension="country",
        metrics="visitors,sessions",
        compare="previous",
    )
    want_rows = ref.breakdown(selection(site, *previous, []), "country", ["visitors", "sessions"])
    for row in rows["comparison"]["rows"]:
        assert {m: row[m] for m in ("visitors", "sessions")} == want_rows.get(
            row["value"], {"visitors": 0, "sessions": 0}
        )


def test_rollups_equal_the_api(world: World) -> None:
    """DailyStats and ProductStats rows, kept by the writer, say what the API says."""
    site = world.sites["berlin"]
    start, end = site.first - timedelta(days=1), site.last + timedelta(days=1)
    series = world.get("dashboard", site, startDate=start.isoformat(), endDate=end.isoformat())
    want = {
        p["date"]: (
            p["events"],
            p["pageViews"],
            p["uniqueVisitors"],
            p["sessions"],
            p["bounceRate"],
            p["conversions"],
            p["revenue"],
        )
        for p in series["series"]
        if p["events"] or p["sessions"]
    }
    deadline = time.monotonic() + 40  # the writer refreshes changed days every 15 s
    while True:
        rows = world.server.query(
            "SELECT CAST(date AS VARCHAR), events, page_views, unique_visitors, sessions, "
            "bounce_rate, conversions, revenue FROM daily_stats "
            f"WHERE site_id = '{site.id}'"
        )
        # (rounded as the API rounds, in Python: the same on every engine)
        got = {r[0]: (*r[1:5], round(r[5], 2), *r[6:]) for r in rows}
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert got == want
    products = ref.products(selection(site, start, end, []))
    rows = world.server.query(
        "SELECT product_id, sum(views), sum(clicks), sum(conversions), sum(revenue) "
        f"FROM product_stats WHERE site_id = '{site.id}' GROUP BY 1"
    )
    assert {r[0]: tuple(int(v) for v in r[1:]) for r in rows} == {
        p: (v["views"], v["clicks"], v["conversions"], v["revenue"]) for p, v in products.items()
    }


def test_the_reference_is_plain_python() -> None:
    # The reference reads nothing but stored events (no query layer imports).
    source = Path(ref.__file__).read_text()
    assert "sightline" not in source
