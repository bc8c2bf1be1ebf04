"""Prometheus metrics, on a registry of the app's own so several apps can live in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge(
            "wanglai_ws_connections", "Open WebSocket connections", registry=self.registry
        )
        self.frames_in = Counter(
            "wanglai_ws_frames_in_total", "Frames received from clients", registry=self.registry
        )
        self.frames_out = Counter(
            "wanglai_ws_frames_out_total", "Frames sent to clients", registry=self.registry
        )
        self.slow_consumers = Counter(
            "wanglai_ws_slow_consumer_closes_total",
            "Connections closed because their send queue overflowed",
            registry=self.registry,
        )
        self.messages = Counter(
            "wanglai_messages_total", "Messages stored", ["kind"], registry=self.registry
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

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
