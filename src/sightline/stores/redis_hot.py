"""The hot store: realtime counters in Redis, shared by every Sightline process.

In a scaled deployment events are stored by several workers and read by several API
processes, so "who is on the site right now" cannot live in one process's memory. Every
writer records what it committed here (after the commit, so only stored events count);
any process reads the same answer.

Keys, under ``<redis_prefix>:rt:``:

- ``<site>:visitors`` — sorted set, visitor id -> when their latest event was received
  (ms); members older than the active window are removed as it is read and written;
- ``<site>:s:<minute>`` — hash per minute of reception, field ``<second>:<event type>``
  -> events received in that second (expires after a few minutes);
- ``version`` — incremented on every recorded batch: a data version shared by every
  process (for result caches);
- ``qc:<digest>`` — the query result cache shared by every API process
  (sightline.query.cache): an answer, the version it was computed at and when; it
  expires with the answer's freshness promise.

Counts follow the warm store's realtime definitions (by reception time, sessionless
visitors included). They are approximate only in one way: a batch a worker stored twice
(a redelivery it could not tell from new) is counted twice here, while the warm store
keeps it once.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import redis

from sightline.events import Event
from sightline.events.types import CLICK_TYPES, EventType
from sightline.transport.redis import connect

#: A visitor is active if they sent any event within this window (as query/realtime.py).
ACTIVE_MS = 5 * 60_000
_MINUTE_TTL = 5 * 60


class RedisHotStore:
    def __init__(self, url: str, prefix: str) -> None:
        self.prefix = f"{prefix}:rt"
        self._client: redis.Redis = connect(url)

    def close(self) -> None:
        self._client.close()

    def record(self, events: Sequence[Event]) -> None:
        """Count committed events (one pipelined round trip)."""
        if not events:
            return
        visitors: dict[str, dict[str, int]] = {}
        seconds: Counter[tuple[str, int, str]] = Counter()
        for event in events:
            received = event.server_timestamp or int(time.time() * 1000)
            if event.visitor_id:
                site = visitors.setdefault(event.site_id, {})
                if received > site.get(event.visitor_id, 0):
                    site[event.visitor_id] = received
            seconds[(event.site_id, received // 1000, event.event_type)] += 1
        now = int(time.time() * 1000)
        pipe = self._client.pipeline(transaction=False)
        for site_id, latest in visitors.items():
            key = f"{self.prefix}:{site_id}:visitors"
            pipe.zadd(key, latest, gt=True)
            pipe.zremrangebyscore(key, "-inf", now - ACTIVE_MS)
            pipe.expire(key, ACTIVE_MS // 1000 * 2)
        touched: set[str] = set()
        for (site_id, second, event_type), count in seconds.items():
            key = f"{self.prefix}:{site_id}:s:{second // 60}"
            pipe.hincrby(key, f"{second}:{event_type}", count)
            touched.add(key)
        for key in touched:
            pipe.expire(key, _MINUTE_TTL)
        pipe.incr(f"{self.prefix}:version")
        pipe.execute()

    def realtime(self, site_id: str, now_ms: int | None = None) -> dict[str, int]:
        """``activeUsers`` (last 5 minutes), ``pageViewsLastMinute``, ``clicksLastMinute``
        and ``eventsLastMinute`` of one site, as every process sees them."""
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        second = now // 1000
        pipe = self._client.pipeline(transaction=False)
        pipe.zcount(f"{self.prefix}:{site_id}:visitors", now - ACTIVE_MS, "+inf")
        for minute in (second // 60 - 1, second // 60):
            pipe.hgetall(f"{self.prefix}:{site_id}:s:{minute}")
        active, *minutes = pipe.execute()
        page_views = clicks = total = 0
        for fields in minutes:
            for field, value in fields.items():
                at, _, event_type = field.decode().partition(":")
                if not second - 60 < int(at) <= second:
                    continue
                count = int(value)
                total += count
                if event_type == EventType.PAGE_VIEW:
                    page_views += count
                elif event_type in CLICK_TYPES:
                    clicks += count
        return {
            "activeUsers": int(active),
            "pageViewsLastMinute": page_views,
            "clicksLastMinute": clicks,
            "eventsLastMinute": total,
        }

    def data_version(self) -> int:
        """Grows with every batch any writer committed."""
        value: Any = self._client.get(f"{self.prefix}:version")
        return int(value or 0)

    # -- the shared query result cache (sightline.query.cache.SharedCache) ---------------

    def cache_get(self, key: str) -> bytes | None:
        value: Any = self._client.get(f"{self.prefix}:qc:{key}")
        return value if isinstance(value, bytes) else None

    def cache_put(self, key: str, value: bytes, ttl: float) -> None:
        self._client.set(f"{self.prefix}:qc:{key}", value, px=max(1, int(ttl * 1000)))
