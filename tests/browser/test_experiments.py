"""Experiments in Chromium: the tracker assigns exactly as the server does, visitors see
their variants without flicker, and their exposures and conversions reach the results."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from tests.browser.conftest import TrackedSite, Visitor
from tests.support.server import BROWSER_UA, ServerProcess

from sightline.experiments import assign_variant, variant_for

pytestmark = pytest.mark.browser

EXPERIMENTS_JS = "/sdk/v1/sightline-experiments.js"
#: Two browsers on one address: two cookieless identities (the user agent is in the hash).
BROWSER_A = BROWSER_UA + " A"
BROWSER_B = BROWSER_UA + " B"
CONSENT = (
    "localStorage.setItem('sl_c', JSON.stringify({necessary: true, analytics: true, "
    "marketing: false}))"
)


def api(server: ServerProcess, method: str, path: str, site: TrackedSite, **kw: Any) -> Any:
    response = httpx.request(
        method,
        server.url + path,
        params={"site": site.id},
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=60,
        **kw,
    )
    assert response.status_code < 300, response.text
    return response.json()


def start_experiment(site: TrackedSite, key: str, **extra: Any) -> dict[str, Any]:
    body = {
        "key": key,
        "variants": [{"key": "control", "weight": 1}, {"key": "green", "weight": 1}],
        "goal": {"eventType": "affiliate_click", "filters": ["product:is:sku-1"]},
        **extra,
    }
    api(site.server, "POST", "/api/v1/experiments", site, json=body)
    record: dict[str, Any] = api(site.server, "POST", f"/api/v1/experiments/{key}/start", site)
    return record


def experiment_page(site: TrackedSite, name: str, key: str) -> str:
    body = f"""
<h1>Product</h1>
<a id=buy data-experiment href="#">Buy</a>
<script src="{site.server.url}{EXPERIMENTS_JS}"></script>
<script>
  const t = sightline.getTracker()
  t.experimentsReady.then((loaded) => {{
    window.loaded = loaded
    window.variant = t.getVariant({json.dumps(key)})
    window.again = t.getVariant({json.dumps(key)})
    document.body.dataset.variant = String(window.variant)
  }})
</script>"""
    return site.page(name, body)


def test_the_tracker_assigns_exactly_as_the_server_does(
    site: TrackedSite, visitor: Visitor
) -> None:
    visitor.page.goto(
        site.page("hash", f'<script src="{site.server.url}{EXPERIMENTS_JS}"></script>')
    )
    visitor.page.wait_for_function("!!(window.sightline && window.sightline.assignVariant)")
    ids = [str(uuid.uuid4()) for _ in range(3000)]
    ids += [f"visitor-{i}" for i in range(1000)] + ["", "ü-ñ-€-𝄞", "a" * 128]
    cases = [
        ("checkout-cta", [1, 1]),
        ("hero.image_v2", [1, 2, 7]),
        ("x", [0, 3, 1]),
        ("weights-10k", [2500, 2500, 4999, 1]),
    ]
    for key, weights in cases:
        browser = visitor.page.evaluate(
            "([key, ids, weights]) => ids.map((id) => sightline.assignVariant(key, id, weights))",
            [key, ids, weights],
        )
        assert browser == [assign_variant(key, v, weights) for v in ids], key


def test_two_visitors_see_their_variants_convert_and_the_results_count_them(
    site: TrackedSite, new_visitor: Any
) -> None:
    record = start_experiment(site, "cta")
    url = experiment_page(site, "product", "cta")
    cookieless = new_visitor(user_agent=BROWSER_A)
    consented = new_visitor(user_agent=BROWSER_B)
    consented.context.add_init_script(CONSENT)
    seen: dict[str, str] = {}
    for name, visitor in (("cookieless", cookieless), ("consented", consented)):
        visitor.page.goto(url)
        visitor.page.wait_for_selector("body[data-variant]")
        assert visitor.page.evaluate("window.loaded") is True
        variant = visitor.page.evaluate("window.variant")
        assert variant in ("control", "green")
        assert visitor.page.evaluate("window.again") == variant
        seen[name] = variant
        visitor.wait_emitted("experiment_exposure")
        visitor.page.evaluate(
            "sightline.getTracker().track('affiliate_click', {productId: 'sku-1', revenue: 5})"
        )
        visitor.page.evaluate("sightline.getTracker().flush()")
        exposures = [e for e in visitor.emitted if e["eventType"] == "experiment_exposure"]
        assert [e["properties"]["variant"] for e in exposures] == [variant]
        assert exposures[0]["properties"]["experiment"] == "cta"
        click = next(e for e in visitor.emitted if e["eventType"] == "affiliate_click")
        assert click["properties"]["$experiments"] == {"cta": variant}

    # the consented visitor is assigned from its own stored id, as the server would
    stored = consented.page.evaluate("JSON.parse(localStorage.getItem('sl_v'))")
    assert seen["consented"] == variant_for(record_with(record), stored)
    # a reload: the same variant, and no second exposure (remembered with consent)
    consented.page.reload()
    consented.page.wait_for_selector("body[data-variant]")
    assert consented.page.evaluate("window.variant") == seen["consented"]
    consented.page.wait_for_timeout(300)
    assert consented.types().count("experiment_exposure") == 1
    # nothing is stored on the cookieless visitor's device
    assert cookieless.storage()["local"] == {}

    site.wait(4, "event_type IN ('experiment_exposure', 'affiliate_click')")
    # the cookieless visitor's events are stored under the id its variant was drawn for
    (cookieless_id,) = {
        row[0]
        for row in site.rows("visitor_id", "event_type = 'experiment_exposure'")
        if row[0] != stored
    }
    assert seen["cookieless"] == variant_for(record_with(record), cookieless_id)

    results = api(site.server, "GET", "/api/v1/experiments/cta/results", site)
    by_key = {v["key"]: v for v in results["variants"]}
    for variant in ("control", "green"):
        expected = list(seen.values()).count(variant)
        assert by_key[variant]["exposures"] == expected, results
        assert by_key[variant]["conversions"] == expected, results
        assert by_key[variant]["revenue"] == 5.0 * expected
    assert results["totals"] == {"exposures": 2, "conversions": 2, "revenue": 10.0}
    # withdrawing consent removes what was remembered, the exposure record too
    assert "sl_x" in consented.storage()["local"]
    consented.page.evaluate("sightline.getTracker().setConsent({analytics: false})")
    assert consented.storage()["local"] == {}


def record_with(answer: dict[str, Any]) -> dict[str, Any]:
    """The fields assignment reads, from the API's view of an experiment."""
    return {"key": answer["key"], "variants": answer["variants"]}


def test_untargeted_pages_and_stopped_experiments_get_no_variant(
    site: TrackedSite, visitor: Visitor
) -> None:
    start_experiment(site, "only-products", targeting={"pages": ["/t*/products/*"]})
    visitor.page.goto(experiment_page(site, "about", "only-products"))
    visitor.page.wait_for_selector("body[data-variant]")
    assert visitor.page.evaluate("window.variant") is None
    visitor.page.goto(experiment_page(site, "products/kettle", "only-products"))
    visitor.page.wait_for_selector("body[data-variant]")
    assert visitor.page.evaluate("window.variant") in ("control", "green")
    api(site.server, "POST", "/api/v1/experiments/only-products/stop", site)
    visitor.page.goto(experiment_page(site, "products/mug", "only-products"))
    visitor.page.wait_for_selector("body[data-variant]")
    assert visitor.page.evaluate("window.variant") is None
    assert visitor.types().count("experiment_exposure") == 1
