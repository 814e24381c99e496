"""Step ``user_agent``: device type, browser, OS and version from real user agents."""

from __future__ import annotations

import pytest

from sightline.pipeline.user_agent import UserAgentParser, UserAgentStep
from tests.unit.pipeline.conftest import MakeContext, page_view
from tests.unit.pipeline.corpus import BROWSERS


@pytest.fixture(scope="module")
def parser() -> UserAgentParser:
    return UserAgentParser(cache_size=256)


@pytest.mark.parametrize(
    ("ua", "device_type", "browser", "os", "version"),
    BROWSERS,
    ids=[f"{b[2]}-{b[3]}-{b[1]}-{n}" for n, b in enumerate(BROWSERS)],
)
def test_real_user_agents_are_parsed(
    parser: UserAgentParser,
    make_ctx: MakeContext,
    ua: str,
    device_type: str,
    browser: str,
    os: str,
    version: str,
) -> None:
    # The client guessed wrong; the server's parse wins.
    event = page_view(
        user_agent=ua, device_type="tv", os="Plan 9", browser="Mosaic", browser_version="1"
    )
    result = UserAgentStep(parser).parse_user_agent(event, make_ctx())
    assert result is event
    assert (event.device_type, event.browser, event.os, event.browser_version) == (
        device_type,
        browser,
        os,
        version,
    )


def test_corpus_covers_every_device_type_and_the_major_browsers() -> None:
    assert {row[1] for row in BROWSERS} == {"desktop", "mobile", "tablet"}
    assert {"Chrome", "Safari", "Firefox", "Edge", "Samsung Internet", "Opera"} <= {
        row[2] for row in BROWSERS
    }
    assert {"Windows", "macOS", "Linux", "Android", "iOS", "ChromeOS"} <= {
        row[3] for row in BROWSERS
    }


def test_unknown_user_agent_is_other_on_desktop(
    parser: UserAgentParser, make_ctx: MakeContext
) -> None:
    event = page_view(user_agent="Mozilla/5.0 (Something New)")
    UserAgentStep(parser).parse_user_agent(event, make_ctx())
    assert (event.device_type, event.browser, event.os, event.browser_version) == (
        "desktop",
        "Other",
        "Other",
        "",
    )


def test_each_user_agent_is_parsed_once() -> None:
    parser = UserAgentParser(cache_size=8)
    ua = BROWSERS[0][0]
    first = parser.classify(ua)
    for _ in range(100):
        assert parser.classify(ua) is first
    info = parser.classify.cache_info()
    assert (info.misses, info.hits) == (1, 100)


def test_cache_is_bounded() -> None:
    parser = UserAgentParser(cache_size=4)
    for ua, *_ in BROWSERS[:10]:
        parser.classify(ua)
    assert parser.classify.cache_info().currsize == 4
