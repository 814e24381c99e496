"""Step ``scrub``: secrets and personal data leave URLs, titles and properties."""

from __future__ import annotations

from typing import Any

import pytest

from sightline.pipeline.scrub import REDACTED, Scrubber, iban_valid, luhn_valid
from tests.unit.pipeline.conftest import MakeContext, page_view

R = REDACTED


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber()


URLS = [
    (
        "https://shop.example.com/p?token=abc123&page=2",
        f"https://shop.example.com/p?token={R}&page=2",
    ),
    (
        "https://shop.example.com/reset?password=hunter2",
        f"https://shop.example.com/reset?password={R}",
    ),
    (
        "/login?redirect=/x&api_key=sk9&apiKey=k2&X-Api-Key=k3",
        f"/login?redirect=/x&api_key={R}&apiKey={R}&X-Api-Key={R}",
    ),
    ("/cb?code=4/0AX4XfWh&state=xyz&scope=email", f"/cb?code={R}&state={R}&scope=email"),
    (
        "/s?q=headphones&session_id=77&sid=8&PHPSESSID=9",
        f"/s?q=headphones&session_id={R}&sid={R}&PHPSESSID={R}",
    ),
    (
        "/a?client_secret=s&access_token=t&auth=u&Authorization=v",
        f"/a?client_secret={R}&access_token={R}&auth={R}&Authorization={R}",
    ),
    ("/x?email=jane%40example.com&ref=nav", f"/x?email={R}&ref=nav"),
    ("/x?ref=jane%40example.com", f"/x?ref={R}"),
    ("/x?to=jane.doe+news@example.co.uk", f"/x?to={R}"),
    ("/x?n=4111+1111+1111+1111", f"/x?n={R}"),
    ("/x?gclid=Cj0KCQ&fbclid=IwAR&utm_source=fb", f"/x?gclid={R}&fbclid={R}&utm_source=fb"),
    ("/users/jane@example.com/orders", f"/users/{R}/orders"),
    ("https://admin:s3cret@shop.example.com/x", "https://shop.example.com/x"),
    (
        "https://shop.example.com/cb#access_token=ya29.a0&token_type=Bearer&expires_in=3599",
        f"https://shop.example.com/cb#access_token={R}&token_type={R}&expires_in=3599",
    ),
    (
        "https://shop.example.com/#/account?token=abc",
        f"https://shop.example.com/#/account?token={R}",
    ),
    ("https://shop.example.com/#section-2", "https://shop.example.com/#section-2"),
    # nothing sensitive: left exactly as it was
    (
        "/search?keyword=monkey&postcode=10115&couponCode=SAVE10&author=me",
        "/search?keyword=monkey&postcode=10115&couponCode=SAVE10&author=me",
    ),
    ("/p?id=12345&sort=price&page=&flag", "/p?id=12345&sort=price&page=&flag"),
    ("/order/1732521600000", "/order/1732521600000"),
]


@pytest.mark.parametrize(("url", "expected"), URLS)
def test_urls(scrubber: Scrubber, url: str, expected: str) -> None:
    assert scrubber.scrub_url(url) == expected


TEXTS = [
    ("Welcome back, jane.doe@example.com!", f"Welcome back, {R}!"),
    ("card 4111 1111 1111 1111 ok", f"card {R} ok"),
    ("card 4111-1111-1111-1111", f"card {R}"),
    ("amex 378282246310005", f"amex {R}"),
    ("order 4111111111111112", f"order {R}"),  # 16+ digits: redacted even without Luhn
    ("ref 1234567890123", "ref 1234567890123"),  # 13 digits failing Luhn: kept
    ("ssn 078-05-1120", f"ssn {R}"),
    ("iban DE89 3704 0044 0532 0130 00", f"iban {R}"),
    ("iban DE89370400440532013000", f"iban {R}"),
    ("sku AB12CDEF3456GH", "sku AB12CDEF3456GH"),  # IBAN-shaped, bad checksum
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        f"jwt {R}",
    ),
    ("Authorization: Bearer abcdef0123456789", f"Authorization: {R}"),
    ("key sk_live_4eC39HqLyjWDarjtT1zdp7dc", f"key {R}"),
    ("aws AKIAIOSFODNN7EXAMPLE", f"aws {R}"),
    ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", f"gh {R}"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", R),
    ("Wireless Headphones Pro 2 - Best Price 2026", "Wireless Headphones Pro 2 - Best Price 2026"),
    ("Version 1.2.3 released", "Version 1.2.3 released"),
]


@pytest.mark.parametrize(("text", "expected"), TEXTS)
def test_texts(scrubber: Scrubber, text: str, expected: str) -> None:
    assert scrubber.scrub_text(text) == expected


