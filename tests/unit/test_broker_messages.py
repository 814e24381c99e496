"""Requests that wait together travel as one broker message (RabbitMQ, Redis): their
msgpack arrays are joined without decoding, within the size limits of a message; a busy
RabbitMQ collector lingers for more of them."""

from __future__ import annotations

import msgspec
import pytest

from sightline.events import Event
from sightline.transport.merge import MERGE_MAX_BYTES, MERGE_MAX_EVENTS, merge_arrays, merge_groups
from sightline.transport.rabbitmq import should_linger


@pytest.mark.parametrize("sizes", [[1], [0, 3], [7, 8], [15, 1], [10, 10, 50], [40_000, 30_000]])
def test_joined_arrays_decode_to_the_concatenation(sizes: list[int]) -> None:
    arrays = [[f"{n}-{i}" for i in range(n)] for n in sizes]
    joined = merge_arrays([msgspec.msgpack.encode(a) for a in arrays])
    assert msgspec.msgpack.decode(joined) == [x for a in arrays for x in a]


def test_events_survive_the_join() -> None:
    batches = [
        [Event(event_type="page_view", event_id=f"{b}-{i}", site_id="s") for i in range(b + 1)]
        for b in range(20)
    ]
    joined = merge_arrays([msgspec.msgpack.encode(b) for b in batches])
    decoded = msgspec.msgpack.decode(joined, type=list[Event])
    assert [e.event_id for e in decoded] == [e.event_id for b in batches for e in b]


def test_other_payloads_are_refused() -> None:
    with pytest.raises(ValueError, match="msgpack array"):
        merge_arrays([msgspec.msgpack.encode([1]), msgspec.msgpack.encode({"a": 1})])


def test_groups_stay_within_a_messages_limits() -> None:
    items = [(b"x" * 100, 50)] * 100 + [(b"y" * MERGE_MAX_BYTES, 1), (b"z", 1)]
    groups = list(merge_groups(items, lambda item: item))
    assert [len(g) for g in groups] == [40, 40, 20, 1, 1]
    assert all(sum(n for _, n in g) <= MERGE_MAX_EVENTS for g in groups)
    assert [item for g in groups for item in g] == items


def test_a_busy_collector_lingers_and_an_idle_one_does_not() -> None:
    # idle: the last message carried one request, so a new one goes at once
    assert not should_linger(0.005, merged=1, waiting=50, closing=False)
    # busy: requests arrive faster than confirms return; wait for more of them
    assert should_linger(0.005, merged=3, waiting=150, closing=False)
    # but not when a message is full, when closing, or when lingering is off
    assert not should_linger(0.005, merged=3, waiting=MERGE_MAX_EVENTS, closing=False)
    assert not should_linger(0.005, merged=3, waiting=150, closing=True)
    assert not should_linger(0.0, merged=3, waiting=150, closing=False)
