"""Export, erasure and retention through the privacy service, on a real PostgreSQL
store and on a DuckDB file, with the same events: the same counts, the subject gone,
everyone else's rows and the rollups exact."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from sightline.config import Settings
from sightline.events import Event
from sightline.privacy.audit import USER, VISITOR, subject_hash
from sightline.privacy.service import PrivacyService
from sightline.sites import Site
from sightline.stores.base import Store
from tests.support.stores import ENGINES, open_warm_store

GOALS = ["affiliate_click"]
SUBJECT = "9f8e7d6c-5b4a-4392-8170-fedcba987654"
USER_ID = "customer-8812-erase"
OTHER = "12345678-aaaa-4bbb-8ccc-0123456789ab"
DAY = 86_400_000


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with open_warm_store(request.param, tmp_path) as opened:
        yield opened


def events(visitor: str, n: int, user: str = "", start_days_back: int = 3) -> list[Event]:
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        kind = ("page_view", "product_view", "affiliate_click")[i % 3]
        ts = now - (i % (start_days_back + 1)) * DAY - i * 1000
        out.append(
            Event(
                event_type=kind,
                event_id=f"{visitor[:6]}-{i}",
                timestamp=ts,
                server_timestamp=ts,
                site_id="s1",
                visitor_id=visitor,
                user_id=user if i % 2 else "",
                session_id=f"{visitor[:6]}-d{i % (start_days_back + 1)}",
                page_path=f"/p/{i}",
                properties={"productId": f"p{i % 3}", "revenue": 3} if kind != "page_view" else {},
            )
        )
    return out


def daily(store: Store) -> list[tuple[object, ...]]:
    return [
        tuple(r)
        for r in store.query(
            "SELECT date, events, page_views, unique_visitors, affiliate_clicks, revenue "
            "FROM daily_stats WHERE site_id = 's1' ORDER BY date"
        )
    ]


def test_export_erase_and_retention_work_alike_on_both_stores(store: Store, tmp_path: Path) -> None:
    settings = msgspec.convert(
        {"data_dir": str(tmp_path / "data"), "store": store.engine}, Settings
    )
    store.add_site(Site(id="s1", domain="s1.example", site_key="pk_s1", created_at=1))
    batch = events(SUBJECT, 12, USER_ID) + events(OTHER, 9)
    store.write_events(batch, checkpoint=None, goals=GOALS)
    days = {("s1", datetime.fromtimestamp(e.timestamp / 1000, UTC).date()) for e in batch}
    store.refresh_rollups(days, GOALS)
    service = PrivacyService.build(settings, store)

    archive, manifest = service.export(service.subject(user_ids=[USER_ID]), "tester")
    assert manifest["subject"]["linkedVisitorIds"] == [SUBJECT]
    assert manifest["found"]["events"] == 12
    assert manifest["found"]["session_stats"] == 4
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        exported = json.loads(zipped.read("events.json"))
    assert sorted(e["event_id"] for e in exported) == sorted(
        f"{SUBJECT[:6]}-{i}" for i in range(12)
    )

    report = service.erase(service.subject(visitor_ids=[SUBJECT]), "tester")
    assert report["tiers"]["events"] == 12, report
    assert report["tiers"]["session_stats"] == 4
    assert report["rollupsRecomputed"] == 4
    left = store.query("SELECT DISTINCT visitor_id FROM events")
    assert left == [(OTHER,)]
    assert store.query("SELECT DISTINCT visitor_id FROM session_stats") == [(OTHER,)]

    # Rollups equal a fresh recomputation from the remaining events.
    after = daily(store)
    store.refresh_rollups(days, GOALS)
    assert daily(store) == after
    assert sum(int(r[1]) for r in after) == 9

    audit = store.audit_records()
    erase = next(a for a in audit if a["action"] == "privacy.erase")
    assert erase["target"] == subject_hash(service.key, VISITOR, SUBJECT)
    assert SUBJECT not in json.dumps(audit, default=str)
    tombstones = store.query("SELECT kind, id_hash FROM privacy_tombstones")
    assert tombstones == [(VISITOR, subject_hash(service.key, VISITOR, SUBJECT))]
    assert subject_hash(service.key, USER, USER_ID) != tombstones[0][1]

    # Retention: events older than 40 days go, the rollups of their days stay.
    old = events("old-visitor-0000", 3)
    for e in old:
        e.timestamp = e.server_timestamp = e.timestamp - 45 * DAY
    store.write_events(old, checkpoint=None, goals=GOALS)
    old_days = {("s1", datetime.fromtimestamp(e.timestamp / 1000, UTC).date()) for e in old}
    store.refresh_rollups(old_days, GOALS)
    rollups_before = daily(store)
    from sightline.privacy.retention import set_site_privacy

    with pytest.raises(ValueError, match="at least 33"):
        set_site_privacy(service, "s1", None, 7, "tester")
    set_site_privacy(service, "s1", "consent-required", 40, "tester")
    assert store.get_site("s1").consent_mode == "consent-required"  # type: ignore[union-attr]
    result = service.apply_retention()
    assert result["sites"][0]["eventsDeleted"] == 3
    assert store.query("SELECT count(*) FROM events")[0][0] == 9
    assert daily(store) == rollups_before
    cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=40)
    assert (
        store.query("SELECT count(*) FROM events WHERE ts < $cutoff", {"cutoff": cutoff})[0][0] == 0
    )
