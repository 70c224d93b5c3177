"""The workers' metrics endpoint: a taken port moves it to the next free one; all taken is a ConfigError."""

from __future__ import annotations

import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from prometheus_client import CollectorRegistry, Counter

from sealtrail.errors import ConfigError
from sealtrail.metrics_server import serve_metrics


def listening(port: int) -> socket.socket:
    """A real listener on 127.0.0.1:PORT, as another worker's metrics server would be (OSError if taken)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


@contextmanager
def occupied(count: int) -> Iterator[int]:
    """Hold COUNT consecutive ports on 127.0.0.1; yields the first."""
    for _attempt in range(50):
        with ExitStack() as stack:
            first = stack.enter_context(listening(0)).getsockname()[1]
            try:
                for port in range(first + 1, first + count):
                    stack.enter_context(listening(port))
            except OSError:
                continue  # a neighbour is taken by something else: start over elsewhere
            yield first
            return
    raise AssertionError(f"found no {count} consecutive free ports on 127.0.0.1 in 50 tries")


def registry_with_a_metric() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("sealtrail_test_served", "a metric to look for", registry=registry).inc(3)
    return registry


def test_a_taken_port_moves_to_the_next_free_one_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with occupied(1) as taken, caplog.at_level(logging.WARNING, logger="sealtrail.metrics"):
        server = serve_metrics(taken, registry_with_a_metric(), "stream.metrics_port")
        try:
            port = server.server_port
            assert taken < port < taken + 20
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                assert "sealtrail_test_served_total 3.0" in response.read().decode()
        finally:
            server.shutdown()
            server.server_close()
    assert any(
        r.levelno == logging.WARNING
        and f"metrics port {taken} (stream.metrics_port / SEALTRAIL_STREAM__METRICS_PORT) is in use; "
        f"serving metrics on {port}" in r.getMessage()
        for r in caplog.records
    )


def test_a_free_port_is_used_as_configured_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sealtrail.metrics"):
        server = serve_metrics(0, registry_with_a_metric(), "sink.metrics_port")
        server.shutdown()
        server.server_close()
    assert server.server_port > 0
    assert not caplog.records


def test_every_candidate_taken_is_a_config_error_naming_the_setting() -> None:
    with occupied(3) as first, pytest.raises(ConfigError) as raised:
        serve_metrics(first, registry_with_a_metric(), "sink.metrics_port", tries=3)
    assert raised.value.setting == "sink.metrics_port"
    message = str(raised.value)
    assert f"{first}-{first + 2}" in message
    assert "SEALTRAIL_SINK__METRICS_PORT" in message


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_healthz_answers_while_ready_follows_the_worker() -> None:
    state = {"ready": (False, "no broker reachable (1 known)")}
    server = serve_metrics(0, registry_with_a_metric(), "stream.metrics_port", ready=lambda: state["ready"])
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        assert _get(f"{base}/healthz") == (200, "alive\n")
        assert _get(f"{base}/ready") == (503, "not ready: no broker reachable (1 known)\n")
        state["ready"] = (True, "1 of 1 brokers up")
        assert _get(f"{base}/ready") == (200, "ready: 1 of 1 brokers up\n")
        status, body = _get(f"{base}/metrics")
        assert status == 200 and "sealtrail_test_served_total 3.0" in body
    finally:
        server.shutdown()
        server.server_close()


def test_the_host_is_a_setting() -> None:
    """127.0.0.1 unless metrics_host says otherwise (0.0.0.0 in a container, for the scraper on another host)."""
    from sealtrail.config import Settings

    assert Settings().metrics_host == "127.0.0.1"
    server = serve_metrics(0, registry_with_a_metric(), "sink.metrics_port", host="0.0.0.0")
    try:
        assert server.server_address[0] == "0.0.0.0"
        assert _get(f"http://127.0.0.1:{server.server_port}/healthz")[0] == 200
    finally:
        server.shutdown()
        server.server_close()
