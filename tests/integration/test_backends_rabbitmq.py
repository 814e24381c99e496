"""The RabbitMQ transport against a real broker, each test in a vhost of its own.

Publishes return after the broker's confirm; messages are acknowledged only when told to
(what a worker held when it went away comes back); a graceful stop hands out what was
delivered and nothing more; poison goes to the dead-letter queue and back on replay; an
unreachable broker means the outbox, forwarded when the broker is back. Messages travel
LZ4-compressed; plain msgpack (as written before) is still read.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import msgspec
import pyarrow as pa
import pytest

from sightline.events import Event
from sightline.transport import Delivery, TransportFull
from sightline.transport.rabbitmq import QUEUE, RabbitMQTransport
from tests.support.proxy import TcpProxy
from tests.support.services import rabbitmq_vhost


@pytest.fixture(scope="module")
def vhost_url() -> Iterator[str]:
    with rabbitmq_vhost() as url:
        yield url


@pytest.fixture
def url(vhost_url: str) -> Iterator[str]:
    """The module's vhost, its queues deleted after each test (cheaper than a new vhost)."""
    yield vhost_url
    cleanup = RabbitMQTransport(vhost_url, publisher=False, consumer=False)
    cleanup.start(None)
    try:
        cleanup.delete_queues()
    finally:
        cleanup.close()


def events(n: int, tag: str = "") -> list[Event]:
    now = int(time.time() * 1000)
    return [
        Event(
            event_type="page_view",
            event_id=f"{tag}{uuid.uuid4().hex}",
            timestamp=now,
            visitor_id="v",
            site_id="s",
            server_timestamp=now,
        )
        for _ in range(n)
    ]


def publish_all(transport: RabbitMQTransport, batches: list[list[Event]]) -> None:
    async def run() -> None:
        await asyncio.gather(*(transport.publish(b) for b in batches))

    asyncio.run(run())


def publish_each(transport: RabbitMQTransport, batches: list[list[Event]]) -> None:
    """One batch at a time: a message each (batches published together may share one)."""

    async def run() -> None:
        for batch in batches:
            await transport.publish(batch)

    asyncio.run(run())


def receive_all(transport: RabbitMQTransport, expected: int, timeout: float = 10) -> list[Delivery]:
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while sum(len(d.events) for d in got) < expected and time.monotonic() < deadline:
        delivery = transport.receive(10_000, 0.2, linger=0.05)
        if delivery is not None:
            got.append(delivery)
    return got


def take_the_rest(url: str, expected: int) -> list[str]:
    """A new consumer takes what is left (``expected`` events), acknowledges it and finds
    nothing more; returns the event ids, sorted."""
    again = make(url, publisher=False)
    try:
        back = receive_all(again, expected)
        for delivery in back:
            again.ack(delivery)
        assert again.receive(100, 0.5) is None
        return sorted(e.event_id for d in back for e in d.events)
    finally:
        again.close()


def make(url: str, tmp_path: Path | None = None, **kw: Any) -> RabbitMQTransport:
    outbox = tmp_path / "outbox" if tmp_path else None
    transport = RabbitMQTransport(url, outbox_dir=outbox, **kw)
    transport.start(None)
    return transport


def test_confirmed_publish_manual_ack_and_redelivery(url: str) -> None:
    collector = make(url, consumer=False)
    worker = make(url, publisher=False, prefetch=50)
    try:
        batches = [events(10) for _ in range(8)]
        publish_each(collector, batches)
        got = receive_all(worker, 80)
        ids = [e.event_id for d in got for e in d.events]
        assert sorted(ids) == sorted(e.event_id for b in batches for e in b)
        worker.ack(got[0])
        worker.close()  # goes away holding the rest, unacknowledged
        redelivered = take_the_rest(url, 80 - len(got[0].events))
        assert redelivered == sorted(e.event_id for d in got[1:] for e in d.events)
    finally:
        collector.close()


