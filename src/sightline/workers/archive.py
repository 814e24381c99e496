"""The archiver: moves events older than the warm window to the cold tier.

For each (site, UTC day) wholly older than ``warm_days`` that still has events in the
warm store, one part file is written and committed (docs/cold.md):

1. read the day's events from the warm store;
2. write them to Parquet (a temporary name, fsync, atomic rename; on S3 one PUT) and
   read the file back, checking its row count;
3. in one warm-store transaction, record the file in the ``cold_files`` manifest and
   delete exactly the events read back from it (their count must match);

Killed before step 3 commits, the file is unrecorded garbage that the next run removes
(:meth:`ColdStore.reconcile`) and the events are still warm; killed after, the events are
cold only. Either way every event is counted once. Rollups (daily_stats, product_stats,
session_stats) stay in the warm store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from sightline.stores.parquet import ColdError, ColdFile, ColdStore, Manifest

if TYPE_CHECKING:
    from sightline.config import Settings

log = logging.getLogger(__name__)

#: Called at each step of a day's archiving: (step name, details). Steps: ``written``
#: (file durable, not yet recorded), ``committed`` (recorded, warm rows deleted), ``day``
#: (the day is done; details are its progress line).
StepHook = Callable[[str, dict[str, Any]], None]


class ArchiveStore(Manifest, Protocol):
    """The warm store as the archiver uses it."""

    def query(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]: ...

    def stream(
        self, sql: str, params: dict[str, Any], batch_rows: int = 10_000
    ) -> Iterator[pa.RecordBatch]: ...


@dataclass(frozen=True, slots=True)
class PendingDay:
    site_id: str
    day: date
    rows: int

    def json(self) -> dict[str, Any]:
        return {"site": self.site_id, "day": self.day.isoformat(), "rows": self.rows}


def effective_warm_days(settings: Settings) -> int:
    """``warm_days``, but never less than the oldest event the collector accepts
    (``max_event_age_hours``) plus a day: a day is archived only once no new event can
    arrive for it, so its sessions and rollups, which stay warm, never need its events
    again."""
    return max(settings.warm_days, -(-settings.max_event_age_hours // 24) + 1)


def cutoff_day(warm_days: int, now: datetime | None = None) -> date:
    """The first UTC day kept warm: days before it are archived."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).date() - timedelta(days=warm_days)


class Archiver:
    def __init__(self, store: ArchiveStore, cold: ColdStore, warm_days: int) -> None:
        if warm_days < 1:
            raise ValueError("warm_days must be at least 1")
        self.store = store
        self.cold = cold
        self.warm_days = warm_days

    def plan(self, now: datetime | None = None) -> list[PendingDay]:
        """The (site, day) pairs with warm events older than the warm window, oldest first."""
        first_warm = datetime.combine(cutoff_day(self.warm_days, now), datetime.min.time())
        rows = self.store.query(
            "SELECT site_id, CAST(ts AS DATE) AS day, count(*) FROM events "
            "WHERE ts < $cutoff GROUP BY ALL ORDER BY day, site_id",
            {"cutoff": first_warm},
        )
        return [PendingDay(r[0], r[1], int(r[2])) for r in rows]

    def archive_day(
        self, site_id: str, day: date, on_step: StepHook | None = None
    ) -> dict[str, Any]:
        """Archive one (site, UTC day) whose events are all older than the warm window."""
        if day >= cutoff_day(self.warm_days):
            raise ColdError(f"{day} is inside the warm window ({self.warm_days} days)")
        started = time.monotonic()
        lo = datetime.combine(day, datetime.min.time())
        with self.cold.lock:
            batches = list(
                self.store.stream(
                    "SELECT * FROM events WHERE site_id = $site AND ts >= $lo AND ts < $hi",
                    {"site": site_id, "lo": lo, "hi": lo + timedelta(days=1)},
                    100_000,
                )
            )
            rows = pa.Table.from_batches(batches) if batches else None
            if rows is None or rows.num_rows == 0:
                return {"site": site_id, "day": day.isoformat(), "rows": 0, "bytes": 0}
            entry, ids = self.cold.write_part(site_id, day, rows)
            if on_step:
                on_step("written", {"path": entry.path, "rows": entry.rows})
            try:
                self.store.commit_archive(entry, ids)
            except BaseException:
                self.cold.remove(entry.path)
                raise
            if on_step:
                on_step("committed", {"path": entry.path, "rows": entry.rows})
        return _line(entry, time.monotonic() - started)

    def run(self, on_step: StepHook | None = None, now: datetime | None = None) -> dict[str, Any]:
        """Reconcile, then archive every pending day; returns a summary."""
        started = time.monotonic()
        with self.cold.lock:
            removed = self.cold.reconcile()
            pending = self.plan(now)
            done: list[dict[str, Any]] = []
            failed: list[dict[str, Any]] = []
            for item in pending:
                try:
                    line = self.archive_day(item.site_id, item.day, on_step)
                except ColdError as exc:
                    log.warning("archiving %s %s failed: %s", item.site_id, item.day, exc)
                    failed.append({**item.json(), "error": str(exc)})
                    continue
                done.append(line)
                if on_step:
                    on_step("day", line)
        return {
            "cutoff": cutoff_day(self.warm_days, now).isoformat(),
            "days": len(done),
            "rows": sum(d["rows"] for d in done),
            "bytes": sum(d["bytes"] for d in done),
            "removedUnrecorded": len(removed),
            "failed": failed,
            "seconds": round(time.monotonic() - started, 3),
        }


def _line(entry: ColdFile, seconds: float) -> dict[str, Any]:
    return {
        "site": entry.site_id,
        "day": entry.day.isoformat(),
        "rows": entry.rows,
        "bytes": entry.bytes,
        "path": entry.path,
        "seconds": round(seconds, 3),
    }


# -- operations the CLI runs here or through the running server ------------------------


class ArchiveRequestError(ValueError):
    """A malformed archive operation (a client error, not a failed archive)."""


def _archive_day(archiver: Archiver, args: dict[str, Any]) -> dict[str, Any]:
    try:
        day = date.fromisoformat(str(args["day"]))
    except ValueError:
        raise ArchiveRequestError(f"day is not an ISO date: {str(args['day'])[:40]!r}") from None
    return archiver.archive_day(str(args["site"]), day)


#: name -> (archiver, args) -> JSON result; the control endpoint serves the same ones.
OPERATIONS: dict[str, Callable[[Archiver, dict[str, Any]], Any]] = {
    "archive-plan": lambda a, args: {
        "cutoff": cutoff_day(a.warm_days).isoformat(),
        "removedUnrecorded": a.cold.reconcile(),
        "pending": [p.json() for p in a.plan()],
    },
    "archive-day": _archive_day,
    "archive-status": lambda a, args: a.cold.summary(),
}
