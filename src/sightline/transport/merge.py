"""Requests that wait together travel as one broker message (a RabbitMQ message, a Redis
stream entry): their msgpack arrays are joined without decoding, within a message's
limits. A message per request costs the broker and both clients about as much as its
events do; under load many requests wait together and travel as one."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

#: Most events and bytes of one message when requests that arrived together are merged.
MERGE_MAX_EVENTS = 2_000
MERGE_MAX_BYTES = 2 << 20
E = TypeVar("E")


def merge_groups(
    items: Sequence[E], payload_and_count: Callable[[E], tuple[bytes, int]]
) -> Iterator[list[E]]:
    """Consecutive runs of ``items`` that one message can carry (``MERGE_MAX_*``)."""
    group: list[E] = []
    events = size = 0
    for item in items:
        payload, count = payload_and_count(item)
        if group and (events + count > MERGE_MAX_EVENTS or size + len(payload) > MERGE_MAX_BYTES):
            yield group
            group, events, size = [], 0, 0
        group.append(item)
        events += count
        size += len(payload)
    if group:
        yield group


def merge_arrays(payloads: Sequence[bytes]) -> bytes:
    """One msgpack array holding the elements of several (without decoding them)."""
    if len(payloads) == 1:
        return payloads[0]
    total = 0
    bodies: list[bytes | memoryview] = []
    for payload in payloads:
        head = payload[0]
        if 0x90 <= head <= 0x9F:
            count, start = head & 0x0F, 1
        elif head == 0xDC:
            count, start = int.from_bytes(payload[1:3], "big"), 3
        elif head == 0xDD:
            count, start = int.from_bytes(payload[1:5], "big"), 5
        else:
            raise ValueError("not a msgpack array")
        total += count
        bodies.append(memoryview(payload)[start:])
    if total < 16:
        header = bytes([0x90 | total])
    elif total < 1 << 16:
        header = b"\xdc" + total.to_bytes(2, "big")
    else:
        header = b"\xdd" + total.to_bytes(4, "big")
    return header + b"".join(bodies)