def _take_raw(url: str) -> aio_pika.abc.AbstractIncomingMessage:
    """One message off the events queue as it lies there (acknowledged: it is gone)."""

    async def take() -> aio_pika.abc.AbstractIncomingMessage:
        async with await aio_pika.connect(url) as connection:
            channel = await connection.channel()
            queue = await channel.get_queue(QUEUE, ensure=True)
            message = await queue.get(no_ack=True, timeout=5)
            assert message is not None
            return message

    return asyncio.run(take())


def _put_raw(url: str, body: bytes, **properties: Any) -> None:
    async def put() -> None:
        async with await aio_pika.connect(url) as connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.default_exchange.publish(
                aio_pika.Message(
                    body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, **properties
                ),
                routing_key=QUEUE,
            )

    asyncio.run(put())


def test_messages_travel_compressed_and_plain_ones_are_still_read(url: str) -> None:
    collector = make(url, consumer=False)
    try:
        batch = events(40)
        publish_each(collector, [batch])
        raw = _take_raw(url)
        assert raw.content_encoding == "lz4"
        assert raw.headers["n"] == 40
        plain = pa.Codec("lz4").decompress(
            raw.body, decompressed_size=raw.headers["z"], asbytes=True
        )
        assert len(raw.body) * 3 < len(plain)  # similar events compress well
        assert [e.event_id for e in msgspec.msgpack.decode(plain, type=list[Event])] == [
            e.event_id for e in batch
        ]
    finally:
        collector.close()
    # A message written before compression (plain msgpack) is read as it is; a body that
    # is not what its headers say is dead-lettered, and the good one after it delivered.
    old = events(3, tag="old-")
    _put_raw(url, msgspec.msgpack.encode(old), headers={"n": 3})
    _put_raw(url, b"not lz4", content_encoding="lz4", headers={"n": 2, "z": 100})
    _put_raw(url, raw.body, content_encoding="lz4", headers={"n": 40, "z": 10**9})
    after = events(2, tag="after-")
    _put_raw(url, msgspec.msgpack.encode(after), headers={"n": 2})
    worker = make(url, publisher=False)
    try:
        got = receive_all(worker, 5)
        assert sorted(e.event_id for d in got for e in d.events) == sorted(
            e.event_id for e in old + after
        )
        for delivery in got:
            worker.ack(delivery)
        deadline = time.monotonic() + 10
        dead = worker.dead_letters()
        while len(dead) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            dead = worker.dead_letters()
        assert sorted(d.events for d in dead) == [2, 40]
    finally:
        worker.close()


def test_acks_settle_exactly_the_acknowledged_messages(url: str) -> None:
    """A delivery that holds the oldest unsettled messages is acknowledged with one
    frame (multiple); acknowledging out of order settles only those messages."""
    collector = make(url, consumer=False)
    worker = make(url, publisher=False)
    try:
        batches = [events(10, tag=f"m{n}-") for n in range(5)]
        publish_each(collector, batches)
        time.sleep(0.3)  # all five delivered to the worker
        first, second, third = (worker.receive(10, 2.0) for _ in range(3))
        assert first and second and third
        worker.ack(second)  # out of order: this message alone
        worker.ack(first)  # now the oldest: one frame settles it
        worker.close()  # went away holding the third and the two after it
        got = take_the_rest(url, 30)
        assert got == sorted(e.event_id for b in batches[2:] for e in b)
    finally:
        collector.close()


def test_acknowledging_after_the_channel_closed_is_harmless(url: str) -> None:
    """The channel a delivery came on can close before the store commits (a dropped
    connection): the acknowledgement then fails quietly and the broker delivers the
    messages again, to be dropped by the store as already stored."""
    collector = make(url, consumer=False)
    worker = make(url, publisher=False)
    try:
        batches = [events(5, tag=f"c{n}-") for n in range(2)]
        publish_each(collector, batches)
        first = receive_all(worker, 10)
        assert sum(len(d.events) for d in first) == 10
        messages = [m for d in first for m in d.token]
        worker._call(messages[0].channel.close())
        for delivery in first:
            worker.ack(delivery)  # must not raise
    finally:
        worker.close()
    again = make(url, publisher=False)
    try:
        back = receive_all(again, 10)
        assert sorted(e.event_id for d in back for e in d.events) == sorted(
            e.event_id for b in batches for e in b
        )
        for delivery in back:
            again.ack(delivery)
    finally:
        again.close()
        collector.close()


