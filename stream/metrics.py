"""Prometheus metrics of the stream worker (served by the Faust web server at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sealtrail.kafka import BrokerHealth


class StreamMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.broker = BrokerHealth()  # what /ready answers; its consumer reports to it
        Gauge("sealtrail_kafka_brokers_up", "brokers the stream's consumer is connected to", registry=r
              ).set_function(lambda: self.broker.brokers_up)
        self.consumed = Counter("sealtrail_events_consumed_total", "records read from audit.events", registry=r)
        self.sealed = Counter("sealtrail_events_sealed_total", "events appended to a chain", ["chain"], registry=r)
        self.rejected = Counter(
            "sealtrail_events_rejected_total", "inputs rejected (a rejected row in the trail, and a dead letter)", ["reason"], registry=r
        )
        self.duplicates = Counter(
            "sealtrail_duplicates_total", "event ids already sealed, kept in the trail as duplicate rows", registry=r
        )
        self.dlq_failures = Counter(
            "sealtrail_dlq_failures_total", "dead letters refused or not delivered (the trail still accounts for them)",
            registry=r,
        )
        self.redacted = Counter(
            "sealtrail_secrets_redacted_total", "secrets a producer let through, redacted by the stream", registry=r
        )
        self.batches = Counter("sealtrail_batches_total", "batches sealed and acknowledged", registry=r)
        self.head_seq = Gauge("sealtrail_chain_head_seq", "sequence number of each chain head", ["chain"], registry=r)
        self.batch_seconds = Histogram(
            "sealtrail_batch_seconds", "consume to committed offsets, per batch", registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.batch_records = Histogram(
            "sealtrail_batch_records", "records per sealed batch", registry=r,
            buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000),
        )
        self.lag_seconds = Gauge(
            "sealtrail_chain_lag_seconds",
            "age of the newest record sealed per chain when it was sealed (broker timestamp; "
            "high watermarks are not trusted on every broker)",
            ["chain"], registry=r,
        )
        self.overtaken = Counter(
            "sealtrail_chain_overtaken_total",
            "batches whose records another writer overtook on audit.chained (sealed again from the chain)",
            registry=r,
        )
        self.recoveries = Counter(
            "sealtrail_chain_recoveries_total", "chain heads read back from audit.chained", registry=r
        )
