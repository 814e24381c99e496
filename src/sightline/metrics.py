"""Prometheus metrics of one Sightline process (served at /metrics)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from sightline.pipeline import Pipeline


disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "sightline_collect_requests",
            "Collect requests by outcome (HTTP status).",
            ["status"],
            registry=r,
        )
        self.accepted = Counter(
            "sightline_events_accepted", "Events made durable and acknowledged.", registry=r
        )
        self.rejected = Counter(
            "sightline_events_rejected",
            "Events refused by the collector, by reason (per event or whole request).",
            ["reason"],
            registry=r,
        )
        self.written = Counter(
            "sightline_events_written", "Events committed to the warm store.", registry=r
        )
        self.duplicates = Counter(
            "sightline_events_duplicate",
            "Events dropped by the writer because their eventId was already stored.",
            registry=r,
        )
        self.erased = Counter(
            "sightline_events_erased",
            "Events the writer discarded because their visitor or user had been erased.",
            registry=r,
        )
        self.write_latency = Histogram(
            "sightline_write_latency_seconds",
            "Time to commit one batch to the warm store.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.write_batch = Histogram(
            "sightline_write_batch_events",
            "Events per committed batch.",
            buckets=(1, 10, 100, 1000, 5000, 10000, 25000, 50000, 100000),
            registry=r,
        )
        self.queue_depth = Gauge(
            "sightline_queue_depth",
            "Events accepted but not yet committed to the store.",
            registry=r,
        )

    def watch_queue(self, depth: Callable[[], float]) -> None:
        self.queue_depth.set_function(depth)

    def watch_pipeline(self, pipeline: Pipeline) -> None:
        self.registry.register(_PipelineCollector(pipeline))


class _PipelineCollector(Collector):
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def collect(self) -> Iterator[Metric]:
        dropped = CounterMetricFamily(
            "sightline_events_dropped",
            "Events dropped by an enrichment step, by reason.",
            labels=["step", "reason"],
        )
        seconds = CounterMetricFamily(
            "sightline_pipeline_step_seconds",
            "Time spent in each enrichment step.",
            labels=["step"],
        )
        processed = CounterMetricFamily(
            "sightline_pipeline_step_events",
            "Events each enrichment step processed.",
            labels=["step"],
        )
        for step, stats in list(self.pipeline.stats.items()):
            seconds.add_metric([step], stats.seconds)
            processed.add_metric([step], stats.events)
            for reason, count in list(stats.drops.items()):
                dropped.add_metric([step, reason], count)
        per_site = CounterMetricFamily(
            "sightline_site_events_dropped",
            "Events dropped per site, step and reason (bot traffic is counted here).",
            labels=["site", "step", "reason"],
        )
        for (site, step, reason), count in list(self.pipeline.site_drops.items()):
            per_site.add_metric([site, step, reason], count)
        yield from (dropped, seconds, processed, per_site)
