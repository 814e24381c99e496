"""Evaluation strategies give the numbers the plain statements give, on each real store."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from sightline.events import Event
from sightline.query.engine import QueryEngine
from sightline.query.model import Period, Query, parse_dimension, parse_metrics
from sightline.sites import Site
from tests.support.stores import WarmStore

DAY = date(2026, 6, 1)


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory, store_engine: WarmStore
) -> Iterator[QueryEngine]:
    store = store_engine.open(tmp_path_factory.mktemp("engine"))
    store.add_site(Site(id="s", domain="s.example", site_key="pk_s", timezone="UTC"))
    rng = random.Random(5)
    base = int(datetime(2026, 6, 1, 8, tzinfo=UTC).timestamp() * 1000)
    events = []
    for i in range(6000):
        visitor = f"v{int(rng.paretovariate(1.2)) % 400}"
        # Pages whose events per visitor vary a lot, so events are a loose bound.
        page = f"/p/{int(rng.paretovariate(0.8)) % 150}"
        repeat = 1 + (hash(page) % 7 if page.endswith(("1", "3")) else 0)
        for r in range(repeat):
            events.append(
                Event(
                    event_type="page_view" if r == 0 else "heartbeat",
                    event_id=f"e{i}-{r}",
                    timestamp=base + i * 1000 + r,
                    session_id=f"{visitor}-s",
                    visitor_id=visitor,
                    page_path=page,
                    site_id="s",
                    server_timestamp=base + i * 1000,
                )
            )
    store.write_events(events, checkpoint=None, goals=["affiliate_click"])
    yield QueryEngine(store)
    store.close()


@pytest.mark.parametrize(
    ("limit", "offset"), [(1, 0), (3, 0), (10, 0), (5, 7), (10, 40), (50, 100)]
)
def test_top_values_by_visitors_equal_the_full_sort(
    engine: QueryEngine, limit: int, offset: int
) -> None:
    query = Query("s", Period(DAY, DAY, "UTC"))
    metrics = parse_metrics(["visitors", "pageViews", "events"])
    page = parse_dimension("page")
    pruned = engine._top_by_visitors(query, metrics, page, limit, offset)
    full = engine._top_by_sql(query, metrics, page, metrics[0], False, limit, offset)
    assert pruned == full
    assert pruned[0]  # not vacuous
