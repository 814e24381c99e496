"""Local time: offsets, bucket keys and labels agree with the zone database, across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from sightline.query.calendar import Buckets, offsets_between, utc_bounds
from sightline.query.model import Granularity, Period, QueryError

ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Asia/Kathmandu",  # +05:45
    "America/St_Johns",  # -03:30 with DST
    "UTC",
]


def local_label(instant: datetime, tz: str, granularity: Granularity) -> str:
    """The wall-clock start of the instant's minute/hour, with the offset in effect."""
    local = instant.replace(tzinfo=UTC).astimezone(ZoneInfo(tz))
    offset = local.utcoffset()
    assert offset is not None
    fixed = local.astimezone(timezone(offset))
    if granularity is Granularity.MINUTE:
        return fixed.replace(second=0, microsecond=0).isoformat()
    if granularity is Granularity.HOUR:
        return fixed.replace(minute=0, second=0, microsecond=0).isoformat()
    day = local.date()
    if granularity is Granularity.DAY:
        return day.isoformat()
    if granularity is Granularity.WEEK:
        return (day - timedelta(days=day.weekday())).isoformat()
    return day.replace(day=1).isoformat()


@pytest.mark.parametrize("tz", ZONES)
def test_offsets_change_exactly_when_the_zone_database_says(tz: str) -> None:
    lo, hi = utc_bounds(Period(date(2026, 1, 1), date(2026, 12, 31), tz))
    offsets = offsets_between(tz, lo, hi)
    zone = ZoneInfo(tz)
    t = lo
    while t < hi:
        got = offsets.at(t)
        assert t.replace(tzinfo=UTC).astimezone(zone).utcoffset() == timedelta(seconds=got)
        t += timedelta(minutes=17)
    for when, _ in offsets.changes:
        before = (when - timedelta(seconds=1)).replace(tzinfo=UTC).astimezone(zone).utcoffset()
        after = when.replace(tzinfo=UTC).astimezone(zone).utcoffset()
        assert before != after


@pytest.mark.parametrize("granularity", list(Granularity))
@pytest.mark.parametrize("tz", ZONES)
def test_bucket_keys_and_labels_match_local_time(tz: str, granularity: Granularity) -> None:
    # Around both 2026 transitions of most zones (March/April and October/November).
    for start in (date(2026, 3, 6), date(2026, 10, 3)):
        end = start + timedelta(days=2 if granularity is Granularity.MINUTE else 40)
        period = Period(start, end, tz)
        buckets = Buckets.of(period, granularity)
        keys = buckets.all_keys()
        labels = [buckets.label(k) for k in keys]
        assert len(set(labels)) == len(labels)
        step = timedelta(minutes=1 if granularity is Granularity.MINUTE else 7)
        t = buckets.lo
        seen = []
        while t < buckets.hi:
            key = buckets.key_of(t)
            assert buckets.label(key) == local_label(t, tz, granularity), t
            if not seen or seen[-1] != key:
                seen.append(key)
            t += step
        assert seen == keys


def test_the_repeated_hour_is_two_buckets_and_the_skipped_hour_none() -> None:
    fall = Buckets.of(
        Period(date(2026, 11, 1), date(2026, 11, 1), "America/New_York"), Granularity.HOUR
    )
    labels = [fall.label(k) for k in fall.all_keys()]
    assert len(labels) == 25
    assert "2026-11-01T01:00:00-04:00" in labels and "2026-11-01T01:00:00-05:00" in labels
    spring = Buckets.of(
        Period(date(2026, 3, 29), date(2026, 3, 29), "Europe/Berlin"), Granularity.HOUR
    )
    labels = [spring.label(k) for k in spring.all_keys()]
    assert len(labels) == 23
    assert not any(label.startswith("2026-03-29T02:") for label in labels)


def test_minute_series_are_bounded() -> None:
    with pytest.raises(QueryError, match="buckets"):
        Buckets.of(Period(date(2026, 1, 1), date(2026, 1, 31), "UTC"), Granularity.MINUTE)


def test_unknown_zones_are_a_query_error() -> None:
    with pytest.raises(QueryError):
        utc_bounds(Period(date(2026, 1, 1), date(2026, 1, 1), "Mars/Olympus"))
