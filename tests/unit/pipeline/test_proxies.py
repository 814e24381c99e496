"""The client address: X-Forwarded-For believed only from trusted proxies."""

from __future__ import annotations

import pytest

from sightline.pipeline.proxies import ClientAddress, TrustedProxies, client_ip, parse_ip
from tests.unit.pipeline.conftest import MakeContext

TRUSTED = TrustedProxies(["10.0.0.0/8", "2001:db8:ffff::1"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.7", None, "203.0.113.7"),
        # an untrusted peer's header is ignored: anyone can send one
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", None, "10.0.0.2"),
        # read from the right, skipping trusted hops; spoofed entries on the left are ignored
        ("10.0.0.2", "1.1.1.1, 198.51.100.1, 10.9.9.9", "198.51.100.1"),
        ("2001:db8:ffff::1", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "[2001:db8::5]:443", "2001:db8::5"),
        ("10.0.0.2", "198.51.100.1:5555", "198.51.100.1"),
        ("10.0.0.2", "::ffff:198.51.100.1", "198.51.100.1"),
        # all hops trusted: the left-most
        ("10.0.0.2", "10.1.1.1, 10.2.2.2", "10.1.1.1"),
        # garbage stops the walk: nothing left of it is believed
        ("10.0.0.2", "198.51.100.1, not-an-ip, 10.3.3.3", "10.3.3.3"),
        ("10.0.0.2", "garbage", "10.0.0.2"),
        ("::ffff:203.0.113.7", None, "203.0.113.7"),
        ("2001:DB8::0:1", None, "2001:db8::1"),
    ],
)
def test_client_ip(make_ctx: MakeContext, peer: str, forwarded: str | None, expected: str) -> None:
    headers = {"x-forwarded-for": forwarded} if forwarded is not None else {}
    assert client_ip(make_ctx(ip=peer, headers=headers), TRUSTED) == expected


def test_without_trusted_proxies_the_peer_is_the_client(make_ctx: MakeContext) -> None:
    ctx = make_ctx(ip="10.0.0.2", headers={"x-forwarded-for": "198.51.100.1"})
    assert client_ip(ctx, TrustedProxies()) == "10.0.0.2"


def test_client_address_is_computed_once_per_request(make_ctx: MakeContext) -> None:
    client = ClientAddress(TRUSTED)
    ctx = make_ctx(ip="10.0.0.2", headers={"x-forwarded-for": "198.51.100.1"})
    assert client(ctx) == "198.51.100.1"
    ctx.headers = {"x-forwarded-for": "198.51.100.99"}  # same request: the memo answers
    assert client(ctx) == "198.51.100.1"
    other = make_ctx(ip="10.0.0.2", headers={"x-forwarded-for": "198.51.100.2"})
    assert client(other) == "198.51.100.2"


def test_parse_ip() -> None:
    assert str(parse_ip(" 198.51.100.1 ")) == "198.51.100.1"
    assert parse_ip("unknown") is None
    assert parse_ip("[::1") is None
    assert parse_ip("") is None
