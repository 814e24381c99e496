"""Step ``consent``: consent modes, Do Not Track and Global Privacy Control, server-side.

Runs first, so a refused event costs nothing more. For each event:

1. ``DNT: 1`` or ``Sec-GPC: 1`` on the request (when ``honour_privacy_signals``): the
   event is dropped (``do_not_track`` / ``global_privacy_control``) and never stored. The
   tracker honours both in the browser already; this covers every other sender.
2. The visitor's consent: the event's ``consent`` field (``granted``, ``denied``,
   ``unknown``); without one, an event carrying a ``visitorId`` counts as granted (the
   tracker sends a visitor id only once analytics consent is given) and any other as
   unknown. ``denied`` is dropped (``consent_denied``) in every mode.
3. The site's mode:

   - ``cookieless`` (the default): no consent is needed. Without granted consent the
     event keeps nothing that identifies the visitor across days: a client-sent
     ``visitorId`` or ``userId`` is removed, and the ``identity`` step derives the
     daily-salted cookieless id.
   - ``consent-required``: an event without granted consent is refused
     (``consent_required``, reported to the sender) and never stored.

Every drop is counted per step and reason on /metrics (``sightline_events_dropped``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from sightline.events import Event
from sightline.pipeline import Drop, RequestContext

if TYPE_CHECKING:
    from sightline.config import Settings

COOKIELESS = "cookieless"
CONSENT_REQUIRED = "consent-required"
CONSENT_MODES: tuple[str, ...] = (COOKIELESS, CONSENT_REQUIRED)

GRANTED = "granted"
DENIED = "denied"
UNKNOWN = "unknown"

DO_NOT_TRACK = Drop("do_not_track", report=False)
GLOBAL_PRIVACY_CONTROL = Drop("global_privacy_control", report=False)
CONSENT_DENIED = Drop("consent_denied", report=False)
CONSENT_REQUIRED_DROP = Drop("consent_required")


def effective_consent(event: Event) -> str:
    """granted, denied or unknown: the event's own word, else inferred from its visitorId."""
    if event.consent:
        return event.consent
    return GRANTED if event.visitor_id else UNKNOWN


_SIGNAL = "consent.signal"


def _privacy_signal(headers: Mapping[str, str]) -> Drop | None:
    """The drop a request's Sec-GPC or DNT header asks for, if any."""
    if headers.get("sec-gpc", "").strip() == "1":
        return GLOBAL_PRIVACY_CONTROL
    if headers.get("dnt", "").strip() == "1":
        return DO_NOT_TRACK
    return None


class ConsentGate:
    """The ``consent`` step."""

    def __init__(self, honour_privacy_signals: bool = True) -> None:
        self.honour_privacy_signals = honour_privacy_signals

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsentGate:
        return cls(settings.honour_privacy_signals)

    def check_consent(self, event: Event, ctx: RequestContext) -> Event | Drop:
        if self.honour_privacy_signals:
            # (the request's headers are read once, for its first event)
            if _SIGNAL not in ctx.memo:
                ctx.memo[_SIGNAL] = _privacy_signal(ctx.headers)
            signal: Drop | None = ctx.memo[_SIGNAL]
            if signal is not None:
                return signal
        consent = effective_consent(event)
        if consent == DENIED:
            return CONSENT_DENIED
        if consent != GRANTED:
            if ctx.site.consent_mode == CONSENT_REQUIRED:
                return CONSENT_REQUIRED_DROP
            event.visitor_id = ""
            event.user_id = ""
        return event

    __call__ = check_consent
