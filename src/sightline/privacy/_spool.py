"""Finding and scrubbing a subject's events in spool segment files, in place.

Spool records are ``<u32 length><u32 crc32><payload>`` with a msgpack list of events as
payload (an outbox record puts a 4-byte event count before it). Positions in the files
are the transport's checkpoints, so a record is never moved or resized: a record holding
the subject's events is rewritten *at the same length*, its other events kept and the
subject's replaced by one filler event (type ``$erased``, padding in its properties)
that the writer discards. The new record is written over the old one, with its CRC, and
the file is fsynced: the bytes of the erased ids are gone from the disk file.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec

from sightline.events import Event
from sightline.privacy.tombstones import ERASED_EVENT_TYPE
from sightline.transport.local import HEADER, SUFFIX, parse_position

log = logging.getLogger(__name__)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[Event])


def _segments(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob(f"*{SUFFIX}") if p.stem.isdigit())


def _records(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(record start, payload start, payload) of every intact record."""
    offset = 0
    while offset + HEADER.size <= len(data):
        length, crc = HEADER.unpack_from(data, offset)
        start = offset + HEADER.size
        payload = data[start : start + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            return
        yield offset, start, payload
        offset = start + length


def _decode(payload: bytes) -> tuple[bytes, list[Event]] | None:
    """(prefix, events) of a spool (no prefix) or outbox (4-byte count) payload."""
    for prefix_length in (0, 4):
        try:
            return payload[:prefix_length], _decoder.decode(payload[prefix_length:])
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
    return None


def _about(event: Event, site_id: str, visitors: frozenset[str], users: frozenset[str]) -> bool:
    return event.site_id == site_id and (
        (bool(event.visitor_id) and event.visitor_id in visitors)
        or (bool(event.user_id) and event.user_id in users)
    )


def subject_events(
    directory: Path,
    site_id: str,
    visitor_ids: Sequence[str],
    user_ids: Sequence[str],
    after: str | None = None,
) -> list[Event]:
    """The subject's events in the segments, from position ``after`` (a checkpoint) on."""
    visitors, users = frozenset(visitor_ids), frozenset(user_ids)
    start = parse_position(after)
    found: list[Event] = []
    for path in _segments(directory):
        segment = int(path.stem)
        if segment < start[0]:
            continue
        data = path.read_bytes()
        for record_start, _, payload in _records(data):
            if segment == start[0] and record_start < start[1]:
                continue
            decoded = _decode(payload)
            if decoded is None:
                continue
            found.extend(e for e in decoded[1] if _about(e, site_id, visitors, users))
    return found


def scrub_directory(
    directory: Path, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
) -> int:
    """Scrub the subject's events from every segment; returns how many were removed."""
    visitors, users = frozenset(visitor_ids), frozenset(user_ids)
    removed = 0
    for path in _segments(directory):
        try:
            removed += _scrub_file(path, site_id, visitors, users)
        except FileNotFoundError:  # released by the transport meanwhile: nothing left
            continue
    return removed


def _scrub_file(path: Path, site_id: str, visitors: frozenset[str], users: frozenset[str]) -> int:
    removed = 0
    scanned = 0
    fd = os.open(path, os.O_RDWR)
    try:
        # The transport may append while we scrub: scan again what arrived meanwhile.
        while True:
            size = os.fstat(fd).st_size
            if size <= scanned:
                break
            data = os.pread(fd, size - scanned, scanned)
            end = 0
            for record_start, payload_start, payload in _records(data):
                end = payload_start + len(payload)
                decoded = _decode(payload)
                if decoded is None:
                    continue
                prefix, events = decoded
                kept = [e for e in events if not _about(e, site_id, visitors, users)]
                if len(kept) == len(events):
                    continue
                replacement = prefix + same_length_payload(kept, len(payload) - len(prefix))
                header = HEADER.pack(len(replacement), zlib.crc32(replacement))
                os.pwrite(fd, header + replacement, scanned + record_start)
                removed += len(events) - len(kept)
            if end == 0:
                break
            scanned += end
        if removed:
            os.fsync(fd)
    finally:
        os.close(fd)
    return removed


def same_length_payload(events: list[Event], length: int) -> bytes:
    """``events`` plus one filler event, msgpack-encoded to exactly ``length`` bytes.

    The filler pads with a property string (any length) and, to step over the sizes
    where msgpack's string header grows, a short eventId.
    """

    def encode(pad: int | None, step: int | None) -> bytes:
        filler = Event(
            event_type=ERASED_EVENT_TYPE,
            event_id="" if step is None else "y" * step,
            properties={} if pad is None else {"p": "x" * pad},
        )
        return _encoder.encode([*events, filler])

    base = len(encode(None, None))
    if base > length:
        raise ValueError(f"no room for the filler event in {length} bytes")
    for step in (None, *range(1, 41)):
        with_step = len(encode(None, step))
        if with_step == length:
            return encode(None, step)
        guess = length - with_step - 16
        for pad in range(max(0, guess - 8), max(0, guess + 8) + 1):
            encoded = encode(pad, step)
            if len(encoded) == length:
                return encoded
    raise ValueError(f"cannot pad a record to {length} bytes")
