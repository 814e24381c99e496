"""Erasure: every record of a visitor or user id, gone from every tier.

In order, for a subject (visitor ids, user ids, and the visitor ids their user ids
carried):

1. **Tombstones** are written first, so events of the subject still travelling (local
   spool queue, Redis stream, RabbitMQ queue, outbox) are discarded by the writer when
   they arrive, never stored (:mod:`sightline.privacy.tombstones`).
2. With the embedded writer **paused** (no batch can slip between the steps), every
   tier erases the subject on every site in scope: warm-store tables (session_stats and
   the like first, events last), the spool files (scrubbed in place), the Redis hot
   store (and the shared data version, so result caches miss), the in-process caches,
   the cold Parquet tier once registered.
3. **Rollups** (DailyStats, ProductStats) of every local day the subject's events fell
   on are recomputed from the remaining events.
4. On DuckDB, the **file bytes** are purged (:mod:`sightline.privacy._duckdb_bytes`)
   and checked.
5. With a shared broker (workers in other processes), the warm tiers are swept once more
   after the workers have re-read the tombstones, for a batch a worker was committing
   as the erasure began.
6. One **audit** entry: who, when, the scope and the counts per tier; the subject only
   as keyed hashes.

The call returns when all of this is done; its time is bounded by the subject's row
groups, the file's free space and one tombstone refresh, and is reported.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sightline.privacy import _duckdb_bytes
from sightline.privacy.audit import record_request
from sightline.privacy.tiers import WarmTable
from sightline.privacy.tombstones import REFRESH_SECONDS

if TYPE_CHECKING:
    from sightline.privacy.service import PrivacyService, Subject

log = logging.getLogger(__name__)

#: Ids shorter than this are not searched for in the file's bytes (they occur by chance).
MIN_VERIFIED_ID = 12


def erase_subject(service: PrivacyService, subject: Subject, actor: str) -> dict[str, Any]:
    started = time.monotonic()
    store = service.store
    visitors, users = subject.all_visitor_ids, subject.user_ids
    erased_at = service.tombstones.add(
        [] if subject.everywhere else [s.id for s in subject.sites], visitors, users
    )
    counts: dict[str, int] = {tier.name: 0 for tier in service.registry}
    failures: dict[str, str] = {}
    byte_purge: dict[str, Any] | None = None
    days: set[tuple[str, date]] = set()
    with service.writer_paused():
        days = _affected_days(service, subject)
        ranges = _duckdb_ranges(service, subject) if store.engine == "duckdb" else {}
        _erase_tiers(service, subject, counts, failures)
        store.refresh_rollups(days, list(service.settings.conversion_events), cold=service.cold)
        if store.engine == "duckdb":
            ids = [i for i in (*visitors, *users) if len(i) >= MIN_VERIFIED_ID]
            path: Path = store.path  # type: ignore[attr-defined]
            byte_purge = _duckdb_bytes.purge_bytes(store.cursor(), path, ranges, ids)
    if service.settings.transport != "local":
        # Workers elsewhere re-read the tombstones within REFRESH_SECONDS: sweep the warm
        # store again for a batch one of them was committing as the erasure began.
        time.sleep(REFRESH_SECONDS + 0.5)
        _erase_tiers(service, subject, counts, failures, warm_only=True)
        store.refresh_rollups(days, list(service.settings.conversion_events), cold=service.cold)
    report: dict[str, Any] = {
        "erased": not failures,
        "erasedAt": datetime.fromtimestamp(erased_at / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "subject": subject.describe(),
        "tiers": counts,
        "failedTiers": failures,
        "rollupsRecomputed": len(days),
        "seconds": round(time.monotonic() - started, 3),
    }
    if byte_purge is not None:
        report["storeFile"] = byte_purge
    record_request(
        store,
        service.key,
        actor=actor,
        action="privacy.erase",
        visitor_ids=visitors,
        user_ids=users,
        details={
            "sites": [s.id for s in subject.sites],
            "allSites": subject.everywhere,
            "tiers": counts,
            "failedTiers": failures,
            "rollupsRecomputed": len(days),
            "seconds": report["seconds"],
        },
    )
    return report


def _erase_tiers(
    service: PrivacyService,
    subject: Subject,
    counts: dict[str, int],
    failures: dict[str, str],
    *,
    warm_only: bool = False,
) -> None:
    visitors, users = subject.all_visitor_ids, subject.user_ids
    for tier in service.registry:
        if warm_only and not isinstance(tier, WarmTable):
            continue
        for site in subject.sites:
            try:
                counts[tier.name] = counts.get(tier.name, 0) + tier.erase_subject(
                    site.id, visitors, users
                )
            except Exception as exc:  # one failing tier must not stop the others
                log.exception("erasure: tier %s failed on site %s", tier.name, site.id)
                failures[tier.name] = str(exc)


def _affected_days(service: PrivacyService, subject: Subject) -> set[tuple[str, date]]:
    """(site id, local day) of every stored event of the subject, warm or archived."""
    days: set[tuple[str, date]] = set()
    events = service.registry.get("events")
    if not isinstance(events, WarmTable):
        return days
    for site in subject.sites:
        zone = ZoneInfo(site.timezone)
        rows = service.store.query(
            f"SELECT DISTINCT ts FROM events WHERE {events.where()}",
            events.params(site.id, subject.all_visitor_ids, subject.user_ids),
        )
        if service.cold is not None:
            rows += [
                (row["ts"],)
                for row in service.cold.export_subject(
                    site.id, subject.all_visitor_ids, subject.user_ids
                )
            ]
        for (ts,) in rows:
            days.add((site.id, ts.replace(tzinfo=UTC).astimezone(zone).date()))
    return days


def _duckdb_ranges(service: PrivacyService, subject: Subject) -> dict[str, list[tuple[int, int]]]:
    """Row groups of every warm table that hold the subject's rows (before deleting)."""
    cur = service.store.cursor()
    _duckdb_bytes.checkpoint(cur)
    ranges: dict[str, list[tuple[int, int]]] = {}
    for tier in service.registry:
        if not isinstance(tier, WarmTable):
            continue
        found: set[tuple[int, int]] = set()
        for site in subject.sites:
            params = tier.params(site.id, subject.all_visitor_ids, subject.user_ids)
            where = tier.where()
            found.update(
                _duckdb_bytes.affected_ranges(cur, tier.table, where, _bind(where, params))
            )
        if found:
            ranges[tier.table] = sorted(found)
    return ranges


def _bind(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    from sightline.stores.duckdb import bind

    bound = bind(sql, params)
    assert isinstance(bound, dict)
    return bound
