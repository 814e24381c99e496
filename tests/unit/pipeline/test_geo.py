"""Step ``geo``: country, region and city from a generated MaxMind-format database."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sightline.pipeline.geo import RELOAD_CHECK_MS, GeoDatabase, GeoLocator
from sightline.pipeline.proxies import ClientAddress, TrustedProxies
from tests.unit.pipeline.conftest import NOW, MakeContext, page_view, write_mmdb


def locate(locator: GeoLocator, make_ctx: MakeContext, ip: str, **ctx: object) -> tuple[str, ...]:
    event = page_view()
    assert locator.locate_event(event, make_ctx(ip=ip, **ctx)) is event
    return event.country, event.region, event.city


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("203.0.113.7", ("DE", "Berlin", "Berlin")),
        ("198.51.100.200", ("US", "California", "San Francisco")),
        ("2001:db8:1:2::7", ("FR", "Ile-de-France", "Paris")),
        ("::ffff:203.0.113.9", ("DE", "Berlin", "Berlin")),
        ("192.0.2.1", ("NL", "", "")),  # only a registered country
        ("10.0.0.1", ("", "", "")),  # private: unknown
        ("127.0.0.1", ("", "", "")),
        ("testclient", ("", "", "")),  # not an address at all
    ],
)
def test_lookup(geo_db: Path, make_ctx: MakeContext, ip: str, expected: tuple[str, ...]) -> None:
    locator = GeoLocator(GeoDatabase(str(geo_db)))
    assert locate(locator, make_ctx, ip) == expected


def test_without_a_database_fields_stay_empty(make_ctx: MakeContext) -> None:
    locator = GeoLocator(GeoDatabase(""))
    assert not locator.database.available
    assert locate(locator, make_ctx, "203.0.113.7") == ("", "", "")


def test_missing_or_broken_file_does_not_fail(
    tmp_path: Path, make_ctx: MakeContext, caplog: pytest.LogCaptureFixture
) -> None:
    locator = GeoLocator(GeoDatabase(str(tmp_path / "absent.mmdb")))
    assert locate(locator, make_ctx, "203.0.113.7") == ("", "", "")
    broken = tmp_path / "broken.mmdb"
    broken.write_bytes(b"this is not a MaxMind database")
    locator = GeoLocator(GeoDatabase(str(broken)))
    assert locate(locator, make_ctx, "203.0.113.7") == ("", "", "")
    assert "GeoIP database" in caplog.text


def test_forwarded_for_counts_only_from_trusted_proxies(
    geo_db: Path, make_ctx: MakeContext
) -> None:
    client = ClientAddress(TrustedProxies(["10.0.0.0/8"]))
    locator = GeoLocator(GeoDatabase(str(geo_db)), client)
    forwarded = {"x-forwarded-for": "198.51.100.20"}
    assert locate(locator, make_ctx, "10.0.0.5", headers=forwarded) == (
        "US",
        "California",
        "San Francisco",
    )
    # The same header from a peer that is not a trusted proxy is ignored.
    assert locate(locator, make_ctx, "203.0.113.7", headers=forwarded) == ("DE", "Berlin", "Berlin")


def test_a_replaced_database_file_is_picked_up(tmp_path: Path, make_ctx: MakeContext) -> None:
    path = tmp_path / "city.mmdb"
    locator = GeoLocator(GeoDatabase(str(path)))
    assert locate(locator, make_ctx, "203.0.113.7", received_at=NOW) == ("", "", "")
    # geoipupdate writes the new file next to the old one and renames it into place.
    fresh = write_mmdb(
        tmp_path / "city.mmdb.new", {"203.0.113.0/24": {"country": {"iso_code": "AT"}}}
    )
    shutil.move(fresh, path)
    os.utime(path, (1, 1))
    later = NOW + RELOAD_CHECK_MS
    assert locate(locator, make_ctx, "203.0.113.7", received_at=later) == ("AT", "", "")
    write_mmdb(tmp_path / "again.mmdb", {"203.0.113.0/24": {"country": {"iso_code": "CH"}}})
    shutil.move(tmp_path / "again.mmdb", path)
    os.utime(path, (2, 2))
    # Checked at most once a minute.
    assert locate(locator, make_ctx, "203.0.113.7", received_at=later + 1) == ("AT", "", "")
    assert locate(locator, make_ctx, "203.0.113.7", received_at=later + RELOAD_CHECK_MS) == (
        "CH",
        "",
        "",
    )


def test_lookups_are_cached_per_address(geo_db: Path) -> None:
    database = GeoDatabase(str(geo_db))
    first = database.locate("203.0.113.7")
    assert database.locate("203.0.113.7") is first
    assert database.locate.cache_info().hits == 1
