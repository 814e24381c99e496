"""Step ``user_agent``: device type, OS, browser and version parsed on the server.

ua-parser's compiled engine (uap-core's regexes run by ua-parser-rs) parses each distinct
user agent once; the outcome sits in an LRU cache, so the usual traffic, where a few
hundred user agents make most events, costs one dictionary lookup per event. What the
client reported is replaced, as the client's own guess comes from the same string.

Names are shortened for reports: "Chrome Mobile" is "Chrome" (the device type already
says mobile), "Mac OS X" is "macOS". The device type is ``desktop``, ``mobile`` or
``tablet``; iPads that ask for the desktop site (iPadOS Safari's default) look like a Mac
and count as desktop.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, NamedTuple

from ua_parser import Domain, load_lazy_builtins
from ua_parser.regex import Resolver

from sightline.events import Event
from sightline.events.limits import MAX_SHORT_STRING_LENGTH
from sightline.pipeline import Drop, RequestContext

if TYPE_CHECKING:
    from sightline.config import Settings

UNKNOWN = "Other"

#: ua-parser family -> the name shown in reports (mobile variants fold into the browser).
BROWSER_NAMES: dict[str, str] = {
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome WebView",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari WebView",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
    "Amazon Silk": "Silk",
    "Facebook": "Facebook App",
    "Instagram": "Instagram App",
}

OS_NAMES: dict[str, str] = {
    "Mac OS X": "macOS",
    "Chrome OS": "ChromeOS",
}

_MOBILE_OS = frozenset(
    {"Windows Phone", "BlackBerry OS", "KaiOS", "Symbian OS", "Firefox OS", "Tizen"}
)
_TABLET_MARKERS = (
    "Tablet",
    "iPad",
    "Kindle",
    "Silk/",
    "PlayBook",
    "Nexus 7",
    "Nexus 9",
    "Nexus 10",
)


class UserAgentInfo(NamedTuple):
    device_type: str
    os: str
    browser: str
    browser_version: str
    #: ua-parser recognised a crawler (its device family "Spider").
    spider: bool


class UserAgentParser:
    """Parses user agents with ua-parser, remembering up to ``cache_size`` of them."""

    def __init__(self, cache_size: int = 10_000) -> None:
        self._resolver = Resolver(load_lazy_builtins())
        self.classify = functools.lru_cache(maxsize=cache_size)(self._classify)

    def _classify(self, ua: str) -> UserAgentInfo:
        result = self._resolver(ua, Domain.ALL)
        agent, system, device = result.user_agent, result.os, result.device
        browser = UNKNOWN
        version = ""
        if agent is not None:
            browser = BROWSER_NAMES.get(agent.family, agent.family)
            version = agent.major or ""
            if version and agent.minor is not None:
                version = f"{version}.{agent.minor}"
        os_family = system.family if system is not None else UNKNOWN
        device_family = device.family if device is not None else ""
        device_brand = (device.brand or "") if device is not None else ""
        return UserAgentInfo(
            device_type=_device_type(ua, os_family, device_family, device_brand),
            os=OS_NAMES.get(os_family, os_family)[:MAX_SHORT_STRING_LENGTH],
            browser=browser[:MAX_SHORT_STRING_LENGTH],
            browser_version=version[:MAX_SHORT_STRING_LENGTH],
            spider=device_family == "Spider",
        )


def _device_type(ua: str, os_family: str, device_family: str, device_brand: str) -> str:
    if device_family == "iPad" or device_brand.endswith("_Tablet"):
        return "tablet"
    if any(marker in ua for marker in _TABLET_MARKERS):
        return "tablet"
    if os_family == "Android":
        # Android browsers say "Mobile" on phones and leave it out on tablets.
        return "mobile" if "Mobile" in ua else "tablet"
    if os_family == "iOS" or os_family in _MOBILE_OS or "Mobi" in ua:
        return "mobile"
    return "desktop"


class UserAgentStep:
    """The ``user_agent`` step: overwrites the client's device fields with parsed ones."""

    __slots__ = ("classify",)

    def __init__(self, parser: UserAgentParser) -> None:
        self.classify = parser.classify

    @classmethod
    def from_settings(
        cls, settings: Settings, parser: UserAgentParser | None = None
    ) -> UserAgentStep:
        return cls(parser or UserAgentParser(settings.user_agent_cache_size))

    def parse_user_agent(self, event: Event, ctx: RequestContext) -> Event | Drop:
        info = self.classify(event.user_agent)
        event.device_type = info.device_type
        event.os = info.os
        event.browser = info.browser
        event.browser_version = info.browser_version
        return event

    __call__ = parse_user_agent
