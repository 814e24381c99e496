"""The local transport's spool: durable records, recovery, torn tails, segment release."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sightline.events import Event
from sightline.transport.local import LocalTransport, Spool, format_position


def make_events(n: int, prefix: str = "e") -> list[Event]:
    return [Event(event_type="page_view", event_id=f"{prefix}{i}", site_id="s") for i in range(n)]


def test_records_survive_reopen_and_replay_after_checkpoint(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=1 << 20)
    spool.open_for_append()
    positions = spool.append([b"one", b"two", b"three"])
    spool.close()
    replayed = list(Spool(tmp_path, 1 << 20).recover((0, 0)))
    assert [payload for _, payload in replayed] == [b"one", b"two", b"three"]
    after_first = list(Spool(tmp_path, 1 << 20).recover(positions[0]))
    assert [payload for _, payload in after_first] == [b"two", b"three"]


def test_torn_tail_is_cut_and_earlier_records_kept(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=1 << 20)
    spool.open_for_append()
    spool.append([b"kept"])
    spool.close()
    segment = next(tmp_path.glob("*.spool"))
    with open(segment, "ab") as fh:
        fh.write(b"\x10\x00\x00\x00\x00\x00")  # a header cut short by a crash
    size_before = segment.stat().st_size
    replayed = [payload for _, payload in Spool(tmp_path, 1 << 20).recover((0, 0))]
    assert replayed == [b"kept"]
    assert segment.stat().st_size < size_before


def test_corrupt_record_is_not_delivered(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=1 << 20)
    spool.open_for_append()
    spool.append([b"good", b"flipped"])
    spool.close()
    segment = next(tmp_path.glob("*.spool"))
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF
    segment.write_bytes(bytes(data))
    assert [p for _, p in Spool(tmp_path, 1 << 20).recover((0, 0))] == [b"good"]


def test_segments_rotate_and_are_released(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=64)
    spool.open_for_append()
    last = (0, 0)
    for i in range(10):
        last = spool.append([bytes(40) + str(i).encode()])[-1]
    assert len(spool.segments()) > 3
    spool.release(last)
    assert spool.segments() == [last[0]]


def test_transport_publishes_durably_and_replays_unacknowledged(tmp_path: Path) -> None:
    transport = LocalTransport(tmp_path, segment_bytes=1 << 20)
    transport.start(None)

    async def publish() -> None:
        await asyncio.gather(*(transport.publish(make_events(3, f"r{i}-")) for i in range(20)))

    asyncio.run(publish())
    assert transport.pending() == 60
    first = transport.receive(max_events=30, timeout=1)
    assert first is not None and len(first.events) >= 30
    transport.ack(first)
    committed = first.checkpoint
    transport.close()  # crash-equivalent: the rest was never acknowledged by the store

    again = LocalTransport(tmp_path, segment_bytes=1 << 20)
    again.start(committed)
    replayed: list[Event] = []
    while (delivery := again.receive(max_events=1000, timeout=0.1)) is not None:
        replayed.extend(delivery.events)
        again.ack(delivery)
    again.close()
    ids = {e.event_id for e in first.events} | {e.event_id for e in replayed}
    assert len(ids) == 60 == len(first.events) + len(replayed)


def test_full_queue_refuses_instead_of_growing(tmp_path: Path) -> None:
    import pytest

    from sightline.transport import TransportFull

    transport = LocalTransport(tmp_path, max_pending=5)
    transport.start(format_position((0, 0)))
    try:
        asyncio.run(transport.publish(make_events(5)))
        with pytest.raises(TransportFull):
            asyncio.run(transport.publish(make_events(1, "x")))
    finally:
        transport.close()
