"""Local time in a site's time zone: day bounds, UTC offsets and time buckets.

Timestamps are stored in UTC. A local time is the UTC time plus the zone's offset at that
instant; within a date range the offset changes only at a few known instants (daylight
saving transitions), found here once with the zone database, so engines only need plain
arithmetic (no time-zone support of their own, and the same answer on each engine).

Buckets are keyed by integers the SQL computes and this module turns into labels:

- minute, hour: the wall-clock start of the bucket in the UTC offset in effect, as the
  UTC instant it names (epoch seconds); the repeated hour when clocks go back is two
  buckets, labelled with their offsets (``01:00-04:00`` and ``01:00-05:00``);
- day: local days since 1970-01-01; week: Monday-based local weeks since 1969-12-29;
- month: the index of the local month within the range.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sightline.query.model import MAX_BUCKETS, Granularity, Period, QueryError

EPOCH_DAY = date(1970, 1, 1)
#: 1969-12-29, the Monday that starts week 0.
EPOCH_MONDAY = date(1969, 12, 29)
SECONDS = {Granularity.MINUTE: 60, Granularity.HOUR: 3600, Granularity.DAY: 86_400}


def zone_of(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (KeyError, ValueError):
        raise QueryError("invalid_timezone", f"unknown time zone {tz[:64]!r}") from None


def utc_bounds(period: Period) -> tuple[datetime, datetime]:
    """[lo, hi): the UTC instants (naive) where the period's first day starts and the day
    after its last starts."""
    zone = zone_of(period.tz)
    lo = datetime.combine(period.start, datetime.min.time(), zone).astimezone(UTC)
    hi = datetime.combine(period.end + timedelta(days=1), datetime.min.time(), zone)
    return lo.replace(tzinfo=None), hi.astimezone(UTC).replace(tzinfo=None)


def offset_at(zone: ZoneInfo, instant: datetime) -> int:
    """The zone's UTC offset in seconds at a naive UTC instant."""
    offset = instant.replace(tzinfo=UTC).astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


@dataclass(frozen=True, slots=True)
class Offsets:
    """The zone's offset over [lo, hi): ``first`` until ``changes[0][0]``, and so on."""

    first: int
    #: (naive UTC instant, offset from then on), ascending.
    changes: tuple[tuple[datetime, int], ...]

    def at(self, instant: datetime) -> int:
        offset = self.first
        for when, value in self.changes:
            if instant < when:
                break
            offset = value
        return offset


@functools.lru_cache(maxsize=512)
def offsets_between(tz: str, lo: datetime, hi: datetime) -> Offsets:
    """Every offset change of ``tz`` in [lo, hi), to the second."""
    zone = zone_of(tz)
    first = offset_at(zone, lo)
    changes: list[tuple[datetime, int]] = []
    current = first
    step = timedelta(hours=6)
    t = lo
    while t < hi:
        nxt = min(t + step, hi)
        probe = nxt - timedelta(seconds=1) if nxt == hi else nxt
        value = offset_at(zone, probe)
        if value != current:
            # The first second in (t, probe] with the new offset.
            low, high = 0, int((probe - t).total_seconds())
            while low < high:
                mid = (low + high) // 2
                if offset_at(zone, t + timedelta(seconds=mid)) == current:
                    low = mid + 1
                else:
                    high = mid
            changes.append((t + timedelta(seconds=low), value))
            current = value
        t = nxt
    return Offsets(first, tuple(changes))


def epoch_seconds(instant: datetime) -> int:
    """Whole seconds since the epoch of a naive UTC instant (floored)."""
    return math.floor(instant.replace(tzinfo=UTC).timestamp())


@dataclass(frozen=True, slots=True)
class Buckets:
    """The time buckets of a period at one granularity."""

    granularity: Granularity
    period: Period
    lo: datetime
    hi: datetime
    offsets: Offsets
    #: Month buckets: naive UTC instants where the 2nd, 3rd… local month of the range starts.
    month_starts: tuple[datetime, ...] = ()

    @classmethod
    def of(cls, period: Period, granularity: Granularity) -> Buckets:
        lo, hi = utc_bounds(period)
        offsets = offsets_between(period.tz, lo, hi)
        months: list[datetime] = []
        if granularity is Granularity.MONTH:
            zone = zone_of(period.tz)
            day = date(period.start.year, period.start.month, 1)
            while True:
                day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
                if day > period.end:
                    break
                start = datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)
                months.append(start.replace(tzinfo=None))
        buckets = cls(granularity, period, lo, hi, offsets, tuple(months))
        if granularity in (Granularity.MINUTE, Granularity.HOUR):
            size = SECONDS[granularity]
            if (hi - lo).total_seconds() / size > MAX_BUCKETS:
                raise QueryError(
                    "too_many_buckets",
                    f"at most {MAX_BUCKETS} buckets per series: choose a coarser granularity "
                    "or a shorter range",
                )
        return buckets

    def key_of(self, instant: datetime) -> int:
        """The bucket of a naive UTC instant in [lo, hi) (what the SQL computes)."""
        g = self.granularity
        if g is Granularity.MONTH:
            return sum(1 for start in self.month_starts if instant >= start)
        offset = self.offsets.at(instant)
        local = epoch_seconds(instant) + offset
        if g is Granularity.DAY:
            return local // 86_400
        if g is Granularity.WEEK:
            return (local // 86_400 + 3) // 7
        size = SECONDS[g]
        return local // size * size - offset

    def all_keys(self) -> list[int]:
        """Every bucket of the period, in order (for zero-filling)."""
        g = self.granularity
        if g is Granularity.MONTH:
            return list(range(len(self.month_starts) + 1))
        if g in (Granularity.DAY, Granularity.WEEK):
            first, last = self.key_of(self.lo), self.key_of(self.hi - timedelta(seconds=1))
            return list(range(first, last + 1))
        keys: list[int] = []
        step = timedelta(seconds=min(SECONDS[g], 900))
        t = self.lo
        while t < self.hi:
            key = self.key_of(t)
            if not keys or keys[-1] != key:
                keys.append(key)
            t += step
        return keys

    def label(self, key: int) -> str:
        """ISO date of a day/week/month bucket's first day; ISO local time with offset of
        a minute/hour bucket's start."""
        g = self.granularity
        if g is Granularity.DAY:
            return (EPOCH_DAY + timedelta(days=key)).isoformat()
        if g is Granularity.WEEK:
            return (EPOCH_MONDAY + timedelta(days=7 * key)).isoformat()
        if g is Granularity.MONTH:
            start = self.period.start
            months = start.year * 12 + start.month - 1 + key
            return date(months // 12, months % 12 + 1, 1).isoformat()
        # key = wall-clock start - offset: find the offset that makes the start whole.
        size = SECONDS[g]
        at = datetime.fromtimestamp(key, UTC).replace(tzinfo=None)
        candidates = [
            self.offsets.at(at),
            self.offsets.first,
            *(v for _, v in self.offsets.changes),
        ]
        offset = next((o for o in candidates if (key + o) % size == 0), candidates[0])
        zone = timezone(timedelta(seconds=offset))
        return datetime.fromtimestamp(key + offset, UTC).replace(tzinfo=zone).isoformat()
