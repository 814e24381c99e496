"""Sites: what a tracked website is, and how the collector recognises it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(slots=True)
class Site:
    id: str
    domain: str
    #: Public key the tracker sends with every request; not a secret.
    site_key: str
    #: Origins (scheme://host[:port]) whose pages may send events; "*" allows any.
    allowed_origins: list[str] = field(default_factory=list)
    timezone: str = "UTC"
    created_at: int = 0
    #: ``cookieless`` (no consent needed) or ``consent-required`` (see docs/privacy.md).
    consent_mode: str = "cookieless"
    #: Days raw events are kept (0: for ever); rollups are kept regardless.
    retention_days: int = 0

    def allows_origin(self, origin: str | None) -> bool:
        """Whether a browser page at ``origin`` may send events for this site.

        Requests without an Origin header (server-side senders, curl) are allowed: the
        origin check protects against other web pages, not against scripts.
        """
        if not origin:
            return True
        origin = origin.rstrip("/").lower()
        return any(allowed == "*" or allowed == origin for allowed in self.allowed_origins)


def new_site_id() -> str:
    return secrets.token_hex(8)


def new_site_key() -> str:
    return "pk_" + secrets.token_urlsafe(18)


def normalise_domain(domain: str) -> str:
    """``https://www.Example.com/x`` -> ``www.example.com``; raises ValueError if empty."""
    text = domain.strip().lower()
    if "://" in text:
        text = urlsplit(text).netloc
    text = text.split("/")[0].strip(".")
    if not text or " " in text:
        raise ValueError(f"not a domain: {domain!r}")
    return text


def normalise_origin(origin: str) -> str:
    """``https://Example.com/`` -> ``https://example.com``; ``*`` stays ``*``."""
    text = origin.strip()
    if text == "*":
        return text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"an origin is scheme://host[:port], got {origin!r}")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def default_origins(domain: str) -> list[str]:
    """The origins a new site accepts when none are given: its domain and www. over https."""
    bare = domain.removeprefix("www.")
    return [f"https://{bare}", f"https://www.{bare}"]


class SiteRegistry:
    """The collector's view of the sites, kept in memory.

    Reloaded on a miss (at most once a second, so unknown keys cannot hammer the
    store) and every ``ttl`` seconds, so sites added by another process show up.
    """

    def __init__(self, load_all: Callable[[], list[Site]], ttl: float = 30.0) -> None:
        self._load_all = load_all
        self._ttl = ttl
        self._by_key: dict[str, Site] = {}
        self._origins: set[str] = set()
        self._any_origin = False
        self._loaded_at = -1e9

    def reload(self) -> None:
        sites = self._load_all()
        self._by_key = {site.site_key: site for site in sites}
        origins = {origin for site in sites for origin in site.allowed_origins}
        self._any_origin = "*" in origins
        self._origins = origins
        self._loaded_at = time.monotonic()

    def _maybe_reload(self, min_age: float) -> None:
        if time.monotonic() - self._loaded_at >= min_age:
            self.reload()

    def by_key(self, site_key: str) -> Site | None:
        self._maybe_reload(self._ttl)
        site = self._by_key.get(site_key)
        if site is None:
            self._maybe_reload(1.0)
            site = self._by_key.get(site_key)
        return site

    def origin_known(self, origin: str) -> bool:
        if not origin:
            return False
        self._maybe_reload(self._ttl)
        origin = origin.rstrip("/").lower()
        return self._any_origin or origin in self._origins
