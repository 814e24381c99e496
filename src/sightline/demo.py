"""Demo traffic: visitors to an affiliate product catalogue, sent through the real collector.

The modelled site reviews and compares about sixty products and earns through affiliate
links to Amazon, eBay and other merchants. ``generate_traffic`` builds the events a
consenting tracker would send for a number of visitors over a number of days, with the
shape of real traffic: more on weekdays and in the evening, mostly mobile, visitors who
come back, search engines, social sites and a newsletter as referrers, UTM campaigns, and
a funnel that loses most people between the home page and an affiliate click.
``send_traffic`` posts it to ``/api/v1/analytics/collect/batch``.

Everything is drawn from ``random.Random`` instances seeded from ``seed``, so the same
arguments (including ``now_ms``) give the same events, ids included. docs/demo.md
describes the model.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import httpx

COLLECT_BATCH_PATH = "/api/v1/analytics/collect/batch"
#: Most events the generator puts in one request.
REQUEST_EVENTS = 50
SITE_NAME = "Picked"

_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
_MINUTE_MS = 60_000
_HEARTBEAT_MS = 30_000
_SESSION_GAP_MS = 45 * _MINUTE_MS
_MAX_PAGES = 24
#: Longest a session goes on; a visitor's next session starts at least a gap later.
_MAX_SESSION_MS = 2 * _HOUR_MS


# -- the catalogue -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    slug: str
    name: str
    #: Relative share of interest among categories.
    weight: float
    #: What people type into the site search when they look for this category.
    queries: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Offer:
    """One affiliate link: a merchant platform and its price for the product."""

    platform: str
    price: float


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    slug: str
    name: str
    brand: str
    category: Category
    price: float
    offers: tuple[Offer, ...]
    #: Relative popularity (views) within the whole catalogue.
    weight: float
    coupon: str = ""


#: Platform -> (share of the sale paid as commission, call-to-action text).
PLATFORMS: dict[str, tuple[float, str]] = {
    "Amazon": (0.03, "Check price on Amazon"),
    "eBay": (0.025, "See offers on eBay"),
    "Walmart": (0.03, "Buy at Walmart"),
    "Best Buy": (0.01, "View at Best Buy"),
    "Target": (0.02, "Shop at Target"),
    "B&H Photo": (0.04, "Buy at B&H Photo"),
    "Brand store": (0.07, "Buy from the official store"),
}

_CATEGORY_ROWS: tuple[tuple[str, str, float, tuple[str, ...]], ...] = (
    (
        "headphones",
        "Headphones",
        1.5,
        (
            "noise cancelling headphones",
            "best wireless earbuds",
            "sony xm5",
            "airpods pro",
            "headphones under 200",
            "bose vs sony",
        ),
    ),
    (
        "laptops",
        "Laptops",
        1.3,
        (
            "macbook air m3",
            "best laptop for students",
            "thinkpad x1 carbon",
            "laptop under 1000",
            "dell xps 13",
        ),
    ),
    (
        "coffee-machines",
        "Coffee machines",
        1.0,
        (
            "espresso machine",
            "best espresso machine under 500",
            "nespresso vertuo",
            "bean to cup coffee machine",
            "breville barista express",
        ),
    ),
    (
        "robot-vacuums",
        "Robot vacuums",
        0.9,
        (
            "robot vacuum pet hair",
            "roborock s8",
            "robot vacuum and mop",
            "roomba",
        ),
    ),
    (
        "smartwatches",
        "Smartwatches",
        1.1,
        (
            "apple watch series 9",
            "garmin forerunner",
            "fitness tracker",
            "smartwatch android",
        ),
    ),
    (
        "running-shoes",
        "Running shoes",
        0.8,
        (
            "running shoes",
            "best marathon shoes",
            "hoka clifton",
            "nike pegasus",
        ),
    ),
    (
        "cameras",
        "Cameras",
        0.7,
        (
            "mirrorless camera",
            "sony a7 iv",
            "vlogging camera",
            "gopro hero 12",
        ),
    ),
    (
        "monitors",
        "Monitors",
        0.8,
        (
            "4k monitor",
            "gaming monitor 1440p",
            "ultrawide monitor",
            "usb-c monitor",
        ),
    ),
)
CATEGORIES: tuple[Category, ...] = tuple(
    Category(f"cat-{slug}", slug, name, weight, queries)
    for slug, name, weight, queries in _CATEGORY_ROWS
)
_CATEGORY_BY_SLUG = {c.slug: c for c in CATEGORIES}

# (category slug, brand, model, list price, platforms, coupon code or "")
_PRODUCT_ROWS: tuple[tuple[str, str, str, float, tuple[str, ...], str], ...] = (
    ("headphones", "Sony", "WH-1000XM5", 399.99, ("Amazon", "Best Buy", "Walmart"), ""),
    ("headphones", "Bose", "QuietComfort Ultra", 429.00, ("Amazon", "Best Buy", "Target"), ""),
    ("headphones", "Apple", "AirPods Pro (2nd gen)", 249.00, ("Amazon", "Walmart", "Target"), ""),
    ("headphones", "Sennheiser", "Momentum 4 Wireless", 379.95, ("Amazon", "eBay"), "SENN15"),
    ("headphones", "Bose", "QuietComfort Earbuds II", 279.00, ("Amazon", "Best Buy"), ""),
    ("headphones", "Jabra", "Elite 10", 249.99, ("Amazon", "Brand store"), "JABRA20"),
    ("headphones", "Anker", "Soundcore Space Q45", 149.99, ("Amazon", "Walmart"), "SPACEQ45"),
    ("headphones", "Beats", "Studio Pro", 349.99, ("Amazon", "Target", "eBay"), ""),
    ("headphones", "JBL", "Tune 770NC", 129.95, ("Amazon", "Walmart", "eBay"), ""),
    ("laptops", "Apple", "MacBook Air 13 (M3)", 1099.00, ("Amazon", "Best Buy", "B&H Photo"), ""),
    ("laptops", "Dell", "XPS 13", 999.99, ("Amazon", "Brand store", "Best Buy"), "XPSSAVE"),
    ("laptops", "Lenovo", "ThinkPad X1 Carbon Gen 12", 1649.00, ("Brand store", "Amazon"), ""),
    ("laptops", "ASUS", "Zenbook 14 OLED", 899.99, ("Amazon", "Best Buy"), ""),
    ("laptops", "HP", "Spectre x360 14", 1499.99, ("Brand store", "Best Buy", "Amazon"), ""),
    ("laptops", "Acer", "Swift Go 14", 749.99, ("Amazon", "Walmart"), ""),
    ("laptops", "Framework", "Laptop 13", 1049.00, ("Brand store",), ""),
    ("laptops", "Microsoft", "Surface Laptop 6", 1199.99, ("Amazon", "Best Buy", "Target"), ""),
    ("coffee-machines", "Breville", "Barista Express", 699.95, ("Amazon", "Target", "eBay"), ""),
    ("coffee-machines", "De'Longhi", "Magnifica Evo", 799.95, ("Amazon", "Walmart"), "EVO50"),
    ("coffee-machines", "Nespresso", "Vertuo Next", 169.00, ("Amazon", "Target", "Walmart"), ""),
    ("coffee-machines", "Gaggia", "Classic Pro", 449.00, ("Amazon", "eBay"), ""),
    ("coffee-machines", "Keurig", "K-Elite", 189.99, ("Amazon", "Walmart", "Target"), ""),
    ("coffee-machines", "Philips", "3200 LatteGo", 799.99, ("Amazon", "Best Buy"), ""),
    ("coffee-machines", "Moccamaster", "KBGV Select", 359.00, ("Amazon", "Brand store"), ""),
    ("robot-vacuums", "Roborock", "S8 Pro Ultra", 1599.99, ("Amazon", "Best Buy"), "ROBO100"),
    ("robot-vacuums", "iRobot", "Roomba j7+", 799.99, ("Amazon", "Target", "Walmart"), ""),
    ("robot-vacuums", "Ecovacs", "Deebot T30 Omni", 1099.99, ("Amazon", "Brand store"), ""),
    ("robot-vacuums", "Eufy", "RoboVac 11S", 199.99, ("Amazon", "Walmart", "eBay"), ""),
    ("robot-vacuums", "Shark", "AI Ultra", 599.99, ("Amazon", "Target"), ""),
    ("robot-vacuums", "Dreame", "L20 Ultra", 1299.99, ("Amazon", "eBay"), "DREAME80"),
    ("robot-vacuums", "Roborock", "Q5 Max+", 519.99, ("Amazon", "Walmart"), ""),
    ("smartwatches", "Apple", "Watch Series 9", 399.00, ("Amazon", "Best Buy", "Target"), ""),
    ("smartwatches", "Samsung", "Galaxy Watch 6", 299.99, ("Amazon", "Brand store"), ""),
    ("smartwatches", "Garmin", "Forerunner 265", 449.99, ("Amazon", "Walmart", "eBay"), ""),
    ("smartwatches", "Google", "Pixel Watch 2", 349.99, ("Amazon", "Best Buy", "Target"), ""),
    ("smartwatches", "Fitbit", "Charge 6", 159.95, ("Amazon", "Walmart", "Target"), ""),
    ("smartwatches", "Garmin", "Venu 3", 449.99, ("Amazon", "Best Buy"), ""),
    ("smartwatches", "Amazfit", "GTR 4", 199.99, ("Amazon", "eBay"), "AMAZFIT15"),
    ("running-shoes", "Nike", "Pegasus 41", 140.00, ("Brand store", "Amazon"), ""),
    ("running-shoes", "Brooks", "Ghost 16", 140.00, ("Amazon", "Brand store"), "RUN10"),
    ("running-shoes", "Hoka", "Clifton 9", 145.00, ("Amazon", "Brand store"), ""),
    ("running-shoes", "ASICS", "Gel-Nimbus 26", 159.95, ("Amazon", "eBay"), ""),
    ("running-shoes", "Saucony", "Endorphin Speed 4", 170.00, ("Amazon", "Brand store"), ""),
    ("running-shoes", "New Balance", "Fresh Foam X 1080v13", 164.99, ("Amazon", "eBay"), ""),
    ("running-shoes", "Adidas", "Adizero Boston 12", 160.00, ("Brand store", "Amazon"), ""),
    ("cameras", "Sony", "Alpha a7 IV", 2499.99, ("B&H Photo", "Amazon", "Best Buy"), ""),
    ("cameras", "Fujifilm", "X-T5", 1699.95, ("B&H Photo", "Amazon"), ""),
    ("cameras", "Canon", "EOS R8", 1499.00, ("B&H Photo", "Amazon", "Best Buy"), ""),
    ("cameras", "Nikon", "Z6 III", 2499.95, ("B&H Photo", "Amazon"), ""),
    ("cameras", "GoPro", "HERO12 Black", 399.99, ("Amazon", "Best Buy", "Walmart"), "GOPRO30"),
    ("cameras", "DJI", "Osmo Pocket 3", 519.00, ("Amazon", "B&H Photo"), ""),
    ("cameras", "Sony", "ZV-E10", 699.99, ("Amazon", "B&H Photo", "eBay"), ""),
    ("cameras", "Canon", "PowerShot G7 X Mark III", 749.99, ("B&H Photo", "Amazon"), ""),
    ("monitors", "LG", "27GP850-B UltraGear", 449.99, ("Amazon", "Best Buy"), ""),
    ("monitors", "Dell", "UltraSharp U2723QE", 579.99, ("Amazon", "Brand store"), "DELL4K"),
    ("monitors", "Samsung", "Odyssey G7", 699.99, ("Amazon", "Best Buy", "Walmart"), ""),
    ("monitors", "ASUS", "ProArt PA278CV", 329.00, ("Amazon", "B&H Photo"), ""),
    ("monitors", "BenQ", "PD2705U", 499.99, ("Amazon", "B&H Photo"), ""),
    ("monitors", "Gigabyte", "M27Q", 299.99, ("Amazon", "eBay"), ""),
    ("monitors", "LG", "34WP65C-B", 399.99, ("Amazon", "Walmart", "eBay"), ""),
)


def _slugify(text: str) -> str:
    out = "".join(ch if ch.isalnum() else "-" for ch in text.lower())
    return "-".join(part for part in out.split("-") if part)


def _build_catalogue() -> tuple[Product, ...]:
    products: list[Product] = []
    rank_in_category: dict[str, int] = {}
    for number, (cat_slug, brand, model, price, platforms, coupon) in enumerate(_PRODUCT_ROWS):
        category = _CATEGORY_BY_SLUG[cat_slug]
        rank = rank_in_category.get(cat_slug, 0)
        rank_in_category[cat_slug] = rank + 1
        name = f"{brand} {model}"
        # Merchants differ by a few percent around the list price; fixed per product.
        offers = tuple(
            Offer(platform, round(price * (1 - 0.015 * ((number + i) % 5)), 2))
            for i, platform in enumerate(platforms)
        )
        products.append(
            Product(
                id=f"prd-{1001 + number}",
                slug=_slugify(name),
                name=name,
                brand=brand,
                category=category,
                price=price,
                offers=offers,
                weight=category.weight / (rank + 1) ** 0.8,
                coupon=coupon,
            )
        )
    return tuple(products)


PRODUCTS: tuple[Product, ...] = _build_catalogue()
_PRODUCT_WEIGHTS = tuple(p.weight for p in PRODUCTS)
_PRODUCTS_BY_CATEGORY: dict[str, tuple[Product, ...]] = {
    c.id: tuple(p for p in PRODUCTS if p.category is c) for c in CATEGORIES
}

#: Searches the catalogue cannot answer (they end in ``zero_results``).
_UNANSWERED_QUERIES = (
    "air fryer",
    "standing desk",
    "lawn mower",
    "kindle paperwhite",
    "ps5 controller",
    "robott vacum",
    "headphnes",
    "expresso machne",
    "office chair",
    "tv 65 inch",
)


# -- devices -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Device:
    """A browser on a device, as its user agent shows it and the tracker reports it."""

    device_type: str
    os: str
    browser: str
    browser_version: str
    user_agent: str
    #: Possible (screen resolution, viewport) pairs.
    screens: tuple[tuple[str, str], ...]
    weight: float
    #: Whether the device has a mouse (hover events only happen on those).
    pointer: bool


_WIN_SCREENS = (
    ("1920x1080", "1920x937"),
    ("1366x768", "1366x657"),
    ("1536x864", "1536x730"),
    ("2560x1440", "2560x1297"),
    ("1280x720", "1280x609"),
)
_MAC_SCREENS = (
    ("1440x900", "1440x789"),
    ("1512x982", "1512x859"),
    ("1728x1117", "1728x1000"),
    ("2560x1440", "2560x1305"),
)
_LINUX_SCREENS = (("1920x1080", "1920x966"), ("2560x1440", "2560x1336"))
_CROS_SCREENS = (("1366x768", "1366x681"), ("1536x864", "1536x777"))
_IPHONE_SCREENS = (
    ("390x844", "390x664"),
    ("393x852", "393x659"),
    ("430x932", "430x739"),
    ("375x667", "375x548"),
)
_ANDROID_SCREENS = (
    ("412x915", "412x776"),
    ("360x800", "360x668"),
    ("384x854", "384x718"),
    ("393x873", "393x751"),
)
_IPAD_SCREENS = (("820x1180", "820x1106"), ("810x1080", "810x1006"), ("1024x1366", "1024x1292"))
_ANDROID_TABLET_SCREENS = (("800x1280", "800x1205"), ("1280x800", "1280x725"))

_WIN_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36"
)
_MAC_CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36"
)
_ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Mobile Safari/537.36"
)


def _device(
    device_type: str,
    os: str,
    browser: str,
    version: str,
    ua: str,
    screens: tuple[tuple[str, str], ...],
    weight: float,
) -> Device:
    return Device(device_type, os, browser, version, ua, screens, weight, device_type == "desktop")


#: Browser/device mix of a consumer review site (about 55% mobile, 38% desktop, 7% tablet).
DEVICES: tuple[Device, ...] = (
    _device("desktop", "Windows", "Chrome", "124.0", _WIN_CHROME.format(v=124), _WIN_SCREENS, 11),
    _device("desktop", "Windows", "Chrome", "123.0", _WIN_CHROME.format(v=123), _WIN_SCREENS, 5),
    _device(
        "desktop",
        "Windows",
        "Edge",
        "124.0",
        _WIN_CHROME.format(v=124) + " Edg/124.0.2478.80",
        _WIN_SCREENS,
        5,
    ),
    _device(
        "desktop",
        "Windows",
        "Firefox",
        "125.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
        _WIN_SCREENS,
        3,
    ),
    _device("desktop", "macOS", "Chrome", "124.0", _MAC_CHROME.format(v=124), _MAC_SCREENS, 5),
    _device(
        "desktop",
        "macOS",
        "Safari",
        "17.4.1",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
        _MAC_SCREENS,
        5,
    ),
    _device(
        "desktop",
        "Linux",
        "Firefox",
        "125.0",
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        _LINUX_SCREENS,
        1.5,
    ),
    _device(
        "desktop",
        "Chrome OS",
        "Chrome",
        "124.0",
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        _CROS_SCREENS,
        1.5,
    ),
    _device(
        "mobile",
        "iOS",
        "Mobile Safari",
        "17.4.1",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
        _IPHONE_SCREENS,
        17,
    ),
    _device(
        "mobile",
        "iOS",
        "Mobile Safari",
        "16.6",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_7_7 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
        _IPHONE_SCREENS,
        5,
    ),
    _device(
        "mobile",
        "iOS",
        "Chrome Mobile iOS",
        "124.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
        _IPHONE_SCREENS,
        4,
    ),
    _device(
        "mobile",
        "Android",
        "Chrome Mobile",
        "124.0",
        _ANDROID_CHROME.format(v=124),
        _ANDROID_SCREENS,
        14,
    ),
    _device(
        "mobile",
        "Android",
        "Chrome Mobile",
        "123.0",
        _ANDROID_CHROME.format(v=123),
        _ANDROID_SCREENS,
        5,
    ),
    _device(
        "mobile",
        "Android",
        "Samsung Internet",
        "24.0",
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        _ANDROID_SCREENS,
        6,
    ),
    _device(
        "mobile",
        "Android",
        "Firefox Mobile",
        "125.0",
        "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
        _ANDROID_SCREENS,
        1,
    ),
    _device(
        "tablet",
        "iOS",
        "Mobile Safari",
        "17.4.1",
        "Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
        _IPAD_SCREENS,
        5,
    ),
    _device(
        "tablet",
        "Android",
        "Chrome",
        "124.0",
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        _ANDROID_TABLET_SCREENS,
        2,
    ),
)
_DEVICE_WEIGHTS = tuple(d.weight for d in DEVICES)


# -- where visits come from --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """How a session arrives: the referrer the browser sends and the UTM tags on the URL."""

    name: str
    #: What the browser sends as document.referrer on the landing page ("" = none).
    referrer: str
    weight: float
    #: Share of landings on (home, category, product, search, deals).
    landings: tuple[float, float, float, float, float]
    utm: tuple[tuple[str, str], ...] = ()
    #: Campaign names to pick from (utm_campaign), with term/content choices.
    campaigns: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    contents: tuple[str, ...] = ()
    #: Multiplier on the chance to click an affiliate link.
    intent: float = 1.0


SOURCES: tuple[Source, ...] = (
    Source("direct", "", 22, (0.70, 0.05, 0.15, 0.0, 0.10)),
    Source("google", "https://www.google.com/", 30, (0.08, 0.35, 0.55, 0.0, 0.02), intent=1.2),
    Source("bing", "https://www.bing.com/", 5, (0.10, 0.35, 0.55, 0.0, 0.0), intent=1.2),
    Source("duckduckgo", "https://duckduckgo.com/", 3, (0.10, 0.30, 0.60, 0.0, 0.0)),
    Source("facebook", "https://l.facebook.com/", 6, (0.05, 0.10, 0.55, 0.0, 0.30), intent=0.7),
    Source("reddit", "https://www.reddit.com/", 6, (0.05, 0.15, 0.80, 0.0, 0.0), intent=1.1),
    Source("youtube", "https://www.youtube.com/", 3, (0.10, 0.20, 0.70, 0.0, 0.0)),
    Source(
        "newsletter",
        "",
        8,
        (0.05, 0.10, 0.40, 0.0, 0.45),
        utm=(("utm_source", "newsletter"), ("utm_medium", "email")),
        campaigns=("weekly-deals", "spring-sale", "new-reviews"),
        contents=("hero-button", "product-grid", "footer-link"),
        intent=1.5,
    ),
    Source(
        "google-ads",
        "https://www.google.com/",
        7,
        (0.0, 0.60, 0.40, 0.0, 0.0),
        utm=(("utm_source", "google"), ("utm_medium", "cpc")),
        campaigns=("brand", "headphones-generic", "coffee-generic", "laptops-generic"),
        terms=(
            "best noise cancelling headphones",
            "espresso machine review",
            "best laptop 2024",
            "picked reviews",
        ),
        intent=1.3,
    ),
    Source(
        "facebook-ads",
        "https://l.facebook.com/",
        5,
        (0.0, 0.20, 0.50, 0.0, 0.30),
        utm=(("utm_source", "facebook"), ("utm_medium", "paid_social")),
        campaigns=("spring-sale", "retargeting"),
        contents=("carousel-a", "video-b"),
        intent=0.8,
    ),
    Source("twitter", "https://t.co/", 2, (0.10, 0.10, 0.80, 0.0, 0.0), intent=0.7),
)
_SOURCE_WEIGHTS = tuple(s.weight for s in SOURCES)
_RETURNING_SOURCES = {"direct": 3.0, "newsletter": 2.0, "google": 0.7}

#: Relative traffic by weekday (Monday first) and by hour of day in the site's time zone.
WEEKDAY_WEIGHTS = (1.10, 1.12, 1.10, 1.05, 0.95, 0.72, 0.80)
HOUR_WEIGHTS = (
    0.30,
    0.18,
    0.12,
    0.09,
    0.09,
    0.13,
    0.25,
    0.45,
    0.62,
    0.72,
    0.78,
    0.84,
    0.95,
    0.90,
    0.84,
    0.84,
    0.90,
    1.00,
    1.18,
    1.38,
    1.50,
    1.40,
    1.05,
    0.60,
)


# -- what the generator yields -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoRequest:
    """One collect request: events of one session, in time order, and the browser's UA."""

    events: list[dict[str, Any]]
    user_agent: str
    #: The visitor whose events these are; requests of one visitor are sent in order.
    visitor_id: str = ""


