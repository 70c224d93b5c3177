"""The embedded stack, exercised for real: broker, locked S3 objects, PostgreSQL, lifecycle and restarts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import psutil
import psycopg
import pytest
from botocore.exceptions import ClientError
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import sealtrail.stack as stack_api
from sealtrail.config import load_settings
from sealtrail.errors import ServiceUnavailable, StackError
from sealtrail.stack.processes import is_alive


def s3_client(state: stack_api.StackState) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=state.s3_endpoint,
        aws_access_key_id=state.s3_access_key,
        aws_secret_access_key=state.s3_secret_key,
        region_name="us-east-1",
    )


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)


def produce(bootstrap: str, topic: str, values: list[bytes], partition: int = 0) -> None:
    """Produce into one partition with linger, so records travel in multi-record batches (Tansu's weak spot)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "enable.idempotence": True})
    for value in values:
        producer.produce(topic, value=value, partition=partition)
    assert producer.flush(30) == 0


def consume_to_eof(bootstrap: str, topic: str, partitions: int) -> list[bytes]:
    """Everything in ``topic``, read until every partition reports EOF (Tansu's high watermarks are wrong)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    values: list[bytes] = []
    at_eof: set[int] = set()
    try:
        while len(at_eof) < partitions:
            message = consumer.poll(10)
            assert message is not None, f"no EOF from partitions {set(range(partitions)) - at_eof} within 10s"
            if message.error():
                assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
                at_eof.add(message.partition())
            else:
                values.append(message.value())
    finally:
        consumer.close()
    return values


def put_locked(s3: Any, bucket: str, key: str, body: bytes) -> str:
    response = s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(days=1),
        ChecksumAlgorithm="SHA256",
    )
    return response["VersionId"]


def test_settings_loaded_after_start_point_at_the_stack(stack: Any) -> None:
    settings, state = stack
    assert settings.kafka.bootstrap == state.kafka_bootstrap
    assert settings.s3.endpoint == state.s3_endpoint
    assert settings.s3.access_key is not None and settings.s3.access_key.get_secret_value() == state.s3_access_key
    assert settings.database_url == state.database_url


def test_topics_exist_with_configured_partitions(stack: Any) -> None:
    settings, state = stack
    topics = AdminClient({"bootstrap.servers": state.kafka_bootstrap}).list_topics(timeout=10).topics
    assert len(topics[state.topics["events"]].partitions) == settings.kafka.partitions == 6
    assert len(topics[state.topics["chained"]].partitions) == 6
    assert len(topics[state.topics["dlq"]].partitions) == 1


def test_broker_round_trip(stack: Any, unique_name: Callable[[str], str]) -> None:
    bootstrap = stack.state.kafka_bootstrap
    topic = unique_name("roundtrip")
    create_topic(bootstrap, topic, 3)
    values = [b"record-%d" % i for i in range(300)]
    produce(bootstrap, topic, values, partition=1)
    assert consume_to_eof(bootstrap, topic, 3) == values


def test_locked_version_cannot_be_deleted(stack: Any, unique_name: Callable[[str], str]) -> None:
    state = stack.state
    s3 = s3_client(state)
    key = f"{unique_name('locked')}/object.bin"
    version = put_locked(s3, state.bucket, key, b"evidence")
    retention = s3.get_object_retention(Bucket=state.bucket, Key=key, VersionId=version)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=state.bucket, Key=key, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert s3.get_object(Bucket=state.bucket, Key=key, VersionId=version)["Body"].read() == b"evidence"


def test_audit_bucket_has_object_lock_and_tansu_bucket_does_not(stack: Any) -> None:
    state = stack.state
    s3 = s3_client(state)
    lock = s3.get_object_lock_configuration(Bucket=state.bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert s3.get_bucket_versioning(Bucket=state.bucket)["Status"] == "Enabled"
    with pytest.raises(ClientError):
        s3.get_object_lock_configuration(Bucket=state.tansu_bucket)


def test_postgres_answers(stack: Any) -> None:
    with psycopg.connect(stack.state.database_url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_second_start_is_refused(stack: Any) -> None:
    with pytest.raises(StackError, match="already running .*sealtrail down"):
        stack_api.start(stack.settings)


def test_status_reports_every_service_up(stack: Any) -> None:
    current = stack_api.status(stack.settings)
    assert current is not None and current.up
    report = current.as_json()
    for key in ("kafka_bootstrap", "s3_endpoint", "s3_access_key", "s3_secret_key", "bucket", "topics",
                "database_url", "pids", "ports", "home", "started_at"):
        assert key in report
    assert {name: s["up"] for name, s in report["services"].items()} == {"kafka": True, "s3": True, "postgres": True}
    json.dumps(report)


def test_broker_crash_keeps_records(stack: Any, unique_name: Callable[[str], str]) -> None:
    bootstrap = stack.state.kafka_bootstrap
    topic = unique_name("crash")
    create_topic(bootstrap, topic, 2)
    values = [b"kept-%d" % i for i in range(500)]
    produce(bootstrap, topic, values)
    before = stack_api.status(stack.settings)
    assert before is not None
    after = stack_api.restart_broker(stack.settings)
    assert after.pids["kafka"] != before.state.pids["kafka"]
    assert after.kafka_bootstrap == bootstrap
    assert consume_to_eof(bootstrap, topic, 2) == values


def test_s3_outage_and_return(stack: Any, unique_name: Callable[[str], str]) -> None:
    state = stack.state
    s3 = s3_client(state)
    key = f"{unique_name('outage')}/object.bin"
    version = put_locked(s3, state.bucket, key, b"before the outage")
    stack_api.stop_s3(stack.settings, kill=True)
    down = stack_api.status(stack.settings)
    assert down is not None and not down.services["s3"].up and down.services["kafka"].up
    stack_api.start_s3(stack.settings)
    assert s3.get_object(Bucket=state.bucket, Key=key, VersionId=version)["Body"].read() == b"before the outage"
    current = stack_api.status(stack.settings)
    assert current is not None and current.up
    # the broker stores its log in S3, so it must work again too
    topic = unique_name("after-outage")
    create_topic(state.kafka_bootstrap, topic, 1)
    produce(state.kafka_bootstrap, topic, [b"a", b"b"])
    assert consume_to_eof(state.kafka_bootstrap, topic, 1) == [b"a", b"b"]


def test_stop_without_a_stack(tmp_path: Path) -> None:
    settings = load_settings({"home": str(tmp_path)})
    assert stack_api.status(settings) is None
    with pytest.raises(StackError, match="no embedded stack is running"):
        stack_api.stop(settings)


def test_stale_state_is_cleaned_up(tmp_path: Path, stack: Any) -> None:
    stale = {**stack.state.as_json(), "pids": {"kafka": 2**22 + 1, "s3": 2**22 + 2, "postgres": 2**22 + 3}}
    (tmp_path / "stack.json").write_text(json.dumps(stale))
    settings = load_settings({"home": str(tmp_path)})
    current = stack_api.status(settings)
    assert current is not None and not any(s.process_alive for s in current.services.values())
    with pytest.raises(StackError, match="stale"):
        stack_api.stop(settings)
    assert not (tmp_path / "stack.json").exists()


def test_data_survives_down_and_up(own_stack_home: Path) -> None:
    """A stack of its own, so stopping it does not disturb the session stack."""
    overrides = {"home": str(own_stack_home), "kafka": {"partitions": 2}}
    state = stack_api.start(load_settings(overrides))
    try:
        key = "persist/object.bin"
        version = put_locked(s3_client(state), state.bucket, key, b"kept across down/up")
        values = [b"event-%d" % i for i in range(400)]
        produce(state.kafka_bootstrap, state.topics["events"], values)
        pids = dict(state.pids)
    finally:
        stack_api.stop(load_settings(overrides))
    settings = load_settings(overrides)
    assert stack_api.status(settings) is None
    names = {"kafka": "tansu", "s3": "weed", "postgres": "postgres"}
    assert not any(is_alive(pid, names[service]) for service, pid in pids.items())

    again = stack_api.start(settings)
    try:
        s3 = s3_client(again)
        assert s3.get_object(Bucket=again.bucket, Key=key, VersionId=version)["Body"].read() == b"kept across down/up"
        assert consume_to_eof(again.kafka_bootstrap, again.topics["events"], 2) == values
        with psycopg.connect(again.database_url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        stack_api.stop(load_settings(overrides))


def test_failed_start_stops_what_it_started(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pgdata = home / "stack" / "postgres"
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("7\n")  # not a cluster this PostgreSQL can run
    with pytest.raises(ServiceUnavailable) as failed:
        stack_api.start(load_settings({"home": str(home)}))
    assert failed.value.service == "postgres"
    assert str(home / "logs" / "postgres.log") in str(failed.value)
    assert not (home / "stack.json").exists()
    ours = [
        p.info["name"]
        for p in psutil.process_iter(["name", "cmdline"])
        if str(home) in " ".join(p.info["cmdline"] or [])
    ]
    assert ours == []
