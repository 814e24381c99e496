"""Step ``identity``: a cookieless visitor id for events that come without one.

Without analytics consent the tracker keeps nothing on the device and sends no
``visitorId``. The id is then::

    blake2b(site_id \\0 client_ip \\0 user_agent, key=salt_of_the_day, digest_size=16)

as 32 hex characters. The salt changes every UTC day (``sightline.privacy.salts``), so
the same person gets a new id each day and no id can be linked to yesterday's once the
salt is gone. The client address comes from ``proxies.client_ip`` and is used only for
this hash (and, when ``anonymize_ip = "prefix"``, to keep its /24 or /48 network in
``properties["$ipPrefix"]``); it is never copied into the event.

Sessions across midnight: ids seen in the last ``session_timeout_minutes`` of a day are
remembered in memory. After midnight, an event whose id under yesterday's salt is one of
them (and was seen within the timeout) keeps that id, so its session is not cut in two;
every other event uses today's salt. This memory is per process: behind several
collectors a session may still split at midnight.

Events that carry a ``visitorId`` (consent given) keep it untouched.
"""

from __future__ import annotations

import ipaddress
from hashlib import blake2b
from typing import TYPE_CHECKING

from sightline.events import Event
from sightline.pipeline import Drop, RequestContext
from sightline.pipeline.proxies import ClientAddress, TrustedProxies, parse_ip
from sightline.privacy.salts import DAY_MS, Salts, SaltStore

if TYPE_CHECKING:
    from sightline.config import Settings

#: Where the anonymised network of the client goes when ``anonymize_ip = "prefix"``.
IP_PREFIX_PROPERTY = "$ipPrefix"
#: Most ids remembered for the midnight hand-over.
MAX_REMEMBERED = 200_000


def ip_prefix(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of an address, or "" for a non-address."""
    address = parse_ip(ip)
    if address is None:
        return ""
    bits = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


class VisitorIdentity:
    """The ``identity`` step."""

    def __init__(
        self,
        store: SaltStore,
        client: ClientAddress | None = None,
        anonymize_ip: str = "off",
        session_timeout_minutes: int = 30,
    ) -> None:
        self.store = store
        self._client = client or ClientAddress(TrustedProxies())
        self._keep_prefix = anonymize_ip == "prefix"
        self.timeout_ms = session_timeout_minutes * 60_000
        self._salts: Salts | None = None
        self._memo: tuple[object, str, str] = (None, "", "")
        self._prefix_memo: tuple[object, str] = (None, "")
        #: Ids seen near the end of day ``_recent_day``, with when they were last seen.
        self._recent: dict[str, int] = {}
        self._recent_day = -1

    @classmethod
    def from_settings(
        cls, settings: Settings, store: SaltStore, client: ClientAddress
    ) -> VisitorIdentity:
        return cls(store, client, settings.anonymize_ip, settings.session_timeout_minutes)

    def identify_visitor(self, event: Event, ctx: RequestContext) -> Event | Drop:
        if self._keep_prefix:
            prefix = self._prefix(ctx)
            if prefix:
                event.properties[IP_PREFIX_PROPERTY] = prefix
        if event.visitor_id:
            return event
        ua = event.user_agent
        memo = self._memo
        if memo[0] is ctx and memo[1] == ua:
            event.visitor_id = memo[2]
            return event
        visitor = self.visitor_id(ctx.site.id, self._client(ctx), ua, ctx.received_at)
        self._memo = (ctx, ua, visitor)
        event.visitor_id = visitor
        return event

    __call__ = identify_visitor

    def visitor_id(self, site_id: str, ip: str, user_agent: str, now_ms: int) -> str:
        """The cookieless id of (site, address, user agent) at ``now_ms``."""
        day = now_ms // DAY_MS
        salts = self._salts
        if salts is None or salts.day != day:
            salts = self._salts = self.store.salts(now_ms)
        message = f"{site_id}\x00{ip}\x00{user_agent}".encode()
        recent = self._recent
        if recent and salts.previous is not None and self._recent_day == day - 1:
            carried = blake2b(message, key=salts.previous, digest_size=16).hexdigest()
            last_seen = recent.get(carried)
            if last_seen is not None and now_ms - last_seen <= self.timeout_ms:
                recent[carried] = now_ms
                return carried
        visitor = blake2b(message, key=salts.current, digest_size=16).hexdigest()
        if (day + 1) * DAY_MS - now_ms <= self.timeout_ms:
            if self._recent_day != day:
                self._recent = recent = {}
                self._recent_day = day
            if len(recent) < MAX_REMEMBERED:
                recent[visitor] = now_ms
        return visitor

    def _prefix(self, ctx: RequestContext) -> str:
        memo = self._prefix_memo
        if memo[0] is ctx:
            return memo[1]
        prefix = ip_prefix(self._client(ctx))
        self._prefix_memo = (ctx, prefix)
        return prefix

    def maintain(self, now_ms: int) -> None:
        """Rotate salts (deleting old ones) and forget hand-over ids that went quiet."""
        self._salts = self.store.rotate(now_ms)
        if self._recent and now_ms // DAY_MS != self._recent_day:
            recent = self._recent
            for visitor, last_seen in list(recent.items()):
                if now_ms - last_seen > self.timeout_ms:
                    recent.pop(visitor, None)
