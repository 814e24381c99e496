"""The Redis Streams transport against a real Redis, each test under a key prefix of its own.

Entries are acknowledged only when told to; trimming never removes an entry that is
pending or undelivered; a dead consumer's entries are claimed by another; poison goes to
the dead-letter stream and comes back on replay; when Redis is unreachable, collectors
accept into their outbox and forward it once Redis answers again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from sightline.events import Event
from sightline.transport import Delivery, TransportFull
from sightline.transport.redis import RedisTransport
from tests.support.proxy import TcpProxy
from tests.support.services import REDIS_URL, redis_prefix, with_path


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_prefix() as value:
        yield value


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


def publish_all(transport: RedisTransport, batches: list[list[Event]]) -> None:
    async def run() -> None:
        await asyncio.gather(*(transport.publish(b) for b in batches))

    asyncio.run(run())


def publish_each(transport: RedisTransport, batches: list[list[Event]]) -> None:
    """One batch at a time: an entry each (batches published together may share one)."""

    async def run() -> None:
        for batch in batches:
            await transport.publish(batch)

    asyncio.run(run())


def receive_all(transport: RedisTransport, expected: int, timeout: float = 10) -> list[Delivery]:
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while sum(len(d.events) for d in got) < expected and time.monotonic() < deadline:
        delivery = transport.receive(10_000, 0.2, linger=0.05)
        if delivery is not None:
            got.append(delivery)
    return got


def make(
    prefix: str, tmp_path: Path | None = None, url: str = REDIS_URL, **kw: Any
) -> RedisTransport:
    outbox = tmp_path / "outbox" if tmp_path else None
    transport = RedisTransport(url, prefix, outbox_dir=outbox, **kw)
    transport.start(None)
    return transport


def test_entries_are_acknowledged_after_the_commit_and_trimmed_after_that(prefix: str) -> None:
    transport = make(prefix)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        batches = [events(10) for _ in range(6)]
        publish_each(transport, batches)
        stream = f"{prefix}:events"
        assert client.xlen(stream) == 6
        assert int(client.get(f"{prefix}:events:pending") or 0) == 60
        first = transport.receive(25, 1.0)  # a few entries
        assert first is not None and 10 <= len(first.events) <= 30
        held = transport.receive(10, 1.0)  # received, not acknowledged (not committed)
        assert held is not None
        transport.ack(first)
        removed = transport.trim()
        # Only acknowledged entries went; the held one and the undelivered ones stay.
        assert removed == len(first.events) // 10
        assert client.xlen(stream) == 6 - removed
        pending = client.xpending(stream, "workers")
        assert pending["pending"] == len(held.events) // 10
        rest = receive_all(transport, 60 - len(first.events) - len(held.events))
        for delivery in (held, *rest):
            transport.ack(delivery)
        transport.trim()
        assert client.xlen(stream) == 0
        assert int(client.get(f"{prefix}:events:pending") or 0) == 0
        assert transport.pending() == 0
        ids = {e.event_id for d in (first, held, *rest) for e in d.events}
        assert ids == {e.event_id for b in batches for e in b}
    finally:
        transport.close()
        client.close()


def test_a_dead_consumers_entries_are_claimed_and_poison_is_dead_lettered(prefix: str) -> None:
    publisher = make(prefix, consumer=False)
    dying = make(prefix, publisher=False, claim_idle_seconds=0.3, delivery_limit=2)
    survivor = make(prefix, publisher=False, claim_idle_seconds=0.3, delivery_limit=2)
    try:
        batch = events(5)
        publish_all(publisher, [batch])
        taken = dying.receive(100, 1.0)
        assert taken is not None and len(taken.events) == 5
        # While its consumer lives, the heartbeat keeps the entry from being claimed.
        time.sleep(0.8)
        assert survivor.receive(100, 0.3) is None
        dying.close()  # dies without acknowledging
        time.sleep(0.5)
        claimed = receive_all(survivor, 5, timeout=5)
        assert [e.event_id for d in claimed for e in d.events] == [e.event_id for e in batch]
        survivor.ack(claimed[0])

        # Delivered more than delivery_limit times without an ack: dead-lettered.
        poison = events(3, tag="poison-")
        publish_all(publisher, [poison])
        for _ in range(3):
            holder = make(prefix, publisher=False, claim_idle_seconds=0.3, delivery_limit=2)
            receive_all(holder, 3, timeout=3)
            holder.close()
            time.sleep(0.4)
        assert survivor.receive(100, 0.5) is None
        dead = survivor.dead_letters()
        assert len(dead) == 1 and dead[0].events == 3 and "delivered" in dead[0].reason
        # An undecodable entry goes there at once.
        client = redis.Redis.from_url(REDIS_URL)
        client.xadd(f"{prefix}:events", {"d": b"\xc1not msgpack", "n": 1})
        client.incrby(f"{prefix}:events:pending", 1)
        assert survivor.receive(100, 0.5) is None
        assert len(survivor.dead_letters()) == 2
        client.close()
        # Replay puts the poison back; a healthy consumer stores it this time.
        assert survivor.replay_dead_letters([dead[0].id]) == 1
        back = receive_all(survivor, 3, timeout=3)
        assert {e.event_id for d in back for e in d.events} == {e.event_id for e in poison}
        assert len(survivor.dead_letters()) == 1
    finally:
        publisher.close()
        survivor.close()


def test_intake_stops_at_the_queue_bound(prefix: str) -> None:
    transport = make(prefix, consumer=False, max_pending=25)
    try:
        publish_all(transport, [events(10), events(10)])
        with pytest.raises(TransportFull):
            publish_all(transport, [events(10)])
    finally:
        transport.close()


def test_redis_unreachable_means_outbox_then_forward(prefix: str, tmp_path: Path) -> None:
    target = urlsplit(REDIS_URL)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        url = with_path(f"redis://127.0.0.1:{proxy.port}", target.path or "/0")
        collector = make(prefix, tmp_path, url=url, consumer=False)
        worker = make(prefix, publisher=False)
        try:
            before = events(20)
            publish_all(collector, [before[:10], before[10:]])
            proxy.cut()
            during = [events(7) for _ in range(12)]
            publish_all(collector, during)  # acknowledged: on the collector's disk
            assert collector.outbox is not None and collector.outbox.backlog_bytes > 0
            time.sleep(1.5)
            proxy.restore()
            deadline = time.monotonic() + 15
            while collector.outbox.backlog_bytes and time.monotonic() < deadline:
                time.sleep(0.1)
            assert collector.outbox.backlog_bytes == 0
            # the outbox's requests went on together: fewer stream entries than requests
            entries = redis.Redis.from_url(REDIS_URL).xlen(f"{prefix}:events")
            assert entries < 2 + len(during)
            got = receive_all(worker, 20 + 84)
            ids = [e.event_id for d in got for e in d.events]
            expected = {e.event_id for e in before} | {e.event_id for b in during for e in b}
            assert set(ids) == expected and len(ids) == len(expected)
        finally:
            collector.close()
            worker.close()


def test_a_full_outbox_refuses_with_retry_after(prefix: str, tmp_path: Path) -> None:
    collector = make(
        prefix, tmp_path, url="redis://127.0.0.1:1/0", consumer=False, outbox_max_bytes=2000
    )
    try:
        publish_all(collector, [events(3)])
        with pytest.raises(TransportFull) as refused:
            publish_all(collector, [events(30)])
        assert refused.value.retry_after > 0
    finally:
        collector.close()
