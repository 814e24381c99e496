"""The whole enrichment pipeline as ``build_pipeline`` assembles it."""

from __future__ import annotations

import ipaddress
import uuid
from pathlib import Path

import msgspec
import pytest

from sightline.config import Settings
from sightline.events import Event
from sightline.pipeline import Drop, Pipeline, build_pipeline
from sightline.privacy.salts import DAY_MS, FileSaltStore
from tests.unit.pipeline.conftest import CHROME, NOW, MakeContext, page_view

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)


def settings(tmp_path: Path, **values: object) -> Settings:
    return msgspec.convert({"data_dir": str(tmp_path / "data"), **values}, Settings)


def test_steps_run_in_the_documented_order(tmp_path: Path) -> None:
    pipeline = build_pipeline(settings(tmp_path))
    assert [name for name, _ in pipeline.steps] == [
        "consent",
        "defaults",
        "time",
        "bots",
        "user_agent",
        "geo",
        "referrer",
        "identity",
        "scrub",
    ]
    without_bots = build_pipeline(settings(tmp_path, bot_filter=False))
    assert "bots" not in [name for name, _ in without_bots.steps]


def test_an_event_comes_out_enriched(tmp_path: Path, geo_db: Path, make_ctx: MakeContext) -> None:
    pipeline = build_pipeline(settings(tmp_path, geoip_db=str(geo_db)))
    event = Event(
        event_type="product_view",
        event_id="e-1",
        timestamp=NOW - 2 * 3_600_000 - 4_000,  # the phone's clock is two hours behind
        page_url="https://shop.example.com/p/1?utm_source=newsletter&utm_medium=email&token=t",
        page_path="/p/1",
        page_title="Headphones",
        referrer="https://mail.google.com/",
        user_agent=IPHONE,
        device_type="desktop",
        country="XX",
        properties={"productId": "p-1", "email": "jane@example.com"},
    )
    ctx = make_ctx(ip="203.0.113.7", user_agent=IPHONE, sent_at=NOW - 2 * 3_600_000)
    kept, dropped = pipeline.process([(0, event)], ctx)
    assert dropped == []
    assert kept == [event]
    assert event.timestamp == NOW - 4_000
    assert (event.device_type, event.browser, event.os) == ("mobile", "Safari", "iOS")
    assert (event.country, event.region, event.city) == ("DE", "Berlin", "Berlin")
    assert (event.channel, event.referrer_source) == ("email", "Gmail")
    assert (event.utm_source, event.utm_medium) == ("newsletter", "email")
    assert len(event.visitor_id) == 32
    assert event.page_url.endswith("token=[redacted]")
    assert event.properties == {"productId": "p-1", "email": "[redacted]"}
    assert (event.site_id, event.server_timestamp) == ("site-1", NOW)
    assert event.user_agent == ""  # read, then left behind: it goes no further


@pytest.mark.parametrize("anonymize_ip", ["off", "prefix"])
@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.77", None, "203.0.113.77"),
        ("10.0.0.3", "198.51.100.123", "198.51.100.123"),
        ("2001:db8:1:2:3:4:5:6", None, "2001:db8:1:2:3:4:5:6"),
    ],
)
def test_no_raw_ip_in_any_event_byte(
    tmp_path: Path,
    geo_db: Path,
    make_ctx: MakeContext,
    anonymize_ip: str,
    peer: str,
    forwarded: str | None,
    client: str,
) -> None:
    pipeline = build_pipeline(
        settings(
            tmp_path,
            geoip_db=str(geo_db),
            trusted_proxies=["10.0.0.0/8"],
            anonymize_ip=anonymize_ip,
        )
    )
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    ctx = make_ctx(ip=peer, user_agent=CHROME, sent_at=NOW, headers=headers)
    events = [
        Event(event_type="page_view"),  # everything left to the server
        page_view(event_id="e-2", user_agent=CHROME, referrer="https://www.google.com/"),
        Event(event_type="affiliate_click", properties={"productId": "p", "revenue": 2.5}),
        Event(event_type="page_view", visitor_id="v-consented", session_id="s-1"),
    ]
    kept, dropped = pipeline.process(list(enumerate(events)), ctx)
    assert dropped == []
    assert len(kept) == 4
    stored = msgspec.json.encode(kept) + msgspec.msgpack.encode(kept)
    address = ipaddress.ip_address(client)
    forms = {peer, client, address.exploded, address.compressed, str(address.packed)}
    for form in forms:
        assert form.encode() not in stored, form
    assert address.packed not in stored
    if address.version == 4:
        # not even the last octet next to the others
        assert ".".join(client.split(".")[2:]).encode() not in stored
    prefixes = {e.properties.get("$ipPrefix") for e in kept}
    assert prefixes == (
        {None}
        if anonymize_ip == "off"
        else {
            str(
                ipaddress.ip_network(f"{client}/{24 if address.version == 4 else 48}", strict=False)
            )
        }
    )
    # Nothing on disk holds it either: the data directory has only the salts.
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert client.encode() not in path.read_bytes()
            assert path.parent.name == "salts"