def test_the_step_scrubs_every_field(scrubber: Scrubber, make_ctx: MakeContext) -> None:
    event = page_view(
        page_url="https://shop.example.com/account?email=jane@example.com&tab=orders",
        page_path="/account?token=abc",
        referrer="https://mail.example.net/read?id=1&session=xyz",
        page_title="Orders of jane@example.com",
        utm_source="crm",
        utm_content="jane@example.com",
        properties={
            "plan": "pro",
            "password": "hunter2",
            "userEmail": "jane@example.com",
            "apiKey": 123,
            "note": "call me at jane@example.com",
            "count": 3,
            "missing": None,
            "nested": {
                "creditCardNumber": "4111111111111111",
                "label": "ok",
                "deep": ["x", "jane@example.com"],
            },
            "list": [{"secret": "s"}, "bob@example.org", 7],
            "$ipPrefix": "203.0.113.0/24",
        },
    )
    assert scrubber.scrub_event(event, make_ctx()) is event
    assert event.page_url == f"https://shop.example.com/account?email={R}&tab=orders"
    assert event.page_path == f"/account?token={R}"
    assert event.referrer == f"https://mail.example.net/read?id=1&session={R}"
    assert event.page_title == f"Orders of {R}"
    assert (event.utm_source, event.utm_content) == ("crm", R)
    assert event.properties == {
        "plan": "pro",
        "password": R,
        "userEmail": R,
        "apiKey": R,
        "note": f"call me at {R}",
        "count": 3,
        "missing": None,
        "nested": {"creditCardNumber": R, "label": "ok", "deep": ["x", R]},
        "list": [{"secret": R}, R, 7],
        "$ipPrefix": "203.0.113.0/24",
    }


def test_typed_properties_of_the_seed_are_kept(scrubber: Scrubber, make_ctx: MakeContext) -> None:
    properties: dict[str, Any] = {
        "productId": "p-123",
        "productName": "Noise Cancelling Headphones",
        "productSlug": "noise-cancelling-headphones",
        "productPrice": 129.99,
        "categoryId": "c-9",
        "categoryName": "Audio",
        "source": "search",
        "linkId": "amz-42",
        "platform": "amazon",
        "position": "hero",
        "ctaText": "Check price",
        "revenue": 4.5,
        "depth": 75,
        "loadTime": 812.5,
        "couponCode": "SAVE10",
        "keyword": "headphones",
    }
    event = page_view(properties=dict(properties))
    scrubber.scrub_event(event, make_ctx())
    assert event.properties == properties


def test_denylist_is_overridable(make_ctx: MakeContext) -> None:
    scrubber = Scrubber(
        extra_names=["customer_ref", "Loyalty-Number"],
        allow=["code"],
        extra_patterns=[r"\bORD-\d{6}\b"],
    )
    assert scrubber.scrub_url("/p?code=X1&customerRef=9&loyalty_number=5") == (
        f"/p?code=X1&customerRef={R}&loyalty_number={R}"
    )
    assert scrubber.scrub_text("your order ORD-123456 shipped") == f"your order {R} shipped"
    event = page_view(properties={"customer_ref": "c-1", "code": "X1", "token": "t"})
    scrubber.scrub_event(event, make_ctx())
    assert event.properties == {"customer_ref": R, "code": "X1", "token": R}


def test_results_are_cached_per_string(scrubber: Scrubber) -> None:
    url = "https://shop.example.com/x?token=cache-me"
    first = scrubber.scrub_url(url)
    assert scrubber.scrub_url(url) is first
    text = "Plain title that needs nothing"
    assert scrubber.scrub_text(text) is text


@pytest.mark.timeout(20)  # catastrophic regex backtracking would hang here
def test_long_hostile_strings(scrubber: Scrubber) -> None:
    hostile = {
        "a" * 1024 + "@": "a" * 1024 + "@",
        "x." * 500 + "@": "x." * 500 + "@",
        "@" * 1024: "@" * 1024,
        "eyJ" * 340: "eyJ" * 340,
        "1" * 1024: R,
        "jane@example.com " * 60: f"{R} " * 60,
    }
    for text, expected in hostile.items():
        assert scrubber.scrub_text(text) == expected
        assert scrubber.scrub_url("/p?q=" + text).startswith("/p?q=")


def test_checksums() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert not iban_valid("GB82 WEST 1234 5698 7654 33")


def test_clean_strings_are_remembered_whatever_object_carries_them(make_ctx: MakeContext) -> None:
    scrubber = Scrubber()
    for _ in range(3):
        # New but equal string objects each time, as decoding every request makes them.
        url = "".join(["https://shop.example.com/p", "?page=2"])
        title = "".join(["Head", "phones"])
        event = page_view(page_url=url, page_path="".join(["/p"]), page_title=title)
        event.properties = {"productName": "".join(["Wire", "less"])}
        scrubber.scrub_event(event, make_ctx())
    assert scrubber.scrub_url.cache_info().misses == 2  # page URL and path, once each
    assert {"https://shop.example.com/p?page=2", "/p"} <= scrubber._clean_urls
    assert {"Headphones", "Wireless"} <= scrubber._clean_texts
    assert scrubber.scrub_url.cache_info().hits == 0  # later events never reached the cache
