"""Which days a time-zone change recomputes, keeps and drops."""

from __future__ import annotations

from datetime import date

from sightline.query.daily import rollup_rebuild_plan

D = [date(2026, 3, day) for day in range(1, 8)]


def test_days_with_every_event_raw_are_recomputed_and_emptied_days_dropped() -> None:
    # Old zone: events on D1..D3; new zone: on D0..D2 (every UTC time moved back a day).
    stored = {D[1]: 5, D[2]: 4, D[3]: 2}
    recompute, kept = rollup_rebuild_plan({D[0]: 3, D[1]: 5, D[2]: 3}, stored, stored)
    assert recompute == [D[0], D[1], D[2]]
    assert kept == []  # D3's row goes: the rebuild deletes rows of days in neither list


def test_days_retention_emptied_keep_their_rows_and_are_not_recomputed() -> None:
    stored = {D[1]: 6, D[2]: 6, D[3]: 6, D[4]: 6}
    # Retention deleted D1, D2 and part of D3 (old zone); the new zone's D3 has 2 events.
    raw_before = {D[3]: 2, D[4]: 6}
    raw_new = {D[3]: 2, D[4]: 5, D[5]: 1}
    recompute, kept = rollup_rebuild_plan(raw_new, raw_before, stored)
    assert kept == [D[1], D[2], D[3]]
    assert recompute == [D[4], D[5]]


def test_rows_behind_the_raw_events_are_recomputed() -> None:
    # The writer has stored events whose rollups are not refreshed yet.
    recompute, kept = rollup_rebuild_plan({D[1]: 4}, {D[1]: 4}, {D[1]: 3})
    assert (recompute, kept) == ([D[1]], [])