@dataclass(slots=True)
class DemoSummary:
    requests: int = 0
    events_sent: int = 0
    queued: int = 0
    rejected: int = 0
    seconds: float = 0.0
    #: The first reasons the collector gave for rejecting events (a few at most).
    errors: list[str] = field(default_factory=list)


class DemoError(RuntimeError):
    """The collector could not be reached or refused the demo traffic."""


@dataclass(frozen=True, slots=True)
class _Visitor:
    id: str
    device: Device
    screen: str
    viewport: str


@dataclass(frozen=True, slots=True)
class _SessionPlan:
    visitor: _Visitor
    index: int
    start_ms: int
    source: Source
    returning: bool


@dataclass(frozen=True, slots=True)
class _Page:
    kind: str  # home | category | product | search | deals | compare
    path: str
    query: str
    title: str
    product: Product | None = None
    category: Category | None = None
    search: str = ""
    #: How the visitor reached a product page (product_view ``source``).
    via: str = "direct"
    compared: tuple[Product, ...] = ()


# -- generation --------------------------------------------------------------------------


def generate_traffic(
    *,
    days: int,
    visitors: int,
    seed: int = 7,
    now_ms: int | None = None,
    site_domain: str = "demo.sightline.local",
) -> Iterator[DemoRequest]:
    """Yield the collect requests of ``visitors`` visitors over the ``days`` before now.

    Requests hold at most ``REQUEST_EVENTS`` events of one session, in time order; a
    visitor's requests are consecutive. Every timestamp lies in ``(now - days, now]``;
    sessions still running at ``now`` stop there (they have no session_end yet).
    """
    if days < 1 or visitors < 0:
        raise ValueError("days must be at least 1 and visitors at least 0")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    origin = f"https://{site_domain}"
    for number in range(visitors):
        for plan in _plan_visitor(seed, number, days, now):
            rng = random.Random(f"{seed}:visitor:{number}:session:{plan.index}")
            events = _SessionWriter(rng, plan, origin, now).write()
            for start in range(0, len(events), REQUEST_EVENTS):
                yield DemoRequest(
                    events[start : start + REQUEST_EVENTS],
                    plan.visitor.device.user_agent,
                    plan.visitor.id,
                )


