"""Enrichment: a list of named steps between the collector and the transport.

Each step takes an event and its request context and returns the event (changed in
place or not) or a ``Drop`` with a typed reason. Reading ``build_pipeline`` tells you
what happens to every event. The pipeline counts drops per step and reason and times
each step; both are exported on /metrics.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from time import perf_counter
from time import time as wall_clock
from typing import TYPE_CHECKING, Any, NamedTuple

from sightline.events import Event

if TYPE_CHECKING:
    from sightline.config import Settings
    from sightline.privacy.salts import SaltStore
    from sightline.sites import Site


class Drop(NamedTuple):
    """Why a step dropped an event: ``reason`` is a short snake_case code."""

    reason: str
    #: True when the client should hear of it in the batch answer's ``rejected`` list.
    report: bool = True


@dataclass(slots=True)
class RequestContext:
    """What the collector knows about the request that carried the events.

    ``ip`` lives only here, in memory: no step may copy it into an event.
    """

    site: Site
    #: The direct peer's address; ``proxies.client_ip`` applies X-Forwarded-For from
    #: trusted proxies.
    ip: str
    user_agent: str
    #: When the collector received the request, ms since the Unix epoch.
    received_at: int
    #: The tracker's clock when it sent the request (metadata.sentAt), if given.
    sent_at: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Ids the server gives events that came without one: this request's random UUID and
    #: a count, ``<uuid>.<n>``, the form the tracker uses (compact when archived).
    id_prefix: str = ""
    ids_given: int = 0
    #: What a step works out once per request, not per event (by the step's own key).
    memo: dict[str, Any] = field(default_factory=dict)

    def new_event_id(self) -> str:
        self.id_prefix = self.id_prefix or f"{uuid.uuid4()}."
        self.ids_given += 1
        return f"{self.id_prefix}{self.ids_given}"


Step = Callable[[Event, RequestContext], "Event | Drop"]


@dataclass(slots=True)
class StepStats:
    seconds: float = 0.0
    events: int = 0
    drops: dict[str, int] = field(default_factory=dict)


class Pipeline:
    """Runs named steps over a batch; keeps per-step timings and drop counts."""

    def __init__(self, steps: list[tuple[str, Step]]) -> None:
        self.steps = steps
        self.stats: dict[str, StepStats] = {name: StepStats() for name, _ in steps}
        #: Drops per (site id, step, reason), for the per-site bot counters.
        self.site_drops: dict[tuple[str, str, str], int] = {}
        self._plan = [(name, step, self.stats[name]) for name, step in steps]

    def process(
        self, events: list[tuple[int, Event]], ctx: RequestContext
    ) -> tuple[list[Event], list[tuple[int, Drop]]]:
        """Run every step over ``(index, event)`` pairs; return kept events and drops."""
        if len(events) == 1:
            return self._process_one(events[0], ctx)
        alive = events
        dropped: list[tuple[int, Drop]] = []
        started = perf_counter()  # each step's end is the next one's start
        for name, step, stats in self._plan:
            survivors: list[tuple[int, Event]] = []
            keep = survivors.append
            for pair in alive:
                event = pair[1]
                result = step(event, ctx)
                if result is event:  # the usual case: changed in place and kept
                    keep(pair)
                elif isinstance(result, Drop):
                    dropped.append((pair[0], result))
                    self._count_drop(stats, ctx, name, result)
                else:
                    keep((pair[0], result))
            stats.events += len(alive)
            alive = survivors
            now = perf_counter()
            stats.seconds += now - started
            started = now
            if not alive:
                break
        dropped.sort(key=lambda pair: pair[0])
        return [event for _, event in alive], dropped

    def _process_one(
        self, pair: tuple[int, Event], ctx: RequestContext
    ) -> tuple[list[Event], list[tuple[int, Drop]]]:
        """``process`` for a request of one event (a beacon): no lists per step."""
        index, event = pair
        started = perf_counter()
        for name, step, stats in self._plan:
            result = step(event, ctx)
            now = perf_counter()
            stats.seconds += now - started
            stats.events += 1
            started = now
            if result is not event:
                if isinstance(result, Drop):
                    self._count_drop(stats, ctx, name, result)
                    return [], [(index, result)]
                event = result
        return [event], []

    def _count_drop(self, stats: StepStats, ctx: RequestContext, name: str, drop: Drop) -> None:
        stats.drops[drop.reason] = stats.drops.get(drop.reason, 0) + 1
        key = (ctx.site.id, name, drop.reason)
        self.site_drops[key] = self.site_drops.get(key, 0) + 1

    def maintain(self, now_ms: int | None = None) -> None:
        """Periodic upkeep of the steps: rotate the visitor-id salts (deleting expired
        ones) and prune in-memory state. Call it at start-up and about once a minute."""
        if now_ms is None:
            now_ms = int(wall_clock() * 1000)
        for _, step in self.steps:
            owner = getattr(step, "__self__", step)
            maintain = getattr(owner, "maintain", None)
            if callable(maintain):
                maintain(now_ms)


def build_pipeline(settings: Settings, *, salts: SaltStore | None = None) -> Pipeline:
    """The enrichment steps, in order (docs/enrichment.md describes each).

    ``salts`` replaces the default file salt store under ``<data_dir>/salts``.
    """
    from sightline.pipeline import defaults, proxies
    from sightline.pipeline.bots import BotFilter
    from sightline.pipeline.geo import GeoLocator
    from sightline.pipeline.identity import VisitorIdentity
    from sightline.pipeline.referrer import ReferrerClassifier
    from sightline.pipeline.scrub import Scrubber
    from sightline.pipeline.time import ClockCorrection
    from sightline.pipeline.user_agent import UserAgentParser, UserAgentStep
    from sightline.privacy.consent import ConsentGate
    from sightline.privacy.salts import FileSaltStore

    client = proxies.ClientAddress(proxies.TrustedProxies(settings.trusted_proxies))
    parser = UserAgentParser(settings.user_agent_cache_size)
    store = salts if salts is not None else FileSaltStore(settings.data_path / "salts")
    steps: list[tuple[str, Step]] = [
        ("consent", ConsentGate.from_settings(settings).check_consent),
        ("defaults", defaults.fill_defaults),
        ("time", ClockCorrection.from_settings(settings).correct_time),
    ]
    if settings.bot_filter:
        steps.append(("bots", BotFilter.from_settings(settings, parser, client).filter_bots))
    steps += [
        ("user_agent", UserAgentStep(parser).parse_user_agent),
        ("geo", GeoLocator.from_settings(settings, client).locate_event),
        ("referrer", ReferrerClassifier().classify_referrer),
        ("identity", VisitorIdentity.from_settings(settings, store, client).identify_visitor),
        ("scrub", Scrubber.from_settings(settings).scrub_event),
    ]
    return Pipeline(steps)
