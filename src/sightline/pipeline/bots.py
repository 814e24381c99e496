"""Step ``bots``: drop traffic that is not a person in a browser.

An event is dropped, with the reason counted per site on /metrics and never stored, when

- its user agent is empty (``no_user_agent``);
- its user agent names a headless browser or automation framework (``headless``:
  HeadlessChrome, PhantomJS, Puppeteer, Playwright, Selenium, ...), a plain HTTP client
  (``http_client``: curl, Wget, python-requests, Go-http-client, ...), an uptime or
  performance monitor (``monitor``: Lighthouse, Pingdom, ...) or a crawler (``crawler``:
  Googlebot, bingbot, link-preview fetchers, anything ua-parser calls a spider);
  the markers live in ``data/bots.json``;
- the tracker reported browser automation (``automation``): it sends
  ``properties["$webdriver"] = true`` when ``navigator.webdriver`` is set;
- the client address is in one of the datacenter ranges of
  ``settings.datacenter_ranges_file`` (``datacenter``).

Bot drops are not reported back to the client (``report=False``): a bot learns nothing.
The user agent checked is the event's ``userAgent`` (the ``defaults`` step fills it from
the request's User-Agent header when the event has none).
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import json
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sightline.events import Event
from sightline.pipeline import Drop, RequestContext
from sightline.pipeline.proxies import ClientAddress, TrustedProxies, parse_ip
from sightline.pipeline.user_agent import UserAgentParser

if TYPE_CHECKING:
    from sightline.config import Settings

NO_USER_AGENT = Drop("no_user_agent", report=False)
AUTOMATION = Drop("automation", report=False)
DATACENTER = Drop("datacenter", report=False)
#: The property the tracker sets from ``navigator.webdriver``.
WEBDRIVER_PROPERTY = "$webdriver"


def load_bot_patterns() -> dict[str, list[str]]:
    """``data/bots.json``: drop reason -> user-agent markers (checked in file order)."""
    text = resources.files("sightline.pipeline").joinpath("data/bots.json").read_text("utf-8")
    data: dict[str, list[str]] = {k: v for k, v in json.loads(text).items() if k[0] != "_"}
    return data


class BotRule(NamedTuple):
    """The markers of one drop reason, ready for a lower-cased user agent."""

    reason: str
    #: Substrings found anywhere.
    anywhere: tuple[str, ...]
    #: Prefixes (``str.startswith`` takes the whole tuple at once).
    starts: tuple[str, ...]
    regexes: tuple[re.Pattern[str], ...]

    def matches(self, lowered: str) -> bool:
        if self.starts and lowered.startswith(self.starts):
            return True
        for marker in self.anywhere:
            if marker in lowered:
                return True
        return any(regex.search(lowered) for regex in self.regexes)


def compile_bot_patterns(patterns: dict[str, list[str]]) -> list[BotRule]:
    """One rule per drop reason, in the order they are checked.

    A plain entry is a substring, ``^entry`` a prefix, ``re:entry`` a regular expression;
    all are matched against the lower-cased user agent. Plain substring tests run in C,
    where one regular expression alternating between a hundred markers would be tried at
    every position of the user agent.
    """
    rules = []
    for reason, entries in patterns.items():
        anywhere, starts, regexes = [], [], []
        for entry in entries:
            if entry.startswith("re:"):
                regexes.append(re.compile(entry[3:]))
            elif entry.startswith("^"):
                starts.append(entry[1:].lower())
            else:
                anywhere.append(entry.lower())
        rules.append(BotRule(reason, tuple(anywhere), tuple(starts), tuple(regexes)))
    return rules


class IpRanges:
    """A set of IPv4/IPv6 networks with a fast membership test (bisect over merged ranges)."""

    def __init__(self, networks: Iterable[str] = ()) -> None:
        spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for text in networks:
            net = ipaddress.ip_network(text, strict=False)
            spans[net.version].append((int(net.network_address), int(net.broadcast_address)))
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        for version, items in spans.items():
            merged: list[list[int]] = []
            for start, end in sorted(items):
                if merged and start <= merged[-1][1] + 1:
                    merged[-1][1] = max(merged[-1][1], end)
                else:
                    merged.append([start, end])
            self._starts[version] = [start for start, _ in merged]
            self._ends[version] = [end for _, end in merged]
        self.count = sum(len(v) for v in self._starts.values())

    @classmethod
    def from_file(cls, path: str | Path) -> IpRanges:
        """One network (CIDR or address) per line; ``#`` starts a comment; a CSV line's
        first column is used, so most published datacenter lists load as they are."""
        networks = []
        for line in Path(path).read_text("utf-8").splitlines():
            entry = line.split("#", 1)[0].split(",", 1)[0].strip()
            if entry:
                networks.append(entry)
        return cls(networks)

    def __len__(self) -> int:
        return self.count

    def __contains__(self, ip: object) -> bool:
        if not isinstance(ip, str):
            return False
        address = parse_ip(ip)
        if address is None:
            return False
        value = int(address)
        starts = self._starts[address.version]
        index = bisect.bisect_right(starts, value) - 1
        return index >= 0 and value <= self._ends[address.version][index]


class BotFilter:
    """The ``bots`` step."""

    def __init__(
        self,
        parser: UserAgentParser,
        client: ClientAddress | None = None,
        datacenters: IpRanges | None = None,
        patterns: dict[str, list[str]] | None = None,
        cache_size: int = 10_000,
    ) -> None:
        self._rules = compile_bot_patterns(
            patterns if patterns is not None else load_bot_patterns()
        )
        self._classify = parser.classify
        self._reasons: dict[str, Drop] = {}
        self.reason_for = functools.lru_cache(maxsize=cache_size)(self._reason_for)
        self._client = client or ClientAddress(TrustedProxies())
        self._datacenters = datacenters if datacenters else None
        self._memo: tuple[object, bool] = (None, False)

    @classmethod
    def from_settings(
        cls, settings: Settings, parser: UserAgentParser, client: ClientAddress
    ) -> BotFilter:
        ranges = None
        if settings.datacenter_ranges_file:
            ranges = IpRanges.from_file(settings.datacenter_ranges_file)
        return cls(parser, client, ranges, cache_size=settings.user_agent_cache_size)

    def _reason_for(self, ua: str) -> Drop | None:
        """The drop for a user agent, or None for a person's browser."""
        if not ua.strip():
            return NO_USER_AGENT
        lowered = ua.lower()
        reason = next((rule.reason for rule in self._rules if rule.matches(lowered)), None)
        if reason is None or reason == "not_a_browser":
            # ua-parser's crawler list is wider than ours; ask it before the last resort.
            if self._classify(ua).spider:
                reason = "crawler"
            elif reason is None:
                return None
        drop = self._reasons.get(reason)
        if drop is None:
            drop = self._reasons.setdefault(reason, Drop(reason, report=False))
        return drop

    def _in_datacenter(self, ctx: RequestContext) -> bool:
        memo = self._memo
        if memo[0] is ctx:
            return memo[1]
        assert self._datacenters is not None
        inside = self._client(ctx) in self._datacenters
        self._memo = (ctx, inside)
        return inside

    def filter_bots(self, event: Event, ctx: RequestContext) -> Event | Drop:
        drop = self.reason_for(event.user_agent)
        if drop is not None:
            return drop
        properties = event.properties
        if (
            properties
            and WEBDRIVER_PROPERTY in properties
            and properties.pop(WEBDRIVER_PROPERTY) in (True, "true")
        ):
            return AUTOMATION
        if self._datacenters is not None and self._in_datacenter(ctx):
            return DATACENTER
        return event

    __call__ = filter_bots
