"""Data-subject access: one zip archive of everything stored about a visitor or a user.

The archive holds, for every tier that has records of the subject, ``<tier>.json`` (the
records as they are stored, times in ISO 8601 UTC) and ``<tier>.csv`` (the same, one
row per record, nested values as JSON), and ``manifest.json``: the subject, the sites
and tiers searched, and how many records each tier held (tier -> count, zero included).
Rollups are not exported: they are per-day aggregates that hold no identifier.
"""

from __future__ import annotations

import csv
import io
import time
import zipfile
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from sightline.privacy.audit import record_request

if TYPE_CHECKING:
    from sightline.privacy.service import PrivacyService, Subject

MANIFEST = "manifest.json"
_json = msgspec.json.Encoder(order="sorted")


def collect_records(
    service: PrivacyService, subject: Subject
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """Every tier's records of the subject (all sites in scope), and tiers that failed."""
    found: dict[str, list[dict[str, Any]]] = {tier.name: [] for tier in service.registry}
    failures: dict[str, str] = {}
    for tier in service.registry:
        for site in subject.sites:
            try:
                records = tier.export_subject(site.id, subject.all_visitor_ids, subject.user_ids)
            except Exception as exc:  # reported in the manifest, never silently skipped
                failures[tier.name] = str(exc)
                continue
            found[tier.name].extend(records)
    return found, failures


def export_subject(
    service: PrivacyService, subject: Subject, actor: str
) -> tuple[bytes, dict[str, Any]]:
    """The archive's bytes and its manifest."""
    started = time.monotonic()
    # The writer waits meanwhile, so no event moves from the spool to the store between
    # the two reads (it would be counted twice or not at all).
    with service.writer_paused(forget_sessions=False):
        found, failures = collect_records(service, subject)
    counts = {name: len(records) for name, records in found.items()}
    manifest: dict[str, Any] = {
        "generatedAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "subject": subject.describe(),
        "searched": {
            "sites": [{"id": s.id, "domain": s.domain} for s in subject.sites],
            "tiers": list(found),
        },
        "found": counts,
        "failedTiers": failures,
        "files": [],
        "notes": (
            "Rollups (daily_stats, product_stats) are per-day aggregates without "
            "identifiers and are not part of a subject's data."
        ),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, records in found.items():
            if not records:
                continue
            archive.writestr(f"{name}.json", _json.encode(records))
            archive.writestr(f"{name}.csv", records_csv(records))
            manifest["files"] += [f"{name}.json", f"{name}.csv"]
        manifest["seconds"] = round(time.monotonic() - started, 3)
        archive.writestr(MANIFEST, msgspec.json.format(_json.encode(manifest)))
    record_request(
        service.store,
        service.key,
        actor=actor,
        action="privacy.export",
        visitor_ids=subject.all_visitor_ids,
        user_ids=subject.user_ids,
        details={"sites": [s.id for s in subject.sites], "found": counts},
    )
    return buffer.getvalue(), manifest


def records_csv(records: list[dict[str, Any]]) -> str:
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(c)) for c in columns])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return _json.encode(value).decode()
    return str(value)
