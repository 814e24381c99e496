"""Clicks on [data-track] elements, outbound and affiliate links, forms, helpers."""

from __future__ import annotations

import pytest
from tests.browser.conftest import TrackedSite, Visitor

pytestmark = pytest.mark.browser

#: Long timers and big batches: only what the tracker sends by itself on leaving arrives.
NO_TIMER = {"flush_interval": 600_000, "batch_size": 500}


def test_data_track_clicks_carry_their_data_track_properties(
    site: TrackedSite, visitor: Visitor
) -> None:
    body = """
      <button id=buy data-track="add_to_cart" data-track-product-id="sku-1"
              data-track-price="19.99" data-track-list-name="Top picks"><b>Buy</b></button>
      <div data-track="product_click" data-track-product-id="sku-2"><span id=inner>card</span></div>
      <button id=plain data-track>plain</button>
    """
    visitor.page.goto(site.page("shop", body))
    visitor.page.click("#buy b")  # a child of the tracked element
    visitor.page.click("#inner")
    visitor.page.click("#plain")
    visitor.page.evaluate("sightline.getTracker().flush()")
    site.wait(4 + 1)  # session_start, page_view, three clicks
    assert site.properties("add_to_cart") == [
        {"productId": "sku-1", "price": 19.99, "listName": "Top picks"}
    ]
    assert site.properties("product_click") == [{"productId": "sku-2"}]
    assert site.properties("click") == [{}]


def test_affiliate_click_that_navigates_away_arrives(site: TrackedSite, visitor: Visitor) -> None:
    partner = site.web.partner
    body = f"""
      <a id=deal href="{partner}/deal?tag=abc" data-affiliate data-product-id="tv-55"
         data-product-name="55in TV" data-platform="amazon" data-price="499"
         data-position="hero">Buy at Amazon</a>
      <a id=sponsored href="{partner}/other" rel="nofollow sponsored">Sponsored deal</a>
    """
    visitor.page.goto(site.page("review", body, **NO_TIMER))
    visitor.wait_emitted("page_view")
    visitor.page.click("#deal")
    visitor.page.wait_for_url(f"{partner}/deal?tag=abc")
    visitor.page.go_back()
    visitor.wait_emitted("page_view", 2)
    visitor.page.click("#sponsored")
    visitor.page.wait_for_url(f"{partner}/other")

    site.wait(2, "event_type = 'affiliate_click'")
    clicks = site.properties("affiliate_click")
    assert clicks[0] == {
        "productId": "tv-55",
        "productName": "55in TV",
        "platform": "amazon",
        "price": 499,
        "position": "hero",
        "ctaText": "Buy at Amazon",
        "url": f"{partner}/deal?tag=abc",
    }
    assert clicks[1]["productId"] == "localhost"  # no product id: the link's host
    assert clicks[1]["ctaText"] == "Sponsored deal"
    # and everything emitted before leaving arrived too, then what leaving emits
    ids = {e["eventId"] for e in visitor.emitted}
    assert ids <= {row[0] for row in site.rows("event_id")}
    site.wait(2, "event_type = 'page_exit'")


def test_outbound_link_click_is_sent_before_the_page_goes(
    site: TrackedSite, visitor: Visitor
) -> None:
    partner = site.web.partner
    body = f'<a id=out href="{partner}/elsewhere">Elsewhere</a> <a id=in href="next">next</a>'
    visitor.page.goto(site.page("links", body, **NO_TIMER))
    site.page("next", "<p>next page</p>", **NO_TIMER)
    visitor.page.click("#in")  # same site: not outbound
    visitor.page.wait_for_url(site.url("next"))
    visitor.page.go_back()
    visitor.page.click("#out")
    visitor.page.wait_for_url(f"{partner}/elsewhere")
    site.wait(1, "event_type = 'click'")
    assert site.properties("click") == [
        {"outbound": True, "url": f"{partner}/elsewhere", "text": "Elsewhere"}
    ]


