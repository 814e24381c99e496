"""Step ``geo``: country, region and city of the client address, from a MaxMind-format file.

``settings.geoip_db`` names a ``.mmdb`` file in the GeoIP2/GeoLite2 City or Country layout
(DB-IP's "lite" files use the same layout). The country is its ISO 3166-1 alpha-2 code
(``DE``); region (the first subdivision) and city are English names. Without a file, or
for addresses it does not know (private networks, localhost), the fields stay empty and
nothing fails. The file is checked for changes once a minute and reopened when replaced,
so a weekly ``geoipupdate`` needs no restart.

The address looked up is ``client_ip`` (see ``proxies``): X-Forwarded-For counts only
from trusted proxies. The address is used here, in memory, and never stored.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import TYPE_CHECKING, Any, NamedTuple

import maxminddb

from sightline.events import Event
from sightline.events.limits import MAX_SHORT_STRING_LENGTH
from sightline.pipeline import Drop, RequestContext
from sightline.pipeline.proxies import ClientAddress, TrustedProxies

if TYPE_CHECKING:
    from sightline.config import Settings

log = logging.getLogger(__name__)

#: How often the database file is checked for a newer version, in milliseconds.
RELOAD_CHECK_MS = 60_000


class Place(NamedTuple):
    country: str = ""
    region: str = ""
    city: str = ""


NOWHERE = Place()


class GeoDatabase:
    """A MaxMind-format database with a cached ``locate(ip) -> Place``; reopened when the
    file changes. With no file (or a broken one) every address is ``NOWHERE``."""

    def __init__(self, path: str = "", cache_size: int = 65_536) -> None:
        self.path = path
        self._cache_size = cache_size
        self._reader: Any = None
        self._mtime: float | None = None
        #: When (ms) the file is next checked for a newer version (never without a file).
        self.next_check_ms = 0 if path else 2**63
        self.locate = functools.lru_cache(maxsize=cache_size)(self._locate)
        if path:
            self._open()

    @property
    def available(self) -> bool:
        return self._reader is not None

    def _open(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime
            reader = maxminddb.open_database(self.path)
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            log.warning("GeoIP database %s unusable (%s): geo fields stay empty", self.path, exc)
            self._reader = None
            self._mtime = None
        else:
            self._reader = reader
            self._mtime = mtime
        self.locate.cache_clear()

    def refresh(self, now_ms: int) -> None:
        """Reopen the file if it changed (checked at most once per ``RELOAD_CHECK_MS``)."""
        if not self.path or now_ms < self.next_check_ms:
            return
        self.next_check_ms = now_ms + RELOAD_CHECK_MS
        try:
            mtime: float | None = os.stat(self.path).st_mtime
        except OSError:
            mtime = None
        if mtime != self._mtime:
            self._open()

    def _locate(self, ip: str) -> Place:
        reader = self._reader
        if reader is None:
            return NOWHERE
        try:
            record = reader.get(ip)
        except ValueError:
            return NOWHERE
        if not isinstance(record, dict):
            return NOWHERE
        country = _field(record.get("country"), "iso_code") or _field(
            record.get("registered_country"), "iso_code"
        )
        region = ""
        subdivisions = record.get("subdivisions")
        if isinstance(subdivisions, list) and subdivisions:
            region = _name(subdivisions[0]) or _field(subdivisions[0], "iso_code")
        city = _name(record.get("city"))
        if not (country or region or city):
            return NOWHERE
        limit = MAX_SHORT_STRING_LENGTH
        return Place(country.upper()[:limit], region[:limit], city[:limit])


def _field(node: Any, key: str) -> str:
    if isinstance(node, dict):
        value = node.get(key)
        if isinstance(value, str):
            return value
    return ""


def _name(node: Any) -> str:
    if isinstance(node, dict):
        names = node.get("names")
        if isinstance(names, dict):
            name = names.get("en")
            if isinstance(name, str):
                return name
    return ""


class GeoLocator:
    """The ``geo`` step."""

    __slots__ = ("_client", "_memo", "database")

    def __init__(self, database: GeoDatabase, client: ClientAddress | None = None) -> None:
        self.database = database
        self._client = client or ClientAddress(TrustedProxies())
        self._memo: tuple[object, Place] = (None, NOWHERE)

    @classmethod
    def from_settings(cls, settings: Settings, client: ClientAddress) -> GeoLocator:
        return cls(GeoDatabase(settings.geoip_db), client)

    def locate_event(self, event: Event, ctx: RequestContext) -> Event | Drop:
        memo = self._memo
        if memo[0] is ctx:
            place = memo[1]
        else:
            database = self.database
            if ctx.received_at >= database.next_check_ms:
                database.refresh(ctx.received_at)
            place = database.locate(self._client(ctx)) if database.available else NOWHERE
            self._memo = (ctx, place)
        if place is not NOWHERE:
            event.country, event.region, event.city = place
        return event

    __call__ = locate_event
