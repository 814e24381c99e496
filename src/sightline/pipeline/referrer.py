"""Step ``referrer``: campaign fields and the channel an event's visit came from.

UTM fields: when the event carries none of ``utm_*``, they are read from the query string
of ``pageUrl`` (parameter names compared case-insensitively). Fields the client sent are
kept as sent.

Channel (``event.channel``) and source (``event.referrerSource``), decided in this order:

1. ``paid_search``: the page URL has an ad click id (``gclid``, ``gbraid``, ``wbraid``,
   ``dclid`` -> Google; ``msclkid`` -> Bing; ``yclid`` -> Yandex) or ``utm_medium`` is one
   of cpc, ppc, paid, paidsearch, paid_search, paid-search, sem.
2. ``utm_medium`` email / e-mail / newsletter -> ``email``; social / social-network /
   social-media / sm -> ``social``; organic -> ``organic_search``.
3. No referrer: ``direct``, unless ``utm_source`` names a known source (``google``,
   ``facebook.com``: that source's channel) or an unknown one (``referral``).
4. The referrer's host is the site's domain, a subdomain of it, or the page's own host
   (``www.`` ignored): ``internal``.
5. The referrer is in the source list (``data/referrers.json``: search engines, social
   networks, webmail providers, and their Android apps): ``organic_search``, ``social``
   or ``email`` with the source's name (Google, Bing, DuckDuckGo, Facebook, Gmail, ...).
   A host starting with ``mail.``, ``webmail.`` or ``email.`` is ``email`` too.
6. Anything else: ``referral``, with the referrer's host (without ``www.``) as source.

For direct and internal traffic the source is empty. Otherwise it is the known source's
name, else the click id's network, else ``utm_source``, else the referrer's host.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from sightline.events import Event
from sightline.events.limits import MAX_SHORT_STRING_LENGTH
from sightline.pipeline import Drop, RequestContext

DIRECT = "direct"
ORGANIC_SEARCH = "organic_search"
PAID_SEARCH = "paid_search"
SOCIAL = "social"
EMAIL = "email"
REFERRAL = "referral"
INTERNAL = "internal"
CHANNELS = (DIRECT, ORGANIC_SEARCH, PAID_SEARCH, SOCIAL, EMAIL, REFERRAL, INTERNAL)

#: Channel of each section of the source list.
_SECTIONS = {"search": ORGANIC_SEARCH, "social": SOCIAL, "email": EMAIL}

PAID_MEDIA = frozenset({"cpc", "ppc", "paid", "paidsearch", "paid_search", "paid-search", "sem"})
EMAIL_MEDIA = frozenset({"email", "e-mail", "e_mail", "newsletter"})
SOCIAL_MEDIA = frozenset(
    {"social", "social-network", "social_network", "social-media", "social_media", "sm"}
)
ORGANIC_MEDIA = frozenset({"organic"})
#: utm_medium (lower case) -> the channel it means, for the non-paid channels.
MEDIUM_CHANNELS: dict[str, str] = {
    **dict.fromkeys(EMAIL_MEDIA, EMAIL),
    **dict.fromkeys(SOCIAL_MEDIA, SOCIAL),
    **dict.fromkeys(ORGANIC_MEDIA, ORGANIC_SEARCH),
}
#: Ad click ids that mark a paid search click, and whose network they name.
CLICK_IDS: dict[str, str] = {
    "gclid": "Google",
    "gbraid": "Google",
    "wbraid": "Google",
    "dclid": "Google",
    "msclkid": "Bing",
    "yclid": "Yandex",
}
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_MAIL_PREFIXES = ("mail.", "webmail.", "email.")
#: Substrings of a query string that may hold campaign parameters or click ids.
_QUERY_MARKERS = ("utm_", "clid", "clkid", "braid")
_ANDROID_APP = "android-app://"


class Source(NamedTuple):
    name: str
    channel: str


class SourceList:
    """Known referrer sources; ``match_host`` finds the most specific entry for a host."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._hosts: dict[str, Source] = {}
        self._wildcards: dict[str, Source] = {}
        self._names: dict[str, Source] = {}
        for section, channel in _SECTIONS.items():
            for name, hosts in data.get(section, {}).items():
                source = Source(name, channel)
                self._names.setdefault(name.lower(), source)
                for host in hosts:
                    host = host.lower()
                    if host.endswith(".*"):
                        self._wildcards[host[:-2]] = source
                    else:
                        self._hosts[host] = source
        self.match_host = functools.lru_cache(maxsize=4096)(self._match_host)

    @classmethod
    def builtin(cls) -> SourceList:
        text = resources.files("sightline.pipeline").joinpath("data/referrers.json")
        return cls(json.loads(text.read_text("utf-8")))

    def _match_host(self, host: str) -> Source | None:
        if host.startswith(_ANDROID_APP):
            return self._hosts.get(host)
        labels = host.split(".")
        count = len(labels)
        for start in range(count):
            exact = self._hosts.get(".".join(labels[start:]))
            if exact is not None:
                return exact
            for tail in (1, 2):
                if count - tail > start:
                    found = self._wildcards.get(".".join(labels[start : count - tail]))
                    if found is not None:
                        return found
        return None

    def match_name(self, text: str) -> Source | None:
        """A source named by ``utm_source``: by name (``google``) or host (``t.co``)."""
        key = text.strip().lower()
        if not key:
            return None
        return self._names.get(key) or self.match_host(key.removeprefix("www."))


