"""Web vitals: the 75th percentile of each vital, rated, over real stored events."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime
from pathlib import Path

from sightline.events import Event
from sightline.query.engine import QueryEngine
from sightline.query.model import Period, Query, make_filter, parse_dimension
from sightline.query.vitals import VITALS, rating, web_vitals
from sightline.sites import Site
from sightline.stores.duckdb import DuckDBStore

DAY = date(2026, 6, 1)


def _p75(values: list[float]) -> float:
    """Linear interpolation between closest ranks (what percentile_cont computes)."""
    ordered = sorted(values)
    position = 0.75 * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def test_p75_of_each_vital_with_ratings_and_filters(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "store.duckdb")
    store.migrate()
    store.add_site(Site(id="s", domain="s.example", site_key="pk_s", timezone="UTC"))
    base = int(datetime(2026, 6, 1, 9, tzinfo=UTC).timestamp() * 1000)
    lcps = [float(900 + 173 * i % 3100) for i in range(40)]
    events = [
        Event(
            event_type="page_view",
            event_id=f"p{i}",
            timestamp=base + i * 1000,
            session_id=f"s{i % 7}",
            visitor_id=f"v{i % 7}",
            page_path="/a" if i % 2 else "/b",
            site_id="s",
            server_timestamp=base + i * 1000,
            properties={"lcp": lcp, "cls": 0.02 * (i % 5)},
        )
        for i, lcp in enumerate(lcps)
    ]
    events.append(
        Event(
            event_type="web_vitals",
            event_id="w1",
            timestamp=base,
            session_id="s1",
            visitor_id="v1",
            site_id="s",
            server_timestamp=base,
            properties={"inp": 640, "lcp": "not a number"},
        )
    )
    events.append(
        Event(
            event_type="click",
            event_id="c1",
            timestamp=base,
            session_id="s1",
            visitor_id="v1",
            site_id="s",
            server_timestamp=base,
            properties={"lcp": 999999},
        )
    )
    store.write_events(events, checkpoint=None, goals=["affiliate_click"])
    engine = QueryEngine(store)
    query = Query("s", Period(DAY, DAY, "UTC"))
    found = {v["name"]: v for v in web_vitals(engine, query)}
    assert found["lcp"]["samples"] == 40
    assert found["lcp"]["p75"] == round(_p75(lcps))
    assert found["cls"]["p75"] == round(_p75([0.02 * (i % 5) for i in range(40)]), 3)
    assert found["inp"] == {
        "name": "inp",
        "unit": "ms",
        "p75": 640,
        "samples": 1,
        "rating": "poor",
    }
    assert found["fid"]["p75"] is None and found["fid"]["rating"] is None
    filtered = query.with_filters((make_filter(parse_dimension("page"), "is", ["/a"]),))
    odd = [lcp for i, lcp in enumerate(lcps) if i % 2]
    assert {v["name"]: v for v in web_vitals(engine, filtered)}["lcp"]["p75"] == round(_p75(odd))
    assert statistics.median(lcps) < found["lcp"]["p75"]


def test_ratings_follow_the_thresholds() -> None:
    lcp = next(v for v in VITALS if v.name == "lcp")
    assert rating(lcp, 2500) == "good"
    assert rating(lcp, 2501) == "needs_improvement"
    assert rating(lcp, 4001) == "poor"
    assert rating(lcp, None) is None
