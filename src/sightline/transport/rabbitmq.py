"""RabbitMQ transport: a durable quorum queue, publisher confirms, manual acks.

Topology (declared by every process, in the vhost of ``rabbitmq_url``, which isolates
installations):

- ``sightline.events`` — a durable quorum queue (replicated when the broker is a
  cluster). One message per collected request — or per run of requests that were
  waiting together, up to ``MERGE_MAX_EVENTS`` (fewer messages cost the broker and both
  clients less) — holding the msgpack of the events, LZ4-compressed (content encoding
  ``lz4``, the uncompressed size in header ``z``: the broker stores and moves about a
  tenth of the bytes), with their count in header ``n``.
  ``x-delivery-limit`` = ``delivery_limit``: a message returned that many times (its
  consumers died or rejected it) is dead-lettered, at least once;
- ``sightline.events.dead`` — the dead-letter queue (also quorum): poison messages wait
  there for ``sightline dlq list|replay``.

Collector side: each request's events are published as one persistent message on a
channel in confirm mode; the collector answers only after the broker confirmed it (for a
quorum queue: a majority of its replicas wrote it to disk). While the broker is
unreachable, or refuses, messages go to the collector's outbox (transport/outbox.py) and
are forwarded when it is back.

Worker side: a consumer with ``prefetch`` unacknowledged messages at most; a batch's
messages are acknowledged only after the store committed it. An undecodable message is
rejected without requeue, i.e. dead-lettered at once. ``stop_receiving`` cancels the
consumer, so a graceful shutdown stores and acknowledges what it already holds, then
exits.

All AMQP work happens on one event loop in a thread of its own; the server's loop and
the writer thread hand work to it.

Every broker call is bounded in time. aio-pika's robust connection reconnects on its own,
and while it does, a publish on its channel waits for the connection to come back —
without a limit. So a publish is sent only while the connection is up, and waits
``CONFIRM_TIMEOUT`` at most for its confirm; one that is not confirmed by then counts as
not acknowledged and goes to the outbox (if the broker did take it after all, the copy
forwarded later is dropped by the store as already stored).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Awaitable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import aio_pika
import msgspec
import pyarrow as pa
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from pamqp.commands import Basic

from sightline.events import Event
from sightline.transport import Delivery, TransportFull
from sightline.transport.local import settle
from sightline.transport.merge import MERGE_MAX_BYTES, MERGE_MAX_EVENTS, merge_arrays, merge_groups
from sightline.transport.outbox import Outbox, pack_record, unpack_record

log = logging.getLogger(__name__)

QUEUE = "sightline.events"
DEAD_QUEUE = "sightline.events.dead"
#: Seconds a publish may wait for its confirm before the outbox takes the message.
CONFIRM_TIMEOUT = 5.0
RETRY_SECONDS = 1.0
#: How often a collector reads the queue depth (it bounds intake).
REFRESH_SECONDS = 0.5

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[Event])
T = TypeVar("T")


def queue_arguments(delivery_limit: int) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": DEAD_QUEUE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


@dataclass(slots=True)
class _Publish:
    payload: bytes
    count: int
    future: asyncio.Future[None]


@dataclass(slots=True)
class DeadLetter:
    """A dead-lettered message, as ``sightline dlq list`` shows it."""

    id: str
    reason: str
    events: int
    payload: bytes


class RabbitMQTransport:
    name = "rabbitmq"

    def __init__(
        self,
        url: str,
        *,
        publisher: bool = True,
        consumer: bool = True,
        outbox_dir: Path | None = None,
        outbox_max_bytes: int = 1 << 30,
        max_pending: int = 200_000,
        prefetch: int = 200,
        delivery_limit: int = 5,
        linger: float = 0.005,
    ) -> None:
        self.url = url
        self.publisher = publisher
        self.consumer = consumer
        self.max_pending = max_pending
        self.prefetch = prefetch
        self.delivery_limit = delivery_limit
        self.linger = linger
        self._outbox_dir = outbox_dir
        self._outbox_max_bytes = outbox_max_bytes
        self.outbox: Outbox | None = None
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(_quiet_lost_confirms)
        self._thread: threading.Thread | None = None
        self._connection: AbstractRobustConnection | None = None
        self._pub_channel: AbstractRobustChannel | None = None
        self._incoming: list[_Publish] = []
        self._wake: asyncio.Event | None = None
        self._closing = False
        self._broker_ok = False
        self._retry_at = 0.0
        self._pending = 0
        self._per_message = 10.0
        self._messages: queue.SimpleQueue[AbstractIncomingMessage] = queue.SimpleQueue()
        #: Delivery tags handed to this consumer and not settled yet, by channel (only
        #: touched on the AMQP loop).
        self._unsettled: dict[Any, set[int]] = {}
        self._consumer_queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._receiving = True
        self._publisher_task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, checkpoint: str | None) -> None:
        """Connect and declare the queues; ``checkpoint`` is unused (the broker tracks
        deliveries). A collector starts even when the broker is down (outbox)."""
        if self._thread is None:  # (start may be called again after a failed attempt)
            self._thread = threading.Thread(target=self._loop.run_forever, name="amqp", daemon=True)
            self._thread.start()
        if self.publisher and self._outbox_dir is not None and self.outbox is None:
            self.outbox = Outbox(self._outbox_dir, self._outbox_max_bytes)
        try:
            self._call(self._connect(), timeout=30)
        except Exception as exc:
            if not self.publisher or self.outbox is None:
                raise
            log.warning("rabbitmq unreachable at start (%s): accepting into the outbox", exc)
        if self.consumer:
            self._call(self._consume(), timeout=30)
        if self.publisher:
            self._call(self._start_publisher(), timeout=5)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _connect(self) -> None:
        if self._connection is None or self._connection.is_closed:
            self._connection = await aio_pika.connect_robust(
                self.url,
                timeout=10,
                reconnect_interval=RETRY_SECONDS,
                client_properties={"connection_name": "sightline"},
            )
            await self._declare_topology(self._connection)
        if not self._connected():
            raise ConnectionError("the connection to the broker is being re-established")
        if self._pub_channel is None:
            channel = await asyncio.wait_for(
                self._connection.channel(publisher_confirms=True), CONFIRM_TIMEOUT
            )
            self._pub_channel = cast(AbstractRobustChannel, channel)
        else:  # a robust channel reopens itself once its connection is back
            await asyncio.wait_for(cast(Any, self._pub_channel).ready(), CONFIRM_TIMEOUT)
        self._broker_ok = True

    def _connected(self) -> bool:
        """Whether the connection is up right now (not closed, not reconnecting)."""
        connection = self._connection
        return (
            connection is not None
            and not connection.is_closed
            and cast(Any, connection).connected.is_set()
        )

    async def _declare_topology(self, connection: AbstractRobustConnection) -> None:
        """Declare both queues. Queue arguments cannot change once a queue exists: if
        ``delivery_limit`` differs from the existing queue's, the queue keeps its own
        (change it with a policy) and this is logged."""
        channel = await connection.channel()
        try:
            await channel.declare_queue(
                DEAD_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
            )
            await channel.declare_queue(
                QUEUE, durable=True, arguments=queue_arguments(self.delivery_limit)
            )
        except aio_pika.exceptions.ChannelPreconditionFailed as exc:
            log.warning("rabbitmq: %s keeps its existing arguments (%s)", QUEUE, exc)
        finally:
            if not channel.is_closed:
                await channel.close()

    async def _consume(self) -> None:
        assert self._connection is not None
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        self._consumer_queue = await channel.get_queue(QUEUE, ensure=True)
        self._consumer_tag = await self._consumer_queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        channel = message.channel
        if channel not in self._unsettled:
            # (a new channel after a reconnection: the closed ones' messages come back)
            for closed in [c for c in self._unsettled if c.is_closed]:
                del self._unsettled[closed]
        self._unsettled.setdefault(channel, set()).add(message.delivery_tag or 0)
        self._messages.put(message)

    def _settles_oldest(self, messages: Sequence[AbstractIncomingMessage]) -> bool:
        """Whether ``messages`` are exactly the oldest unsettled messages of one open
        channel, so that one ``multiple`` ack of the newest settles them all and nothing
        else."""
        channel = _open_channel(messages[0])
        if channel is None or any(_open_channel(m) is not channel for m in messages):
            return False
        tags = {m.delivery_tag for m in messages}
        newest = max(t or 0 for t in tags)
        return all(t in tags for t in self._unsettled.get(channel, ()) if t <= newest)

    def _forget(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        for message in messages:
            channel = _open_channel(message)
            waiting = self._unsettled.get(channel) if channel is not None else None
            if waiting is not None:
                waiting.discard(message.delivery_tag or 0)
                if not waiting:
                    del self._unsettled[channel]

    def stop_receiving(self) -> None:
        """Cancel the consumer: what was delivered is still handed out, nothing more."""
        self._receiving = False
        if self._consumer_queue is not None and self._consumer_tag is not None:
            with contextlib.suppress(Exception):
                self._call(self._consumer_queue.cancel(self._consumer_tag), timeout=10)
            self._consumer_tag = None

    def close(self) -> None:
        """Hand what is waiting to the broker or the outbox, close the connection, end
        every task of the AMQP loop and the loop itself. Bounded in time: every broker
        call has a timeout, so this returns while the broker is unreachable too."""
        if self._thread is None:
            return
        self._closing = True
        if self._publisher_task is not None:
            self._loop.call_soon_threadsafe(self._wake_publisher)
            with contextlib.suppress(Exception):
                self._call(asyncio.wait_for(asyncio.shield(self._publisher_task), 30), 35)
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._call(asyncio.wait_for(self._connection.close(), 10), 15)
        with contextlib.suppress(Exception):
            self._call(_cancel_other_tasks(), timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        if not self._loop.is_running():
            self._loop.close()
        if self._incoming:  # (the publisher could not finish) never leave a request waiting
            settle((item.future for item in self._incoming), TransportFull(retry_after=5))
            self._incoming = []
        if self.outbox is not None:
            self.outbox.close()

    # -- collector side --------------------------------------------------------------------

    async def publish(self, events: list[Event]) -> None:
        if not events:
            return
        if self._pending + len(events) > self.max_pending:
            raise TransportFull(retry_after=2)
        if self._closing:
            raise TransportFull(retry_after=5)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        item = _Publish(_encoder.encode(events), len(events), future)
        self._loop.call_soon_threadsafe(self._enqueue, item)
        try:
            await asyncio.shield(future)
        except BaseException:
            if not future.done():
                raise  # cancelled: the message is still sent
            future.result()

    def _enqueue(self, item: _Publish) -> None:
        self._incoming.append(item)
        self._wake_publisher()

    def _wake_publisher(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _start_publisher(self) -> None:
        self._wake = asyncio.Event()
        self._publisher_task = asyncio.create_task(self._publish_loop())

    async def _publish_loop(self) -> None:
        assert self._wake is not None
        last_refresh = 0.0
        merged = 1  # requests the last round carried
        while True:
            if not self._incoming and not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), REFRESH_SECONDS)
            self._wake.clear()
            if self._incoming and should_linger(
                self.linger, merged, _total(self._incoming), self._closing
            ):
                await asyncio.sleep(self.linger)
            batch, self._incoming = self._incoming, []
            if batch:
                merged = len(batch)
                await self._deliver(batch)
            if self._backlog() and time.monotonic() >= self._retry_at:
                await self._forward_outbox()
            if time.monotonic() - last_refresh >= REFRESH_SECONDS:
                last_refresh = time.monotonic()
                await self._refresh_pending()
            if self._closing and not batch and not self._incoming:
                return

    def _backlog(self) -> bool:
        return self.outbox is not None and self.outbox.backlog_bytes > 0

    async def _send(self, payload: bytes, count: int) -> None:
        """Publish one message and wait for its confirm, ``CONFIRM_TIMEOUT`` at most.

        Raises when the connection is down or reconnecting (a robust channel would wait
        for it without a limit) or when no confirm came in time."""
        channel = self._pub_channel
        if channel is None or channel.is_closed or not self._connected():
            raise ConnectionError("no channel to the broker")
        message = aio_pika.Message(
            _LZ4.compress(payload, asbytes=True),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_encoding=LZ4,
            headers={"n": count, "z": len(payload)},
            message_id=uuid.uuid4().hex,
        )
        confirm = await asyncio.wait_for(
            channel.default_exchange.publish(message, routing_key=QUEUE, timeout=CONFIRM_TIMEOUT),
            CONFIRM_TIMEOUT,
        )
        if not isinstance(confirm, Basic.Ack):
            raise ConnectionError(f"the broker refused the message: {confirm!r}")

    async def _deliver(self, batch: list[_Publish]) -> None:
        """Publish the waiting requests' events (requests that arrived together share a
        message; confirms awaited together), or outbox them."""
        failed = batch
        if self._broker_ok and not self._backlog():
            groups = list(merge_groups(batch, lambda item: (item.payload, item.count)))
            results = await asyncio.gather(
                *(self._send(merge_arrays([i.payload for i in g]), _total(g)) for g in groups),
                return_exceptions=True,
            )
            failed = []
            for group, result in zip(groups, results, strict=True):
                if isinstance(result, BaseException):
                    failed += group
                else:
                    self._pending += _total(group)
                    settle((item.future for item in group), None)
            if failed:
                error = next(r for r in results if isinstance(r, BaseException))
                self._broker_down(error)
        if not failed:
            return
        if self.outbox is None:
            settle((item.future for item in failed), TransportFull(retry_after=5))
            return
        outbox = self.outbox
        records = [pack_record(item.payload, item.count) for item in failed]
        try:
            await asyncio.get_running_loop().run_in_executor(None, outbox.append, records)
        except TransportFull as exc:
            settle((item.future for item in failed), exc)
            return
        except OSError as exc:
            log.error("outbox write failed: %s", exc)
            settle((item.future for item in failed), TransportFull(retry_after=5))
            return
        settle((item.future for item in failed), None)

    def _broker_down(self, exc: BaseException) -> None:
        if self._broker_ok:
            log.warning("rabbitmq unreachable (%r): accepting into the local outbox", exc)
        self._broker_ok = False
        self._retry_at = time.monotonic() + RETRY_SECONDS

    async def _forward_outbox(self) -> None:
        assert self.outbox is not None
        outbox = self.outbox
        loop = asyncio.get_running_loop()
        try:
            await self._connect()

            def send(records: list[bytes]) -> None:
                entries = [unpack_record(r) for r in records]
                future = asyncio.run_coroutine_threadsafe(self._send_all(entries), loop)
                try:
                    future.result(CONFIRM_TIMEOUT * 2)
                except BaseException:
                    future.cancel()  # (no publish is left running behind our back)
                    raise

            while await loop.run_in_executor(None, outbox.forward, send) > 0:
                if self._incoming:
                    break  # serve waiting requests (into the outbox) first
        except Exception as exc:
            self._broker_down(exc)
            return
        if not self._broker_ok:
            log.info("rabbitmq reachable again: forwarding the outbox")
        self._broker_ok = True

    async def _send_all(self, entries: Sequence[tuple[bytes, int]]) -> None:
        """Publish every entry; raise if any failed (the outbox then sends them all
        again, and the store drops the copies)."""
        groups = list(merge_groups(entries, lambda entry: entry))
        results = await asyncio.gather(
            *(self._send(merge_arrays([p for p, _ in g]), sum(n for _, n in g)) for g in groups),
            return_exceptions=True,
        )
        self._pending += sum(
            sum(n for _, n in g) for g, r in zip(groups, results, strict=True) if r is None
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _refresh_pending(self) -> None:
        """Queue depth in events: ready and unacknowledged messages x events per message."""
        channel = self._pub_channel
        if channel is None or channel.is_closed or not self._broker_ok or not self._connected():
            return
        with contextlib.suppress(Exception):
            # (robust=False: a robust channel answers a repeated passive declaration from
            # its cache, with the first count)
            declared = await asyncio.wait_for(
                channel.declare_queue(QUEUE, passive=True, robust=False), CONFIRM_TIMEOUT
            )
            result = declared.declaration_result
            self._pending = int((result.message_count or 0) * self._per_message)

    # -- worker side -----------------------------------------------------------------------

    def receive(self, max_events: int, timeout: float, linger: float = 0.0) -> Delivery | None:
        if not self._receiving and self._messages.empty():
            return None
        try:
            first = self._messages.get(timeout=timeout)
        except queue.Empty:
            return None
        messages = [first]
        count = _message_count(first)
        deadline = time.monotonic() + linger
        while count < max_events:
            try:
                remaining = deadline - time.monotonic()
                message = (
                    self._messages.get(timeout=remaining)
                    if remaining > 0
                    else self._messages.get_nowait()
                )
            except queue.Empty:
                break
            messages.append(message)
            count += _message_count(message)
        events: list[Event] = []
        kept: list[AbstractIncomingMessage] = []
        for message in messages:
            try:
                events.extend(_decoder.decode(_payload(message)))
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError, OSError) as exc:
                log.error("rabbitmq: dead-lettering an undecodable message (%s)", exc)
                self._settle_messages([message], requeue=None)
                continue
            kept.append(message)
        if not kept:
            return None
        self._per_message = 0.9 * self._per_message + 0.1 * (len(events) / len(kept))
        return Delivery(events, checkpoint=None, token=kept)

    def ack(self, delivery: Delivery) -> None:
        self._settle_messages(cast(list[AbstractIncomingMessage], delivery.token), requeue=False)

    def _settle_messages(
        self, messages: list[AbstractIncomingMessage], requeue: bool | None
    ) -> None:
        """Ack (requeue False), reject to the dead-letter queue (None), or requeue (True)."""

        async def settle_all() -> None:
            if requeue is False and messages and self._settles_oldest(messages):
                # One frame for the whole delivery (a worker acknowledges in order).
                newest = max(messages, key=lambda m: m.delivery_tag or 0)
                try:
                    await newest.ack(multiple=True)
                except Exception as exc:
                    log.warning("rabbitmq: could not settle a delivery (%r)", exc)
                self._forget(messages)
                return
            for message in messages:
                action: Awaitable[None]
                if requeue is False:
                    action = message.ack()
                elif requeue is None:
                    action = message.reject(requeue=False)
                else:
                    action = message.nack(requeue=True)
                try:
                    await action
                except Exception as exc:
                    # The channel it came on is gone: the broker redelivers it, and the
                    # store drops it as already stored.
                    log.warning("rabbitmq: could not settle a message (%r)", exc)
                self._forget([message])

        self._call(settle_all(), timeout=30)

    def pending(self) -> int:
        return self._pending

    # -- the dead-letter queue -------------------------------------------------------------

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Peek at dead-lettered messages (they stay in the queue)."""
        return self._call(self._peek_dead(limit), timeout=60)

    async def _peek_dead(self, limit: int) -> list[DeadLetter]:
        assert self._connection is not None
        channel = await self._connection.channel()
        try:
            dead = await channel.get_queue(DEAD_QUEUE, ensure=True)
            found: list[DeadLetter] = []
            while len(found) < limit:
                message = await dead.get(no_ack=False, fail=False, timeout=5)
                if message is None:
                    break
                found.append(_dead_letter(message))
            return found
        finally:
            await channel.close()  # unacknowledged: every peeked message stays queued

    def replay_dead_letters(self, ids: Sequence[str] | None = None) -> int:
        """Publish dead letters (all, or those ``ids``) to the events queue again."""
        return self._call(self._replay(ids), timeout=600)

    async def _replay(self, ids: Sequence[str] | None) -> int:
        assert self._connection is not None
        channel = await self._connection.channel(publisher_confirms=True)
        try:
            dead = await channel.get_queue(DEAD_QUEUE, ensure=True)
            replayed = 0
            skipped: list[AbstractIncomingMessage] = []
            while True:
                message = await dead.get(no_ack=False, fail=False, timeout=5)
                if message is None:
                    break
                if ids is not None and (message.message_id or "") not in ids:
                    skipped.append(message)
                    continue
                await channel.default_exchange.publish(
                    aio_pika.Message(
                        message.body,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        content_encoding=message.content_encoding,
                        headers={
                            k: v for k, v in (message.headers or {}).items() if k in ("n", "z")
                        },
                        message_id=message.message_id or uuid.uuid4().hex,
                    ),
                    routing_key=QUEUE,
                    timeout=CONFIRM_TIMEOUT,
                )
                await message.ack()
                replayed += 1
            return replayed
        finally:
            await channel.close()  # the skipped ones go back to the dead-letter queue

    def delete_queues(self) -> None:
        """Delete both queues with their messages (uninstalling; tests)."""

        async def delete() -> None:
            assert self._connection is not None
            channel = await self._connection.channel()
            for name in (QUEUE, DEAD_QUEUE):
                await channel.queue_delete(name)
            await channel.close()

        self._call(delete(), timeout=30)


