"""Prometheus metrics of the sink worker (served on sink.metrics_port at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from sealtrail.kafka import BrokerHealth


class SinkMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.broker = BrokerHealth()  # what /ready answers; its consumer reports to it
        Gauge("sealtrail_kafka_brokers_up", "brokers the sink's consumer is connected to", registry=r
              ).set_function(lambda: self.broker.brokers_up)
        self.objects = Counter("sealtrail_sink_objects_written_total", "locked data objects written", registry=r)
        self.events = Counter("sealtrail_sink_events_written_total", "sealed events written to S3", registry=r)
        self.bytes = Counter("sealtrail_sink_bytes_written_total", "Parquet bytes written", registry=r)
        self.skipped = Counter(
            "sealtrail_sink_objects_already_present_total", "flushes whose object existed (replay)", registry=r
        )
        self.retries = Counter("sealtrail_sink_put_retries_total", "S3 calls retried", registry=r)
        self.digests = Counter("sealtrail_sink_digests_written_total", "signed digest objects written", registry=r)
        self.forks = Counter(
            "sealtrail_sink_forks_total", "records sent to the quarantine topic instead of S3", ["reason"], registry=r
        )
        self.stored_seq = Gauge("sealtrail_sink_stored_seq", "last sequence stored per chain", ["chain"], registry=r)
