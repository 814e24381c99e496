"""Step ``bots``: crawlers, headless browsers, scripts and datacenters are dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from sightline.pipeline import Drop, Pipeline
from sightline.pipeline.bots import BotFilter, IpRanges
from sightline.pipeline.proxies import ClientAddress, TrustedProxies
from sightline.pipeline.user_agent import UserAgentParser
from tests.unit.pipeline.conftest import CHROME, MakeContext, page_view
from tests.unit.pipeline.corpus import BOTS, BROWSERS


@pytest.fixture(scope="module")
def parser() -> UserAgentParser:
    return UserAgentParser(cache_size=256)


@pytest.fixture
def bots(parser: UserAgentParser) -> BotFilter:
    return BotFilter(parser)


@pytest.mark.parametrize(("ua", "reason"), BOTS, ids=[f"{r}-{n}" for n, (_, r) in enumerate(BOTS)])
def test_bots_are_dropped_with_their_reason(
    bots: BotFilter, make_ctx: MakeContext, ua: str, reason: str
) -> None:
    result = bots.filter_bots(page_view(user_agent=ua), make_ctx(user_agent=ua))
    assert result == Drop(reason, report=False)


@pytest.mark.parametrize(
    "row", BROWSERS, ids=[f"{r[2]}-{r[3]}-{n}" for n, r in enumerate(BROWSERS)]
)
def test_real_browsers_are_kept(
    bots: BotFilter, make_ctx: MakeContext, row: tuple[str, ...]
) -> None:
    event = page_view(user_agent=row[0])
    assert bots.filter_bots(event, make_ctx(user_agent=row[0])) is event


def test_corpus_covers_crawlers_headless_browsers_clients_and_monitors() -> None:
    assert {reason for _, reason in BOTS} == {
        "crawler",
        "headless",
        "http_client",
        "monitor",
        "no_user_agent",
    }


def test_user_agents_that_are_not_browsers_are_dropped(
    bots: BotFilter, make_ctx: MakeContext
) -> None:
    for ua in ("InventorySync/0.1", "Dalvik/2.1.0 (Linux; U; Android 11; Pixel 5)", "-"):
        assert bots.filter_bots(page_view(user_agent=ua), make_ctx()) == Drop(
            "not_a_browser", report=False
        )


def test_the_events_user_agent_is_judged_not_the_request_header(
    bots: BotFilter, make_ctx: MakeContext
) -> None:
    # A server-side relay posts with its own client; the event carries the visitor's browser.
    event = page_view(user_agent=CHROME)
    assert bots.filter_bots(event, make_ctx(user_agent="python-httpx/0.28.1")) is event


@pytest.mark.parametrize("flag", [True, "true"])
def test_webdriver_flag_from_the_tracker_drops(
    bots: BotFilter, make_ctx: MakeContext, flag: object
) -> None:
    event = page_view(user_agent=CHROME, properties={"$webdriver": flag})
    assert bots.filter_bots(event, make_ctx()) == Drop("automation", report=False)


def test_webdriver_false_is_kept_and_the_flag_removed(
    bots: BotFilter, make_ctx: MakeContext
) -> None:
    event = page_view(user_agent=CHROME, properties={"$webdriver": False, "plan": "pro"})
    assert bots.filter_bots(event, make_ctx()) is event
    assert event.properties == {"plan": "pro"}


def test_datacenter_ranges_from_a_file(
    tmp_path: Path, parser: UserAgentParser, make_ctx: MakeContext
) -> None:
    ranges_file = tmp_path / "datacenters.txt"
    ranges_file.write_text(
        "# cloud provider ranges\n"
        "198.51.100.0/24\n"
        "  203.0.113.128/25  # half a network\n"
        "2001:db8:abcd::/48,some-provider,extra columns\n"
        "\n"
    )
    ranges = IpRanges.from_file(ranges_file)
    assert len(ranges) == 3
    bots = BotFilter(parser, ClientAddress(TrustedProxies()), ranges)
    for ip in ("198.51.100.1", "203.0.113.200", "2001:db8:abcd:12::1", "::ffff:198.51.100.9"):
        assert bots.filter_bots(page_view(user_agent=CHROME), make_ctx(ip=ip)) == Drop(
            "datacenter", report=False
        ), ip
    for ip in ("198.51.101.1", "203.0.113.7", "2001:db8:abce::1", "not-an-ip"):
        event = page_view(user_agent=CHROME)
        assert bots.filter_bots(event, make_ctx(ip=ip)) is event, ip


def test_datacenter_check_uses_the_forwarded_client(
    parser: UserAgentParser, make_ctx: MakeContext
) -> None:
    ranges = IpRanges(["198.51.100.0/24"])
    client = ClientAddress(TrustedProxies(["10.0.0.0/8"]))
    bots = BotFilter(parser, client, ranges)
    ctx = make_ctx(ip="10.1.2.3", headers={"x-forwarded-for": "198.51.100.20"})
    assert bots.filter_bots(page_view(user_agent=CHROME), ctx) == Drop("datacenter", report=False)
    event = page_view(user_agent=CHROME)
    ctx = make_ctx(ip="10.1.2.3", headers={"x-forwarded-for": "203.0.113.5"})
    assert bots.filter_bots(event, ctx) is event


def test_ip_ranges_merge_overlaps() -> None:
    ranges = IpRanges(["10.0.0.0/16", "10.0.128.0/17", "10.1.0.0/16", "10.3.0.0/16"])
    assert len(ranges) == 2
    assert "10.1.255.255" in ranges
    assert "10.2.0.0" not in ranges
    assert "10.3.0.1" in ranges


def test_bot_drops_are_counted_per_site_and_reason(bots: BotFilter, make_ctx: MakeContext) -> None:
    pipeline = Pipeline([("bots", bots.filter_bots)])
    events = [
        page_view(user_agent=CHROME),
        page_view(user_agent="curl/8.4.0"),
        page_view(user_agent="curl/8.4.0"),
        page_view(user_agent=BOTS[0][0]),
    ]
    kept, dropped = pipeline.process(list(enumerate(events)), make_ctx())
    assert kept == [events[0]]
    assert [(index, drop.reason) for index, drop in dropped] == [
        (1, "http_client"),
        (2, "http_client"),
        (3, "crawler"),
    ]
    assert pipeline.site_drops == {
        ("site-1", "bots", "http_client"): 2,
        ("site-1", "bots", "crawler"): 1,
    }
    assert pipeline.stats["bots"].drops == {"http_client": 2, "crawler": 1}
