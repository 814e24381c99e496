"""Server-side sessionization: the inactivity rule, in any arrival order."""

from __future__ import annotations

import random

from sightline.events import Event
from sightline.workers.sessions import Sessionizer

MIN = 60_000


def event(visitor: str, minute: float, site: str = "s") -> Event:
    return Event(
        event_type="page_view",
        site_id=site,
        visitor_id=visitor,
        timestamp=int(1_700_000_000_000 + minute * MIN),
    )


def expected_sessions(events: list[Event], timeout: int = 30 * MIN) -> list[set[int]]:
    """Independent computation: sort each visitor's events, split at gaps > timeout."""
    groups: list[set[int]] = []
    by_visitor: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for index, e in enumerate(events):
        by_visitor.setdefault((e.site_id, e.visitor_id), []).append((e.timestamp, index))
    for items in by_visitor.values():
        items.sort()
        current: set[int] = set()
        last = None
        for ts, index in items:
            if last is not None and ts - last > timeout:
                groups.append(current)
                current = set()
            current.add(index)
            last = ts
        groups.append(current)
    return sorted(groups, key=min)


def assigned_sessions(events: list[Event]) -> list[set[int]]:
    by_id: dict[str, set[int]] = {}
    for index, e in enumerate(events):
        by_id.setdefault(e.session_id, set()).add(index)
    return sorted(by_id.values(), key=min)


def no_store(site: str, visitors: object, since: int) -> list[tuple[str, str, str, int, int]]:
    return []


def test_gap_over_timeout_starts_a_new_session() -> None:
    events = [event("a", 0), event("a", 10), event("a", 41), event("b", 5), event("a", 71.5)]
    Sessionizer(30 * MIN, no_store).assign(events)
    assert assigned_sessions(events) == [{0, 1}, {2}, {3}, {4}]


def test_shuffled_batches_match_an_independent_computation() -> None:
    rng = random.Random(3)
    events = []
    for v in range(40):
        minute = rng.uniform(0, 100)
        for _ in range(rng.randint(1, 12)):
            minute += rng.choice([1, 5, 20, 29, 31, 45, 90])
            events.append(event(f"v{v}", minute))
    # Batches arrive in time order, each shuffled inside (network reordering).
    ordered = sorted(events, key=lambda e: e.timestamp)
    sessionizer = Sessionizer(30 * MIN, no_store)
    for start in range(0, len(ordered), 25):
        batch = ordered[start : start + 25]
        rng.shuffle(batch)
        sessionizer.assign(batch)
    assert assigned_sessions(events) == expected_sessions(events)


def test_late_events_join_the_session_that_spans_them() -> None:
    events = [event("a", 0), event("a", 20), event("a", 100)]
    sessionizer = Sessionizer(30 * MIN, no_store)
    sessionizer.assign(events)
    late = [event("a", 10), event("a", 110), event("a", 45)]
    sessionizer.assign(late)
    assert late[0].session_id == events[0].session_id
    assert late[1].session_id == events[2].session_id
    assert late[2].session_id == events[0].session_id  # within 30 min of the first span


def test_client_session_ids_are_kept() -> None:
    e = event("a", 0)
    e.session_id = "client-session"
    Sessionizer(30 * MIN, no_store).assign([e])
    assert e.session_id == "client-session"


def test_stored_sessions_are_continued_after_a_restart() -> None:
    first = [event("a", 0), event("a", 10)]
    Sessionizer(30 * MIN, no_store).assign(first)
    stored = [("s", "a", first[0].session_id, first[0].timestamp, first[1].timestamp)]
    later = [event("a", 25)]
    Sessionizer(30 * MIN, lambda site, visitors, since: stored).assign(later)
    assert later[0].session_id == first[0].session_id


def test_session_duration_counts_from_the_first_event_known() -> None:
    client = [event("a", 0), event("a", 2.5), event("a", 9)]
    for e in client:
        e.session_id = "tab-session"
    server = [event("b", 1), event("b", 4)]
    sessionizer = Sessionizer(30 * MIN, no_store)
    sessionizer.assign([*client, *server])
    assert [e.session_duration for e in client] == [0, 150, 540]
    assert [e.session_duration for e in server] == [0, 180]


def test_session_duration_continues_a_stored_session() -> None:
    later = event("a", 12)
    later.session_id = "tab-session"
    stored_start = event("a", 0).timestamp
    Sessionizer(30 * MIN, no_store, lambda site, ids: [("tab-session", stored_start)]).assign(
        [later]
    )
    assert later.session_duration == 720


def test_a_late_event_bridging_two_sessions_joins_them() -> None:
    sessionizer = Sessionizer(30 * MIN, no_store)
    early, later = event("a", 0), event("a", 50)
    sessionizer.assign([early, later])
    assert sessionizer.take_merges() == []
    assert early.session_id != later.session_id
    bridge = event("a", 25)
    sessionizer.assign([bridge])
    assert bridge.session_id == early.session_id
    assert sessionizer.take_merges() == [("s", later.session_id, early.session_id)]


def test_any_arrival_order_matches_an_independent_computation() -> None:
    rng = random.Random(5)
    events = []
    for v in range(30):
        minute = 0.0
        for _ in range(rng.randint(2, 15)):
            minute += rng.choice([1, 10, 25, 29, 31, 40, 70])
            events.append(event(f"v{v}", minute))
    arrival = events[:]
    rng.shuffle(arrival)
    sessionizer = Sessionizer(30 * MIN, no_store)
    relabel: dict[str, str] = {}
    for start in range(0, len(arrival), 7):
        sessionizer.assign(arrival[start : start + 7])
        for _, absorbed, survivor in sessionizer.take_merges():
            relabel[absorbed] = survivor
    # What the store does with the merges: relabel stored events.
    for e in events:
        while e.session_id in relabel:
            e.session_id = relabel[e.session_id]
    assert assigned_sessions(events) == expected_sessions(events)
