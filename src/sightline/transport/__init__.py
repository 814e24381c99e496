"""Transports carry accepted events from the collector to the writer, durably.

One Protocol, one file per implementation: ``local`` (the embedded default: an on-disk
spool with group commit), ``redis`` (Streams, one consumer group) and ``rabbitmq`` (a
quorum queue). ``publish`` returns only once the events are durable; the collector
acknowledges the client after that. The broker transports fall back to a local outbox
while their broker is unreachable (``outbox``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sightline.events import Event

if TYPE_CHECKING:
    from sightline.config import Settings


class TransportFull(Exception):
    """The transport cannot take more events now; the client should retry later."""

    def __init__(self, retry_after: int = 5) -> None:
        super().__init__("the event buffer is full")
        self.retry_after = retry_after


@dataclass(slots=True)
class Delivery:
    """A batch handed to the writer. ``checkpoint`` (if any) is stored with the batch."""

    events: list[Event]
    #: Opaque position the store records in the same transaction as the events, so a
    #: restart resumes exactly after the last committed batch.
    checkpoint: str | None = None
    token: object = None


class Transport(Protocol):
    name: str

    def start(self, checkpoint: str | None) -> None:
        """Open the transport; ``checkpoint`` is the last position the store committed."""

    async def publish(self, events: list[Event]) -> None:
        """Make ``events`` durable; returns when they are. Raises TransportFull."""

    def receive(self, max_events: int, timeout: float, linger: float = 0.0) -> Delivery | None:
        """Block up to ``timeout`` seconds for the first events, then gather more for up
        to ``linger`` seconds, returning a batch of at most about ``max_events``."""

    def ack(self, delivery: Delivery) -> None:
        """The batch is committed in the store; the transport may forget it."""

    def pending(self) -> int:
        """Events accepted but not yet acknowledged (the queue depth)."""

    def close(self) -> None: ...


def open_transport(
    settings: Settings, *, publisher: bool = True, consumer: bool = True
) -> Transport:
    """The transport the settings choose. A collector-only process is a ``publisher``, a
    worker a ``consumer``; the embedded server is both (``local`` is always both)."""
    if settings.transport == "local":
        from sightline.transport.local import LocalTransport

        return LocalTransport(
            settings.data_path / "spool",
            segment_bytes=settings.spool_segment_bytes,
            max_pending=settings.queue_max_events,
        )
    if settings.transport == "redis":
        from sightline.transport.redis import RedisTransport

        return RedisTransport(
            settings.redis_url,
            settings.redis_prefix,
            publisher=publisher,
            consumer=consumer,
            outbox_dir=settings.data_path / "outbox",
            outbox_max_bytes=settings.outbox_max_bytes,
            max_pending=settings.queue_max_events,
            claim_idle_seconds=settings.redis_claim_idle_seconds,
            delivery_limit=settings.delivery_limit,
        )
    if settings.transport == "rabbitmq":
        from sightline.transport.rabbitmq import RabbitMQTransport

        return RabbitMQTransport(
            settings.rabbitmq_url,
            publisher=publisher,
            consumer=consumer,
            outbox_dir=settings.data_path / "outbox",
            outbox_max_bytes=settings.outbox_max_bytes,
            max_pending=settings.queue_max_events,
            prefetch=settings.rabbitmq_prefetch,
            delivery_limit=settings.delivery_limit,
            linger=settings.rabbitmq_linger_ms / 1000,
        )
    raise ValueError(f"unknown transport {settings.transport!r}")
