"""Step ``time``: client clock skew correction, too-old and future events rejected."""

from __future__ import annotations

from sightline.pipeline import Drop
from sightline.pipeline.time import ClockCorrection
from tests.unit.pipeline.conftest import DAY, NOW, MakeContext, page_view

HOUR = 3_600_000


def test_skew_is_corrected_from_sent_at(make_ctx: MakeContext) -> None:
    # The client's clock is 2 hours behind: it sent at NOW - 2h (its clock), we got it at NOW.
    step = ClockCorrection()
    ctx = make_ctx(received_at=NOW, sent_at=NOW - 2 * HOUR)
    event = page_view(timestamp=NOW - 2 * HOUR - 5_000)  # 5 s before sending, client clock
    assert step.correct_time(event, ctx) is event
    assert event.timestamp == NOW - 5_000


def test_clock_ahead_is_corrected_too(make_ctx: MakeContext) -> None:
    ctx = make_ctx(received_at=NOW, sent_at=NOW + 3 * DAY)
    event = page_view(timestamp=NOW + 3 * DAY - 60_000)
    assert ClockCorrection().correct_time(event, ctx) is event
    assert event.timestamp == NOW - 60_000


def test_without_sent_at_nothing_is_corrected(make_ctx: MakeContext) -> None:
    event = page_view(timestamp=NOW - 90_000)
    assert ClockCorrection().correct_time(event, make_ctx(sent_at=None)) is event
    assert event.timestamp == NOW - 90_000


def test_server_filled_timestamp_is_not_shifted(make_ctx: MakeContext) -> None:
    # The defaults step stamped received_at on an event that had no timestamp.
    event = page_view(timestamp=NOW)
    ClockCorrection().correct_time(event, make_ctx(sent_at=NOW - HOUR))
    assert event.timestamp == NOW


def test_backfilled_month_is_accepted_by_default(make_ctx: MakeContext) -> None:
    # Offline queues and the demo send events up to 30 days old with a current sentAt.
    event = page_view(timestamp=NOW - 30 * DAY - HOUR)
    assert ClockCorrection().correct_time(event, make_ctx(sent_at=NOW - 250)) is event


def test_too_old_and_future_events_are_rejected_and_reported(make_ctx: MakeContext) -> None:
    step = ClockCorrection(max_age_hours=24, max_future_seconds=300)
    ctx = make_ctx(sent_at=NOW)
    assert step.correct_time(page_view(timestamp=NOW - DAY - 1), ctx) == Drop("too_old", True)
    assert step.correct_time(page_view(timestamp=NOW + 300_001), ctx) == Drop("in_future", True)
    kept = page_view(timestamp=NOW + 299_000)
    assert step.correct_time(kept, ctx) is kept
    kept = page_view(timestamp=NOW - DAY + 1000)
    assert step.correct_time(kept, ctx) is kept


def test_skew_is_corrected_before_the_age_check(make_ctx: MakeContext) -> None:
    # A client whose clock is a year behind: its events are current, not too old.
    year = 365 * DAY
    event = page_view(timestamp=NOW - year - 1_000)
    assert ClockCorrection().correct_time(event, make_ctx(sent_at=NOW - year)) is event
    assert event.timestamp == NOW - 1_000


def test_absurd_sent_at_pushes_events_out_rather_than_negative(make_ctx: MakeContext) -> None:
    event = page_view(timestamp=1_000)
    result = ClockCorrection().correct_time(event, make_ctx(sent_at=NOW * 2))
    assert result == Drop("too_old", True)
    assert event.timestamp == 0


def test_offsets_within_the_tolerance_are_transit_not_skew(make_ctx: MakeContext) -> None:
    step = ClockCorrection(tolerance_seconds=30)
    event = page_view(timestamp=NOW - 5_000)
    assert step.correct_time(event, make_ctx(sent_at=NOW - 800)) is event
    assert event.timestamp == NOW - 5_000  # 800 ms of transit: untouched
    event = page_view(timestamp=NOW - 5_000)
    step.correct_time(event, make_ctx(sent_at=NOW + 30_000))
    assert event.timestamp == NOW - 5_000  # exactly the tolerance: untouched
    event = page_view(timestamp=NOW - 5_000)
    step.correct_time(event, make_ctx(sent_at=NOW - 30_001))
    assert event.timestamp == NOW - 5_000 + 30_001


def test_tolerance_comes_from_the_settings() -> None:
    from sightline.config import Settings

    step = ClockCorrection.from_settings(Settings(clock_skew_tolerance_seconds=2.5))
    assert step.tolerance_ms == 2_500
