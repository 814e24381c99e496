"""Redis Streams transport: collectors XADD, workers read through one consumer group.

Keys (all under ``redis_prefix``, so installations and test runs can share a Redis):

- ``<prefix>:events`` — the stream; one entry per collected request, or per run of
  requests that were waiting together (transport/merge.py): ``d`` (msgpack of the
  events) and ``n`` (how many);
- ``<prefix>:events:pending`` — events accepted and not yet acknowledged by a worker
  (changed in the same MULTI as the XADD and the XACK), the queue depth that bounds
  intake: beyond ``queue_max_events`` collectors answer 503 with Retry-After;
- ``<prefix>:events:dead`` — entries moved aside as poison (undecodable, or delivered
  ``delivery_limit`` times without being acknowledged), for ``sightline dlq``.

Collector side: requests queue their payloads; one publisher thread sends everything that
queued meanwhile in one MULTI (XADDs + INCRBY), then releases the requests:
the collector answers only after Redis has the entries. How durable that is, is Redis's
persistence (``appendonly yes`` with ``appendfsync always`` for "on disk before 204";
``everysec`` may lose the last second on a power cut — see docs/deployment.md). When
Redis is unreachable the publisher appends to the collector's outbox instead
(transport/outbox.py) and forwards it when Redis is back.

Worker side: XREADGROUP ``>``; XACK (with DECRBY) only after the store committed the
batch. Entries a consumer holds are re-claimed by it every few seconds (XCLAIM JUSTID,
which resets their idle time), so while it lives nobody takes them; when it dies, other
consumers take its entries once they have been idle ``redis_claim_idle_seconds``
(XAUTOCLAIM). An entry delivered ``delivery_limit`` times goes to the dead-letter stream.

Length policy: acknowledged entries are trimmed with ``XTRIM MINID`` at the oldest entry
still pending or not yet delivered to the group; nothing unprocessed is ever trimmed,
and the stream's unprocessed length is bounded by the 503 above.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import msgspec
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from sightline.events import Event
from sightline.transport import Delivery, TransportFull
from sightline.transport.local import settle
from sightline.transport.merge import merge_arrays, merge_groups
from sightline.transport.outbox import Outbox, pack_record, unpack_record

log = logging.getLogger(__name__)

GROUP = "workers"
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[Event])
#: How long the publisher waits between attempts to reach Redis again.
RETRY_SECONDS = 1.0
#: How often a collector reads the queue depth again.
REFRESH_SECONDS = 0.5
#: How often a consumer trims acknowledged entries.
TRIM_SECONDS = 5.0


def stream_key(prefix: str) -> str:
    return f"{prefix}:events"


@dataclass(slots=True)
class _Publish:
    payload: bytes
    count: int
    future: asyncio.Future[None]


@dataclass(slots=True)
class DeadLetter:
    """An entry moved aside, as ``sightline dlq list`` shows it."""

    id: str
    reason: str
    events: int
    payload: bytes


def connect(url: str) -> redis.Redis:
    """A client that fails fast (the callers retry, or fall back to the outbox)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=10,
        socket_connect_timeout=3,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=15,
    )


