"""BrokerHealth: readiness from librdkafka's statistics, and silence counted as not ready."""

from __future__ import annotations

import json

from sealtrail.kafka import BrokerHealth


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def stats(*states: str) -> str:
    """librdkafka's statistics JSON, reduced to what BrokerHealth reads (one entry per broker)."""
    return json.dumps({"name": "rdkafka#consumer-1", "brokers": {
        f"127.0.0.1:{9092 + i}/{i}": {"name": f"127.0.0.1:{9092 + i}/{i}", "nodeid": i, "state": s}
        for i, s in enumerate(states)}})


def test_not_ready_before_the_first_statistics() -> None:
    ready, why = BrokerHealth(Clock()).ready()
    assert not ready and "no statistics" in why


def test_ready_while_a_broker_is_up_and_not_when_none_is() -> None:
    clock = Clock()
    health = BrokerHealth(clock)
    health.on_stats(stats("UP", "CONNECT"))
    assert health.ready() == (True, "1 of 2 brokers up")
    health.on_stats(stats("CONNECT", "DOWN"))
    assert health.ready() == (False, "no broker reachable (2 known)")


def test_a_client_that_stopped_polling_is_not_ready() -> None:
    clock = Clock()
    health = BrokerHealth(clock)
    health.on_stats(stats("UP"))
    clock.now += BrokerHealth.SILENT_AFTER_S - 1
    assert health.ready()[0]
    clock.now += 2
    ready, why = health.ready()
    assert not ready and "has not polled" in why


def test_the_client_config_reports_to_it() -> None:
    health = BrokerHealth(Clock())
    config = health.client_config()
    assert config["statistics.interval.ms"] == BrokerHealth.INTERVAL_MS
    config["stats_cb"](stats("UP"))
    assert health.brokers_up == 1
