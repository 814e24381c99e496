"""``sightline worker``: consumers of a shared transport (redis or rabbitmq).

Each consumer is a process of its own (Python runs one thread of Python at a time, and a
writer is mostly Python): it takes batches from the transport, stores them with their
sessions (idempotently: a redelivered batch is dropped by the store), updates the hot
counters, then acknowledges the batch. With ``--consumers N`` (``worker_consumers``) the
command supervises N consumer processes, restarting one that dies.

Shutdown: SIGTERM (or SIGINT) makes every consumer stop taking new messages, store and
acknowledge what it holds, refresh the rollups it owes, and exit 0. A consumer killed
outright (SIGKILL, a crash) loses nothing either: what it held was never acknowledged,
so the broker hands it to another consumer (RabbitMQ at once, Redis after
``redis_claim_idle_seconds``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

from sightline.config import Settings
from sightline.metrics import Metrics
from sightline.stores.base import open_store
from sightline.transport import open_transport
from sightline.workers.ingest import Writer

log = logging.getLogger(__name__)

#: Longest a consumer spends draining after SIGTERM before it gives up (its unacknowledged
#: messages are then delivered to another consumer).
DRAIN_SECONDS = 60.0
#: Restarts of a dying consumer are spaced by at least this (seconds).
RESTART_BACKOFF = 2.0


def check_worker_settings(settings: Settings) -> None:
    if settings.transport == "local":
        raise ValueError(
            "`sightline worker` consumes a shared transport (transport = redis or rabbitmq); "
            "with the embedded local transport the writer runs inside `sightline serve`"
        )
    if settings.store != "postgres":
        raise ValueError(
            "workers share their store: `sightline worker` needs store = postgres "
            "(the embedded DuckDB file has one process)"
        )


def run_consumer(settings: Settings, metrics_port: int | None = None) -> int:
    """One consumer in this process, until SIGTERM; returns the exit code."""
    stop = threading.Event()
    _on_signals(lambda: stop.set())
    store = open_store(settings, pool_size=2)
    store.migrate()
    transport = open_transport(settings, publisher=False, consumer=True)
    metrics = Metrics()
    metrics.watch_queue(transport.pending)
    writer = Writer(store, transport, settings, metrics, shared=True)
    hot = None
    if settings.hot_store == "redis":
        from sightline.stores.redis_hot import RedisHotStore

        hot = RedisHotStore(settings.redis_url, settings.redis_prefix)
        writer.listeners.append(hot.record)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1", registry=metrics.registry)
    while True:  # the broker may not be up yet (or reachable): keep trying
        try:
            transport.start(None)
            break
        except Exception as exc:
            log.warning(
                "worker %d: cannot reach the %s broker (%s)", os.getpid(), transport.name, exc
            )
            if stop.wait(RESTART_BACKOFF):
                store.close()
                return 0
    writer.start()
    log.info("worker %d consuming %s into %s", os.getpid(), transport.name, store.engine)
    code = 0
    while not stop.wait(0.5):
        thread = writer._thread
        if thread is None or not thread.is_alive():
            log.error("worker %d: the writer stopped unexpectedly", os.getpid())
            code = 1
            break
    log.info("worker %d draining", os.getpid())
    writer.stop(timeout=DRAIN_SECONDS)
    if writer._thread is not None and writer._thread.is_alive():
        log.error(
            "worker %d: could not drain in %.0fs; leaving the rest", os.getpid(), DRAIN_SECONDS
        )
        code = code or 1
    transport.close()
    if hot is not None:
        hot.close()
    store.close()
    log.info("worker %d stopped", os.getpid())
    return code


def run_workers(settings: Settings, consumers: int, child_args: Sequence[str]) -> int:
    """Supervise ``consumers`` consumer processes (``sightline worker --consumers 1`` with
    ``child_args``) until SIGTERM, which is passed on to each."""
    stop = threading.Event()
    _on_signals(lambda: stop.set())
    command = [sys.executable, "-m", "sightline", "worker", "--consumers", "1", *child_args]
    children: list[subprocess.Popen[bytes] | None] = [None] * consumers
    started_at = [0.0] * consumers

    def spawn(index: int) -> None:
        env = dict(os.environ)
        env["SIGHTLINE_WORKER_INDEX"] = str(index)
        children[index] = subprocess.Popen([*command], env=env)
        started_at[index] = time.monotonic()

    for index in range(consumers):
        spawn(index)
    log.info("supervising %d consumers", consumers)
    while not stop.wait(0.5):
        for index, child in enumerate(children):
            if child is not None and child.poll() is not None:
                log.error(
                    "consumer %d (pid %d) exited with %s; restarting",
                    index,
                    child.pid,
                    child.returncode,
                )
                children[index] = None
            if children[index] is None and time.monotonic() - started_at[index] >= RESTART_BACKOFF:
                spawn(index)
    for child in children:
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + DRAIN_SECONDS + 10
    code = 0
    for child in children:
        if child is None:
            continue
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        code = max(code, child.returncode or 0)
    return code


def _on_signals(handler: Callable[[], None]) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        handler()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