class PageFacts(NamedTuple):
    host: str
    #: UTM values from the query string, or None when it has none.
    utm: tuple[str, str, str, str, str] | None
    #: The ad network of a paid click id in the URL ("" when none).
    click_network: str


class ReferrerFacts(NamedTuple):
    host: str
    source: Source | None


NO_PAGE = PageFacts("", None, "")
NO_REFERRER = ReferrerFacts("", None)


def host_of(url: str) -> str:
    """Lower-case host of an http(s) URL or of a bare ``host/path``, without ``www.``;
    "" for anything else (``about:blank``, ``chrome-extension://…``)."""
    scheme, sep, rest = url.partition("://")
    if sep:
        if scheme.lower() not in ("http", "https"):
            return ""
    else:
        rest = url
        _, colon, port = rest.partition("/")[0].partition(":")
        if colon and not port.isdigit():
            return ""
    try:
        host = urlsplit("//" + rest).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def read_page(url: str) -> PageFacts:
    """Host, UTM values and paid click network of a page URL."""
    host = host_of(url)
    query = url.partition("?")[2].partition("#")[0]
    lowered = query.lower()
    if not query or not any(marker in lowered for marker in _QUERY_MARKERS):
        return PageFacts(host, None, "")
    values: dict[str, str] = {}
    for key, value in parse_qsl(query):
        key = key.lower()
        if key not in values:
            values[key] = value.strip()[:MAX_SHORT_STRING_LENGTH]
    network = next((CLICK_IDS[k] for k in CLICK_IDS if values.get(k)), "")
    if not any(values.get(field) for field in UTM_FIELDS):
        return PageFacts(host, None, network)
    utm = tuple(values.get(field, "") for field in UTM_FIELDS)
    return PageFacts(host, utm, network)  # type: ignore[arg-type]


class ReferrerClassifier:
    """The ``referrer`` step."""

    def __init__(self, sources: SourceList | None = None, cache_size: int = 16_384) -> None:
        self.sources = sources or SourceList.builtin()
        self.read_page = functools.lru_cache(maxsize=cache_size)(read_page)
        self.read_referrer = functools.lru_cache(maxsize=cache_size)(self._read_referrer)
        self.attribute = functools.lru_cache(maxsize=cache_size)(self._attribute)

    def _read_referrer(self, referrer: str) -> ReferrerFacts:
        if referrer.startswith(_ANDROID_APP):
            package = referrer[len(_ANDROID_APP) :].partition("/")[0].lower()
            source = self.sources.match_host(_ANDROID_APP + package)
            return ReferrerFacts(package[:MAX_SHORT_STRING_LENGTH], source)
        host = host_of(referrer)[:MAX_SHORT_STRING_LENGTH]
        if not host:
            return NO_REFERRER
        return ReferrerFacts(host, self.sources.match_host(host))

    def classify_referrer(self, event: Event, ctx: RequestContext) -> Event | Drop:
        page = self.read_page(event.page_url) if event.page_url else NO_PAGE
        if page.utm is not None and not (
            event.utm_source
            or event.utm_medium
            or event.utm_campaign
            or event.utm_term
            or event.utm_content
        ):
            (
                event.utm_source,
                event.utm_medium,
                event.utm_campaign,
                event.utm_term,
                event.utm_content,
            ) = page.utm
        event.channel, event.referrer_source = self.attribute(
            page.host,
            page.click_network,
            event.referrer,
            event.utm_source,
            event.utm_medium,
            ctx.site.domain,
        )
        return event

    __call__ = classify_referrer

    def _attribute(
        self,
        page_host: str,
        click_network: str,
        referrer: str,
        utm_source: str,
        utm_medium: str,
        domain: str,
    ) -> tuple[str, str]:
        """(channel, source) of one combination of page, referrer and campaign."""
        ref = self.read_referrer(referrer) if referrer else NO_REFERRER
        medium = utm_medium.lower()
        known = ref.source
        if click_network or medium in PAID_MEDIA:
            return PAID_SEARCH, (
                known.name if known else ""
            ) or click_network or utm_source or ref.host
        channel = MEDIUM_CHANNELS.get(medium)
        if channel is not None:
            return channel, (known.name if known else "") or utm_source or ref.host
        if not ref.host:
            if not utm_source:
                return DIRECT, ""
            named = self.sources.match_name(utm_source)
            if named is None:
                return REFERRAL, utm_source
            return named.channel, named.name
        if self._is_internal(ref.host, domain.lower().removeprefix("www."), page_host):
            return INTERNAL, ""
        if known is not None:
            return known.channel, known.name
        return (EMAIL if ref.host.startswith(_MAIL_PREFIXES) else REFERRAL), ref.host

    @staticmethod
    def _is_internal(host: str, site: str, page: str) -> bool:
        return host in (site, page) or (bool(site) and host.endswith("." + site))
