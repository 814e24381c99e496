"""Fixtures for the enrichment steps: a site, request contexts, a generated GeoIP file."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from sightline.events import Event
from sightline.pipeline import RequestContext
from sightline.sites import Site

#: 2026-03-14 15:09:26 UTC, a Saturday afternoon.
NOW = 1_773_500_966_000
DAY = 86_400_000
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)

MakeContext = Callable[..., RequestContext]


@pytest.fixture
def site() -> Site:
    return Site(id="site-1", domain="shop.example.com", site_key="pk_test")


@pytest.fixture
def make_ctx(site: Site) -> MakeContext:
    def make(
        ip: str = "203.0.113.7",
        user_agent: str = CHROME,
        received_at: int = NOW,
        sent_at: int | None = None,
        headers: Mapping[str, str] | None = None,
        for_site: Site | None = None,
    ) -> RequestContext:
        return RequestContext(
            site=for_site or site,
            ip=ip,
            user_agent=user_agent,
            received_at=received_at,
            sent_at=sent_at,
            headers=dict(headers or {}),
        )

    return make


def page_view(**fields: Any) -> Event:
    values: dict[str, Any] = {"event_type": "page_view", "event_id": "e-1", "timestamp": NOW}
    values.update(fields)
    return Event(**values)


CITY_RECORDS: dict[str, dict[str, Any]] = {
    "203.0.113.0/24": {
        "country": {"iso_code": "DE", "names": {"en": "Germany"}},
        "subdivisions": [{"iso_code": "BE", "names": {"en": "Berlin", "de": "Berlin"}}],
        "city": {"names": {"en": "Berlin"}},
    },
    "198.51.100.0/24": {
        "country": {"iso_code": "US", "names": {"en": "United States"}},
        "subdivisions": [{"iso_code": "CA", "names": {"en": "California"}}],
        "city": {"names": {"en": "San Francisco"}},
    },
    "192.0.2.0/24": {"registered_country": {"iso_code": "nl"}},
    "2001:db8:1::/48": {
        "country": {"iso_code": "FR", "names": {"en": "France"}},
        "subdivisions": [{"iso_code": "IDF", "names": {"en": "Ile-de-France"}}],
        "city": {"names": {"en": "Paris"}},
    },
}


def write_mmdb(path: Path, records: Mapping[str, dict[str, Any]] = CITY_RECORDS) -> Path:
    """A MaxMind-format City database holding ``records`` (network -> record)."""
    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-City", ipv4_compatible=True)
    for network, record in records.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


@pytest.fixture
def geo_db(tmp_path: Path) -> Path:
    return write_mmdb(tmp_path / "city.mmdb")
