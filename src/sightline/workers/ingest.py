"""The writer: the single consumer that moves events from the transport to the store.

It takes a batch, drops events whose eventId it has stored recently, commits the rest
together with the transport checkpoint and their sessions, then acknowledges the batch.
Rollups of the days a batch touched are recomputed a few seconds later, in the same
thread, so every number stays exact under late and duplicate events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sightline.config import Settings
from sightline.events import Event
from sightline.metrics import Metrics
from sightline.privacy.audit import load_privacy_key
from sightline.privacy.tombstones import Tombstones
from sightline.stores.base import Store
from sightline.transport import Delivery, Transport
from sightline.workers.sessions import Sessionizer

log = logging.getLogger(__name__)

#: Rollups of touched days are refreshed at most this often (queries read the events
#: themselves, so this bounds only how stale the materialised DailyStats may be).
ROLLUP_INTERVAL = 15.0
#: Granularity of the "which local days did this batch touch" bookkeeping (15 minutes
#: covers every time zone offset in use).
_BUCKET_MS = 15 * 60 * 1000


class DedupeWindow:
    """Remembers the last ``size`` (site, eventId) keys, in two generations."""

    def __init__(self, size: int) -> None:
        self.half = max(1, size // 2)
        self.current: set[int] = set()
        self.previous: set[int] = set()

    def __contains__(self, key: int) -> bool:
        return key in self.current or key in self.previous

    def add(self, key: int) -> None:
        self.current.add(key)
        if len(self.current) >= self.half:
            self.previous, self.current = self.current, set()


def event_key(site_id: str, event_id: str) -> int:
    return hash((site_id, event_id))


class Writer:
    def __init__(
        self,
        store: Store,
        transport: Transport,
        settings: Settings,
        metrics: Metrics,
        *,
        shared: bool = False,
    ) -> None:
        self.store = store
        self.transport = transport
        self.settings = settings
        self.metrics = metrics
        self.goals = list(settings.conversion_events)
        self.dedupe = DedupeWindow(settings.dedupe_window)
        #: Other writers store events of the same sessions (workers of a shared transport):
        #: sessions are then looked up in the store for every batch, never remembered.
        self.shared = shared
        self.sessions = self._sessionizer()
        self._dirty: set[tuple[str, int]] = set()
        self._last_rollup = 0.0
        self._zones: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpoint_name = f"transport:{transport.name}"
        #: Called with each committed batch's new events (e.g. the Redis hot store);
        #: a listener's failure is logged, never retried.
        self.listeners: list[Callable[[list[Event]], None]] = []
        #: Erased subjects: their events still in flight are discarded here, unstored.
        self.tombstones = Tombstones(
            store, load_privacy_key(settings, store), settings.tombstone_days
        )
        #: Held while a batch is written; an erasure holds it to let no batch slip past.
        self.write_lock = threading.RLock()

    def _sessionizer(self) -> Sessionizer:
        return Sessionizer(
            self.settings.session_timeout_minutes * 60_000,
            self.store.session_spans,
            self.store.session_starts,
        )

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        for site_id, event_id in self.store.recent_event_keys(self.settings.dedupe_window):
            self.dedupe.add(event_key(site_id, event_id))
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Drain what the transport holds, then stop. A shared transport (redis, rabbitmq)
        first stops handing out new messages: the writer stores and acknowledges what it
        was given, while other workers take the rest."""
        stop_receiving: Callable[[], None] | None = getattr(self.transport, "stop_receiving", None)
        if stop_receiving is not None:
            stop_receiving()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the loop ----------------------------------------------------------------------

    def _run(self) -> None:
        # Gather for up to writer_flush_ms after the first event: a commit has a fixed
        # cost (the session merge), so a few large commits beat many small ones.
        wait = self.settings.writer_flush_ms / 1000
        while True:
            delivery = self.transport.receive(self.settings.writer_batch_events, wait, linger=wait)
            if delivery is not None:
                self._write_with_retry(delivery)
            elif self._stop.is_set():
                break
            if self._dirty and time.monotonic() - self._last_rollup >= ROLLUP_INTERVAL:
                with self.write_lock:
                    self.refresh_rollups()
        if self._dirty:
            with self.write_lock:
                self.refresh_rollups()

    def _write_with_retry(self, delivery: Delivery) -> None:
        self.write(delivery)

    def _commit(
        self,
        events: list[Event],
        checkpoint: tuple[str, str] | None,
        merges: list[tuple[str, str, str]],
    ) -> None:
        """Commit until it works: the delivery stays unacknowledged meanwhile."""
        extra = {"merges": merges} if merges else {}
        delay = 0.1
        while True:
            try:
                self.store.write_events(events, checkpoint=checkpoint, goals=self.goals, **extra)
                return
            except Exception:
                log.exception("writer: commit failed; retrying in %.1fs", delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def write(self, delivery: Delivery) -> None:
        with self.write_lock:
            self._write(delivery)

    def _write(self, delivery: Delivery) -> None:
        fresh: list[Event] = []
        seen_now: set[int] = set()
        events = self.tombstones.keep(delivery.events)
        if len(events) != len(delivery.events):
            self.metrics.erased.inc(len(delivery.events) - len(events))
        for event in events:
            key = event_key(event.site_id, event.event_id)
            if key in self.dedupe or key in seen_now:
                continue
            seen_now.add(key)
            fresh.append(event)
        duplicates = len(events) - len(fresh)
        if self.shared:
            self.sessions = self._sessionizer()
        self.sessions.assign(fresh)
        merges = self.sessions.take_merges()
        started = time.perf_counter()
        checkpoint = (
            (self.checkpoint_name, delivery.checkpoint) if delivery.checkpoint is not None else None
        )
        self._commit(fresh, checkpoint, merges)
        self.metrics.write_latency.observe(time.perf_counter() - started)
        self.metrics.write_batch.observe(len(fresh))
        for key in seen_now:
            self.dedupe.add(key)
        for event in fresh:
            self._dirty.add((event.site_id, event.timestamp // _BUCKET_MS))
        self.transport.ack(delivery)
        self.metrics.written.inc(len(fresh))
        if duplicates:
            self.metrics.duplicates.inc(duplicates)
        for listener in self.listeners:
            try:
                listener(fresh)
            except Exception:
                log.exception("writer: a listener failed")

    def refresh_rollups(self) -> None:
        dirty, self._dirty = self._dirty, set()
        self._last_rollup = time.monotonic()
        days: set[tuple[str, date]] = set()
        for site_id, bucket in dirty:
            tz = self._zone(site_id)
            start = datetime.fromtimestamp(bucket * _BUCKET_MS / 1000, UTC)
            end = datetime.fromtimestamp(((bucket + 1) * _BUCKET_MS - 1) / 1000, UTC)
            zone = ZoneInfo(tz)
            days.add((site_id, start.astimezone(zone).date()))
            days.add((site_id, end.astimezone(zone).date()))
        try:
            self.store.refresh_rollups(days, self.goals)
        except Exception:
            log.exception("writer: rollup refresh failed; will retry")
            self._dirty |= dirty

    def _zone(self, site_id: str) -> str:
        zone = self._zones.get(site_id)
        if zone is None:
            site = self.store.get_site(site_id)
            zone = site.timezone if site else "UTC"
            self._zones[site_id] = zone
        return zone
