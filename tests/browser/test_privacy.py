"""Privacy: cookieless by default, consent, Do Not Track, Global Privacy Control, sampling,
and a tracker that never throws into the page."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from tests.browser.conftest import LAUNCH_ARGS, TrackedSite, Visitor, attach_visitor, chromium_path

pytestmark = pytest.mark.browser

BUTTONS = "".join(f'<button id=b{i} data-track="tap">b{i}</button>' for i in range(5))
TALL = BUTTONS + "<div style='height: 4000px'></div>"


def interact(visitor: Visitor) -> None:
    for i in range(5):
        visitor.page.click(f"#b{i}")
    visitor.page.mouse.wheel(0, 4000)
    visitor.page.wait_for_timeout(300)


def assert_nothing_on_the_device(visitor: Visitor) -> None:
    kept = visitor.storage()
    assert kept == {"local": {}, "session": {}, "cookie": "", "cookies": []}


def test_cookieless_by_default_keeps_nothing_and_leaves_identity_to_the_server(
    site: TrackedSite, visitor: Visitor
) -> None:
    visitor.page.goto(site.page("cookieless", TALL))
    interact(visitor)
    visitor.page.evaluate("sightline.getTracker().flush()")
    events = visitor.sent_events()
    assert {e["eventType"] for e in events} >= {"session_start", "page_view", "tap"}
    assert {(e["visitorId"], e["sessionId"]) for e in events} == {("", "")}
    assert all("consent" not in e for e in events)  # no visitorId: the server reads unknown
    assert_nothing_on_the_device(visitor)
    site.wait(len(events))
    ids = set(site.rows("visitor_id, session_id"))
    assert len(ids) == 1  # one cookieless visitor and one session, derived by the server
    ((visitor_id, session_id),) = ids
    assert visitor_id and session_id


def test_consent_required_sends_nothing_until_given_then_remembers_it(
    site: TrackedSite, visitor: Visitor
) -> None:
    url = site.page("required", TALL, consent="required")
    visitor.page.goto(url)
    visitor.page.evaluate(
        "window.updates = []; addEventListener('consent-updated', (e) => updates.push(e.detail))"
    )
    interact(visitor)
    assert visitor.sent == [] and visitor.emitted == []
    assert_nothing_on_the_device(visitor)

    visitor.page.evaluate("sightline.getTracker().setConsent({analytics: true})")
    assert visitor.page.evaluate("updates") == [
        {"necessary": True, "analytics": True, "marketing": False}
    ]
    visitor.wait_emitted("page_view")
    visitor.page.evaluate("sightline.getTracker().flush()")
    first = visitor.sent_events()
    visitor_id = first[0]["visitorId"]
    session_id = first[0]["sessionId"]
    assert visitor_id and session_id
    kept = visitor.storage()["local"]
    assert set(kept) == {"sl_v", "sl_s", "sl_c"}
    assert json.loads(kept["sl_v"]) == visitor_id

    visitor.page.reload()  # the choice, the visitor and the session carry over
    visitor.wait_emitted("page_view", 2)
    visitor.page.evaluate("sightline.getTracker().flush()")
    second = visitor.sent_events()[len(first) :]
    assert {(e["visitorId"], e["sessionId"]) for e in second} == {(visitor_id, session_id)}
    assert "session_start" not in [e["eventType"] for e in second]
    site.wait(len(first) + len(second))
    assert set(site.rows("visitor_id")) == {(visitor_id,)}

    # withdrawn: everything kept is removed and nothing more is sent
    visitor.page.evaluate("sightline.getTracker().setConsent({analytics: false})")
    requests = len(visitor.sent)
    interact(visitor)
    visitor.page.evaluate("sightline.getTracker().flush()")
    assert len(visitor.sent) == requests
    assert visitor.storage()["local"] == {}


def test_denied_consent_sends_nothing_and_keeps_nothing(
    site: TrackedSite, visitor: Visitor
) -> None:
    # with consent required, and also cookieless when the visitor says no right away (what
    # was queued is dropped, not sent)
    for page in (site.page("denied", TALL, consent="required"), site.page("no", TALL)):
        visitor.page.goto(page)
        visitor.page.evaluate("sightline.getTracker().setConsent({analytics: false})")
        interact(visitor)
        visitor.page.evaluate("sightline.getTracker().flush()")
        visitor.page.wait_for_timeout(500)
        assert_nothing_on_the_device(visitor)
    assert visitor.sent == []
    assert site.count() == 0


def test_a_consent_platform_can_grant_consent_with_the_window_event(
    site: TrackedSite, visitor: Visitor
) -> None:
    visitor.page.goto(site.page("cmp", BUTTONS, consent="required"))
    visitor.page.evaluate(
        "dispatchEvent(new CustomEvent('consent-updated',"
        " {detail: {analytics: true, marketing: true}}))"
    )
    visitor.wait_emitted("page_view")
    consent = visitor.page.evaluate("sightline.getTracker().privacy.getConsent()")
    assert consent == {"necessary": True, "analytics": True, "marketing": True}
    assert visitor.page.evaluate("sightline.getTracker().privacy.hasConsent('marketing')")


def test_do_not_track_sends_nothing(site: TrackedSite, browser: Browser) -> None:
    """A real Do Not Track setting: the browser profile's preference."""
    path = chromium_path()
    assert path is not None
    with tempfile.TemporaryDirectory() as profile:
        (Path(profile) / "Default").mkdir()
        (Path(profile) / "Default" / "Preferences").write_text('{"enable_do_not_track": true}')
        context = browser.browser_type.launch_persistent_context(
            profile, executable_path=path, args=LAUNCH_ARGS
        )
        try:
            visitor = attach_visitor(context)
            visitor.page.goto(site.page("dnt", TALL))
            assert visitor.page.evaluate("navigator.doNotTrack") == "1"
            interact(visitor)
            visitor.page.evaluate("sightline.getTracker().flush()")
            assert visitor.sent == [] and visitor.emitted == []
            assert_nothing_on_the_device(visitor)
            # a site may decide otherwise (respectDnt: false)
            visitor.page.goto(site.page("dnt-ignored", BUTTONS, respect_dnt=False))
            visitor.wait_emitted("page_view")
        finally:
            context.close()


