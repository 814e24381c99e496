"""A result cache that cannot serve numbers older than an endpoint promises.

An answer is reused only while both hold:

- the store's data version is the one read *before* the answer was computed (the writer
  counts what it commits, so a commit makes every earlier answer a miss), and
- it is younger than the endpoint's freshness promise (``ttl``: 1 s for realtime, 5 s
  for the rest), which also bounds changes the writer does not count (erasure, site
  deletion).

Keys are the site and the normalised query (model objects, so equivalent requests
share an entry); the number of entries is bounded (least recently used goes first).

With a shared tier (the Redis hot store, ``hot_store = redis``) answers are also kept
there, so every API process reuses what any of them computed, under the same two rules:
the version is then the one every writer increments in Redis, and an entry's age is
measured from when its computation started, by the wall clock.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import msgspec

log = logging.getLogger(__name__)
T = TypeVar("T")


class SharedCache(Protocol):
    """Where processes share answers (sightline.stores.redis_hot.RedisHotStore)."""

    def cache_get(self, key: str) -> bytes | None: ...

    def cache_put(self, key: str, value: bytes, ttl: float) -> None: ...


class _Shared(msgspec.Struct, array_like=True):
    """An answer as the shared tier holds it."""

    version: str
    #: When computing started (epoch seconds, wall clock).
    at: float
    value: msgspec.Raw


@dataclass(frozen=True, slots=True)
class _Entry:
    value: Any
    version: Hashable
    #: When computing started (monotonic seconds): the data is at least this fresh.
    at: float


_encode = msgspec.json.Encoder().encode
_decode_shared = msgspec.json.Decoder(_Shared).decode


def shared_key(key: Hashable) -> str | None:
    """A key every process spells the same way: a digest of the key's repr (model
    objects are dataclasses of plain values), or None for a key whose repr names an
    object of this process only."""
    text = repr(key)
    if " at 0x" in text:
        return None
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ResultCache:
    def __init__(
        self,
        version: Callable[[], Hashable],
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
        *,
        shared: SharedCache | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._version = version
        self._max = max_entries
        self._clock = clock
        self._shared = shared
        self._wall_clock = wall_clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.shared_hits = 0
        self.misses = 0

    def get_or_compute(self, key: Hashable, ttl: float, compute: Callable[[], T]) -> T:
        version = self._version()
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.version == version and now - entry.at < ttl:
                self._entries.move_to_end(key)
                self.hits += 1
                value: T = entry.value
                return value
        wall = self._wall_clock()
        name = shared_key(key) if self._shared is not None else None
        if name is not None:
            found = self._shared_get(name, version, wall, ttl)
            if found is not None:
                age, value = found
                self._keep(key, _Entry(value, version, now - age))
                with self._lock:
                    self.shared_hits += 1
                return value
        with self._lock:
            self.misses += 1
        value = compute()
        self._keep(key, _Entry(value, version, now))
        if name is not None:
            self._shared_put(name, version, wall, ttl, value)
        return value

    def _keep(self, key: Hashable, entry: _Entry) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def _shared_get(self, name: str, version: Hashable, wall: float, ttl: float) -> Any:
        """(age in seconds, answer) from the shared tier, if it holds a fresh one."""
        assert self._shared is not None
        try:
            raw = self._shared.cache_get(name)
            if raw is None:
                return None
            found = _decode_shared(raw)
        except Exception as exc:  # an unreachable tier is a miss, never a failed answer
            log.warning("shared result cache: read failed (%r)", exc)
            return None
        age = wall - found.at
        if found.version != repr(version) or not 0 <= age < ttl:
            return None
        return age, msgspec.json.decode(found.value)

    def _shared_put(
        self, name: str, version: Hashable, wall: float, ttl: float, value: Any
    ) -> None:
        assert self._shared is not None
        try:
            raw = _encode(_Shared(repr(version), wall, msgspec.Raw(_encode(value))))
        except TypeError:
            return  # not a JSON answer: kept in this process only
        try:
            self._shared.cache_put(name, raw, ttl)
        except Exception as exc:
            log.warning("shared result cache: write failed (%r)", exc)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
