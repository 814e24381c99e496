"""Step ``referrer``: UTM parsing and channel classification with source names."""

from __future__ import annotations

from typing import Any

import pytest

from sightline.pipeline.referrer import (
    CHANNELS,
    ReferrerClassifier,
    SourceList,
    host_of,
    read_page,
)
from tests.unit.pipeline.conftest import MakeContext, page_view

PAGE = "https://shop.example.com/products/headphones"


@pytest.fixture(scope="module")
def classifier() -> ReferrerClassifier:
    return ReferrerClassifier()


def classify(
    classifier: ReferrerClassifier, make_ctx: MakeContext, **fields: Any
) -> tuple[str, str]:
    fields.setdefault("page_url", PAGE)
    event = page_view(**fields)
    assert classifier.classify_referrer(event, make_ctx()) is event
    return event.channel, event.referrer_source


CASES: list[tuple[str, dict[str, Any], tuple[str, str]]] = [
    # direct
    ("no referrer", {}, ("direct", "")),
    ("no referrer, no page", {"page_url": ""}, ("direct", "")),
    # organic search
    ("google.com", {"referrer": "https://www.google.com/"}, ("organic_search", "Google")),
    ("google ccTLD", {"referrer": "https://www.google.co.uk/"}, ("organic_search", "Google")),
    ("google.de", {"referrer": "https://google.de/search?q=x"}, ("organic_search", "Google")),
    ("bing", {"referrer": "https://www.bing.com/search?q=headphones"}, ("organic_search", "Bing")),
    ("duckduckgo", {"referrer": "https://duckduckgo.com/"}, ("organic_search", "DuckDuckGo")),
    ("yahoo", {"referrer": "https://uk.search.yahoo.com/"}, ("organic_search", "Yahoo")),
    ("yandex", {"referrer": "https://yandex.ru/search/?text=x"}, ("organic_search", "Yandex")),
    ("ecosia", {"referrer": "https://www.ecosia.org/"}, ("organic_search", "Ecosia")),
    (
        "google app",
        {"referrer": "android-app://com.google.android.googlequicksearchbox/"},
        ("organic_search", "Google"),
    ),
    ("utm organic", {"utm_source": "bing", "utm_medium": "organic"}, ("organic_search", "bing")),
    # paid search
    (
        "gclid",
        {"page_url": PAGE + "?gclid=Cj0KCQ", "referrer": "https://www.google.com/"},
        ("paid_search", "Google"),
    ),
    ("gclid without referrer", {"page_url": PAGE + "?gclid=Cj0KCQ"}, ("paid_search", "Google")),
    ("msclkid", {"page_url": PAGE + "?msclkid=abc123"}, ("paid_search", "Bing")),
    ("wbraid", {"page_url": PAGE + "?x=1&wbraid=abc"}, ("paid_search", "Google")),
    (
        "utm cpc",
        {"page_url": PAGE + "?utm_source=duckduckgo&utm_medium=cpc"},
        ("paid_search", "duckduckgo"),
    ),
    (
        "utm ppc with known referrer",
        {"utm_source": "bing", "utm_medium": "PPC", "referrer": "https://www.bing.com/"},
        ("paid_search", "Bing"),
    ),
    ("utm paid", {"utm_source": "google", "utm_medium": "paid"}, ("paid_search", "google")),
    # social
    ("facebook", {"referrer": "https://www.facebook.com/"}, ("social", "Facebook")),
    ("facebook link shim", {"referrer": "https://l.facebook.com/l.php"}, ("social", "Facebook")),
    ("t.co", {"referrer": "https://t.co/AbCdEf"}, ("social", "X")),
    ("reddit", {"referrer": "https://old.reddit.com/r/headphones/"}, ("social", "Reddit")),
    ("linkedin", {"referrer": "https://www.linkedin.com/feed/"}, ("social", "LinkedIn")),
    (
        "hacker news",
        {"referrer": "https://news.ycombinator.com/item?id=1"},
        ("social", "Hacker News"),
    ),
    ("pinterest ccTLD", {"referrer": "https://www.pinterest.de/"}, ("social", "Pinterest")),
    ("youtube", {"referrer": "https://m.youtube.com/watch?v=x"}, ("social", "YouTube")),
    ("facebook app", {"referrer": "android-app://com.facebook.katana/"}, ("social", "Facebook")),
    ("utm social", {"utm_source": "mastodon", "utm_medium": "social"}, ("social", "mastodon")),
    ("utm_source only, known", {"utm_source": "facebook"}, ("social", "Facebook")),
    ("utm_source only, a host", {"utm_source": "t.co"}, ("social", "X")),
    # email
    ("gmail", {"referrer": "https://mail.google.com/"}, ("email", "Gmail")),
    ("outlook", {"referrer": "https://outlook.live.com/mail/0/"}, ("email", "Outlook")),
    ("yahoo mail", {"referrer": "https://mail.yahoo.co.jp/"}, ("email", "Yahoo Mail")),
    ("proton", {"referrer": "https://mail.proton.me/u/0/inbox"}, ("email", "Proton Mail")),
    ("gmail app", {"referrer": "android-app://com.google.android.gm"}, ("email", "Gmail")),
    (
        "company webmail",
        {"referrer": "https://webmail.example.org/"},
        ("email", "webmail.example.org"),
    ),
    (
        "utm email",
        {"page_url": PAGE + "?utm_source=newsletter&utm_medium=email&utm_campaign=spring"},
        ("email", "newsletter"),
    ),
    ("utm e-mail", {"utm_source": "crm", "utm_medium": "E-Mail"}, ("email", "crm")),
    # referral
    (
        "blog",
        {"referrer": "https://blog.example.net/best-headphones"},
        ("referral", "blog.example.net"),
    ),
    ("www stripped", {"referrer": "https://www.wirecutter.com/x"}, ("referral", "wirecutter.com")),
    (
        "google lookalike",
        {"referrer": "https://googleblog.example/"},
        ("referral", "googleblog.example"),
    ),
    (
        "unknown app",
        {"referrer": "android-app://com.example.reader/"},
        ("referral", "com.example.reader"),
    ),
    ("utm_source unknown", {"utm_source": "partner-site"}, ("referral", "partner-site")),
    # internal
    ("site domain", {"referrer": "https://shop.example.com/"}, ("internal", "")),
    ("site domain with www", {"referrer": "https://www.shop.example.com/cart"}, ("internal", "")),
    ("subdomain of the site", {"referrer": "https://blog.shop.example.com/post"}, ("internal", "")),
    (
        "page host (another domain of the site)",
        {"page_url": "https://shop.example.org/x", "referrer": "https://shop.example.org/"},
        ("internal", ""),
    ),
    (
        "parent domain is not the site",
        {"referrer": "https://example.com/"},
        ("referral", "example.com"),
    ),
]


