"""React bindings on a React page: <AnalyticsProvider> hands a working tracker to
useAnalytics() (the seed's provider handed out null)."""

from __future__ import annotations

import pytest
from tests.browser.conftest import TrackedSite, Visitor

pytestmark = pytest.mark.browser

APP = """
const { AnalyticsProvider, useAnalytics } = SightlineReact
const e = React.createElement

function Product({ id }) {
  const { trackProductView, trackAffiliateClick, track, tracker } = useAnalytics()
  React.useEffect(() => {
    trackProductView({ id, name: 'Desk lamp', slug: 'desk-lamp', price: 39.5 }, 'category')
  }, [id])
  return e('section', null,
    e('span', { id: 'has-tracker' }, tracker && tracker.privacy ? 'yes' : 'no'),
    e('button', { id: 'wish',
      onClick: () => track('product_wishlist', { productId: id, action: 'add' }) }, 'Wish'),
    e('button', { id: 'buy', onClick: () => trackAffiliateClick({ id, name: 'Desk lamp' },
      { id: 'amz-1', platform: 'amazon', price: 39.5 }, 'inline', 'Buy') }, 'Buy'))
}

function Outside() {
  // no provider above: the hook falls back to the page's tracker
  const { trackSearchQuery } = useAnalytics()
  return e('button', { id: 'search', onClick: () => trackSearchQuery('lamp', 4) }, 'Search')
}

function App() {
  const [path, setPath] = React.useState(location.pathname)
  const go = (to) => { history.pushState({}, '', to); setPath(to) }
  return e('main', null,
    e('button', { id: 'nav', onClick: () => go(PREFIX + '/react/lamp-2') }, 'Next lamp'),
    e(Product, { id: path.endsWith('lamp-2') ? 'lamp-2' : 'lamp-1' }))
}

ReactDOM.createRoot(document.getElementById('root')).render(
  e(React.StrictMode, null,
    e(AnalyticsProvider, { config: { siteKey: SITE_KEY, debug: true } }, e(App))))
ReactDOM.createRoot(document.getElementById('outside')).render(e(Outside))
"""


def test_react_provider_and_hook_track_on_a_react_page(site: TrackedSite, visitor: Visitor) -> None:
    sdk = f"{site.server.url}/sdk/v1"
    head = (
        '<script src="/vendor/react-18.3.1.production.min.js"></script>'
        '<script src="/vendor/react-dom-18.3.1.production.min.js"></script>'
        f'<script src="{sdk}/sightline.js"></script>'
        f'<script src="{sdk}/sightline-react.js"></script>'
    )
    body = (
        "<div id=root></div><div id=outside></div>"
        f"<script>const SITE_KEY = '{site.key}', PREFIX = '{site.prefix}';{APP}</script>"
    )
    visitor.page.goto(site.page("react", body, head=head, script="", spa=True))
    visitor.wait_emitted("product_view")
    assert visitor.page.text_content("#has-tracker") == "yes"
    visitor.page.click("#wish")
    visitor.page.click("#nav")  # a React route change: a page view, and the next product
    visitor.wait_emitted("product_view", 2)
    visitor.wait_emitted("page_view", 2)
    visitor.page.click("#search")
    visitor.page.click("#buy")  # sent at once, like every affiliate click
    visitor.page.evaluate("sightline.getTracker().flush()")

    site.wait(1, "event_type = 'search_query'")
    assert [p["productId"] for p in site.properties("product_view")] == ["lamp-1", "lamp-2"]
    assert site.properties("product_view")[0] == {
        "productId": "lamp-1",
        "productName": "Desk lamp",
        "productSlug": "desk-lamp",
        "productPrice": 39.5,
        "source": "category",
    }
    assert site.properties("product_wishlist") == [{"productId": "lamp-1", "action": "add"}]
    assert site.properties("search_query") == [{"query": "lamp", "resultsCount": 4}]
    assert site.properties("affiliate_click")[0]["linkId"] == "amz-1"
    paths = [p for (p,) in site.rows("page_path", "event_type = 'page_view'")]
    assert paths == [f"{site.prefix}/react", f"{site.prefix}/react/lamp-2"]
    # one tracker on the page, though StrictMode renders the provider twice
    assert visitor.types().count("session_start") == 1