def test_drops_are_counted_per_site_and_reported_only_when_the_client_should_know(
    tmp_path: Path, make_ctx: MakeContext
) -> None:
    pipeline = build_pipeline(settings(tmp_path))
    events = [
        page_view(event_id="ok", user_agent=CHROME),
        page_view(event_id="bot", user_agent="Mozilla/5.0 (compatible; Googlebot/2.1)"),
        page_view(event_id="old", user_agent=CHROME, timestamp=NOW - 40 * DAY_MS),
        page_view(event_id="future", user_agent=CHROME, timestamp=NOW + DAY_MS),
        page_view(event_id="headless", user_agent=CHROME, properties={"$webdriver": True}),
    ]
    kept, dropped = pipeline.process(list(enumerate(events)), make_ctx(sent_at=NOW))
    assert [e.event_id for e in kept] == ["ok"]
    assert dropped == [
        (1, Drop("crawler", report=False)),
        (2, Drop("too_old", report=True)),
        (3, Drop("in_future", report=True)),
        (4, Drop("automation", report=False)),
    ]
    assert pipeline.site_drops == {
        ("site-1", "bots", "crawler"): 1,
        ("site-1", "bots", "automation"): 1,
        ("site-1", "time", "too_old"): 1,
        ("site-1", "time", "in_future"): 1,
    }
    assert pipeline.stats["bots"].events == 3
    assert pipeline.stats["scrub"].events == 1
    assert all(stats.seconds >= 0 for stats in pipeline.stats.values())


def test_maintain_deletes_expired_salts(tmp_path: Path, make_ctx: MakeContext) -> None:
    store = FileSaltStore(tmp_path / "salts")
    pipeline = build_pipeline(settings(tmp_path), salts=store)
    pipeline.process([(0, page_view(user_agent=CHROME))], make_ctx())
    assert [p.name for p in (tmp_path / "salts").iterdir()] == ["2026-03-14.salt"]
    pipeline.maintain(NOW + 3 * DAY_MS)
    assert [p.name for p in (tmp_path / "salts").iterdir()] == ["2026-03-17.salt"]


def test_default_salt_store_lives_in_the_data_directory(
    tmp_path: Path, make_ctx: MakeContext
) -> None:
    pipeline = build_pipeline(settings(tmp_path))
    pipeline.process([(0, page_view(user_agent=CHROME))], make_ctx())
    assert [p.name for p in (tmp_path / "data" / "salts").iterdir()] == ["2026-03-14.salt"]


@pytest.mark.parametrize("batch", [1, 3])
def test_pipeline_mechanics_for_single_and_multi_event_requests(
    make_ctx: MakeContext, batch: int
) -> None:
    """Kept, dropped and replaced events, and the counters, whatever the batch size."""

    def stamp(event: Event, ctx: object) -> Event | Drop:
        event.properties["seen"] = True
        return event

    def replace(event: Event, ctx: object) -> Event | Drop:
        return Event(event_type="replaced", event_id=event.event_id)

    def drop_last(event: Event, ctx: object) -> Event | Drop:
        return Drop("last", report=True) if event.event_id == "e-last" else event

    pipeline = Pipeline(
        [("stamp", stamp), ("replace", replace), ("drop", drop_last), ("after", stamp)]
    )
    ids = [f"e-{n}" for n in range(batch - 1)] + ["e-last"]
    events = [page_view(event_id=event_id) for event_id in ids]
    kept, dropped = pipeline.process(list(enumerate(events)), make_ctx())
    assert dropped == [(batch - 1, Drop("last", report=True))]
    assert [e.event_id for e in kept] == ids[:-1]
    assert all(e.event_type == "replaced" and e.properties == {"seen": True} for e in kept)
    assert [pipeline.stats[n].events for n in ("stamp", "replace", "drop", "after")] == [
        batch,
        batch,
        batch,
        batch - 1,
    ]
    assert pipeline.stats["drop"].drops == {"last": 1}
    assert pipeline.site_drops == {("site-1", "drop", "last"): 1}
    timed = ["stamp", "replace", "drop"] + (["after"] if batch > 1 else [])
    assert all(pipeline.stats[name].seconds > 0 for name in timed)


def test_events_without_an_id_get_the_request_uuid_and_a_count(
    tmp_path: Path, make_ctx: MakeContext
) -> None:
    """The server's ids take the tracker's form, ``<uuid>.<n>``: one random UUID per
    request, so they are unique and archive compactly; a client's own id is kept."""
    pipeline = build_pipeline(settings(tmp_path))
    first, second = make_ctx(), make_ctx()
    batch = [page_view(event_id=""), page_view(event_id="mine"), page_view(event_id="")]
    kept, _ = pipeline.process(list(enumerate(batch)), first)
    again, _ = pipeline.process([(0, page_view(event_id=""))], second)
    ids = [e.event_id for e in kept + again]
    assert ids[1] == "mine"
    given = [ids[0], ids[2], ids[3]]
    prefixes = [i.rsplit(".", 1)[0] for i in given]
    assert [i.rsplit(".", 1)[1] for i in given] == ["1", "2", "1"]
    assert prefixes[0] == prefixes[1] != prefixes[2]
    assert all(str(uuid.UUID(p)) == p for p in prefixes)