def test_stop_receiving_hands_out_what_was_delivered_only(url: str) -> None:
    collector = make(url, consumer=False)
    worker = make(url, publisher=False, prefetch=3)
    try:
        publish_each(collector, [events(2) for _ in range(10)])
        first = worker.receive(2, 2.0)
        assert first is not None
        time.sleep(0.3)  # the prefetch fills up
        worker.stop_receiving()
        held = receive_all(worker, 100, timeout=1.0)
        for delivery in (first, *held):
            worker.ack(delivery)
        taken = len(first.events) + sum(len(d.events) for d in held)
        assert taken <= 2 * 4  # at most the prefetch beyond the first message
        assert worker.receive(100, 0.3) is None
        other = make(url, publisher=False)
        try:
            assert sum(len(d.events) for d in receive_all(other, 20 - taken)) == 20 - taken
        finally:
            other.close()
    finally:
        collector.close()
        worker.close()


def test_poison_is_dead_lettered_and_replayed(url: str) -> None:
    collector = make(url, consumer=False, delivery_limit=1)
    try:
        poison = events(4, tag="poison-")
        publish_all(collector, [poison])
        for _ in range(3):  # consumers that die holding it
            holder = make(url, publisher=False, delivery_limit=1)
            receive_all(holder, 4, timeout=3)
            holder.close()
        inspector = make(url, publisher=False, consumer=False, delivery_limit=1)
        try:
            deadline = time.monotonic() + 10
            dead = inspector.dead_letters()
            while not dead and time.monotonic() < deadline:
                time.sleep(0.2)
                dead = inspector.dead_letters()
            assert len(dead) == 1 and dead[0].events == 4, dead
            assert inspector.dead_letters()[0].id == dead[0].id  # peeking leaves it there
            assert inspector.replay_dead_letters() == 1
            assert inspector.dead_letters() == []
        finally:
            inspector.close()
        worker = make(url, publisher=False, delivery_limit=1)
        try:
            back = receive_all(worker, 4)
            assert {e.event_id for d in back for e in d.events} == {e.event_id for e in poison}
            for delivery in back:
                worker.ack(delivery)
        finally:
            worker.close()
    finally:
        collector.close()


def test_unreachable_broker_means_outbox_then_forward(url: str, tmp_path: Path) -> None:
    target = urlsplit(url)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 5672) as proxy:
        proxied = url.replace(f"{target.hostname}:{target.port or 5672}", f"127.0.0.1:{proxy.port}")
        if target.port is None:
            proxied = url.replace(f"@{target.hostname}/", f"@127.0.0.1:{proxy.port}/")
        collector = make(proxied, tmp_path, consumer=False)
        worker = make(url, publisher=False)
        try:
            before = events(20)
            publish_all(collector, [before[:10], before[10:]])
            proxy.cut()
            during = [events(7) for _ in range(12)]
            publish_all(collector, during)
            assert collector.outbox is not None and collector.outbox.backlog_bytes > 0
            time.sleep(1.5)
            proxy.restore()
            deadline = time.monotonic() + 30
            while collector.outbox.backlog_bytes and time.monotonic() < deadline:
                time.sleep(0.1)
            assert collector.outbox.backlog_bytes == 0
            got = receive_all(worker, 20 + 84)
            ids = [e.event_id for d in got for e in d.events]
            expected = {e.event_id for e in before} | {e.event_id for b in during for e in b}
            assert set(ids) == expected and len(ids) == len(expected)
            for delivery in got:
                worker.ack(delivery)
        finally:
            collector.close()
            worker.close()


def test_a_collector_starts_with_the_broker_down_and_bounds_its_outbox(tmp_path: Path) -> None:
    collector = make(
        "amqp://guest:guest@127.0.0.1:1/", tmp_path, consumer=False, outbox_max_bytes=2000
    )
    try:
        publish_all(collector, [events(3)])
        with pytest.raises(TransportFull):
            publish_all(collector, [events(30)])
    finally:
        collector.close()
