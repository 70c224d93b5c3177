"""The connection settings every Kafka client gets (sealtrail.kafka.base_config), MSK IAM included.

MSK itself is out of reach here; what can be checked is that the clients are set up for OAUTHBEARER and
that the callback librdkafka calls returns a token AWS's signer made from the credentials in effect: a
SigV4-presigned kafka-cluster:Connect request for the cluster's region, with its expiry.
"""

from __future__ import annotations

import base64
import time
from urllib.parse import parse_qs, urlparse

import pytest

from sealtrail.config import Settings
from sealtrail.kafka import base_config


def test_plain_clients_get_the_bootstrap_the_log_and_the_extra_settings() -> None:
    settings = Settings(kafka={"bootstrap": "b1:9092", "extra": {"security.protocol": "SSL"}})
    config = base_config(settings)
    assert config["bootstrap.servers"] == "b1:9092" and config["security.protocol"] == "SSL"
    assert "sasl.mechanism" not in config and config["logger"].name == "sealtrail.kafka"


def test_msk_iam_clients_sign_a_connect_token_with_the_credentials_in_effect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings = Settings(kafka={"bootstrap": "b-1.msk.example:9098", "aws_iam": True}, s3={"region": "eu-west-1"})
    config = base_config(settings)
    assert (config["security.protocol"], config["sasl.mechanism"]) == ("SASL_SSL", "OAUTHBEARER")
    token, expires = config["oauth_cb"](None)
    url = urlparse(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    query = parse_qs(url.query)
    assert url.hostname == "kafka.eu-west-1.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("AKIAIOSFODNN7EXAMPLE/")
    assert "eu-west-1/kafka-cluster/aws4_request" in query["X-Amz-Credential"][0]
    assert time.time() < expires <= time.time() + 3600


def test_the_cluster_region_may_differ_from_the_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    settings = Settings(kafka={"bootstrap": "b:9098", "aws_iam": True, "aws_region": "us-east-2"},
                        s3={"region": "eu-west-1"})
    token, _ = base_config(settings)["oauth_cb"](None)
    assert "kafka.us-east-2.amazonaws.com" in base64.urlsafe_b64decode(token + "===").decode()