class RedisTransport:
    name = "redis"

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        publisher: bool = True,
        consumer: bool = True,
        outbox_dir: Path | None = None,
        outbox_max_bytes: int = 1 << 30,
        max_pending: int = 200_000,
        claim_idle_seconds: float = 60.0,
        delivery_limit: int = 5,
        consumer_name: str | None = None,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.stream = stream_key(prefix)
        self.counter = f"{self.stream}:pending"
        self.dead = f"{self.stream}:dead"
        self.publisher = publisher
        self.consumer = consumer
        self.max_pending = max_pending
        self.claim_idle_ms = int(claim_idle_seconds * 1000)
        self.delivery_limit = delivery_limit
        self.consumer_name = consumer_name or (
            f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        )
        self._outbox_dir = outbox_dir
        self._outbox_max_bytes = outbox_max_bytes
        self.outbox: Outbox | None = None
        self._pub_client: redis.Redis | None = None
        self._client: redis.Redis | None = None
        self._incoming: list[_Publish] = []
        self._cond = threading.Condition()
        self._closing = False
        self._publisher_thread: threading.Thread | None = None
        self._broker_ok = True
        self._retry_at = 0.0
        self._pending = 0
        self._receiving = True
        self._in_flight: dict[bytes, None] = {}
        self._in_flight_lock = threading.Lock()
        self._heartbeat_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_claim = 0.0
        self._last_trim = time.monotonic()
        self._last_refresh = 0.0
        #: Running estimate of events per stream entry (sizes XREADGROUP's COUNT).
        self._per_entry = 10

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, checkpoint: str | None) -> None:
        """Connect; ``checkpoint`` is unused (the consumer group remembers positions)."""
        if self.publisher and self._publisher_thread is None:
            self._pub_client = connect(self.url)
            if self._outbox_dir is not None:
                self.outbox = Outbox(self._outbox_dir, self._outbox_max_bytes)
            self._refresh_pending()
            self._publisher_thread = threading.Thread(
                target=self._publish_loop, name="redis-publisher", daemon=True
            )
            self._publisher_thread.start()
        if self.consumer and self._heartbeat_thread is None:
            if self._client is None:
                self._client = connect(self.url)
            self._ensure_group(self._client)  # raises while Redis is unreachable
            self._heartbeat_thread = threading.Thread(
                target=self._heartbeat_loop, name="redis-heartbeat", daemon=True
            )
            self._heartbeat_thread.start()

    def _ensure_group(self, client: redis.Redis) -> None:
        try:
            client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def stop_receiving(self) -> None:
        """Hand out no new entries (a graceful shutdown drains what was handed out)."""
        self._receiving = False

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._publisher_thread is not None:
            self._publisher_thread.join(timeout=30)
        self._stop.set()
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join(timeout=10)
        if self.outbox is not None:
            self.outbox.close()
        for client in (self._pub_client, self._client):
            if client is not None:
                client.close()

    # -- collector side --------------------------------------------------------------------

    async def publish(self, events: list[Event]) -> None:
        if not events:
            return
        if self._pending + len(events) > self.max_pending:
            raise TransportFull(retry_after=2)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        item = _Publish(_encoder.encode(events), len(events), future)
        with self._cond:
            if self._closing:
                raise TransportFull(retry_after=5)
            self._incoming.append(item)
            self._cond.notify()
        try:
            await asyncio.shield(future)
        except BaseException:
            if not future.done():
                raise  # cancelled: the entry is still sent
            future.result()

    def _publish_loop(self) -> None:
        while True:
            with self._cond:
                if not self._incoming and not self._closing:
                    self._cond.wait(timeout=REFRESH_SECONDS)
                batch, self._incoming = self._incoming, []
                closing = self._closing
            if batch:
                self._deliver(batch)
            if self._backlog() and time.monotonic() >= self._retry_at:
                self._forward_outbox()
            if time.monotonic() - self._last_refresh >= REFRESH_SECONDS:
                self._refresh_pending()
            if closing and not batch:
                return

    def _refresh_pending(self) -> None:
        """Workers lower the queue depth: read it again now and then (it bounds intake)."""
        assert self._pub_client is not None
        self._last_refresh = time.monotonic()
        if self._broker_ok:
            with contextlib.suppress(redis.RedisError):
                self._pending = int(cast(bytes, self._pub_client.get(self.counter)) or 0)

    def _backlog(self) -> bool:
        return self.outbox is not None and self.outbox.backlog_bytes > 0

    def _deliver(self, batch: list[_Publish]) -> None:
        """XADD the batch (one round trip), or put it in the outbox; settle the requests."""
        if self._broker_ok and not self._backlog():
            try:
                self._xadd([(item.payload, item.count) for item in batch])
                settle((item.future for item in batch), None)
                return
            except redis.RedisError as exc:
                self._broker_down(exc)
        if self.outbox is None:
            settle((item.future for item in batch), TransportFull(retry_after=5))
            return
        try:
            self.outbox.append([pack_record(item.payload, item.count) for item in batch])
        except TransportFull as exc:
            settle((item.future for item in batch), exc)
            return
        except OSError as exc:
            log.error("outbox write failed: %s", exc)
            settle((item.future for item in batch), TransportFull(retry_after=5))
            return
        settle((item.future for item in batch), None)

    def _xadd(self, entries: Sequence[tuple[bytes, int]]) -> None:
        assert self._pub_client is not None
        pipe = self._pub_client.pipeline(transaction=True)
        for group in merge_groups(entries, lambda entry: entry):
            payload = merge_arrays([p for p, _ in group])
            pipe.xadd(self.stream, {"d": payload, "n": sum(n for _, n in group)})
        pipe.incrby(self.counter, sum(count for _, count in entries))
        result = pipe.execute()
        self._pending = int(result[-1])
        self._last_refresh = time.monotonic()

    def _broker_down(self, exc: BaseException) -> None:
        if self._broker_ok:
            log.warning("redis unreachable (%s): accepting into the local outbox", exc)
        self._broker_ok = False
        self._retry_at = time.monotonic() + RETRY_SECONDS

    def _forward_outbox(self) -> None:
        assert self.outbox is not None

        def send(records: list[bytes]) -> None:
            self._xadd([unpack_record(r) for r in records])

        try:
            while self.outbox.forward(send) > 0:
                with self._cond:
                    if self._incoming:
                        break  # serve waiting requests (into the outbox) first
        except redis.RedisError as exc:
            self._broker_down(exc)
            return
        if not self._broker_ok:
            log.info("redis reachable again: forwarding the outbox")
        self._broker_ok = True

    # -- worker side -----------------------------------------------------------------------

    def receive(self, max_events: int, timeout: float, linger: float = 0.0) -> Delivery | None:
        client = self._client
        assert client is not None, "start() a consumer first"
        if not self._receiving:
            return None
        try:
            return self._receive(client, max_events, timeout, linger)
        except redis.RedisError as exc:
            log.warning("redis: read failed (%s); retrying", exc)
            time.sleep(min(timeout, RETRY_SECONDS))
            return None

    def _receive(
        self, client: redis.Redis, max_events: int, timeout: float, linger: float
    ) -> Delivery | None:
        now = time.monotonic()
        entries: list[tuple[bytes, dict[bytes, bytes]]] = []
        if now - self._last_claim >= max(0.5, self.claim_idle_ms / 4000):
            self._last_claim = now
            entries += self._claim_abandoned(client)
        count = sum(_entry_count(fields) for _, fields in entries)
        # Block up to `timeout` for the first entries, then gather for up to `linger`.
        deadline = now + linger if entries else None
        block_ms = 1 if entries else max(1, int(timeout * 1000))
        while count < max_events:
            wanted = max(1, min(1000, (max_events - count) // self._per_entry))
            response = cast(
                list[Any],
                client.xreadgroup(
                    GROUP, self.consumer_name, {self.stream: ">"}, count=wanted, block=block_ms
                ),
            )
            fresh = response[0][1] if response else []
            if fresh:
                entries += fresh
                added = sum(_entry_count(fields) for _, fields in fresh)
                count += added
                self._per_entry = max(1, (self._per_entry * 7 + added // len(fresh)) // 8)
                if deadline is None:
                    deadline = time.monotonic() + linger
            elif not entries:
                return None
            assert deadline is not None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            block_ms = max(1, int(remaining * 1000))
        return self._delivery(client, entries)

    def _delivery(
        self, client: redis.Redis, entries: list[tuple[bytes, dict[bytes, bytes]]]
    ) -> Delivery | None:
        events: list[Event] = []
        ids: list[bytes] = []
        count = 0
        for entry_id, fields in entries:
            try:
                decoded = _decoder.decode(fields[b"d"])
            except (KeyError, msgspec.DecodeError, msgspec.ValidationError) as exc:
                self._dead_letter(client, entry_id, fields, f"undecodable: {exc}")
                continue
            events.extend(decoded)
            ids.append(entry_id)
            count += _entry_count(fields)
        if not ids:
            return None
        with self._in_flight_lock:
            self._in_flight.update(dict.fromkeys(ids))
        return Delivery(events, checkpoint=None, token=(ids, count))

    def _claim_abandoned(self, client: redis.Redis) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Take over entries idle for longer than the claim threshold (their consumer died);
        move those delivered too often to the dead-letter stream."""
        claimed: list[tuple[bytes, dict[bytes, bytes]]] = []
        start = "0-0"
        while True:
            response: list[Any] = client.xautoclaim(
                self.stream,
                GROUP,
                self.consumer_name,
                min_idle_time=self.claim_idle_ms,
                start_id=start,
                count=200,
            )
            start = response[0].decode() if isinstance(response[0], bytes) else response[0]
            found = [(entry_id, fields) for entry_id, fields in response[1] if fields]
            if found:
                pipe = client.pipeline(transaction=False)
                for entry_id, _ in found:
                    pipe.xpending_range(self.stream, GROUP, entry_id, entry_id, 1)
                for (entry_id, fields), info in zip(found, pipe.execute(), strict=True):
                    delivered = info[0]["times_delivered"] if info else 1
                    if delivered > self.delivery_limit:
                        self._dead_letter(
                            client, entry_id, fields, f"delivered {delivered - 1} times"
                        )
                    else:
                        claimed.append((entry_id, fields))
                log.warning("redis: claimed %d entries of a dead consumer", len(found))
            if start == "0-0" or not response[1]:
                return claimed

    def _dead_letter(
        self, client: redis.Redis, entry_id: bytes, fields: dict[bytes, bytes], reason: str
    ) -> None:
        log.error("redis: entry %s moved to %s (%s)", entry_id.decode(), self.dead, reason)
        pipe = client.pipeline(transaction=True)
        dead: dict[Any, Any] = {**fields, "id": entry_id, "reason": reason}
        pipe.xadd(self.dead, dead)
        pipe.xack(self.stream, GROUP, entry_id)
        pipe.decrby(self.counter, _entry_count(fields))
        pipe.execute()

    def ack(self, delivery: Delivery) -> None:
        ids, count = cast(tuple[list[bytes], int], delivery.token)
        client = self._client
        assert client is not None
        delay = 0.1
        while True:
            try:
                pipe = client.pipeline(transaction=True)
                pipe.xack(self.stream, GROUP, *ids)
                pipe.decrby(self.counter, count)
                self._pending = int(pipe.execute()[-1])
                break
            except redis.RedisError as exc:
                # The batch is committed; an entry never acknowledged would be delivered
                # again and dropped by the store as a duplicate, but keep trying.
                log.warning("redis: XACK failed (%s); retrying", exc)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        with self._in_flight_lock:
            for entry_id in ids:
                self._in_flight.pop(entry_id, None)
        if time.monotonic() - self._last_trim >= TRIM_SECONDS:
            self._last_trim = time.monotonic()
            with contextlib.suppress(redis.RedisError):
                self.trim(client)

    def trim(self, client: redis.Redis | None = None) -> int:
        """XTRIM MINID at the oldest entry the group still needs; returns entries removed."""
        client = client or self._client or self._pub_client
        assert client is not None
        groups: list[dict[str, Any]] = client.xinfo_groups(self.stream)
        if not groups:
            return 0
        floor: tuple[int, int] | None = None
        for group in groups:
            candidates = [_next_id(group["last-delivered-id"])]
            summary: dict[str, Any] = client.xpending(self.stream, group["name"])
            if summary["pending"]:
                candidates.append(_parse_id(summary["min"]))
            low = min(candidates)
            floor = low if floor is None else min(floor, low)
        assert floor is not None
        return int(client.xtrim(self.stream, minid=f"{floor[0]}-{floor[1]}", approximate=False))

    def _heartbeat_loop(self) -> None:
        """Keep the entries this consumer holds fresh, so no one claims them from it."""
        interval = max(0.2, self.claim_idle_ms / 3000)
        client = connect(self.url)
        try:
            while not self._stop.wait(interval):
                with self._in_flight_lock:
                    ids: list[Any] = list(self._in_flight)
                if not ids:
                    continue
                with contextlib.suppress(redis.RedisError):
                    client.xclaim(self.stream, GROUP, self.consumer_name, 0, ids, justid=True)
        finally:
            client.close()

    def pending(self) -> int:
        return self._pending

    # -- the dead-letter stream ------------------------------------------------------------

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        client = self._client or self._pub_client or connect(self.url)
        rows = cast(list[Any], client.xrange(self.dead, count=limit))
        return [
            DeadLetter(
                id=entry_id.decode(),
                reason=fields.get(b"reason", b"").decode(),
                events=_entry_count(fields),
                payload=fields.get(b"d", b""),
            )
            for entry_id, fields in rows
        ]

    def replay_dead_letters(self, ids: Sequence[str] | None = None) -> int:
        """Put dead letters back on the stream (all, or those ``ids``); returns how many."""
        client = self._client or self._pub_client or connect(self.url)
        rows = cast(list[Any], client.xrange(self.dead))
        replayed = 0
        for entry_id, fields in rows:
            if ids is not None and entry_id.decode() not in ids:
                continue
            pipe = client.pipeline(transaction=True)
            pipe.xadd(self.stream, {"d": fields.get(b"d", b""), "n": _entry_count(fields)})
            pipe.incrby(self.counter, _entry_count(fields))
            pipe.xdel(self.dead, entry_id)
            pipe.execute()
            replayed += 1
        return replayed


def _entry_count(fields: dict[bytes, bytes]) -> int:
    try:
        return int(fields.get(b"n", b"0"))
    except ValueError:
        return 0


def _parse_id(text: bytes | str) -> tuple[int, int]:
    raw = text.decode() if isinstance(text, bytes) else text
    ms, _, seq = raw.partition("-")
    return (int(ms), int(seq or 0))


def _next_id(text: bytes | str) -> tuple[int, int]:
    ms, seq = _parse_id(text)
    return (ms, seq + 1)
