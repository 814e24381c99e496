"""The embedded transport: an in-process queue backed by a durable on-disk spool.

The collector appends each accepted request's events to the spool as one record. A
commit thread writes every record that arrived since its last round, calls fdatasync
once (group commit), and only then releases the waiting requests, so a 204 always
means "on disk". The writer receives the same events from memory and stores them,
recording the spool position of the last record in the same store transaction. After a
crash, start-up replays the spool from that position: nothing acknowledged is lost and
nothing committed is delivered twice.

Record layout: ``<u32 length><u32 crc32(payload)><payload>``; payload is the msgpack
encoding of a list of events. Segment files are named ``<number>.spool``; a segment is
deleted once the store has committed past it. A torn record at the tail (the process
died mid-write, so it was never acknowledged) is cut off during recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from sightline.events import Event
from sightline.transport import Delivery, TransportFull

log = logging.getLogger(__name__)

HEADER = struct.Struct("<II")
SUFFIX = ".spool"
Position = tuple[int, int]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[Event])


def format_position(position: Position) -> str:
    return f"{position[0]}:{position[1]}"


def parse_position(text: str | None) -> Position:
    if not text:
        return (0, 0)
    segment, offset = text.split(":")
    return (int(segment), int(offset))


class Spool:
    """Append-only, crash-safe segment files in one directory."""

    def __init__(self, directory: Path, segment_bytes: int) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None
        self._segment = 0
        self._offset = 0

    def segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.directory.glob(f"*{SUFFIX}") if p.stem.isdigit())

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:012d}{SUFFIX}"

    def recover(self, start: Position) -> Iterator[tuple[Position, bytes]]:
        """Yield ``(end position, payload)`` for every intact record after ``start``.

        Segments wholly before ``start`` are deleted; a torn tail is truncated.
        """
        for segment in self.segments():
            if segment < start[0]:
                self._path(segment).unlink(missing_ok=True)
                continue
            offset = start[1] if segment == start[0] else 0
            yield from self._read_segment(segment, offset)

    def _read_segment(self, segment: int, offset: int) -> Iterator[tuple[Position, bytes]]:
        path = self._path(segment)
        with open(path, "rb") as fh:
            fh.seek(offset)
            while True:
                header = fh.read(HEADER.size)
                if not header:
                    return
                if len(header) == HEADER.size:
                    length, crc = HEADER.unpack(header)
                    payload = fh.read(length)
                    if len(payload) == length and zlib.crc32(payload) == crc:
                        offset += HEADER.size + length
                        yield (segment, offset), payload
                        continue
                break
        # A torn or corrupt record: it was never acknowledged (fsync had not returned).
        log.warning("spool: cutting a torn record at %s offset %d", path.name, offset)
        with open(path, "r+b") as fh:
            fh.truncate(offset)
            os.fsync(fh.fileno())

    def open_for_append(self) -> None:
        """Start a fresh segment after every existing one."""
        existing = self.segments()
        self._segment = (existing[-1] + 1) if existing else 1
        self._open_segment()

    def _open_segment(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        path = self._path(self._segment)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._offset = os.fstat(self._fd).st_size
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new file's directory entry is durable too
        finally:
            os.close(dir_fd)

    def append(self, payloads: list[bytes]) -> list[Position]:
        """Write records and fdatasync once; returns each record's end position."""
        assert self._fd is not None, "open_for_append() first"
        if self._offset >= self.segment_bytes:
            self._segment += 1
            self._open_segment()
        chunks: list[bytes] = []
        positions: list[Position] = []
        offset = self._offset
        for payload in payloads:
            chunks.append(HEADER.pack(len(payload), zlib.crc32(payload)))
            chunks.append(payload)
            offset += HEADER.size + len(payload)
            positions.append((self._segment, offset))
        data = b"".join(chunks)
        written = 0
        while written < len(data):
            written += os.write(self._fd, data[written:])
        os.fdatasync(self._fd)
        self._offset = offset
        return positions

    def release(self, position: Position) -> None:
        """The store has committed up to ``position``: delete segments wholly before it."""
        for segment in self.segments():
            if segment >= position[0] or segment == self._segment:
                break
            self._path(segment).unlink(missing_ok=True)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _Pending:
    __slots__ = ("events", "future", "payload")

    def __init__(self, payload: bytes, events: list[Event], future: asyncio.Future[None]) -> None:
        self.payload = payload
        self.events = events
        self.future = future


