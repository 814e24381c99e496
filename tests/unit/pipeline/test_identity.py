"""Step ``identity``: the cookieless visitor id and its daily rotation."""

from __future__ import annotations

from pathlib import Path

import pytest

from sightline.pipeline.identity import VisitorIdentity, ip_prefix
from sightline.pipeline.proxies import ClientAddress, TrustedProxies
from sightline.privacy.salts import DAY_MS, FileSaltStore
from sightline.sites import Site
from tests.unit.pipeline.conftest import CHROME, NOW, MakeContext, page_view

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
MIDNIGHT = (NOW // DAY_MS + 1) * DAY_MS
MINUTE = 60_000


@pytest.fixture
def identity(tmp_path: Path) -> VisitorIdentity:
    return VisitorIdentity(FileSaltStore(tmp_path / "salts"))


def visitor(
    identity: VisitorIdentity, make_ctx: MakeContext, ua: str = CHROME, **ctx: object
) -> str:
    event = page_view(user_agent=ua)
    assert identity.identify_visitor(event, make_ctx(user_agent=ua, **ctx)) is event
    return event.visitor_id


def test_same_visitor_same_day_same_id(identity: VisitorIdentity, make_ctx: MakeContext) -> None:
    morning = visitor(identity, make_ctx, received_at=NOW)
    assert len(morning) == 32 and int(morning, 16) >= 0
    assert visitor(identity, make_ctx, received_at=NOW + 3_600_000) == morning


def test_site_address_and_browser_each_make_a_different_visitor(
    identity: VisitorIdentity, make_ctx: MakeContext
) -> None:
    other_site = Site(id="site-2", domain="other.example", site_key="pk_2")
    ids = {
        visitor(identity, make_ctx),
        visitor(identity, make_ctx, ip="203.0.113.8"),
        visitor(identity, make_ctx, ua=FIREFOX),
        visitor(identity, make_ctx, for_site=other_site),
    }
    assert len(ids) == 4


def test_the_id_changes_across_days(identity: VisitorIdentity, make_ctx: MakeContext) -> None:
    ids = [visitor(identity, make_ctx, received_at=NOW + day * DAY_MS) for day in range(4)]
    assert len(set(ids)) == 4


def test_a_fresh_process_computes_the_same_id_the_same_day(
    tmp_path: Path, make_ctx: MakeContext
) -> None:
    first = VisitorIdentity(FileSaltStore(tmp_path / "salts"))
    again = VisitorIdentity(FileSaltStore(tmp_path / "salts"))
    assert visitor(first, make_ctx) == visitor(again, make_ctx, received_at=NOW + 60_000)


def test_consented_visitor_ids_are_kept(identity: VisitorIdentity, make_ctx: MakeContext) -> None:
    event = page_view(visitor_id="v-from-the-tracker", user_agent=CHROME)
    identity.identify_visitor(event, make_ctx())
    assert event.visitor_id == "v-from-the-tracker"


def test_the_forwarded_client_address_is_hashed(tmp_path: Path, make_ctx: MakeContext) -> None:
    client = ClientAddress(TrustedProxies(["10.0.0.0/8"]))
    identity = VisitorIdentity(FileSaltStore(tmp_path / "salts"), client)
    direct = visitor(identity, make_ctx, ip="198.51.100.1")
    proxied = visitor(
        identity, make_ctx, ip="10.0.0.9", headers={"x-forwarded-for": "198.51.100.1"}
    )
    other_proxy = visitor(
        identity, make_ctx, ip="10.0.0.10", headers={"x-forwarded-for": "198.51.100.1"}
    )
    assert direct == proxied == other_proxy


def test_a_session_across_midnight_keeps_its_id(
    identity: VisitorIdentity, make_ctx: MakeContext
) -> None:
    before = visitor(identity, make_ctx, received_at=MIDNIGHT - 10 * MINUTE)
    # Still browsing: 10 and then 35 minutes after midnight, never idle for 30 minutes.
    assert visitor(identity, make_ctx, received_at=MIDNIGHT + 10 * MINUTE) == before
    assert visitor(identity, make_ctx, received_at=MIDNIGHT + 35 * MINUTE) == before
    # Someone else who first shows up after midnight gets today's id.
    late = visitor(identity, make_ctx, ip="198.51.100.77", received_at=MIDNIGHT + MINUTE)
    assert late == visitor(
        VisitorIdentity(identity.store), make_ctx, ip="198.51.100.77", received_at=MIDNIGHT
    )


def test_after_a_pause_past_midnight_the_id_is_new(
    identity: VisitorIdentity, make_ctx: MakeContext
) -> None:
    before = visitor(identity, make_ctx, received_at=MIDNIGHT - 10 * MINUTE)
    after = visitor(identity, make_ctx, received_at=MIDNIGHT + 25 * MINUTE)
    assert after != before
    # Activity early in the evening is not remembered for the hand-over either.
    evening = visitor(identity, make_ctx, ip="198.51.100.5", received_at=MIDNIGHT - 3_600_000)
    assert visitor(identity, make_ctx, ip="198.51.100.5", received_at=MIDNIGHT + MINUTE) != evening


def test_maintain_rotates_salts_and_forgets_quiet_visitors(
    identity: VisitorIdentity, make_ctx: MakeContext, tmp_path: Path
) -> None:
    visitor(identity, make_ctx, received_at=MIDNIGHT - MINUTE)
    identity.maintain(MIDNIGHT + 40 * MINUTE)
    assert identity._recent == {}
    identity.maintain(MIDNIGHT + 2 * DAY_MS)
    names = sorted(p.name for p in (tmp_path / "salts").iterdir())
    assert names == ["2026-03-17.salt"]  # midnight is the 15th; two days on


def test_ip_prefix_is_kept_only_when_configured(tmp_path: Path, make_ctx: MakeContext) -> None:
    store = FileSaltStore(tmp_path / "salts")
    event = page_view(user_agent=CHROME)
    VisitorIdentity(store).identify_visitor(event, make_ctx())
    assert event.properties == {}
    event = page_view(user_agent=CHROME)
    VisitorIdentity(store, anonymize_ip="prefix").identify_visitor(event, make_ctx())
    assert event.properties == {"$ipPrefix": "203.0.113.0/24"}
    assert ip_prefix("2001:db8:1:2::7") == "2001:db8:1::/48"
    assert ip_prefix("not-an-ip") == ""
