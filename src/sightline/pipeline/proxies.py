"""Which address a request came from: the direct peer, or the client a trusted proxy names.

The client address is decided here and nowhere else: the bot, geo and identity steps
(and the collector's rate limiter) all ask ``client_ip``. ``X-Forwarded-For`` is believed
only when the direct peer is one of ``settings.trusted_proxies``; then the header is read
from the right, skipping further trusted hops, and the first untrusted address is the
client. A malformed hop stops the walk: nothing to its left is believed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sightline.pipeline import RequestContext

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_MEMO_LIMIT = 4096


def parse_ip(text: str) -> IpAddress | None:
    """An address from ``text`` (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``), or None.

    IPv4-mapped IPv6 addresses (``::ffff:1.2.3.4``) come back as IPv4.
    """
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """A set of proxy addresses and networks; ``ip in proxies`` is memoised per address."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.networks: tuple[IpNetwork, ...] = tuple(
            ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip()
        )
        self._memo: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, ip: object) -> bool:
        if not isinstance(ip, str):
            return False
        known = self._memo.get(ip)
        if known is None:
            address = parse_ip(ip)
            known = address is not None and any(address in net for net in self.networks)
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[ip] = known
        return known


def client_ip(ctx: RequestContext, trusted: TrustedProxies) -> str:
    """The address of the client that made the request (normalised text form)."""
    return resolve_client_ip(ctx.ip, ctx.headers.get("x-forwarded-for", ""), trusted)


def resolve_client_ip(peer: str, forwarded_for: str | None, trusted: TrustedProxies) -> str:
    """The client's address: the direct peer, unless the peer is a trusted proxy; then the
    right-most X-Forwarded-For hop that is not itself a trusted proxy."""
    if not trusted or peer not in trusted or not forwarded_for:
        return _normalise(peer)
    client = _normalise(peer)
    for hop in reversed(forwarded_for.split(",")):
        address = parse_ip(hop)
        if address is None:
            break
        client = str(address)
        if client not in trusted:
            break
    return client


def _normalise(ip: str) -> str:
    if ":" not in ip and ip[-1:].isdigit():
        return ip  # dotted IPv4 as servers report it: already canonical
    address = parse_ip(ip)
    return ip if address is None else str(address)


class ClientAddress:
    """``client_ip`` remembered for the last request context, shared by the steps.

    Every event of a batch shares one context, so the header is parsed once per batch.
    The memo is a single tuple, replaced atomically, so concurrent batches are safe.
    """

    __slots__ = ("_memo", "_trusting", "trusted")

    def __init__(self, trusted: TrustedProxies) -> None:
        self.trusted = trusted
        self._trusting = bool(trusted)
        self._memo: tuple[object, str] = (None, "")

    def __call__(self, ctx: RequestContext) -> str:
        memo = self._memo
        if memo[0] is ctx:
            return memo[1]
        ip = client_ip(ctx, self.trusted) if self._trusting else _normalise(ctx.ip)
        self._memo = (ctx, ip)
        return ip
