"""How Sightline serves the tracker: caching validators, gzip, content type; what the
scripts leave in the page's global scope; and the bot filter meeting the real browser."""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from tests.browser.conftest import TrackedSite, Visitor
from tests.browser.testsite import PROXY_PREFIX, TestSite
from tests.support.server import ServerProcess, running_server

from sightline.tracker import ASSETS

pytestmark = pytest.mark.browser

FILES = ["sightline.js", "sightline-extras.js", "sightline-react.js"]


@pytest.mark.parametrize("name", FILES)
def test_tracker_files_are_served_with_validators_and_gzip(
    sightline: ServerProcess, name: str
) -> None:
    url = f"{sightline.url}/sdk/v1/{name}"
    built = (Path(__file__).parents[2] / "src/sightline/tracker/dist" / name).read_bytes()
    plain = httpx.get(url, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert plain.content == built
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert plain.headers["cache-control"].startswith("public, max-age=")
    assert "stale-while-revalidate" in plain.headers["cache-control"]
    assert plain.headers["access-control-allow-origin"] == "*"
    assert "content-encoding" not in plain.headers
    etag = plain.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")  # strong

    zipped = httpx.get(url, headers={"Accept-Encoding": "gzip, br"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == built  # httpx decodes it
    assert int(zipped.headers["content-length"]) == len(gzip.compress(built, 9, mtime=0))
    assert zipped.headers["etag"] != etag  # another representation, another tag
    assert zipped.headers["vary"] == "Accept-Encoding"

    for tag in (etag, zipped.headers["etag"], f"W/{etag}", f'"other", {etag}', "*"):
        again = httpx.get(url, headers={"If-None-Match": tag})
        assert again.status_code == 304, tag
        assert again.content == b""
    assert httpx.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    head = httpx.head(url, headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200 and head.headers["content-length"] == str(len(built))
    assert ASSETS[name].etag == etag


def test_unknown_tracker_files_are_not_found(sightline: ServerProcess) -> None:
    answer = httpx.get(f"{sightline.url}/sdk/v1/nothing.js")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_the_browser_caches_the_tracker_and_revalidates_it(
    site: TrackedSite, visitor: Visitor
) -> None:
    """Through the site's proxy (which logs what reaches Sightline): the second page load
    takes the script from the browser's cache; a revalidation is answered 304."""
    src = f"{site.web.origin}{PROXY_PREFIX}sdk/v1/sightline.js"
    url = site.page("cached", "<p>cached</p>", src=src)
    site.web.proxied.clear()
    visitor.page.goto(url)
    visitor.page.goto(site.web.origin + "/blank")
    visitor.page.goto(url)
    visitor.wait_emitted("page_view", 2)
    fetched = [
        status for _, method, path, status in site.web.proxied if path == "/sdk/v1/sightline.js"
    ]
    assert fetched == [200]
    status = visitor.page.evaluate(f"fetch('{src}', {{cache: 'no-cache'}}).then((r) => r.status)")
    assert status == 200  # the browser's cached copy, confirmed by the server:
    fetched = [
        status for _, method, path, status in site.web.proxied if path == "/sdk/v1/sightline.js"
    ]
    assert fetched == [200, 304]


def test_the_scripts_define_only_their_one_global(site: TrackedSite, visitor: Visitor) -> None:
    sdk = f"{site.server.url}/sdk/v1"
    head = (
        "<script>window.before = Object.keys(window)</script>"
        '<script src="/vendor/react-18.3.1.production.min.js"></script>'
        "<script>window.withReact = Object.keys(window)</script>"
    )
    body = f'<script src="{sdk}/sightline-react.js"></script>'
    visitor.page.goto(site.page("globals", body, head=head))
    visitor.wait_emitted("page_view")
    visitor.page.wait_for_load_state("load")
    added = visitor.page.evaluate(
        "Object.keys(window).filter((k) => !withReact.includes(k) && k !== 'withReact')"
    )
    assert sorted(added) == ["SightlineReact", "sightline"]


def test_browser_automation_is_dropped_by_the_bot_filter(
    web: TestSite, new_visitor: Callable[..., Visitor]
) -> None:
    """With the default bot filter, what headless Chromium sends is accepted but not kept:
    the tracker marks it ($webdriver) and the server drops it."""
    with (
        tempfile.TemporaryDirectory(prefix="sightline-bots-") as directory,
        running_server(Path(directory), rate_limit_per_minute=0) as strict,
    ):
        record = strict.add_site("bots.test", origins=[web.origin])
        key = record["siteKey"]
        html = (
            f'<!doctype html><script src="{strict.url}/sdk/v1/sightline.js" '
            f'data-site-key="{key}" data-debug></script><p>bot</p>'
        )
        visitor = new_visitor()
        visitor.page.goto(web.add("/bots-page", html))
        visitor.wait_emitted("page_view")
        statuses: list[int] = []
        visitor.page.on("response", lambda r: "/collect" in r.url and statuses.append(r.status))
        visitor.page.evaluate("sightline.getTracker().flush()")
        assert statuses == [204]
        assert strict.count_events() == 0
