"""Tombstones: erased subjects, checked by the writer before anything is stored.

An erasure deletes what the tiers hold, but events of the subject may still be on their
way: in the local spool's in-memory queue, in a Redis stream, a RabbitMQ queue or a
collector's outbox. The erasure first writes a tombstone per erased id (its keyed hash,
see :mod:`sightline.privacy.audit`, with the time of the erasure); every writer loads
them and discards an event of a tombstoned subject that the collector received before
that time. Events received after the erasure are new data and are stored as usual.

Tombstones are kept ``tombstone_days`` (long enough for anything queued to be delivered
or dead-lettered). Writers re-read them every :data:`REFRESH_SECONDS`; the embedded
writer is told at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sightline.events import Event
from sightline.privacy.audit import USER, VISITOR, subject_hash
from sightline.stores.base import Store

log = logging.getLogger(__name__)

#: How often a writer re-reads the tombstones written by other processes.
REFRESH_SECONDS = 2.0
#: Event type of the filler that replaces erased events inside spool records.
ERASED_EVENT_TYPE = "$erased"


class Tombstones:
    def __init__(self, store: Store, key: bytes, keep_days: int = 30) -> None:
        self.store = store
        self.key = key
        self.keep_days = keep_days
        #: (kind, id hash, site id or "") -> erased at (ms).
        self._entries: dict[tuple[str, str, str], int] = {}
        self._loaded_at = -1e9
        self._lock = threading.Lock()

    # -- writing -----------------------------------------------------------------------

    def add(
        self, site_ids: Sequence[str], visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> int:
        """Tombstone the subject now (``site_ids`` empty: every site); returns the time
        of the erasure (ms)."""
        now = int(time.time() * 1000)
        at = datetime.fromtimestamp(now / 1000, UTC).replace(tzinfo=None)
        rows = [
            (kind, subject_hash(self.key, kind, value), site)
            for kind, values in ((VISITOR, visitor_ids), (USER, user_ids))
            for value in values
            for site in (site_ids or [""])
        ]
        for kind, digest, site in rows:
            self.store.query(
                "DELETE FROM privacy_tombstones WHERE kind = $kind AND id_hash = $hash "
                "AND site_id = $site",
                {"kind": kind, "hash": digest, "site": site},
            )
            self.store.query(
                "INSERT INTO privacy_tombstones VALUES ($kind, $hash, $site, $at)",
                {"kind": kind, "hash": digest, "site": site, "at": at},
            )
        with self._lock:
            for kind, digest, site in rows:
                self._entries[(kind, digest, site)] = now
        return now

    def prune(self, now_ms: int | None = None) -> int:
        """Forget tombstones older than ``keep_days``; returns how many went."""
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        cutoff = datetime.fromtimestamp(now / 1000, UTC).replace(tzinfo=None) - timedelta(
            days=self.keep_days
        )
        gone = self.store.query(
            "DELETE FROM privacy_tombstones WHERE erased_at < $cutoff RETURNING kind",
            {"cutoff": cutoff},
        )
        self.refresh()
        return len(gone)

    # -- reading (the writer) ------------------------------------------------------------

    def refresh(self) -> None:
        try:
            rows = self.store.query(
                "SELECT kind, id_hash, site_id, erased_at FROM privacy_tombstones"
            )
        except Exception:  # the table may not exist on a store not yet migrated
            log.exception("tombstones: could not read them; keeping the last list")
            self._loaded_at = time.monotonic()
            return
        entries = {
            (r[0], r[1], r[2]): int(r[3].replace(tzinfo=UTC).timestamp() * 1000) for r in rows
        }
        with self._lock:
            self._entries = entries
            self._loaded_at = time.monotonic()

    def _maybe_refresh(self) -> None:
        if time.monotonic() - self._loaded_at >= REFRESH_SECONDS:
            self.refresh()

    def keep(self, events: list[Event]) -> list[Event]:
        """The events that are neither erased subjects' nor spool fillers."""
        self._maybe_refresh()
        entries = self._entries
        if not entries:
            return [e for e in events if e.event_type != ERASED_EVENT_TYPE]
        kept: list[Event] = []
        hashes: dict[tuple[str, str], str] = {}
        for event in events:
            if event.event_type == ERASED_EVENT_TYPE:
                continue
            if not self._erased(event, entries, hashes):
                kept.append(event)
        return kept

    def _erased(
        self,
        event: Event,
        entries: dict[tuple[str, str, str], int],
        hashes: dict[tuple[str, str], str],
    ) -> bool:
        for kind, value in ((VISITOR, event.visitor_id), (USER, event.user_id)):
            if not value:
                continue
            digest = hashes.get((kind, value))
            if digest is None:
                digest = hashes[(kind, value)] = subject_hash(self.key, kind, value)
            for site in (event.site_id, ""):
                erased_at = entries.get((kind, digest, site))
                if erased_at is not None and event.server_timestamp <= erased_at:
                    return True
        return False
