"""Daily salts: one per UTC day, yesterday's kept, nothing older than 48 hours on disk."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

from sightline.privacy.salts import DAY_MS, SALT_BYTES, FileSaltStore, day_of
from tests.unit.pipeline.conftest import NOW


class Clock:
    """A clock the test moves by hand (seconds, like time.time)."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> float:
        return self.now_ms / 1000

    def advance(self, ms: int) -> None:
        self.now_ms += ms


def salt_days(directory: Path) -> list[int]:
    """Days (since the epoch) of the salt files on disk."""
    days = []
    for name in os.listdir(directory):
        if name.endswith(".salt"):
            date = dt.date.fromisoformat(name.removesuffix(".salt"))
            days.append((date - dt.date(1970, 1, 1)).days)
    return sorted(days)


def test_a_salt_is_made_for_the_day_and_kept_private(tmp_path: Path) -> None:
    store = FileSaltStore(tmp_path / "salts", clock=Clock(NOW))
    salts = store.salts()
    assert salts.day == day_of(NOW)
    assert len(salts.current) == SALT_BYTES
    assert salts.previous is None
    files = list((tmp_path / "salts").iterdir())
    assert [f.name for f in files] == ["2026-03-14.salt"]
    assert files[0].read_bytes() == salts.current
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "salts").stat().st_mode) == 0o700
    # Same day, same salt, also for a second store on the same directory (a restart).
    assert store.salts().current == salts.current
    assert FileSaltStore(tmp_path / "salts").salts(NOW + 3_600_000).current == salts.current


def test_rotation_keeps_yesterday_and_deletes_older(tmp_path: Path) -> None:
    clock = Clock(NOW)
    directory = tmp_path / "salts"
    store = FileSaltStore(directory, clock=clock)
    seen: list[bytes] = []
    for hour in range(
        24 * 6
    ):  # six days from a Saturday afternoon, checked every hour as the pipeline's timer does
        salts = store.rotate()
        today = day_of(clock.now_ms)
        assert salts.day == today
        if not seen or seen[-1] != salts.current:
            seen.append(salts.current)
        if len(seen) > 1:
            assert salts.previous == seen[-2]
        days = salt_days(directory)
        assert days[-1] == today
        assert all(day >= today - 1 for day in days), days
        # No salt on disk is older than 48 hours (its day began at most 48 h ago).
        assert all(clock.now_ms - day * DAY_MS < 2 * DAY_MS for day in days)
        clock.advance(3_600_000)
        del hour
    assert len(seen) == 7 and len(set(seen)) == 7  # 15:09 on day 0 to 14:09 on day 6


def test_idle_days_leave_no_old_salt_behind(tmp_path: Path) -> None:
    clock = Clock(NOW)
    directory = tmp_path / "salts"
    store = FileSaltStore(directory, clock=clock)
    first = store.salts()
    clock.advance(5 * DAY_MS)  # nobody visits for five days
    salts = store.rotate()
    assert salts.previous is None
    assert salts.current != first.current
    assert salt_days(directory) == [day_of(clock.now_ms)]


def test_salts_from_a_wrong_clock_far_ahead_are_deleted(tmp_path: Path) -> None:
    directory = tmp_path / "salts"
    FileSaltStore(directory).salts(NOW + 400 * DAY_MS)  # the clock was a year ahead
    FileSaltStore(directory).salts(NOW + DAY_MS)  # tomorrow: another process past midnight
    store = FileSaltStore(directory)
    store.salts(NOW)
    assert salt_days(directory) == [day_of(NOW), day_of(NOW) + 1]


def test_damaged_salt_file_is_replaced(tmp_path: Path) -> None:
    directory = tmp_path / "salts"
    store = FileSaltStore(directory)
    store.salts(NOW)
    path = directory / "2026-03-14.salt"
    path.write_bytes(b"torn")
    salts = FileSaltStore(directory).salts(NOW)
    assert len(salts.current) == SALT_BYTES
    assert path.read_bytes() == salts.current


def test_stale_temporary_files_are_removed(tmp_path: Path) -> None:
    directory = tmp_path / "salts"
    directory.mkdir()
    stale = directory / ".2026-03-14.salt.abc.tmp"
    stale.write_bytes(b"x" * SALT_BYTES)
    os.utime(stale, (1, 1))
    FileSaltStore(directory).salts(NOW)
    assert not stale.exists()
    assert [p.name for p in directory.iterdir()] == ["2026-03-14.salt"]
