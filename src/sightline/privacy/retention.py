"""Retention: raw events older than a site's ``retention_days`` leave every tier.

Per site (``retention_days`` > 0): events whose time is older than the cutoff
(now - N days) and sessions that ended before it are deleted; DailyStats and
ProductStats rows are kept, so dashboards keep their history. Tombstones older than
``tombstone_days`` are forgotten in the same run.

Retention is how long raw events are kept at all. With a cold tier, events move there
after ``warm_days`` (the archiver) and retention deletes the archived days before the
cutoff's day too (:attr:`PrivacyService.expire_cold`): whole UTC days, so an archived
event outlives the cutoff by less than a day.

The server runs the job every ``retention_interval_minutes``; ``sightline retention``
runs it at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sightline.admin import AdminError

if TYPE_CHECKING:
    from sightline.privacy.service import PrivacyService

log = logging.getLogger(__name__)

#: Called with (site id, first day to keep) to delete a site's archived days before it;
#: returns how many events it deleted. The cold tier sets it.
ColdExpiry = Callable[[str, date], int]


def minimum_retention_days(max_event_age_hours: int) -> int:
    """Retention must outlast the oldest event the collector accepts, or a late event
    would make the writer recompute a day's rollups from a partial set of events."""
    return max_event_age_hours // 24 + 2


def apply_retention(
    service: PrivacyService, site: str | None = None, actor: str = "retention"
) -> dict[str, Any]:
    started = time.monotonic()
    store = service.store
    if site:
        found = store.get_site(site.strip()) or store.get_site(site.strip().lower())
        if found is None:
            raise AdminError("unknown_site", f"no site {site!r}", 404)
        sites = [found]
    else:
        sites = store.list_sites()
    expire_cold = service.expire_cold
    now = datetime.now(UTC).replace(tzinfo=None)
    results: list[dict[str, Any]] = []
    for s in sites:
        if s.retention_days <= 0:
            continue
        cutoff = now - timedelta(days=s.retention_days)
        archived = expire_cold(s.id, cutoff.date()) if expire_cold is not None else 0
        with service.writer_paused():
            events = store.query(
                "DELETE FROM events WHERE site_id = $site AND ts < $cutoff RETURNING site_id",
                {"site": s.id, "cutoff": cutoff},
            )
            sessions = store.query(
                "DELETE FROM session_stats WHERE site_id = $site AND ended_at < $cutoff "
                "RETURNING site_id",
                {"site": s.id, "cutoff": cutoff},
            )
        results.append(
            {
                "site": s.id,
                "domain": s.domain,
                "retentionDays": s.retention_days,
                "cutoff": cutoff.isoformat(timespec="seconds") + "Z",
                "archivedEventsDeleted": archived,
                "eventsDeleted": len(events),
                "sessionsDeleted": len(sessions),
            }
        )
    tombstones = service.tombstones.prune()
    report = {
        "sites": results,
        "tombstonesForgotten": tombstones,
        "seconds": round(time.monotonic() - started, 3),
    }
    if any(
        r["eventsDeleted"] or r["sessionsDeleted"] or r["archivedEventsDeleted"] for r in results
    ):
        store.record_audit(actor, "privacy.retention", "", {"sites": results})
    return report


def set_site_privacy(
    service: PrivacyService,
    site: str,
    consent_mode: str | None,
    retention_days: int | None,
    actor: str,
) -> dict[str, Any]:
    """Change a site's consent mode and/or retention; returns the site's privacy settings."""
    from sightline.privacy.consent import CONSENT_MODES

    store = service.store
    found = store.get_site(site.strip()) or store.get_site(site.strip().lower())
    if found is None:
        raise AdminError("unknown_site", f"no site {site!r}", 404)
    mode = consent_mode if consent_mode is not None else found.consent_mode
    days = retention_days if retention_days is not None else found.retention_days
    if mode not in CONSENT_MODES:
        raise AdminError(
            "invalid_consent_mode", f"consentMode is one of {', '.join(CONSENT_MODES)}"
        )
    least = minimum_retention_days(service.settings.max_event_age_hours)
    if days < 0 or 0 < days < least:
        raise AdminError(
            "invalid_retention",
            f"retentionDays is 0 (keep for ever) or at least {least} (events up to "
            f"{service.settings.max_event_age_hours} hours old are still accepted)",
        )
    store.set_site_privacy(found.id, mode, days)
    store.record_audit(
        actor, "site.privacy", found.id, {"consentMode": mode, "retentionDays": days}
    )
    return site_privacy_json(found.id, found.domain, mode, days)


def site_privacy_json(site_id: str, domain: str, mode: str, days: int) -> dict[str, Any]:
    return {"site": site_id, "domain": domain, "consentMode": mode, "retentionDays": days}