@pytest.mark.parametrize(("fields", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_channel_and_source(
    classifier: ReferrerClassifier,
    make_ctx: MakeContext,
    fields: dict[str, Any],
    expected: tuple[str, str],
) -> None:
    assert classify(classifier, make_ctx, **fields) == expected


def test_every_channel_is_covered() -> None:
    covered = {expected[0] for _, _, expected in CASES}
    assert covered == set(CHANNELS)


def test_utm_fields_are_parsed_from_the_page_url(
    classifier: ReferrerClassifier, make_ctx: MakeContext
) -> None:
    event = page_view(
        page_url=PAGE + "?UTM_Source=Newsletter&utm_medium=email&utm_campaign=spring%20sale"
        "&utm_term=noise+cancelling&utm_content=hero-banner&utm_source=ignored#top"
    )
    classifier.classify_referrer(event, make_ctx())
    assert (
        event.utm_source,
        event.utm_medium,
        event.utm_campaign,
        event.utm_term,
        event.utm_content,
    ) == ("Newsletter", "email", "spring sale", "noise cancelling", "hero-banner")


def test_utm_fields_sent_by_the_client_are_kept(
    classifier: ReferrerClassifier, make_ctx: MakeContext
) -> None:
    event = page_view(
        page_url=PAGE + "?utm_source=url&utm_medium=cpc&utm_campaign=url", utm_campaign="client"
    )
    classifier.classify_referrer(event, make_ctx())
    assert (event.utm_source, event.utm_medium, event.utm_campaign) == ("", "", "client")
    assert event.channel == "direct"


def test_utm_values_are_capped_to_the_field_limit(
    classifier: ReferrerClassifier, make_ctx: MakeContext
) -> None:
    event = page_view(page_url=PAGE + "?utm_campaign=" + "x" * 500)
    classifier.classify_referrer(event, make_ctx())
    assert event.utm_campaign == "x" * 128


def test_pages_without_campaigns_have_no_utm() -> None:
    assert read_page(PAGE).utm is None
    assert read_page(PAGE + "?page=2&sort=price").utm is None
    assert read_page(PAGE + "?utm_source=").utm is None
    assert read_page("not a url at all").host == "not a url at all"


def test_source_list_prefers_the_most_specific_entry() -> None:
    sources = SourceList(
        {
            "search": {"Search": ["search.*", "example.com"]},
            "email": {"Mail": ["mail.example.com", "mail.search.*"]},
        }
    )
    assert sources.match_host("example.com") == ("Search", "organic_search")
    assert sources.match_host("mail.example.com") == ("Mail", "email")
    assert sources.match_host("a.mail.example.com") == ("Mail", "email")
    assert sources.match_host("mail.search.co.uk") == ("Mail", "email")
    assert sources.match_host("www.search.co.uk") == ("Search", "organic_search")
    assert sources.match_host("search.a.b.c") is None  # a wildcard covers at most two labels
    assert sources.match_name("MAIL") == ("Mail", "email")


def test_builtin_source_list_is_well_formed() -> None:
    sources = SourceList.builtin()
    for host in ("google.com", "bing.com", "duckduckgo.com", "facebook.com", "mail.google.com"):
        assert sources.match_host(host) is not None, host


def test_malformed_referrers_do_not_fail(
    classifier: ReferrerClassifier, make_ctx: MakeContext
) -> None:
    for referrer in ("http://[::1", "::::", "https://", "android-app://", "about:blank"):
        event = page_view(page_url=PAGE, referrer=referrer)
        assert classifier.classify_referrer(event, make_ctx()) is event
        assert event.channel in CHANNELS


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://www.Example.com:8443/x?y#z", "example.com"),
        ("http://user:pw@blog.example.net/", "blog.example.net"),
        ("news.example.org/story", "news.example.org"),
        ("localhost:3000/x", "localhost"),
        ("https://[2001:db8::1]/", "2001:db8::1"),
        ("about:blank", ""),
        ("chrome-extension://abcdef/popup.html", ""),
        ("file:///home/me/page.html", ""),
        ("", ""),
    ],
)
def test_host_of(url: str, host: str) -> None:
    assert host_of(url) == host
