"""Prometheus collectors for one app. Each app gets its own registry, so several apps (tests) never collide."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from colorizer_service.batching import fixed_batch_sizes

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The service's collectors, all registered in ``self.registry``."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, *, max_batch: int) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "colorizer_http_requests",
            "HTTP requests answered, by method, route and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "colorizer_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.errors = Counter(
            "colorizer_errors",
            "Error answers, by kind (the `error` field of the JSON body).",
            ["kind"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "colorizer_batch_size",
            "Images per model call, before padding.",
            buckets=[float(size) for size in fixed_batch_sizes(max_batch)],  # shows how full batches run
            registry=self.registry,
        )
        self.inference = Histogram(
            "colorizer_inference_duration_seconds",
            "Time of one model call (one batch), padding included.",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "colorizer_queue_depth",
            "Images waiting for the model.",
            registry=self.registry,
        )
        self.memory_in_flight = Gauge(
            "colorizer_memory_in_flight_bytes",
            "Bytes that requests in flight hold of the memory budget (COLORIZER_MEMORY_BUDGET_MB).",
            registry=self.registry,
        )
        self.model_version = Gauge(
            "colorizer_model_version",
            "The model version being served (0 before one is loaded).",
            registry=self.registry,
        )

    def observe_batch(self, images: int, seconds: float) -> None:
        self.batch_size.observe(images)
        self.inference.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
