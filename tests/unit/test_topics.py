"""sealtrail.topics: the topic spec derived from Settings, and the pure comparison with what a broker describes.

Each test describes a topic the way a broker would (partitions, distinct replicas, configs) and names the
misconfiguration it represents; the broker edge is exercised for real in tests/integration/test_topics.py.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sealtrail.topics as topics_module
from sealtrail.config import Settings, load_settings
from sealtrail.errors import ConfigError, ServiceUnavailable
from sealtrail.topics import (
    ALL_ROLES,
    SINK_ROLES,
    STREAM_ROLES,
    Bound,
    Described,
    Problem,
    Role,
    Severity,
    TopicSpec,
    TopicsReport,
    compare,
    require_topics,
    retention_ms,
    satisfies,
    topic_specs,
    undescribed,
)

REAL = Settings()  # real Kafka defaults: 3 replicas, 2 in sync
EMBEDDED = Settings(kafka={"replication_factor": 1})


def as_built(spec: TopicSpec, **changes: Any) -> Described:
    """The topic exactly as `topics init` creates it, with some configs changed (retention_ms= for retention.ms;
    None removes one)."""
    configs = {**spec.configs, **{k.replace("_", "."): v for k, v in changes.items()}}
    return Described(spec.partitions, spec.replication_factor, {k: v for k, v in configs.items() if v is not None})


def all_built(specs: list[TopicSpec]) -> dict[str, Described | None]:
    return {s.name: as_built(s) for s in specs}


def spec_of(specs: list[TopicSpec], role: Role) -> TopicSpec:
    return next(s for s in specs if s.role is role)


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


def with_config(settings: Settings, role: Role, **changes: str | None) -> list[Problem]:
    specs = topic_specs(settings)
    described = all_built(specs)
    spec = spec_of(specs, role)
    described[spec.name] = as_built(spec, **changes)
    return compare(specs, described)


# --- the spec ------------------------------------------------------------------------------------


def test_real_kafka_defaults() -> None:
    specs = {s.role: s for s in topic_specs(REAL)}
    assert [s.name for s in specs.values()] == ["audit.events", "audit.chained", "audit.dlq", "audit.quarantine"]
    assert specs[Role.EVENTS].partitions == specs[Role.CHAINED].partitions == 6
    assert specs[Role.DLQ].partitions == specs[Role.QUARANTINE].partitions == 1
    assert {s.replication_factor for s in specs.values()} == {3}
    chained = specs[Role.CHAINED].configs
    assert chained == {
        "cleanup.policy": "delete",
        "retention.ms": str(7 * 86_400_000),
        "retention.bytes": "-1",
        "min.insync.replicas": "2",
        "unclean.leader.election.enable": "false",
        "max.message.bytes": str(2 * 1024 * 1024),
        "compression.type": "producer",
    }
    assert specs[Role.QUARANTINE].configs["retention.ms"] == "-1"  # the only copy of forked records
    assert specs[Role.DLQ].configs["retention.ms"] == str(14 * 86_400_000)
    assert "retention.bytes" not in specs[Role.DLQ].configs  # samples: a size bound is fine


def test_embedded_stack_implies_one_replica(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "stack.json").write_text(
        '{"kafka_bootstrap": "127.0.0.1:1", "s3_endpoint": "http://127.0.0.1:2", "s3_access_key": "a",'
        ' "s3_secret_key": "b", "bucket": "c", "topics": {}}'
    )
    s = load_settings({"home": str(tmp_path)})
    assert (s.kafka.replication_factor, s.kafka.min_insync) == (1, 1)
    assert {sp.configs["min.insync.replicas"] for sp in topic_specs(s)} == {"1"}


def test_the_record_size_follows_the_event_limit() -> None:
    s = Settings(stream={"max_event_bytes": 4 << 20})
    assert {sp.configs["max.message.bytes"] for sp in topic_specs(s)} == {str(8 << 20)}


def test_worker_roles() -> None:
    assert [s.role for s in topic_specs(REAL, STREAM_ROLES)] == [Role.EVENTS, Role.CHAINED, Role.DLQ]
    assert [s.role for s in topic_specs(REAL, SINK_ROLES)] == [Role.CHAINED, Role.QUARANTINE]


@pytest.mark.parametrize(
    ("kafka", "setting"),
    [
        ({"replication_factor": 3, "min_insync_replicas": 1}, "kafka.min_insync_replicas"),
        ({"replication_factor": 1, "min_insync_replicas": 2}, "kafka.min_insync_replicas"),
        ({"chained_retention_days": 0.5}, "kafka.chained_retention_days"),
        ({"events_retention_days": 0}, "kafka.events_retention_days"),
        ({"quarantine_retention_days": 0.9}, "kafka.quarantine_retention_days"),
        ({"dlq_retention_days": 0.01}, "kafka.dlq_retention_days"),
        ({"compression_type": "brotli"}, "kafka.compression_type"),
        ({"replication_factor": 0}, "kafka.replication_factor"),
    ],
)
def test_settings_that_would_lose_data_are_refused(kafka: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings({"kafka": kafka})
    assert e.value.setting == setting


def test_forever_and_defaults_for_min_insync() -> None:
    assert retention_ms(-1) == -1 and retention_ms(1.5) == 129_600_000
    assert Settings(kafka={"replication_factor": 2}).kafka.min_insync == 1
    assert Settings(kafka={"replication_factor": 5}).kafka.min_insync == 2
    assert Settings(kafka={"replication_factor": 5, "min_insync_replicas": 3}).kafka.min_insync == 3


# --- the comparison: named after the misconfiguration --------------------------------------------


@pytest.mark.parametrize("settings", [REAL, EMBEDDED], ids=["real", "embedded"])
def test_topics_as_built_have_no_problems(settings: Settings) -> None:
    specs = topic_specs(settings)
    described = all_built(specs)
    assert compare(specs, described) == []
    assert undescribed(specs, described) == []


def test_missing_topic() -> None:
    specs = topic_specs(REAL)
    described = all_built(specs)
    described["audit.quarantine"] = None
    p = only(compare(specs, described))
    assert (p.topic, p.key, p.severity, p.setting) == ("audit.quarantine", "topic", Severity.LOSS,
                                                       "kafka.topics.quarantine")
    assert "sealtrail topics init" in p.fix and "kafka.topics.quarantine" in p.message


def test_chained_with_fewer_partitions_than_events() -> None:
    specs = topic_specs(REAL)
    described = all_built(specs)
    described["audit.chained"] = Described(3, 3, spec_of(specs, Role.CHAINED).configs)
    p = only(compare(specs, described))
    assert (p.topic, p.key, p.severity, p.setting) == ("audit.chained", "partitions", Severity.LOSS,
                                                       "kafka.topics.chained")
    assert "3-5" in p.message


def test_chained_with_more_partitions_than_events_is_advice() -> None:
    specs = topic_specs(REAL)
    described = all_built(specs)
    described["audit.chained"] = Described(12, 3, spec_of(specs, Role.CHAINED).configs)
    assert only(compare(specs, described)).severity is Severity.ADVICE


def test_existing_topics_keep_their_partition_count() -> None:
    specs = topic_specs(REAL)
    described = all_built(specs)
    described["audit.events"] = Described(12, 3, spec_of(specs, Role.EVENTS).configs)
    described["audit.chained"] = Described(12, 3, spec_of(specs, Role.CHAINED).configs)
    assert compare(specs, described) == []


def test_sink_does_not_compare_partitions_with_events() -> None:
    specs = topic_specs(REAL, SINK_ROLES)
    described = all_built(specs)
    described["audit.chained"] = Described(2, 3, spec_of(specs, Role.CHAINED).configs)
    assert compare(specs, described) == []


@pytest.mark.parametrize("policy", ["compact", "compact,delete", "delete, compact"])
def test_compacted_chained(policy: str) -> None:
    p = only(with_config(REAL, Role.CHAINED, cleanup_policy=policy))
    assert (p.key, p.severity, p.setting) == ("cleanup.policy", Severity.LOSS, "kafka.topics.chained")


def test_compacted_dlq_is_advice() -> None:
    assert only(with_config(REAL, Role.DLQ, cleanup_policy="compact")).severity is Severity.ADVICE


@pytest.mark.parametrize(("role", "setting"), [(Role.EVENTS, "kafka.events_retention_days"),
                                               (Role.CHAINED, "kafka.chained_retention_days"),
                                               (Role.QUARANTINE, "kafka.quarantine_retention_days")])
def test_retention_shorter_than_the_outage_it_must_cover(role: Role, setting: str) -> None:
    p = only(with_config(REAL, role, retention_ms=str(3_600_000)))
    assert (p.key, p.severity, p.setting) == ("retention.ms", Severity.LOSS, setting)
    assert "1 h" in p.message and setting in p.fix


def test_retention_longer_or_unlimited_is_fine() -> None:
    assert with_config(REAL, Role.CHAINED, retention_ms=str(30 * 86_400_000)) == []
    assert with_config(REAL, Role.CHAINED, retention_ms="-1") == []


def test_dlq_retention_is_advice() -> None:
    p = only(with_config(REAL, Role.DLQ, retention_ms=str(86_400_000)))
    assert (p.severity, p.setting) == (Severity.ADVICE, "kafka.dlq_retention_days")


def test_retention_unreadable_as_tansu_accepts_it() -> None:
    p = only(with_config(REAL, Role.CHAINED, retention_ms="abc"))
    assert p.severity is Severity.LOSS and "not a value" in p.message


def test_size_bounded_chained() -> None:
    p = only(with_config(REAL, Role.CHAINED, retention_bytes=str(1 << 30)))
    assert (p.key, p.severity) == ("retention.bytes", Severity.LOSS)


def test_unclean_leader_election() -> None:
    p = only(with_config(REAL, Role.EVENTS, unclean_leader_election_enable="true"))
    assert (p.key, p.severity) == ("unclean.leader.election.enable", Severity.LOSS)


def test_one_in_sync_replica_of_three() -> None:
    p = only(with_config(REAL, Role.CHAINED, min_insync_replicas="1"))
    assert (p.key, p.severity, p.setting) == ("min.insync.replicas", Severity.LOSS, "kafka.min_insync_replicas")


def test_more_in_sync_replicas_than_replicas_is_advice() -> None:
    problems = with_config(REAL, Role.CHAINED, min_insync_replicas="4")
    assert [(p.key, p.severity) for p in problems] == [("min.insync.replicas", Severity.ADVICE)]
    assert "refused" in problems[0].message


def test_in_sync_replicas_equal_to_replicas_is_advice() -> None:
    problems = with_config(REAL, Role.CHAINED, min_insync_replicas="3")
    assert [(p.key, p.severity) for p in problems] == [("min.insync.replicas", Severity.ADVICE)]


def test_one_replica_where_three_are_wanted() -> None:
    specs = topic_specs(REAL)
    described = all_built(specs)
    spec = spec_of(specs, Role.CHAINED)
    described[spec.name] = Described(spec.partitions, 1, {**spec.configs, "min.insync.replicas": "1"})
    problems = compare(specs, described)
    keys = {(p.key, p.severity, p.setting) for p in problems}
    assert ("replication.factor", Severity.LOSS, "kafka.replication_factor") in keys
    assert ("min.insync.replicas", Severity.LOSS, "kafka.min_insync_replicas") in keys


def test_small_max_message_bytes() -> None:
    p = only(with_config(REAL, Role.CHAINED, max_message_bytes="1048588"))  # Kafka's default
    assert (p.key, p.severity, p.setting) == ("max.message.bytes", Severity.LOSS, "stream.max_event_bytes")
    assert only(with_config(REAL, Role.DLQ, max_message_bytes="1048588")).severity is Severity.ADVICE


def test_other_compression_is_advice() -> None:
    p = only(with_config(REAL, Role.EVENTS, compression_type="gzip"))
    assert (p.severity, p.setting) == (Severity.ADVICE, "kafka.compression_type")


# --- what the broker does not describe -----------------------------------------------------------


def test_a_broker_that_describes_nothing_is_not_a_problem() -> None:
    specs = topic_specs(REAL)
    for configs in (None, {}):  # DescribeConfigs refused; Tansu's answer for topics created without configs
        described: dict[str, Described | None] = {s.name: Described(s.partitions, 3, configs) for s in specs}
        assert compare(specs, described) == []
        assert len(undescribed(specs, described)) == sum(len(s.rules) for s in specs)


def test_partitions_are_checked_without_configs() -> None:
    specs = topic_specs(REAL)
    described: dict[str, Described | None] = {s.name: Described(s.partitions, 3, None) for s in specs}
    described["audit.chained"] = Described(2, 3, None)
    assert only(compare(specs, described)).key == "partitions"


def test_only_described_keys_are_checked() -> None:
    assert with_config(REAL, Role.CHAINED, cleanup_policy=None, retention_ms=None) == []
    specs = topic_specs(REAL)
    described = all_built(specs)
    described["audit.chained"] = as_built(spec_of(specs, Role.CHAINED), retention_ms=None)
    assert undescribed(specs, described) == [("audit.chained", "retention.ms")]


# --- properties ----------------------------------------------------------------------------------

kafka_settings = st.fixed_dictionaries({
    "partitions": st.integers(1, 64),
    "replication_factor": st.integers(1, 5),
    "events_retention_days": st.one_of(st.just(-1.0), st.floats(1, 3650)),
    "chained_retention_days": st.one_of(st.just(-1.0), st.floats(1, 3650)),
    "dlq_retention_days": st.one_of(st.just(-1.0), st.floats(0.05, 3650)),
    "quarantine_retention_days": st.one_of(st.just(-1.0), st.floats(1, 3650)),
    "compression_type": st.sampled_from(["producer", "zstd", "lz4", "gzip", "uncompressed"]),
})


@given(kafka_settings)
def test_init_then_check_finds_nothing_for_any_settings(kafka: dict[str, Any]) -> None:
    specs = topic_specs(Settings(kafka=kafka))
    assert compare(specs, all_built(specs)) == []


def _setting_exists(dotted: str) -> bool:
    node: Any = Settings()
    for part in dotted.split("."):
        if not hasattr(node, part):
            return False
        node = getattr(node, part)
    return True


@given(
    role=st.sampled_from(ALL_ROLES),
    key=st.sampled_from(sorted(topic_specs(REAL)[0].configs)),
    value=st.one_of(st.integers(-2, 10**10).map(str), st.sampled_from(["compact", "true", "false", "gzip", "x"])),
    partitions=st.integers(1, 12),
    replicas=st.integers(1, 4),
)
def test_every_problem_names_a_real_setting_and_a_fix(role: Role, key: str, value: str, partitions: int,
                                                      replicas: int) -> None:
    specs = topic_specs(REAL)
    described = all_built(specs)
    spec = spec_of(specs, role)
    described[spec.name] = Described(partitions, replicas, {**spec.configs, key: value})
    for p in compare(specs, described):
        assert _setting_exists(p.setting), p
        assert p.topic == spec.name or p.key == "partitions"
        assert p.fix and p.setting in f"{p.message} {p.fix}"


def reference_at_least(key: str, wanted: int, found: int) -> bool:
    """Straight from the definition: -1 is unlimited for retention, and unlimited is at least anything."""
    unlimited = key in ("retention.ms", "retention.bytes")
    as_number = {True: float("inf")}
    w = as_number.get(unlimited and wanted == -1, wanted)
    f = as_number.get(unlimited and found == -1, found)
    return f >= w


@given(key=st.sampled_from(["retention.ms", "retention.bytes", "min.insync.replicas", "max.message.bytes"]),
       wanted=st.one_of(st.just(-1), st.integers(0, 10**12)), found=st.one_of(st.just(-1), st.integers(0, 10**12)))
def test_at_least_matches_the_reference(key: str, wanted: int, found: int) -> None:
    rule = next(r for r in topic_specs(REAL)[1].rules if r.key == key)
    rule = type(rule)(rule.key, str(wanted), Bound.AT_LEAST, rule.severity, rule.setting, rule.why)
    assert satisfies(rule, str(found)) is reference_at_least(key, wanted, found)


# --- at a worker's start -------------------------------------------------------------------------


def _report(settings: Settings, described: dict[str, Described | None]) -> TopicsReport:
    specs = topic_specs(settings, STREAM_ROLES)
    return topics_module._report(specs, described, ["a note"])  # noqa: SLF001


def test_worker_refuses_what_would_lose_data(monkeypatch: pytest.MonkeyPatch) -> None:
    specs = topic_specs(REAL, STREAM_ROLES)
    described = all_built(specs)
    described["audit.chained"] = as_built(spec_of(specs, Role.CHAINED), cleanup_policy="compact")
    monkeypatch.setattr(topics_module, "check", lambda s, roles: _report(s, described))
    with pytest.raises(ConfigError) as e:
        require_topics(REAL, STREAM_ROLES, "stream")
    assert e.value.setting == "kafka.topics.chained"
    assert "cleanup.policy=compact" in str(e.value) and "stream refuses to start" in str(e.value)


def test_worker_warns_about_advice_and_logs_what_was_not_checked(monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    specs = topic_specs(REAL, STREAM_ROLES)
    described = all_built(specs)
    described["audit.dlq"] = as_built(spec_of(specs, Role.DLQ), compression_type="gzip", retention_ms=None)
    monkeypatch.setattr(topics_module, "check", lambda s, roles: _report(s, described))
    with caplog.at_level(logging.INFO, "sealtrail.topics"):
        report = require_topics(REAL, STREAM_ROLES, "stream")
    assert report is not None and report.ok
    text = caplog.text
    assert "compression.type=gzip" in text and "does not describe retention.ms of audit.dlq" in text


def test_worker_goes_on_when_the_broker_is_away(monkeypatch: pytest.MonkeyPatch) -> None:
    def away(settings: Settings, roles: Any) -> TopicsReport:
        raise ServiceUnavailable("kafka", "cannot list topics")

    monkeypatch.setattr(topics_module, "check", away)
    assert require_topics(REAL, SINK_ROLES, "sink") is None