class LocalTransport:
    """Spool + in-memory queue; the embedded default transport."""

    name = "local"

    def __init__(
        self, directory: Path, *, segment_bytes: int = 64 << 20, max_pending: int = 200_000
    ) -> None:
        self.spool = Spool(directory, segment_bytes)
        self.max_pending = max_pending
        self._incoming: list[_Pending] = []
        self._incoming_cond = threading.Condition()
        self._deliveries: queue.SimpleQueue[tuple[Position, list[Event]]] = queue.SimpleQueue()
        self._replay: Iterator[tuple[Position, bytes]] | None = None
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._closing = False
        self._thread: threading.Thread | None = None
        self.fsyncs = 0

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, checkpoint: str | None) -> None:
        self._replay = self.spool.recover(parse_position(checkpoint))
        self.spool.open_for_append()
        self._thread = threading.Thread(target=self._commit_loop, name="spool-commit", daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self._incoming_cond:
            self._closing = True
            self._incoming_cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.spool.close()

    # -- collector side ----------------------------------------------------------------

    async def publish(self, events: list[Event]) -> None:
        if not events:
            return
        with self._pending_lock:
            if self._pending + len(events) > self.max_pending:
                raise TransportFull(retry_after=2)
            self._pending += len(events)
        payload = _encoder.encode(events)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._incoming_cond:
            if self._closing:
                self._add_pending(-len(events))
                raise TransportFull(retry_after=5)
            self._incoming.append(_Pending(payload, events, future))
            self._incoming_cond.notify()
        try:
            await asyncio.shield(future)
        except BaseException:
            # The request was cancelled (client went away) after the record was queued:
            # it will still be written and stored; nothing to undo.
            if not future.done():
                raise
            future.result()

    def _add_pending(self, delta: int) -> None:
        with self._pending_lock:
            self._pending += delta

    def _commit_loop(self) -> None:
        while True:
            with self._incoming_cond:
                while not self._incoming and not self._closing:
                    self._incoming_cond.wait()
                batch, self._incoming = self._incoming, []
                closing = self._closing
            if batch:
                self._commit(batch)
            if closing and not batch:
                return

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            positions = self.spool.append([item.payload for item in batch])
            self.fsyncs += 1
        except OSError as exc:
            log.error("spool write failed: %s", exc)
            self._add_pending(-sum(len(item.events) for item in batch))
            settle((item.future for item in batch), TransportFull(retry_after=5))
            return
        for item, position in zip(batch, positions, strict=True):
            self._deliveries.put((position, item.events))
        settle((item.future for item in batch), None)

    # -- writer side -------------------------------------------------------------------

    def receive(self, max_events: int, timeout: float, linger: float = 0.0) -> Delivery | None:
        if self._replay is not None:
            delivery = self._receive_replay(max_events)
            if delivery is not None:
                return delivery
            self._replay = None
        try:
            position, events = self._deliveries.get(timeout=timeout)
        except queue.Empty:
            return None
        batch = list(events)
        deadline = time.monotonic() + linger
        while len(batch) < max_events:
            try:
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    position, events = self._deliveries.get(timeout=remaining)
                else:
                    position, events = self._deliveries.get_nowait()
            except queue.Empty:
                break
            batch.extend(events)
        return Delivery(batch, checkpoint=format_position(position), token=position)

    def _receive_replay(self, max_events: int) -> Delivery | None:
        assert self._replay is not None
        batch: list[Event] = []
        position: Position | None = None
        for record_end, payload in self._replay:
            position = record_end
            batch.extend(_decoder.decode(payload))
            if len(batch) >= max_events:
                break
        if position is None:
            return None
        self._add_pending(len(batch))
        return Delivery(batch, checkpoint=format_position(position), token=position)

    def ack(self, delivery: Delivery) -> None:
        self._add_pending(-len(delivery.events))
        if isinstance(delivery.token, tuple):
            self.spool.release(delivery.token)

    def pending(self) -> int:
        return self._pending


def settle(futures: Iterable[asyncio.Future[None]], error: BaseException | None) -> None:
    """Resolve waiting requests' futures from another thread, on their own event loops
    (one call per loop)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for future in futures:
        by_loop.setdefault(future.get_loop(), []).append(future)
    for loop, waiting in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(_resolve, waiting, error)


def _resolve(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
