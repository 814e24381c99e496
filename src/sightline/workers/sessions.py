"""Sessions in the writer: server-side sessions for events that arrive without a
sessionId, and every event's ``session_duration`` (the seed's sessionDuration).

Without consent the tracker stores nothing on the device, so it cannot keep a session
id; the server then groups a visitor's events into sessions by the inactivity rule: a
gap of more than ``timeout`` between two events of the same visitor starts a new
session. Events are placed by their own timestamp, so a late or out-of-order event joins
the session whose time span (widened by the timeout) contains it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sightline.events import Event


@dataclass(slots=True)
class _Span:
    session_id: str
    start: int
    end: int


#: Looks up stored sessions: (site id, visitor ids, earliest end) -> (site, visitor, span).
LoadSpans = Callable[[str, Sequence[str], int], Iterable[tuple[str, str, str, int, int]]]
#: Looks up stored session starts: (site id, session ids) -> (session id, start ms).
LoadStarts = Callable[[str, Sequence[str]], Iterable[tuple[str, int]]]


def _no_starts(site_id: str, session_ids: Sequence[str]) -> list[tuple[str, int]]:
    return []


def server_session_id(site_id: str, visitor_id: str, start_ms: int) -> str:
    digest = hashlib.blake2b(f"{site_id}\0{visitor_id}\0{start_ms}".encode(), digest_size=12)
    return "srv_" + digest.hexdigest()


class Sessionizer:
    def __init__(
        self, timeout_ms: int, load_spans: LoadSpans, load_starts: LoadStarts = _no_starts
    ) -> None:
        self.timeout = timeout_ms
        self.load_spans = load_spans
        self.load_starts = load_starts
        self._spans: dict[tuple[str, str], list[_Span]] = {}
        #: (site, session) -> [first event ms, last event ms] of sessions seen lately.
        self._starts: dict[tuple[str, str], list[int]] = {}
        #: (site, absorbed session) -> the session it joined, until the writer takes them.
        self._merges: dict[tuple[str, str], str] = {}
        self._newest = 0

    def assign(self, events: Sequence[Event]) -> None:
        """Fill ``session_id`` of every event that has none, then every event's
        ``session_duration``: seconds since its session's first event known so far."""
        self._assign_ids(events)
        self._set_durations(events)

    def _set_durations(self, events: Sequence[Event]) -> None:
        missing: dict[str, set[str]] = {}
        for event in events:
            if event.session_id and (event.site_id, event.session_id) not in self._starts:
                missing.setdefault(event.site_id, set()).add(event.session_id)
        for site_id, session_ids in missing.items():
            for session_id, start in self.load_starts(site_id, sorted(session_ids)):
                self._starts[(site_id, session_id)] = [start, start]
        for event in sorted(events, key=lambda e: e.timestamp):
            if not event.session_id:
                continue
            ts = event.timestamp
            bounds = self._starts.setdefault((event.site_id, event.session_id), [ts, ts])
            if ts < bounds[0]:
                bounds[0] = ts
            if ts > bounds[1]:
                bounds[1] = ts
            event.session_duration = (ts - bounds[0]) // 1000
            self._newest = max(self._newest, ts)
        if len(self._starts) > 100_000:
            horizon = self._newest - 4 * self.timeout
            self._starts = {k: v for k, v in self._starts.items() if v[1] >= horizon}

    def take_merges(self) -> list[tuple[str, str, str]]:
        """Sessions joined since the last call: (site id, absorbed id, surviving id).

        A late event that falls within the timeout of two sessions of the same visitor
        joins them: the later session is absorbed into the earlier one, and the store
        relabels the absorbed session's events and rebuilds the survivor's row.
        """
        merges = [(site, absorbed, self._final(site, absorbed)) for site, absorbed in self._merges]
        self._merges.clear()
        return merges

    def _final(self, site: str, session_id: str) -> str:
        while (site, session_id) in self._merges:
            session_id = self._merges[(site, session_id)]
        return session_id

    def _assign_ids(self, events: Sequence[Event]) -> None:
        pending = [e for e in events if not e.session_id and e.visitor_id]
        if not pending:
            return
        pending.sort(key=lambda e: e.timestamp)
        self._load_missing(pending)
        merged_here = False
        for event in pending:
            key = (event.site_id, event.visitor_id)
            spans = self._spans.setdefault(key, [])
            ts = event.timestamp
            matches = [s for s in spans if s.start - self.timeout <= ts <= s.end + self.timeout]
            if not matches:
                span = _Span(server_session_id(event.site_id, event.visitor_id, ts), ts, ts)
                spans.append(span)
            else:
                span = min(matches, key=lambda s: s.start)
                for other in matches:
                    if other is not span:
                        span.start = min(span.start, other.start)
                        span.end = max(span.end, other.end)
                        spans.remove(other)
                        self._merges[(event.site_id, other.session_id)] = span.session_id
                        merged_here = True
                span.start = min(span.start, ts)
                span.end = max(span.end, ts)
            event.session_id = span.session_id
            self._newest = max(self._newest, ts)
        if merged_here:
            for event in events:
                event.session_id = self._final(event.site_id, event.session_id)
        self._evict()

    def _load_missing(self, events: Sequence[Event]) -> None:
        wanted: dict[str, set[str]] = {}
        earliest: dict[str, int] = {}
        for event in events:
            if (event.site_id, event.visitor_id) not in self._spans:
                wanted.setdefault(event.site_id, set()).add(event.visitor_id)
                earliest[event.site_id] = min(
                    earliest.get(event.site_id, event.timestamp), event.timestamp
                )
        for site_id, visitors in wanted.items():
            for key in visitors:
                self._spans[(site_id, key)] = []
            since = earliest[site_id] - self.timeout
            for site, visitor, session_id, start, end in self.load_spans(
                site_id, sorted(visitors), since
            ):
                self._spans[(site, visitor)].append(_Span(session_id, start, end))

    def _evict(self) -> None:
        """Forget visitors idle for long: the store remembers them if they come back."""
        if len(self._spans) < 50_000:
            return
        horizon = self._newest - 4 * self.timeout
        self._spans = {
            key: spans
            for key, spans in self._spans.items()
            if any(span.end >= horizon for span in spans)
        }
