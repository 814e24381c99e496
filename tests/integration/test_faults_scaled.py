"""Faults in the scaled topology, with real processes and real services.

A collector (``sightline serve --role collector``) and two workers (``sightline worker``)
run against PostgreSQL and Redis or RabbitMQ (each test in its own database and key
prefix or vhost). The broker is reached through a TCP proxy, so its connections can be
dropped and refused without disturbing the broker itself. Clients stream batches from
several threads, then:

- a worker is killed with SIGKILL while it holds a batch;
- the broker connections drop and come back;
- the broker is unreachable during a burst (collectors accept into their outbox);
- a worker is stopped with SIGTERM (it drains and exits 0);

and afterwards every acknowledged event is stored exactly once, and the sessions agree.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from sightline.transport.rabbitmq import RabbitMQTransport
from tests.integration.test_crash import SENDERS, Sender
from tests.support.proxy import TcpProxy
from tests.support.server import ServerProcess, running_server, sightline_command
from tests.support.services import (
    REDIS_URL,
    postgres_database,
    rabbitmq_vhost,
    redis_prefix,
    with_path,
)

pytestmark = pytest.mark.slow


@dataclass
class Backend:
    transport: str
    settings: dict[str, Any]
    proxy: TcpProxy
    prefix: str = ""


class WorkerProcess:
    """``sightline worker --consumers 1`` in a subprocess."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [*sightline_command(), "worker", "--consumers", "1"],
                env=env,
                stdout=out,
                stderr=out,
            )

    def wait_consuming(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "consuming" not in self.log.read_text():
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the worker did not start consuming"
            time.sleep(0.1)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def terminate(self, timeout: float = 90) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.terminate(60)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class Topology:
    backend: Backend
    collector: ServerProcess
    tmp_path: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self) -> WorkerProcess:
        env = self.collector.env()
        index = len(self.workers)
        env["SIGHTLINE_DATA_DIR"] = str(self.tmp_path / f"worker{index}")
        worker = WorkerProcess(env, self.tmp_path / f"worker{index}.log")
        self.workers.append(worker)
        return worker

    def stream(self, site_key: str, seconds: float, during: Any = None) -> Sender:
        """Send from SENDERS threads for ``seconds``; ``during(elapsed)`` is called every
        0.1 s meanwhile (to inject faults)."""
        sender = Sender(self.collector, site_key)
        threads = [threading.Thread(target=sender.run) for _ in range(SENDERS)]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            if during is not None:
                during(elapsed)
            time.sleep(0.1)
        sender.stop.set()
        for thread in threads:
            thread.join()
        return sender


