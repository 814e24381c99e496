"""Live updates for the dashboard: ``GET /api/v1/analytics/realtime/stream`` (server-sent
events).

The writer calls :meth:`RealtimeHub.publish` with every committed batch (from its own
thread); the hub hands each subscribed stream the new events of its site through the
stream's event loop, so an event reaches the browser as soon as it is stored rather than
at the next poll. Each push carries the new events (a few display fields, at most
:data:`MAX_EVENTS_PER_PUSH`) and the site's fresh RealtimeStats.

A process without a writer (``--role api``) has no commits to listen to; its streams
push the stats every :data:`POLL_SECONDS` instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from sightline.api.analytics import REALTIME_TTL, _analytics, resolve_site
from sightline.api.auth import authorize
from sightline.query import realtime

if TYPE_CHECKING:
    from sightline.app import Runtime
    from sightline.events import Event

#: A stream without news sends a comment this often (keeps proxies from closing it).
HEARTBEAT_SECONDS = 15.0
#: Without a writer in this process, stats are pushed this often.
POLL_SECONDS = 2.0
#: Events sent per push at most (a burst is summarised by the stats).
MAX_EVENTS_PER_PUSH = 50
#: A stream ends after this long; the browser's EventSource reconnects by itself.
STREAM_SECONDS = 600.0
#: Queued pushes per stream before new ones are dropped (a stalled client).
QUEUE_SIZE = 100

_encode = msgspec.json.Encoder().encode


def event_summary(event: Event) -> dict[str, Any]:
    """The fields the live stream shows of one event."""
    return {
        "eventType": event.event_type,
        "timestamp": event.timestamp,
        "receivedAt": event.server_timestamp,
        "pagePath": event.page_path,
        "pageTitle": event.page_title,
        "country": event.country,
        "deviceType": event.device_type,
        "browser": event.browser,
        "referrerSource": event.referrer_source,
    }


class RealtimeHub:
    """Fans committed events out to the open streams of their site."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Any]]]] = {}

    def subscribe(self, site_id: str) -> asyncio.Queue[list[dict[str, Any]]]:
        queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue(QUEUE_SIZE)
        with self._lock:
            self._subscribers.setdefault(site_id, set()).add((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, site_id: str, queue: asyncio.Queue[Any]) -> None:
        with self._lock:
            subscribers = self._subscribers.get(site_id, set())
            for entry in [e for e in subscribers if e[1] is queue]:
                subscribers.discard(entry)
            if not subscribers:
                self._subscribers.pop(site_id, None)

    @property
    def streams(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subscribers.values())

    def publish(self, events: list[Event]) -> None:
        """Called by the writer (its thread) after each commit."""
        with self._lock:
            if not self._subscribers:
                return
            wanted = {site: list(subs) for site, subs in self._subscribers.items()}
        by_site: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            if event.site_id in wanted:
                by_site.setdefault(event.site_id, []).append(event_summary(event))
        for site_id, summaries in by_site.items():
            for loop, queue in wanted[site_id]:
                try:
                    loop.call_soon_threadsafe(_offer, queue, summaries)
                except RuntimeError:  # the stream's loop has closed
                    continue


def _offer(queue: asyncio.Queue[Any], summaries: list[dict[str, Any]]) -> None:
    if not queue.full():
        queue.put_nowait(summaries)


def realtime_hub(request: Request) -> RealtimeHub:
    """The app's hub, listening to its writer from the first stream on."""
    runtime: Runtime = request.app.state.runtime
    hub: RealtimeHub | None = getattr(request.app.state, "realtime_hub", None)
    if hub is None or hub.runtime is not runtime:
        hub = RealtimeHub(runtime)
        request.app.state.realtime_hub = hub
        if runtime.writer is not None:
            runtime.writer.listeners.append(hub.publish)
    return hub


def _message(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _encode(data) + b"\n\n"


async def realtime_stream(request: Request) -> Response:
    """Server-sent events: ``stats`` (RealtimeStats) at once and after every commit that
    has events of the site, ``events`` with those events. Without
    ``Accept: text/event-stream``, only the first ``stats`` message."""
    runtime: Runtime = request.app.state.runtime
    runtime.auth.authenticate(request)

    def gate() -> Any:
        site = resolve_site(runtime, request)
        authorize(request, runtime, site, "viewer")
        return site

    site = await run_in_threadpool(gate)
    # Only a client that asks for an event stream gets a live one; any other gets the
    # current figures as one message, and the answer ends (scripts, crawlers, probes).
    live = "text/event-stream" in request.headers.get("accept", "")
    analytics = _analytics(request)

    def stats() -> dict[str, Any]:
        return analytics.cached(
            ("realtime", site.id, site.timezone),
            REALTIME_TTL,
            lambda: realtime.realtime_stats(analytics.engine, site.id, site.timezone),
        )

    hub = realtime_hub(request)
    queue = hub.subscribe(site.id)
    has_writer = runtime.writer is not None

    async def body() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        ends = loop.time() + STREAM_SECONDS
        try:
            yield b"retry: 1000\n\n"
            yield _message("stats", await run_in_threadpool(stats))
            if not live:
                return
            wait = HEARTBEAT_SECONDS if has_writer else POLL_SECONDS
            while loop.time() < ends:
                try:
                    batch = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    if has_writer:
                        yield b": keep-alive\n\n"
                    else:
                        yield _message("stats", await run_in_threadpool(stats))
                    continue
                while not queue.empty():
                    batch = batch + queue.get_nowait()
                yield _message("events", batch[-MAX_EVENTS_PER_PUSH:])
                yield _message("stats", await run_in_threadpool(stats))
        finally:
            hub.unsubscribe(site.id, queue)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


routes = [Route("/api/v1/analytics/realtime/stream", realtime_stream, methods=["GET"])]
