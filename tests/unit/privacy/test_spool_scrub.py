"""Scrubbing a subject out of spool segments in place: records keep their length and
positions, stay valid for replay, and no byte of the erased ids remains."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from sightline.events import Event
from sightline.privacy._spool import same_length_payload, scrub_directory, subject_events
from sightline.privacy.tombstones import ERASED_EVENT_TYPE
from sightline.transport.local import Spool, format_position

SUBJECT = "visitor-to-erase-123456"
decode = msgspec.msgpack.Decoder(list[Event]).decode


def events(visitor: str, n: int, site: str = "s") -> list[Event]:
    return [
        Event(
            event_type="page_view",
            event_id=f"{visitor}-{i}",
            site_id=site,
            visitor_id=visitor,
            page_url=f"https://shop.example/{i}",
            server_timestamp=1_700_000_000_000 + i,
        )
        for i in range(n)
    ]


def test_scrubbed_records_keep_their_positions_and_replay_without_the_subject(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path, segment_bytes=1 << 20)
    spool.open_for_append()
    records = [
        events("other-a", 3),
        events(SUBJECT, 2) + events("other-b", 2),
        events(SUBJECT, 4),
        events(SUBJECT, 1, site="another-site"),
    ]
    positions = spool.append([msgspec.msgpack.encode(r) for r in records])
    spool.close()
    size = sum(p.stat().st_size for p in tmp_path.iterdir())

    assert len(subject_events(tmp_path, "s", [SUBJECT], [])) == 6
    assert len(subject_events(tmp_path, "s", [SUBJECT], [], format_position(positions[1]))) == 4
    assert scrub_directory(tmp_path, "s", [SUBJECT], []) == 6

    assert sum(p.stat().st_size for p in tmp_path.iterdir()) == size
    replayed = list(Spool(tmp_path, 1 << 20).recover((0, 0)))
    assert [position for position, _ in replayed] == positions
    kept = [
        [e.event_id for e in decode(payload) if e.event_type != ERASED_EVENT_TYPE]
        for _, payload in replayed
    ]
    assert kept == [
        ["other-a-0", "other-a-1", "other-a-2"],
        ["other-b-0", "other-b-1"],
        [],
        [f"{SUBJECT}-0"],  # another site's events of the same id are out of scope
    ]
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert data.count(SUBJECT.encode()) == 2  # the other site's event: id and eventId


@pytest.mark.parametrize("removed", range(1, 40))
def test_a_filler_fits_any_removed_event(removed: int) -> None:
    kept = events("other", 2)
    gone = events("x" * removed, 1)
    length = len(msgspec.msgpack.encode(kept + gone))
    payload = same_length_payload(kept, length)
    assert len(payload) == length
    assert [e.event_type for e in decode(payload)][-1] == ERASED_EVENT_TYPE
