"""Step ``time``: correct the client's clock, reject events from too far in the past or future.

The tracker stamps each event with its own clock and the request with ``metadata.sentAt``
from the same clock. ``received_at - sent_at`` is then the client's clock error plus the
transit time, and adding it to an event's timestamp puts the event on the server's clock.
Without ``sentAt`` nothing is corrected. An event whose timestamp the ``defaults`` step
filled in (it had none, so it equals ``received_at``) is already on the server's clock.

Offsets within ``clock_skew_tolerance_seconds`` are transit time and network jitter, not
a wrong clock: correcting them would move each request's events by a different few
milliseconds and make durations inside a session wobble. Only larger offsets (a clock set
wrong by minutes or hours) are corrected.

After correction, an event older than ``max_event_age_hours`` is dropped as ``too_old``
and one more than ``max_future_seconds`` ahead of the server as ``in_future``; both are
reported to the client in the batch answer's ``rejected`` list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sightline.events import Event
from sightline.pipeline import Drop, RequestContext

if TYPE_CHECKING:
    from sightline.config import Settings

TOO_OLD = Drop("too_old")
IN_FUTURE = Drop("in_future")


class ClockCorrection:
    """The ``time`` step; build it with ``from_settings``."""

    __slots__ = ("max_age_ms", "max_future_ms", "tolerance_ms")

    def __init__(
        self,
        max_age_hours: int = 31 * 24,
        max_future_seconds: int = 300,
        tolerance_seconds: float = 30,
    ) -> None:
        self.max_age_ms = max_age_hours * 3_600_000
        self.max_future_ms = max_future_seconds * 1000
        self.tolerance_ms = int(tolerance_seconds * 1000)

    @classmethod
    def from_settings(cls, settings: Settings) -> ClockCorrection:
        return cls(
            settings.max_event_age_hours,
            settings.max_future_seconds,
            settings.clock_skew_tolerance_seconds,
        )

    def correct_time(self, event: Event, ctx: RequestContext) -> Event | Drop:
        received = ctx.received_at
        timestamp = event.timestamp
        sent = ctx.sent_at
        if sent and timestamp != received and abs(received - sent) > self.tolerance_ms:
            timestamp += received - sent
            event.timestamp = timestamp if timestamp > 0 else 0
        if received - timestamp > self.max_age_ms:
            return TOO_OLD
        if timestamp - received > self.max_future_ms:
            return IN_FUTURE
        return event

    __call__ = correct_time
