"""The consent step: modes, the visitor's consent, DNT and GPC."""

from __future__ import annotations

from sightline.events import Event
from sightline.pipeline import Drop
from sightline.privacy.consent import ConsentGate, effective_consent
from sightline.sites import Site
from tests.unit.pipeline.conftest import MakeContext

REQUIRED = Site(id="s2", domain="b.example", site_key="pk_b", consent_mode="consent-required")


def test_consent_is_inferred_from_the_visitor_id_when_not_sent() -> None:
    assert effective_consent(Event(event_type="x", visitor_id="v")) == "granted"
    assert effective_consent(Event(event_type="x")) == "unknown"
    assert effective_consent(Event(event_type="x", visitor_id="v", consent="denied")) == "denied"


def test_cookieless_keeps_undecided_events_without_their_ids(make_ctx: MakeContext) -> None:
    gate = ConsentGate()
    event = Event(event_type="page_view", visitor_id="v", user_id="u", consent="unknown")
    assert gate.check_consent(event, make_ctx()) is event
    assert (event.visitor_id, event.user_id) == ("", "")
    granted = Event(event_type="page_view", visitor_id="v", user_id="u", consent="granted")
    assert gate.check_consent(granted, make_ctx()) is granted
    assert (granted.visitor_id, granted.user_id) == ("v", "u")
    denied = gate.check_consent(Event(event_type="page_view", consent="denied"), make_ctx())
    assert denied == Drop("consent_denied", report=False)


def test_consent_required_refuses_everything_but_granted(make_ctx: MakeContext) -> None:
    gate = ConsentGate()
    ctx = make_ctx(for_site=REQUIRED)
    assert gate.check_consent(Event(event_type="page_view"), ctx) == Drop("consent_required")
    unknown = Event(event_type="page_view", visitor_id="v", consent="unknown")
    assert gate.check_consent(unknown, ctx) == Drop("consent_required")
    granted = Event(event_type="page_view", visitor_id="v", consent="granted")
    assert gate.check_consent(granted, ctx) is granted


def test_privacy_signals_win_over_consent_unless_turned_off(make_ctx: MakeContext) -> None:
    granted = Event(event_type="page_view", visitor_id="v", consent="granted")
    gate = ConsentGate()
    assert gate.check_consent(granted, make_ctx(headers={"dnt": "1"})) == Drop(
        "do_not_track", report=False
    )
    assert gate.check_consent(granted, make_ctx(headers={"sec-gpc": "1"})) == Drop(
        "global_privacy_control", report=False
    )
    assert gate.check_consent(granted, make_ctx(headers={"dnt": "0"})) is granted
    off = ConsentGate(honour_privacy_signals=False)
    assert off.check_consent(granted, make_ctx(headers={"dnt": "1", "sec-gpc": "1"})) is granted
