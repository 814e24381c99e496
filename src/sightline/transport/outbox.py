"""Store and forward: a collector's local outbox for when its broker is unreachable.

A broker transport (redis, rabbitmq) publishes each request's events straight to the
broker. When the broker cannot take them (connection refused, timed out, failed over),
the collector appends them to this outbox instead — the embedded spool's segment files,
with the same group-commit fsync — and acknowledges the client: the events are durable
on the collector's disk. The transport forwards the outbox to the broker as soon as it
answers again, oldest first, and records how far it got in ``forwarded`` (fsynced after
each forwarded chunk). Only when the outbox holds ``max_bytes`` does the collector answer
503 with Retry-After: never a silent loss.

A crash between a forward and the position write forwards those records again; the
store drops what it already has (event ids are idempotency keys).

One collector process owns an outbox directory (an exclusive lock on ``lock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from sightline.transport import TransportFull
from sightline.transport.local import (
    HEADER,
    Position,
    Spool,
    format_position,
    parse_position,
)

log = logging.getLogger(__name__)

#: Size at which the outbox starts a new segment file.
SEGMENT_BYTES = 16 * 1024 * 1024


class OutboxBusy(RuntimeError):
    """Another process uses this outbox directory."""


class _OutboxSpool(Spool):
    """The spool, plus reading one sealed segment from an offset."""

    def read_sealed(self, segment: int, offset: int) -> list[tuple[Position, bytes]]:
        return list(self._read_segment(segment, offset))

    @property
    def active_segment(self) -> int:
        return self._segment

    @property
    def active_bytes(self) -> int:
        return self._offset


class Outbox:
    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise OutboxBusy(
                f"the outbox {directory} is used by another process: give each collector "
                "its own data_dir"
            ) from None
        self._spool = _OutboxSpool(directory, segment_bytes)
        self._position = parse_position(self._read_position())
        self._spool.open_for_append()  # whatever is on disk from before is sealed now
        self._lock = threading.Lock()
        self._backlog = self._measure_backlog()
        #: Records appended / forwarded since start (for metrics and tests).
        self.appended = 0
        self.forwarded = 0

    # -- writing ---------------------------------------------------------------------------

    def append(self, payloads: list[bytes]) -> None:
        """Write records durably (one fsync); raises TransportFull when the outbox is full."""
        size = sum(HEADER.size + len(p) for p in payloads)
        with self._lock:
            if self._backlog + size > self.max_bytes:
                raise TransportFull(retry_after=10)
            self._spool.append(payloads)
            self._backlog += size
            self.appended += len(payloads)

    @property
    def backlog_bytes(self) -> int:
        """Bytes of records not forwarded yet."""
        return self._backlog

    # -- forwarding ------------------------------------------------------------------------

    def forward(self, send: Callable[[list[bytes]], None], max_records: int = 500) -> int:
        """Hand the oldest records to ``send`` (which raises if the broker refuses them),
        up to ``max_records``; returns how many were forwarded."""
        with self._lock:
            if self._spool.active_bytes > 0 and self._sealed_backlog() == 0:
                self._spool.open_for_append()  # seal what was appended, forward it next
        sent = 0
        for segment in self._spool.segments():
            if segment >= self._spool.active_segment:
                break
            if segment < self._position[0]:
                continue
            offset = self._position[1] if segment == self._position[0] else 0
            records = self._spool.read_sealed(segment, offset)
            while records:
                chunk, records = records[: max_records - sent], records[max_records - sent :]
                send([payload for _, payload in chunk])
                sent += len(chunk)
                self.forwarded += len(chunk)
                self._save_position(chunk[-1][0])
                if sent >= max_records:
                    return sent
            self._save_position((segment + 1, 0))
        return sent

    def _sealed_backlog(self) -> int:
        return self._backlog - self._spool.active_bytes

    def _save_position(self, position: Position) -> None:
        with self._lock:
            self._position = position
            tmp = self.directory / "forwarded.tmp"
            with open(tmp, "w") as fh:
                fh.write(format_position(position))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.directory / "forwarded")
            self._spool.release(position)
            self._backlog = self._measure_backlog()

    def _read_position(self) -> str | None:
        with contextlib.suppress(FileNotFoundError):
            return (self.directory / "forwarded").read_text().strip() or None
        return None

    def _measure_backlog(self) -> int:
        total = 0
        for segment in self._spool.segments():
            if segment < self._position[0]:
                continue
            size = (self.directory / f"{segment:012d}.spool").stat().st_size
            total += size - (self._position[1] if segment == self._position[0] else 0)
        return total

    def close(self) -> None:
        self._spool.close()
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)


def pack_record(payload: bytes, count: int) -> bytes:
    """An outbox record: the event count (4 bytes) and the message payload."""
    return count.to_bytes(4, "little") + payload


def unpack_record(record: bytes) -> tuple[bytes, int]:
    return record[4:], int.from_bytes(record[:4], "little")