def estimate_requests(days: int, visitors: int, *, seed: int = 7) -> int:
    """About how many requests ``generate_traffic`` yields (for a progress bar's total).

    Sessions are planned exactly (that part is cheap); a session takes one request in
    most cases and more when it is long, which this estimates with the average.
    """
    now = int(time.time() * 1000)
    sessions = sum(
        sum(1 for _ in _plan_visitor(seed, number, days, now)) for number in range(visitors)
    )
    return max(1 if visitors else 0, round(sessions * 1.18))


def _new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _plan_visitor(seed: int, number: int, days: int, now: int) -> Iterator[_SessionPlan]:
    """The sessions of one visitor: the first at a seasonal time, returns days apart."""
    rng = random.Random(f"{seed}:visitor:{number}")
    device = rng.choices(DEVICES, _DEVICE_WEIGHTS)[0]
    screen, viewport = rng.choice(device.screens)
    visitor = _Visitor(_new_id(rng), device, screen, viewport)
    window_start = now - days * _DAY_MS
    first_day = window_start // _DAY_MS
    # A third of the visitors never come back; the others return every few days, a few
    # loyal readers almost daily.
    kind = rng.random()
    mean_gap_days = 0.0 if kind < 0.35 else (0.9 if kind > 0.88 else rng.uniform(1.5, 4.5))
    first_source = rng.choices(SOURCES, _SOURCE_WEIGHTS)[0]
    start = _seasonal_time(rng, lambda: rng.randint(first_day, now // _DAY_MS), now, window_start)
    index = 0
    while start is not None:
        source = first_source if index == 0 else _returning_source(rng)
        yield _SessionPlan(visitor, index, start, source, returning=index > 0)
        if not mean_gap_days:
            return
        index += 1
        previous = start

        def next_day(previous: int = previous) -> int:
            return (previous + int(rng.expovariate(1 / mean_gap_days) * _DAY_MS)) // _DAY_MS

        start = _seasonal_time(rng, next_day, now, previous + _MAX_SESSION_MS + _SESSION_GAP_MS)


def _returning_source(rng: random.Random) -> Source:
    weights = [s.weight * _RETURNING_SOURCES.get(s.name, 0.6) for s in SOURCES]
    return rng.choices(SOURCES, weights)[0]


def _seasonal_time(
    rng: random.Random, draw_day: Callable[[], int], now: int, not_before: int
) -> int | None:
    """A moment in ``(not_before, now]`` on a day from ``draw_day`` (days since the epoch).

    Days are kept in proportion to their weekday's weight and the hour follows the
    hour-of-day curve (rejection sampling). None when the day drawn is after today.
    """
    max_weekday = max(WEEKDAY_WEIGHTS)
    last_day = now // _DAY_MS
    for _ in range(100):
        day = draw_day()
        if day > last_day:
            return None
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
        if rng.random() * max_weekday > WEEKDAY_WEIGHTS[weekday]:
            continue
        hour = rng.choices(range(24), HOUR_WEIGHTS)[0]
        moment = day * _DAY_MS + hour * _HOUR_MS + rng.randrange(_HOUR_MS)
        if not_before < moment <= now - 5_000:
            return moment
    return None


class _SessionWriter:
    """Writes one session's events as a tracker on the page would send them."""

    def __init__(self, rng: random.Random, plan: _SessionPlan, origin: str, now: int) -> None:
        self.rng = rng
        self.plan = plan
        self.origin = origin
        self.now = now
        self.device = plan.visitor.device
        self.session_id = _new_id(rng)
        self.events: list[dict[str, Any]] = []
        self.clock = plan.start_ms
        self.context: dict[str, Any] = {}
        self.utm = self._choose_utm()
        self.page_count = 0
        self.max_depth = 0
        # event ids as the tracker makes them: the page load's UUID and a count
        self.page_id = ""
        self.page_events = 0

    # -- the session as a walk over pages ------------------------------------------------

    def write(self) -> list[dict[str, Any]]:
        page = self._landing_page()
        referrer = self.plan.source.referrer
        landing_query = _utm_query(self.utm)
        self._enter(page, referrer, landing_query, first=True)
        for _ in range(_MAX_PAGES):
            following = self._browse(page)
            if following is None or self.clock - self.plan.start_ms > _MAX_SESSION_MS - _HOUR_MS:
                break
            referrer = self._url(page)
            page = following
            self._enter(page, referrer, "", first=False)
        if self.rng.random() < 0.8:
            self._emit("session_end", {"pageCount": self.page_count}, after=(50, 400))
        return [e for e in self.events if e["timestamp"] <= self.now]

    def _landing_page(self) -> _Page:
        kinds = ("home", "category", "product", "search", "deals")
        kind = self.rng.choices(kinds, self.plan.source.landings)[0]
        if self.utm.get("utmCampaign", "").endswith("-generic"):
            slug = self.utm["utmCampaign"].removesuffix("-generic")
            category = _CATEGORY_BY_SLUG.get(
                {"coffee": "coffee-machines"}.get(slug, slug), CATEGORIES[0]
            )
            if kind == "product":
                return self._product_page(self._pick_product(category), "direct")
            return self._category_page(category)
        if kind == "home":
            return _home_page()
        if kind == "category":
            return self._category_page(self._pick_category())
        if kind == "deals":
            return _deals_page()
        if kind == "search":
            return self._search_page()
        return self._product_page(self._pick_product(), "direct")

    def _browse(self, page: _Page) -> _Page | None:
        """Emit what happens on ``page``; return the next page, or None when the visit ends."""
        rng = self.rng
        dwell = self._dwell(page.kind)
        timeline: list[tuple[int, str, dict[str, Any]]] = []
        self._plan_scroll(page, dwell, timeline)
        self._plan_heartbeats(dwell, timeline)
        self._plan_extras(page, dwell, timeline)
        following: _Page | None = None
        leaving: tuple[str, dict[str, Any]] | None = None

        if page.kind == "home":
            self._plan_hovers(dwell, timeline, rng.randint(0, 3))
            following = self._choose(
                (0.52, lambda: self._category_page(self._pick_category())),
                (0.14, self._search_page),
                (0.14, lambda: self._product_page(self._pick_product(), "recommendation")),
                (0.06, _deals_page),
            )
        elif page.kind == "deals":
            self._plan_hovers(dwell, timeline, rng.randint(0, 4))
            if rng.random() < 0.10:
                leaving = self._affiliate_click(self._pick_product(), "inline")
            else:
                following = self._choose(
                    (0.55, lambda: self._product_page(self._pick_product(), "recommendation")),
                    (0.15, lambda: self._category_page(self._pick_category())),
                )
        elif page.kind == "category":
            following, leaving = self._browse_category(page, dwell, timeline)
        elif page.kind == "search":
            following = self._browse_search(page, dwell, timeline)
        elif page.kind == "compare":
            following = self._choose(
                (0.55, lambda: self._product_page(rng.choice(page.compared), "related")),
                (0.10, lambda: self._category_page(page.category or self._pick_category())),
            )
        elif page.kind == "product":
            following, leaving = self._browse_product(page, dwell, timeline)

        self._play(timeline, dwell)
        if leaving is not None:
            self._emit(leaving[0], leaving[1], after=(300, 2500))
            # An affiliate link opens the merchant in a new tab; some come back to browse.
            if rng.random() < 0.7:
                following = None
            else:
                self.clock += rng.randint(30_000, 300_000)
                following = self._choose(
                    (0.6, lambda: self._category_page(self._pick_category())),
                    (0.4, lambda: self._product_page(self._pick_product(), "recommendation")),
                )
        elif following is not None and following.kind == "product":
            assert following.product is not None
            self._emit(
                "product_click",
                {
                    "productId": following.product.id,
                    "productName": following.product.name,
                    "listName": page.kind,
                },
                after=(200, 1500),
            )
        self._leave(page, dwell)
        return following

    def _browse_category(
        self, page: _Page, dwell: int, timeline: list[tuple[int, str, dict[str, Any]]]
    ) -> tuple[_Page | None, tuple[str, dict[str, Any]] | None]:
        rng = self.rng
        assert page.category is not None
        category = page.category
        self._plan_hovers(dwell, timeline, rng.randint(1, 5), category)
        if rng.random() < 0.12:
            brand = _slugify(rng.choice(_PRODUCTS_BY_CATEGORY[category.id]).brand)
            facet, value = rng.choice(
                (
                    ("price", "under-200"),
                    ("price", "200-500"),
                    ("price", "500-plus"),
                    ("brand", brand),
                    ("rating", "4-plus"),
                )
            )
            timeline.append(
                (
                    rng.randrange(dwell),
                    "search_filter",
                    {"filter": facet, "value": value, "categoryId": category.id},
                )
            )
        if rng.random() < 0.06:
            timeline.append(
                (
                    rng.randrange(dwell),
                    "search_sort",
                    {"sort": rng.choice(("price_asc", "rating", "newest"))},
                )
            )
        # "Best of" lists carry their own affiliate buttons.
        if rng.random() < 0.05 * self.plan.source.intent:
            return None, self._affiliate_click(self._pick_product(category), "inline")
        following = self._choose(
            (0.64, lambda: self._product_page(self._pick_product(category), "category")),
            (0.05, lambda: self._compare_page(category, dwell, timeline)),
            (0.05, self._search_page),
            (0.06, lambda: self._category_page(self._pick_category())),
        )
        return following, None

    def _browse_search(
        self, page: _Page, dwell: int, timeline: list[tuple[int, str, dict[str, Any]]]
    ) -> _Page | None:
        rng = self.rng
        results = _search(page.search)
        timeline.append(
            (
                rng.randint(5, 80),
                "search_query",
                {"query": page.search, "resultsCount": len(results)},
            )
        )
        if not results:
            timeline.append((rng.randint(90, 150), "zero_results", {"query": page.search}))
            return self._choose((0.45, self._search_page), (0.15, _home_page))
        if rng.random() < 0.2:
            timeline.append(
                (
                    rng.randrange(dwell),
                    "search_filter",
                    {
                        "filter": "price",
                        "value": rng.choice(("under-200", "200-500")),
                        "query": page.search,
                    },
                )
            )
        return self._choose(
            (0.62, lambda: self._product_page(rng.choice(results), "search")),
            (0.08, self._search_page),
        )

    def _browse_product(
        self, page: _Page, dwell: int, timeline: list[tuple[int, str, dict[str, Any]]]
    ) -> tuple[_Page | None, tuple[str, dict[str, Any]] | None]:
        rng = self.rng
        product = page.product
        assert product is not None
        intent = self.plan.source.intent * (0.8 if self.device.device_type == "mobile" else 1.0)
        if self.plan.returning:
            intent *= 1.3
        if rng.random() < 0.04:
            timeline.append(
                (
                    rng.randrange(dwell),
                    "product_wishlist",
                    {"productId": product.id, "productName": product.name, "action": "add"},
                )
            )
        if rng.random() < 0.015:
            timeline.append(
                (
                    rng.randrange(dwell),
                    "shared_product",
                    {
                        "productId": product.id,
                        "channel": rng.choice(("copy_link", "whatsapp", "email")),
                    },
                )
            )
        coupon_copied = False
        if product.coupon and rng.random() < 0.18:
            offer = product.offers[0]
            timeline.append(
                (
                    rng.randrange(dwell),
                    "copied_coupon",
                    {
                        "productId": product.id,
                        "couponCode": product.coupon,
                        "platform": offer.platform,
                    },
                )
            )
            coupon_copied = True
        chance = 0.17 * intent * (2.2 if coupon_copied else 1.0)
        if rng.random() < min(chance, 0.8):
            position = rng.choice(
                ("hero", "hero", "sticky")
                if self.device.device_type == "mobile"
                else ("hero", "hero", "sidebar", "inline")
            )
            offer_index = 0 if rng.random() < 0.7 else rng.randrange(len(product.offers))
            if self.device.pointer:
                timeline.append(
                    (
                        dwell - rng.randint(300, 2000),
                        "affiliate_hover",
                        {"productId": product.id, "platform": product.offers[offer_index].platform},
                    )
                )
            return None, self._affiliate_click(product, position, offer_index)
        following = self._choose(
            (0.28, lambda: self._product_page(self._related(product), "related")),
            (0.16, lambda: self._category_page(product.category)),
            (0.05, self._search_page),
            (0.04, lambda: self._compare_page(product.category, dwell, timeline)),
        )
        return following, None

    # -- pages ---------------------------------------------------------------------------

    def _category_page(self, category: Category) -> _Page:
        return _Page(
            "category",
            f"/category/{category.slug}",
            "",
            f"The best {category.name.lower()}, tested - {SITE_NAME}",
            category=category,
        )

    def _product_page(self, product: Product, via: str) -> _Page:
        return _Page(
            "product",
            f"/product/{product.slug}",
            "",
            f"{product.name} review - {SITE_NAME}",
            product=product,
            category=product.category,
            via=via,
        )

    def _search_page(self) -> _Page:
        rng = self.rng
        if rng.random() < 0.15:
            query = rng.choice(_UNANSWERED_QUERIES)
        else:
            query = rng.choice(self._pick_category().queries)
        return _Page(
            "search",
            "/search",
            "q=" + quote_plus(query),
            f"Search results for \u201c{query}\u201d - {SITE_NAME}",
            search=query,
        )

    def _compare_page(
        self, category: Category, dwell: int, timeline: list[tuple[int, str, dict[str, Any]]]
    ) -> _Page:
        rng = self.rng
        picks = tuple(rng.sample(_PRODUCTS_BY_CATEGORY[category.id], rng.choice((2, 2, 3))))
        timeline.append(
            (
                dwell - rng.randint(200, 1500),
                "product_compare",
                {"productIds": [p.id for p in picks], "categoryId": category.id},
            )
        )
        return _Page(
            "compare",
            "/compare",
            "ids=" + ",".join(p.id for p in picks),
            f"Compare {category.name.lower()} - {SITE_NAME}",
            category=category,
            compared=picks,
        )

    def _related(self, product: Product) -> Product:
        siblings = [p for p in _PRODUCTS_BY_CATEGORY[product.category.id] if p is not product]
        return self.rng.choices(siblings, [p.weight for p in siblings])[0]

    def _pick_category(self) -> Category:
        return self.rng.choices(CATEGORIES, [c.weight for c in CATEGORIES])[0]

    def _pick_product(self, category: Category | None = None) -> Product:
        if category is None:
            return self.rng.choices(PRODUCTS, _PRODUCT_WEIGHTS)[0]
        choices = _PRODUCTS_BY_CATEGORY[category.id]
        return self.rng.choices(choices, [p.weight for p in choices])[0]

    def _choose(self, *options: tuple[float, Callable[[], _Page]]) -> _Page | None:
        """Pick one option by probability; what is left over is leaving the site."""
        roll = self.rng.random()
        for chance, make in options:
            if roll < chance:
                return make()
            roll -= chance
        return None

    # -- events --------------------------------------------------------------------------

    def _enter(self, page: _Page, referrer: str, extra_query: str, *, first: bool) -> None:
        rng = self.rng
        query = "&".join(q for q in (page.query, extra_query) if q)
        url = self.origin + page.path + (f"?{query}" if query else "")
        self.context = {
            "pageUrl": url,
            "pagePath": page.path,
            "pageTitle": page.title,
            "referrer": referrer,
        }
        self.page_count += 1
        self.page_id, self.page_events = _new_id(rng), 0
        if first:
            self._emit("session_start", {}, after=(0, 0))
        mobile = self.device.device_type != "desktop"
        ttfb = rng.lognormvariate(math.log(180 if mobile else 110), 0.5)
        fcp = ttfb + rng.lognormvariate(math.log(700 if mobile else 420), 0.4)
        lcp = fcp + rng.lognormvariate(math.log(600 if mobile else 350), 0.6)
        load = lcp + rng.lognormvariate(math.log(500), 0.5)
        metrics = {
            "loadTime": round(load),
            "ttfb": round(ttfb),
            "fcp": round(fcp),
            "lcp": round(lcp),
            "fid": round(rng.lognormvariate(math.log(12), 0.8), 1),
            "cls": round(rng.expovariate(1 / 0.05), 3),
        }
        self._emit("page_view", metrics, after=(20, 400))
        if load > 4000:
            self._emit("slow_page", {"loadTime": round(load), "threshold": 4000}, after=(1, 30))
        product = page.product
        if product is not None:
            self._emit(
                "product_view",
                {
                    "productId": product.id,
                    "productName": product.name,
                    "productSlug": product.slug,
                    "productPrice": product.price,
                    "categoryId": product.category.id,
                    "categoryName": product.category.name,
                    "source": page.via,
                },
                after=(5, 60),
            )
        error_rate = 0.04 if self.device.browser == "Samsung Internet" else 0.012
        if rng.random() < error_rate:
            self._emit("js_error", _js_error(rng, self.device, self.origin), after=(100, 3000))
        if rng.random() < 0.004:
            self._emit(
                "api_error",
                {"endpoint": "/api/prices", "status": 502, "method": "GET"},
                after=(200, 2000),
            )

    def _leave(self, page: _Page, dwell: int) -> None:
        self._emit(
            "page_exit", {"timeOnPage": dwell, "maxScrollDepth": self.max_depth}, after=(100, 900)
        )

    def _plan_scroll(
        self, page: _Page, dwell: int, timeline: list[tuple[int, str, dict[str, Any]]]
    ) -> None:
        rng = self.rng
        viewport_height = int(self.plan.visitor.viewport.split("x")[1])
        content = {
            "home": 4.0,
            "category": 7.0,
            "product": 9.0,
            "search": 4.5,
            "deals": 6.0,
            "compare": 3.5,
        }[page.kind]
        content_height = int(viewport_height * content * rng.uniform(0.8, 1.2))
        reach = rng.random()
        # Read pages deeper than hubs; most product reviews are read past the middle.
        deep = 0.75 if page.kind == "product" else 0.55
        depth = 0 if reach < 0.12 else min(100, int(25 + rng.betavariate(2, 2 / deep) * 90))
        self.max_depth = depth
        milestones = [m for m in (25, 50, 75, 90, 100) if m <= depth]
        offsets = sorted(rng.randint(400, max(500, dwell - 200)) for _ in milestones)
        for milestone, offset in zip(milestones, offsets, strict=True):
            timeline.append(
                (
                    offset,
                    "scroll_depth",
                    {
                        "depth": milestone,
                        "maxDepth": milestone,
                        "pixelDepth": round(content_height * milestone / 100),
                        "contentHeight": content_height,
                    },
                )
            )

    def _plan_heartbeats(self, dwell: int, timeline: list[tuple[int, str, dict[str, Any]]]) -> None:
        for offset in range(_HEARTBEAT_MS, dwell, _HEARTBEAT_MS):
            timeline.append((offset, "heartbeat", {}))

    def _plan_hovers(
        self,
        dwell: int,
        timeline: list[tuple[int, str, dict[str, Any]]],
        count: int,
        category: Category | None = None,
    ) -> None:
        if not self.device.pointer:
            return
        for position in range(count):
            product = self._pick_product(category)
            timeline.append(
                (
                    self.rng.randrange(dwell),
                    "product_hover",
                    {"productId": product.id, "position": position + 1},
                )
            )

    def _plan_extras(
        self, page: _Page, dwell: int, timeline: list[tuple[int, str, dict[str, Any]]]
    ) -> None:
        """Interface clicks on reviews, the newsletter form at the page foot, idle tabs."""
        rng = self.rng
        if page.kind == "product":
            for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
                element, text = rng.choice(_REVIEW_CONTROLS)
                timeline.append((rng.randrange(dwell), "click", {"element": element, "text": text}))
        footer_seen = page.kind in ("home", "deals", "product") and self.max_depth >= 90
        if footer_seen and rng.random() < 0.08:
            begin = rng.randrange(dwell)
            timeline.append((begin, "form_start", {"form": "newsletter"}))
            done = "form_submit" if rng.random() < 0.55 else "form_abandon"
            timeline.append(
                (min(dwell, begin + rng.randint(4_000, 20_000)), done, {"form": "newsletter"})
            )
        if dwell > 150_000 and rng.random() < 0.5:
            begin = rng.randint(60_000, dwell - 60_000)
            timeline.append((begin, "idle_start", {}))
            timeline.append((rng.randint(begin + 30_000, dwell - 1_000), "idle_end", {}))

    def _play(self, timeline: list[tuple[int, str, dict[str, Any]]], dwell: int) -> None:
        start = self.clock
        for offset, event_type, properties in sorted(timeline, key=lambda item: item[0]):
            self._emit_at(max(start + offset, self.clock + 1), event_type, properties)
        self.clock = max(self.clock, start + dwell)

    def _affiliate_click(
        self, product: Product, position: str, offer_index: int = 0
    ) -> tuple[str, dict[str, Any]]:
        offer = product.offers[offer_index]
        rate, cta = PLATFORMS[offer.platform]
        properties: dict[str, Any] = {
            "productId": product.id,
            "productName": product.name,
            "linkId": f"{product.id}-{_slugify(offer.platform)}-{position}",
            "platform": offer.platform,
            "price": offer.price,
            "position": position,
            "ctaText": cta,
        }
        # The merchant reports a sale for some clicks: the commission is the revenue.
        if self.rng.random() < 0.09:
            properties["revenue"] = round(offer.price * rate, 2)
        return "affiliate_click", properties

    def _dwell(self, kind: str) -> int:
        median = {
            "home": 18,
            "category": 35,
            "product": 75,
            "search": 15,
            "deals": 40,
            "compare": 60,
        }[kind]
        seconds = self.rng.lognormvariate(math.log(median), 0.9)
        return int(min(max(seconds, 2.0), 900.0) * 1000)

    def _emit(self, event_type: str, properties: dict[str, Any], *, after: tuple[int, int]) -> None:
        self._emit_at(self.clock + max(1, self.rng.randint(*after)), event_type, properties)

    def _emit_at(self, moment: int, event_type: str, properties: dict[str, Any]) -> None:
        self.clock = moment
        visitor = self.plan.visitor
        self.page_events += 1
        event: dict[str, Any] = {
            "eventId": f"{self.page_id}.{self.page_events}",
            "eventType": event_type,
            "timestamp": moment,
            "sessionId": self.session_id,
            "visitorId": visitor.id,
            **self.context,
            "userAgent": self.device.user_agent,
            "screenResolution": visitor.screen,
            "viewport": visitor.viewport,
            "deviceType": self.device.device_type,
            "os": self.device.os,
            "browser": self.device.browser,
            "browserVersion": self.device.browser_version,
            **self.utm,
            "properties": properties,
        }
        self.events.append(event)

    def _choose_utm(self) -> dict[str, str]:
        source = self.plan.source
        if not source.utm:
            return {}
        tags = {_camel(key): value for key, value in source.utm}
        if source.campaigns:
            campaign = self.rng.choice(source.campaigns)
            if campaign == "weekly-deals":
                week = (self.plan.start_ms // (7 * _DAY_MS)) % 52 + 1
                campaign = f"weekly-deals-w{week:02d}"
            tags["utmCampaign"] = campaign
        if source.terms:
            tags["utmTerm"] = self.rng.choice(source.terms)
        if source.contents:
            tags["utmContent"] = self.rng.choice(source.contents)
        return tags

    def _url(self, page: _Page) -> str:
        return str(self.context.get("pageUrl", self.origin + page.path))


def _home_page() -> _Page:
    return _Page("home", "/", "", f"{SITE_NAME} - independent reviews of the gear worth buying")


def _deals_page() -> _Page:
    return _Page("deals", "/deals", "", f"Today's best deals - {SITE_NAME}")


def _search(query: str) -> list[Product]:
    """The catalogue's search: products whose name, brand or category share a word."""
    words = {w for w in query.lower().split() if len(w) > 2} - {"best", "under", "and", "for"}
    hits = []
    for product in PRODUCTS:
        haystack = f"{product.name} {product.category.name} {' '.join(product.category.queries)}"
        if words & set(haystack.lower().replace("(", " ").replace(")", " ").split()):
            hits.append(product)
    return hits


def _utm_query(utm: dict[str, str]) -> str:
    return "&".join(f"{_snake(key)}={quote_plus(value)}" for key, value in utm.items())


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _snake(name: str) -> str:
    return "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in name)


_REVIEW_CONTROLS = (
    ("gallery-next", "Next image"),
    ("specs-tab", "Specifications"),
    ("reviews-tab", "What owners say"),
    ("price-history", "Price history"),
    ("faq-toggle", "Is it worth it?"),
)

_JS_ERRORS = (
    ("TypeError", "Cannot read properties of undefined (reading 'price')", "/assets/app.js"),
    ("TypeError", "undefined is not an object (evaluating 'offer.price')", "/assets/app.js"),
    ("Error", "ResizeObserver loop completed with undelivered notifications.", ""),
    ("Error", "Script error.", ""),
    ("TypeError", "NetworkError when attempting to fetch resource.", "/assets/prices.js"),
    ("ReferenceError", "gtag is not defined", "/assets/consent.js"),
)


def _js_error(rng: random.Random, device: Device, origin: str) -> dict[str, Any]:
    kind, message, script = rng.choice(_JS_ERRORS)
    properties: dict[str, Any] = {"message": f"{kind}: {message}", "errorType": kind}
    if script:
        properties.update(
            source=origin + script, line=rng.randint(1, 4000), column=rng.randint(1, 200)
        )
    return properties


# -- sending -----------------------------------------------------------------------------


_RETRY_STATUSES = frozenset({429, 502, 503, 504})


def send_traffic(
    base_url: str,
    site_key: str,
    requests: Iterable[DemoRequest],
    *,
    headers: dict[str, str] | None = None,
    concurrency: int = 8,
    on_progress: Callable[[int], None] | None = None,
    max_attempts: int = 8,
    timeout: float = 30.0,
) -> DemoSummary:
    """POST every request to the collector's batch endpoint and count what it accepted.

    Up to ``concurrency`` visitors are sent at once; one visitor's requests go in order.
    429, 502-504 and connection errors are retried with exponential backoff (honouring
    Retry-After); retrying is safe because the collector drops duplicate eventIds.
    ``on_progress(n)`` is called with the number of requests just finished (from one
    thread at a time). Raises ``DemoError`` when retries run out or when the collector
    accepts nothing.
    """
    url = base_url.rstrip("/") + COLLECT_BATCH_PATH
    groups = (list(g) for _, g in itertools.groupby(requests, key=lambda r: r.visitor_id))
    summary = DemoSummary()
    lock = threading.Lock()
    failed = threading.Event()
    started = time.perf_counter()

    def work(client: httpx.Client) -> None:
        while not failed.is_set():
            with lock:
                group = next(groups, None)
            if group is None:
                return
            for request in group:
                try:
                    queued, rejected, error = _post(
                        client, url, site_key, request, headers or {}, max_attempts
                    )
                except DemoError:
                    failed.set()
                    raise
                with lock:
                    summary.requests += 1
                    summary.events_sent += len(request.events)
                    summary.queued += queued
                    summary.rejected += rejected
                    if error and len(summary.errors) < 5:
                        summary.errors.append(error)
                    if on_progress is not None:
                        on_progress(1)
                    if summary.requests >= 10 and summary.queued == 0:
                        failed.set()
                        raise DemoError(_rejected_message(summary))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with (
        httpx.Client(timeout=timeout, limits=limits) as client,
        ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="demo") as pool,
    ):
        futures = [pool.submit(work, client) for _ in range(concurrency)]
        for future in futures:
            future.result()
    summary.seconds = time.perf_counter() - started
    if summary.events_sent and not summary.queued:
        raise DemoError(_rejected_message(summary))
    return summary


def _rejected_message(summary: DemoSummary) -> str:
    reasons = "; ".join(summary.errors) or "no reason given"
    return (
        f"the collector accepted none of the {summary.events_sent} events sent so far "
        f"({summary.requests} requests): {reasons}"
    )


def _post(
    client: httpx.Client,
    url: str,
    site_key: str,
    request: DemoRequest,
    headers: dict[str, str],
    max_attempts: int,
) -> tuple[int, int, str]:
    """Send one request with retries; return (queued, rejected, first error message)."""
    count = len(request.events)
    last = ""
    for attempt in range(max_attempts):
        body = {
            "siteKey": site_key,
            "events": request.events,
            "metadata": {"sentAt": int(time.time() * 1000), "sdkVersion": "demo"},
        }
        try:
            response = client.post(
                url, json=body, headers={**headers, "User-Agent": request.user_agent}
            )
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
            time.sleep(_backoff(attempt, None))
            continue
        if response.status_code in _RETRY_STATUSES:
            last = f"HTTP {response.status_code}: {_error_message(response)}"
            time.sleep(_backoff(attempt, response.headers.get("Retry-After")))
            continue
        if response.status_code == 204:
            return count, 0, ""
        if response.is_success:
            try:
                answer = response.json()
                queued = int(answer.get("queued", 0))
                rejected = answer.get("rejected") or []
            except (ValueError, AttributeError, TypeError):
                return 0, count, f"unexpected answer: {response.text[:200]}"
            error = ""
            if rejected:
                first = rejected[0]
                error = f"event {first.get('index')}: {first.get('error')}"
            return queued, len(rejected), error
        return 0, count, f"HTTP {response.status_code}: {_error_message(response)}"
    hint = ""
    if "429" in last:
        hint = " (the collector's rate limit: set SIGHTLINE_RATE_LIMIT_PER_MINUTE=0 for demos)"
    raise DemoError(f"gave up on {url} after {max_attempts} attempts: {last}{hint}")


def _backoff(attempt: int, retry_after: str | None) -> float:
    if retry_after:
        try:
            return min(max(float(retry_after), 0.05), 30.0)
        except ValueError:
            pass
    return float(min(0.2 * 2**attempt, 10.0) * random.uniform(0.5, 1.0))


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    except (ValueError, AttributeError):
        return response.text[:200]
