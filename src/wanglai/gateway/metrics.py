"""Prometheus metrics, on a registry of the app's own so several apps can live in one process."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


class Metrics:
    """The process's metrics. Counters bumped on every frame or message are plain integers
    (``frames_in``, ``frames_out``, ``messages``), read by a collector when scraped: a
    prometheus ``Counter`` takes a lock on every increment, which showed in profiles."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.frames_in = 0
        self.frames_out = 0
        self.messages: dict[str, int] = {}
        self.registry.register(_HotCounters(self))
        self.connections = Gauge(
            "wanglai_ws_connections", "Open WebSocket connections", registry=self.registry
        )
        self.slow_consumers = Counter(
            "wanglai_ws_slow_consumer_closes_total",
            "Connections closed because their send queue overflowed",
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "wanglai_commit_batch_size",
            "Writes committed together in one transaction",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "wanglai_commit_seconds",
            "Time to run and commit one batch",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "wanglai_http_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )

    def count_message(self, kind: str) -> None:
        self.messages[kind] = self.messages.get(kind, 0) + 1

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)


class _HotCounters(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        frames_in = CounterMetricFamily(
            "wanglai_ws_frames_in", "Frames received from clients", value=m.frames_in
        )
        frames_out = CounterMetricFamily(
            "wanglai_ws_frames_out", "Frames sent to clients", value=m.frames_out
        )
        messages = CounterMetricFamily("wanglai_messages", "Messages stored", labels=["kind"])
        for kind, count in sorted(m.messages.items()):
            messages.add_metric([kind], count)
        yield from (frames_in, frames_out, messages)