def _quiet_lost_confirms(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The AMQP loop's exception handler. When a connection drops while a publish is
    being written, aiormq fails that publish and also fails the confirm future it had
    made for it, which nobody awaits any more; asyncio would log that second copy of a
    failure already handled (the message went to the outbox) as an error."""
    exception = context.get("exception")
    if context.get("message") == "Future exception was never retrieved" and isinstance(
        exception, aio_pika.exceptions.AMQPConnectionError | ConnectionError
    ):
        log.debug("rabbitmq: a confirm lost with its connection (%r)", exception)
        return
    loop.default_exception_handler(context)


def should_linger(linger: float, merged: int, waiting: int, closing: bool) -> bool:
    """Whether the publisher waits ``linger`` seconds for more requests before sending
    the ``waiting`` events: only when busy (the last message merged several requests,
    so requests arrive faster than confirms return) and there is room for more. An idle
    collector publishes a lone request at once."""
    return linger > 0 and merged > 1 and waiting < MERGE_MAX_EVENTS and not closing


def _total(group: Sequence[_Publish]) -> int:
    return sum(item.count for item in group)


async def _cancel_other_tasks() -> None:
    """Cancel every other task of the running loop and wait for them to end (a loop
    closed with pending tasks leaves coroutines that were never finished)."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


#: Message bodies are LZ4 frames (``content_encoding``); header ``z`` holds the size of
#: the msgpack they hold. Messages without the encoding (none are written any more) are
#: read as plain msgpack.
LZ4 = "lz4"
_LZ4 = pa.Codec("lz4")


def _payload(message: AbstractIncomingMessage) -> bytes:
    """The msgpack a message carries. Raises ValueError or OSError for a body that is
    not what its headers say (it is then dead-lettered as undecodable)."""
    if message.content_encoding != LZ4:
        return message.body
    size = (message.headers or {}).get("z")
    if not isinstance(size, int) or not 0 < size <= 2 * MERGE_MAX_BYTES:
        raise ValueError(f"an lz4 message without a plausible size (z = {size!r})")
    return cast(bytes, _LZ4.decompress(message.body, decompressed_size=size, asbytes=True))


def _open_channel(message: AbstractIncomingMessage) -> Any | None:
    """The channel a message came on, or None once it closed (its unsettled messages are
    delivered again; settling them on the old channel is impossible)."""
    try:
        return message.channel
    except aio_pika.exceptions.ChannelInvalidStateError:
        return None


def _message_count(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get("n", 1)
    return value if isinstance(value, int) else 1


def _dead_letter(message: AbstractIncomingMessage) -> DeadLetter:
    headers = message.headers or {}
    reason = _text(headers.get("x-first-death-reason", ""))
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        reason = f"{_text(deaths[0].get('reason', reason))} (count {_text(deaths[0].get('count'))})"
    if "x-delivery-count" in headers:
        reason += f", delivered {_text(headers['x-delivery-count'])} times"
    return DeadLetter(
        id=message.message_id or "",
        reason=reason,
        events=_message_count(message),
        payload=message.body,
    )


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