@pytest.fixture(params=["redis", "rabbitmq"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    with postgres_database() as postgres_url:
        base = {
            "store": "postgres",
            "postgres_url": postgres_url,
            "rate_limit_per_minute": 0,
            "writer_flush_ms": 100,
            "redis_claim_idle_seconds": 1,
        }
        if request.param == "redis":
            target = urlsplit(REDIS_URL)
            with (
                redis_prefix() as prefix,
                TcpProxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy,
            ):
                url = with_path(f"redis://127.0.0.1:{proxy.port}", target.path or "/0")
                settings = {**base, "transport": "redis", "redis_url": url, "redis_prefix": prefix}
                yield Backend("redis", settings, proxy, prefix)
        else:
            with rabbitmq_vhost() as amqp_url:
                target = urlsplit(amqp_url)
                with TcpProxy(target.hostname or "127.0.0.1", target.port or 5672) as proxy:
                    netloc = f"{target.username}:{target.password}@127.0.0.1:{proxy.port}"
                    url = f"amqp://{netloc}{target.path}"
                    yield Backend(
                        "rabbitmq", {**base, "transport": "rabbitmq", "rabbitmq_url": url}, proxy
                    )


@pytest.fixture
def topology(backend: Backend, tmp_path: Path) -> Iterator[Topology]:
    with running_server(tmp_path / "collector", role="collector", **backend.settings) as server:
        topo = Topology(backend, server, tmp_path)
        for worker in (topo.start_worker(), topo.start_worker()):
            worker.wait_consuming()
        try:
            yield topo
        finally:
            for worker in topo.workers:
                worker.stop()


def wait_stored_exactly_once(topology: Topology, expected: set[str], timeout: float = 180) -> None:
    server = topology.collector
    deadline = time.monotonic() + timeout
    # Wait for the acknowledged events themselves: the count alone can be reached early,
    # as requests that were not acknowledged (a confirm timed out) may be stored too.
    while time.monotonic() < deadline:
        if expected <= {row[0] for row in server.query("SELECT event_id FROM events")}:
            break
        time.sleep(0.5)
    time.sleep(1.0)  # anything still in flight would show up as a duplicate now
    rows = server.query("SELECT event_id, count(*) FROM events GROUP BY event_id")
    stored = {event_id: count for event_id, count in rows}
    missing = expected - stored.keys()
    doubled = {event_id for event_id, count in stored.items() if count > 1}
    logs = "\n".join(w.log.read_text()[-2000:] for w in topology.workers)
    assert not missing, (
        f"{len(missing)} of {len(expected)} acknowledged events lost "
        f"({dead_letters(topology.backend)} dead-lettered messages)\n{logs}"
    )
    assert not doubled, f"{len(doubled)} events stored more than once"
    sessions = server.query("SELECT sum(events) FROM session_stats")[0][0]
    assert sessions == len(stored), "sessions disagree with the events"


def dead_letters(backend: Backend) -> int | str:
    """How many messages wait in the dead-letter queue (RabbitMQ; to explain a loss)."""
    if backend.transport != "rabbitmq":
        return "no"
    transport = RabbitMQTransport(backend.settings["rabbitmq_url"], publisher=False, consumer=False)
    try:
        transport.start(None)
        return len(transport.dead_letters(limit=10_000))
    except Exception as exc:
        return f"unknown ({exc!r})"
    finally:
        transport.close()


def queue_drained(backend: Backend) -> bool:
    if backend.transport == "redis":
        client = redis.Redis.from_url(REDIS_URL)
        try:
            stream = f"{backend.prefix}:events"
            pending = client.xpending(stream, "workers")["pending"]
            return pending == 0 and int(client.get(f"{stream}:pending") or 0) == 0
        finally:
            client.close()
    return True  # RabbitMQ: every event stored once is what matters; acks are checked by redelivery


def site_key(topology: Topology) -> str:
    key: str = topology.collector.add_site("faults.example", origins=["*"])["siteKey"]
    return key


def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(topology: Topology) -> None:
    key = site_key(topology)
    held_at_kill: list[int] = []

    def kill_and_replace(elapsed: float) -> None:
        if elapsed < 1.5 or held_at_kill:
            return
        victim = topology.workers[0]
        # Wait (up to 2 s) for a moment when the victim holds a batch, then kill it.
        held = held_by(topology.backend, victim.process.pid)
        if held == 0 and elapsed < 3.5:
            return
        victim.kill()
        held_at_kill.append(held)
        topology.start_worker()

    sender = topology.stream(key, 4.0, kill_and_replace)
    assert len(sender.acked) * 50 >= 1000, "too few events were acknowledged to tell"
    wait_stored_exactly_once(topology, sender.acked_ids())
    if topology.backend.transport == "redis":
        assert held_at_kill[0] > 0, "the killed worker held no batch: not a mid-batch kill"
        deadline = time.monotonic() + 30
        while not queue_drained(topology.backend) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert queue_drained(topology.backend)


def test_broker_connections_dropped_and_restored(topology: Topology) -> None:
    key = site_key(topology)
    proxy = topology.backend.proxy

    def flap(elapsed: float) -> None:
        if 1.0 <= elapsed < 2.5 and proxy.up:
            proxy.cut()
        elif elapsed >= 2.5 and not proxy.up:
            proxy.restore()

    sender = topology.stream(key, 4.5, flap)
    assert proxy.up
    assert not sender.unacked or len(sender.acked) > len(sender.unacked)
    wait_stored_exactly_once(topology, sender.acked_ids())


def test_broker_down_during_a_burst(topology: Topology) -> None:
    key = site_key(topology)
    proxy = topology.backend.proxy
    warm = topology.stream(key, 0.5)
    proxy.cut()
    burst = topology.stream(key, 2.0)
    # The collector took the whole burst into its outbox: acknowledged, not refused.
    assert len(burst.acked) * 50 >= 500 and not burst.unacked
    outbox = topology.collector.data_dir / "outbox"
    assert any(p.stat().st_size > 0 for p in outbox.glob("*.spool"))
    time.sleep(1.0)
    proxy.restore()
    wait_stored_exactly_once(topology, warm.acked_ids() | burst.acked_ids())


def test_sigterm_drains_a_worker_and_the_others_carry_on(topology: Topology) -> None:
    key = site_key(topology)
    codes: list[int] = []

    def stop_one(elapsed: float) -> None:
        if elapsed >= 1.5 and not codes:
            codes.append(topology.workers[0].terminate(60))

    sender = topology.stream(key, 3.5, stop_one)
    assert codes == [0]
    assert "stopped" in topology.workers[0].log.read_text()
    wait_stored_exactly_once(topology, sender.acked_ids())


def held_by(backend: Backend, pid: int) -> int:
    """Entries delivered to the consumer of process ``pid`` and not acknowledged (Redis)."""
    if backend.transport != "redis":
        return -1
    client = redis.Redis.from_url(REDIS_URL)
    try:
        summary = client.xpending(f"{backend.prefix}:events", "workers")
        return sum(
            int(c["pending"]) for c in summary["consumers"] if f"-{pid}-" in c["name"].decode()
        )
    finally:
        client.close()