def test_helper_affiliate_click_survives_a_scripted_navigation(
    site: TrackedSite, visitor: Visitor
) -> None:
    partner = site.web.partner
    script = (
        "sightline.getTracker().trackAffiliateClick({id: 'p-1', name: 'Kettle'},"
        " {id: 'l-9', platform: 'ebay', price: 25}, 'sidebar', 'Check price');"
        f" location.href = '{partner}/kettle'"
    )
    visitor.page.goto(
        site.page("helper", f'<button id=go onclick="{script}">go</button>', **NO_TIMER)
    )
    visitor.page.click("#go")
    visitor.page.wait_for_url(f"{partner}/kettle")
    site.wait(1, "event_type = 'affiliate_click'")
    assert site.properties("affiliate_click") == [
        {
            "productId": "p-1",
            "productName": "Kettle",
            "linkId": "l-9",
            "platform": "ebay",
            "price": 25,
            "position": "sidebar",
            "ctaText": "Check price",
        }
    ]


FORMS = """
  <form id=signup action="/subscribe" onsubmit="event.preventDefault()">
    <input name=email id=email><input name=name id=name><button>Join</button>
  </form>
  <form id=contact><textarea name=message id=message></textarea></form>
"""


def test_forms_start_submit_and_abandon_without_their_values(
    site: TrackedSite, visitor: Visitor
) -> None:
    visitor.page.goto(site.page("forms", FORMS))
    visitor.page.fill("#email", "someone@example.com")
    visitor.page.fill("#name", "Someone")
    visitor.page.click("#signup button")
    visitor.page.fill("#message", "half a thought")
    visitor.page.goto("about:blank")

    site.wait(1, "event_type = 'form_abandon'")
    assert site.properties("form_start") == [{"formId": "signup"}, {"formId": "contact"}]
    assert site.properties("form_submit") == [{"formId": "signup"}]
    assert site.properties("form_abandon") == [{"formId": "contact", "lastField": "message"}]
    sent = str(visitor.sent)
    assert "someone@example.com" not in sent and "half a thought" not in sent


def test_helpers_send_their_events(site: TrackedSite, visitor: Visitor) -> None:
    visitor.page.goto(site.page("search", "<p>results</p>"))
    visitor.page.evaluate(
        """() => {
          const t = sightline.getTracker()
          t.trackSearchQuery('blue kettle', 0, {page: 1})
          t.trackZeroResults('blue kettle')
          t.trackSearchFilter('brand', 'acme')
          t.trackSearchSort('price_asc')
          t.trackProductView({id: 'k-1', name: 'Kettle', slug: 'kettle', price: 30,
                              categoryId: 'c-1', categoryName: 'Kitchen'}, 'search')
          t.trackProductHover('k-1')
          t.trackProductCompare(['k-1', 'k-2'])
          t.trackProductWishlist({id: 'k-1'}, 'add')
          t.trackCopiedCoupon('SAVE10', 'k-1')
          t.trackSharedProduct({id: 'k-1'}, 'whatsapp')
          t.trackAffiliateClick('k-2')
          return t.flush()
        }"""
    )
    site.wait(13)
    props = {t: site.properties(t)[0] for t in site.types() if t not in ("session_start",)}
    assert props["search_query"] == {"query": "blue kettle", "resultsCount": 0, "page": 1}
    assert props["zero_results"] == {"query": "blue kettle"}
    assert props["search_filter"] == {"filter": "brand", "value": "acme"}
    assert props["search_sort"] == {"sort": "price_asc"}
    assert props["product_view"] == {
        "productId": "k-1",
        "productName": "Kettle",
        "productSlug": "kettle",
        "productPrice": 30,
        "categoryId": "c-1",
        "categoryName": "Kitchen",
        "source": "search",
    }
    assert props["product_hover"] == {"productId": "k-1"}
    assert props["product_compare"] == {"productIds": ["k-1", "k-2"]}
    assert props["product_wishlist"] == {"productId": "k-1", "action": "add"}
    assert props["copied_coupon"] == {"couponCode": "SAVE10", "productId": "k-1"}
    assert props["shared_product"] == {"productId": "k-1", "channel": "whatsapp"}
    assert props["affiliate_click"] == {"productId": "k-2"}
    # product_view is stored with its product (the server's typed column)
    assert site.rows("product_id", "event_type = 'product_view'") == [("k-1",)]
