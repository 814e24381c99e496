"""Experiments in both warm stores: definitions, and results computed from stored events.

The same events go into a DuckDB file and a PostgreSQL database; both give the same
records and exactly the same results document, whose counts are the ones the events
were built to give.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sightline.events import Event
from sightline.experiments import ExperimentCreate, Goal, Variant, to_record
from sightline.query.experiments import experiment_results
from sightline.stores.duckdb import DuckDBStore
from sightline.stores.postgres import PostgresStore
from tests.support.stores import open_warm_store

SITE = "expsite"
MIN = 60_000
START = int(datetime(2026, 5, 4, 10, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[PostgresStore]:
    with open_warm_store("postgres", tmp_path) as store:
        assert isinstance(store, PostgresStore)
        yield store


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[DuckDBStore]:
    store = DuckDBStore(tmp_path / "x.duckdb")
    store.migrate()
    try:
        yield store
    finally:
        store.close()


def definition() -> dict[str, Any]:
    body = ExperimentCreate(
        key="cta",
        name="Buy button",
        variants=[Variant("control", 1), Variant("green", 1)],
        goal=Goal("affiliate_click", ["product:is:sku-1"]),
    )
    return to_record(body)


def event(kind: str, visitor: str, at: int, **properties: Any) -> Event:
    return Event(
        event_type=kind,
        event_id=str(uuid.uuid4()),
        timestamp=at,
        session_id=f"s-{visitor}",
        visitor_id=visitor,
        page_path="/",
        page_url="https://shop.test/",
        properties=properties,
        site_id=SITE,
        server_timestamp=at,
    )


def traffic() -> list[Event]:
    """control: 6 exposed, 2 convert; green: 4 exposed, 3 convert (one twice, with revenue).
    Not counted: a conversion before exposure, a click on another product, an exposure to
    another experiment, an exposure before the start."""
    events: list[Event] = []
    t = START + MIN
    for i in range(6):
        v = f"c{i}"
        events.append(event("experiment_exposure", v, t, experiment="cta", variant="control"))
        if i < 2:
            events.append(event("affiliate_click", v, t + MIN, productId="sku-1", revenue=2.5))
        t += MIN
    for i in range(4):
        v = f"g{i}"
        if i == 3:  # converted before the exposure only: not a conversion
            events.append(event("affiliate_click", v, t - 30_000, productId="sku-1"))
        events.append(event("experiment_exposure", v, t, experiment="cta", variant="green"))
        # a later second exposure (another page) changes nothing
        events.append(
            event("experiment_exposure", v, t + 5 * MIN, experiment="cta", variant="green")
        )
        if i < 3:
            events.append(event("affiliate_click", v, t + MIN, productId="sku-1", revenue=4.0))
        if i == 0:
            events.append(event("affiliate_click", v, t + 2 * MIN, productId="sku-1", revenue=1))
            events.append(event("affiliate_click", v, t + 3 * MIN, productId="sku-2", revenue=9))
        t += MIN
    events.append(event("experiment_exposure", "o1", t, experiment="other", variant="green"))
    events.append(
        event("experiment_exposure", "early", START - MIN, experiment="cta", variant="green")
    )
    return events


def run(store: DuckDBStore | PostgresStore) -> dict[str, Any]:
    assert store.add_experiment(SITE, definition()) is True
    assert store.add_experiment(SITE, definition()) is False
    assert store.update_experiment(SITE, "cta", {"status": "running", "started_at": START})
    store.write_events(traffic(), checkpoint=None, goals=["affiliate_click"])
    (record,) = store.experiment_records(SITE, "cta")
    assert record["status"] == "running" and record["started_at"] == START
    assert record["variants"][1] == {"key": "green", "weight": 1, "name": ""}
    assert record["goal"] == {"eventType": "affiliate_click", "filters": ["product:is:sku-1"]}
    assert store.experiment_records(SITE, status="draft") == []
    assert store.experiment_records("another-site") == []
    return experiment_results(store, SITE, "Europe/Berlin", record, START + 60 * MIN)


def check(results: dict[str, Any]) -> None:
    control, green = results["variants"]
    assert (control["exposures"], control["conversions"]) == (6, 2)
    assert (green["exposures"], green["conversions"]) == (4, 3)
    assert control["revenue"] == pytest.approx(5.0)
    assert green["revenue"] == pytest.approx(13.0)  # 3 x 4.0 + 1.0 (sku-2 is not a goal)
    assert green["revenuePerVisitor"] == pytest.approx(13.0 / 4)
    assert results["totals"] == {"exposures": 10, "conversions": 5, "revenue": 18.0}
    assert results["series"]["dates"] == ["2026-05-04"]
    assert results["series"]["variants"]["green"]["conversions"] == [3]


def test_duckdb_store_keeps_experiments_and_computes_results(duck: DuckDBStore) -> None:
    check(run(duck))
    assert duck.delete_experiment(SITE, "cta") is True
    assert duck.delete_experiment(SITE, "cta") is False


def test_postgres_gives_the_same_records_and_results_as_duckdb(
    duck: DuckDBStore, pg: PostgresStore
) -> None:
    ours = run(pg)
    check(ours)
    assert ours == run(duck)
    assert pg.update_experiment(SITE, "nope", {"name": "x"}) is False
    assert pg.delete_experiment(SITE, "cta") is True
    assert pg.experiment_records(SITE) == []


def test_variant_breakdowns_and_property_filters_agree_on_both_engines(
    duck: DuckDBStore, pg: PostgresStore
) -> None:
    """The query model's ``variant:`` dimension and ``prop:`` filters read the jsonb
    properties column on PostgreSQL as they read JSON on DuckDB."""
    from datetime import date

    from sightline.query.engine import QueryEngine
    from sightline.query.model import METRICS, Period, Query, parse_dimension
    from sightline.query.params import parse_filter

    answers = []
    for store in (duck, pg):
        store.write_events(traffic(), checkpoint=None, goals=["affiliate_click"])
        query = Query(
            SITE,
            Period(date(2026, 5, 4), date(2026, 5, 4), "UTC"),
            (parse_filter("prop:productId:is:sku-1"),),
        )
        rows, _ = QueryEngine(store).breakdown(
            query,
            (METRICS["events"], METRICS["visitors"]),
            parse_dimension("variant:cta"),
            METRICS["events"],
        )
        answers.append(rows)
    assert answers[0] == answers[1]
    by_variant = {row["value"]: row for row in answers[0]}
    # clicks on sku-1 by visitors exposed to each variant, whenever they happened: 2
    # (control); 5 (green: three visitors once, one of them again, one before exposure)
    assert by_variant["control"]["events"] == 2
    assert by_variant["green"]["events"] == 5