def test_global_privacy_control_sends_nothing(
    site: TrackedSite, new_visitor: Callable[..., Visitor]
) -> None:
    """Chromium has no GPC setting; browsers and extensions that send the signal (Firefox,
    Brave, Privacy Badger, DuckDuckGo) expose navigator.globalPrivacyControl = true."""
    visitor = new_visitor()
    visitor.context.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
    )
    visitor.page.goto(site.page("gpc", TALL))
    interact(visitor)
    visitor.page.evaluate("sightline.getTracker().flush()")
    assert visitor.sent == [] and visitor.emitted == []
    assert_nothing_on_the_device(visitor)


def test_sampling_leaves_out_whole_page_loads(site: TrackedSite, visitor: Visitor) -> None:
    visitor.page.goto(site.page("sampled-out", TALL, sample_rate=0))
    interact(visitor)
    assert visitor.sent == [] and visitor.emitted == []
    visitor.page.goto(site.page("sampled-in", TALL, sample_rate=1))
    visitor.wait_emitted("page_view")


BROKEN_STORAGE = """
for (const name of ['getItem', 'setItem', 'removeItem'])
  Storage.prototype[name] = () => { throw new DOMException('denied', 'SecurityError') }
"""
MISUSE = """async () => {
  const thrown = []
  const t = sightline.getTracker()
  const calls = [
    () => t.track(), () => t.track(null, 5), () => t.track('x', 'not an object'),
    () => t.trackProductView(), () => t.trackProductView(null), () => t.trackAffiliateClick(),
    () => t.trackProductCompare(), () => t.trackSearchQuery(), () => t.setConsent(),
    () => t.setConsent(null), () => t.identify({}), () => t.trackPageView('nonsense'),
    () => sightline.initAnalytics(), () => sightline.initAnalytics('nonsense'),
    () => history.pushState(null, '', '?step=2'), () => history.replaceState(null, ''),
    () => t.setConsent({analytics: true}), () => t.track('stored', {}), () => t.flush(),
    () => t.destroy(), () => t.destroy(), () => t.track('after'), () => t.init(),
  ]
  for (const call of calls) {
    try { await call() } catch (e) { thrown.push(String(e)) }
  }
  await new Promise((r) => setTimeout(r, 1500))
  return thrown
}"""


def test_the_tracker_never_throws_into_the_page(
    site: TrackedSite, new_visitor: Callable[..., Visitor]
) -> None:
    for endpoint in ("", "http://127.0.0.1:9/unreachable", "not a url at all"):
        visitor = new_visitor()
        visitor.context.add_init_script(BROKEN_STORAGE)
        errors: list[str] = []
        visitor.page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
        attrs = {"endpoint": endpoint} if endpoint else {}
        visitor.page.goto(site.page(f"misuse-{len(endpoint)}", BUTTONS, **attrs))
        visitor.page.click("#b0")
        assert visitor.page.evaluate(MISUSE) == []
        assert errors == []
        assert visitor.page.url.endswith("?step=2")  # the host's own history calls still work
