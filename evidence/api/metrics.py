"""The API's Prometheus metrics, served on their own listener (127.0.0.1:serve.metrics_port), never on the API's."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("sealtrail_serve_requests_total", "API calls by operation and status",
                                ["action", "status"], registry=self.registry)
        self.seconds = Histogram("sealtrail_serve_request_seconds", "API call duration", ["action"],
                                 registry=self.registry)
        self.recorded = Counter("sealtrail_serve_access_events_total", "access events queued for the trail",
                                registry=self.registry)
        self.unrecorded = Counter("sealtrail_serve_access_events_failed_total",
                                  "calls refused (503) because their access event could not be queued or built",
                                  registry=self.registry)
        self.limited = Counter("sealtrail_serve_rate_limited_total", "calls without a valid token refused with 429",
                               ["limit"], registry=self.registry)
        self.backlog = Gauge("sealtrail_serve_access_backlog", "access events waiting for the producer",
                             registry=self.registry)
        self.emitter = Gauge("sealtrail_serve_access_emitter_up", "1 while the thread emitting access events runs",
                             registry=self.registry)
