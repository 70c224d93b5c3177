"""`sealtrail topics init | check` and the workers' start check, on the session's embedded broker (Tansu).

Each test points the CLI at topics of its own (SEALTRAIL_KAFKA__TOPICS__*), so the shared broker's other
topics are never touched. Commands run as subprocesses, as an operator runs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

ROLES = ("events", "chained", "dlq", "quarantine")


class Topics:
    """Four topic names of one test, and the CLI pointed at them."""

    def __init__(self, stack: Any) -> None:
        tag = uuid.uuid4().hex[:8]
        self.settings = stack.settings
        self.names = {role: f"tt{tag}.{role}" for role in ROLES}
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SEALTRAIL_")},
            "SEALTRAIL_HOME": str(stack.settings.home),
            **{f"SEALTRAIL_KAFKA__TOPICS__{role.upper()}": name for role, name in self.names.items()},
            "SEALTRAIL_STREAM__METRICS_PORT": "0",
            "SEALTRAIL_SINK__METRICS_PORT": "0",
        }
        self.admin = AdminClient({"bootstrap.servers": stack.settings.kafka.bootstrap})

    def create(self, partitions: dict[str, int] | None = None, configs: dict[str, dict[str, str]] | None = None,
               replicas: int = 1) -> None:
        """Create the topics by hand, as someone else might have (no configs unless given)."""
        partitions = {"events": 3, "chained": 3, "dlq": 1, "quarantine": 1, **(partitions or {})}
        configs = configs or {}
        new = [NewTopic(name, partitions[role], replicas, config=configs.get(role, {}))
               for role, name in self.names.items()]
        for future in self.admin.create_topics(new).values():
            future.result(30)

    def run(self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sealtrail.cli", *args], env={**self.env, **(extra_env or {})},
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def topics(stack: Any) -> Topics:
    return Topics(stack)


def no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr


def test_up_created_its_topics_as_the_spec_wants(stack: Any) -> None:
    """`sealtrail up` goes through the same code: its topics carry every config, described by Tansu."""
    result = subprocess.run([sys.executable, "-m", "sealtrail.cli", "topics", "check", "--json"],
                            env={**{k: v for k, v in os.environ.items() if not k.startswith("SEALTRAIL_")},
                                 "SEALTRAIL_HOME": str(stack.settings.home)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["losses"] == doc["advice"] == 0
    for name, topic in doc["topics"].items():
        assert topic["unchecked"] == [], name
        assert topic["configs"] == topic["wanted"]["configs"], name


def test_init_then_check(topics: Topics) -> None:
    first = topics.run("topics", "init")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "creating topics" in first.stderr
    assert all(f"{name} ({role}): " in first.stdout for role, name in topics.names.items())

    checked = topics.run("topics", "check", "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    doc = json.loads(checked.stdout)
    assert doc["ok"] and doc["losses"] == 0
    events, chained = doc["topics"][topics.names["events"]], doc["topics"][topics.names["chained"]]
    assert events["partitions"] == chained["partitions"] == topics.settings.kafka.partitions
    assert chained["replication_factor"] == 1  # the embedded stack: one broker
    assert chained["configs"]["cleanup.policy"] == "delete"
    assert chained["configs"]["retention.ms"] == str(7 * 86_400_000)

    again = topics.run("topics", "init")
    assert again.returncode == 0 and "creating" not in again.stderr


def test_chained_with_fewer_partitions(topics: Topics) -> None:
    topics.create(partitions={"events": 4, "chained": 2})
    checked = topics.run("topics", "check")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    no_traceback(checked)
    line = next(ln for ln in checked.stdout.splitlines() if ln.startswith(topics.names["chained"]))
    assert "losing data" in line
    assert "LOSES DATA partitions" in checked.stdout

    stream = topics.run("stream", timeout=60)
    assert stream.returncode != 0
    no_traceback(stream)
    assert "error: kafka.topics.chained: stream refuses to start" in stream.stderr
    assert f"{topics.names['chained']}: 2 partitions, fewer than {topics.names['events']} (4)" in stream.stderr


def test_compacted_chained_is_refused_and_alter_fixes_it(topics: Topics) -> None:
    """Tansu stores cleanup.policy given at creation and describes it, so this is checked for real."""
    topics.create(configs={"chained": {"cleanup.policy": "compact", "retention.ms": "3600000"}})
    checked = topics.run("topics", "check", "--json")
    assert checked.returncode == 1
    problems = {(p["key"], p["severity"], p["setting"])
                for p in json.loads(checked.stdout)["topics"][topics.names["chained"]]["problems"]}
    assert problems == {("cleanup.policy", "loss", "kafka.topics.chained"),
                        ("retention.ms", "loss", "kafka.chained_retention_days")}

    for worker in ("stream", "sink"):
        refused = topics.run(worker)
        assert refused.returncode != 0, worker
        no_traceback(refused)
        assert f"error: kafka.topics.chained: {worker} refuses to start" in refused.stderr
        assert "cleanup.policy=compact, wanted delete" in refused.stderr
        assert "kafka.chained_retention_days" in refused.stderr

    altered = topics.run("topics", "init", "--alter")
    assert altered.returncode == 0, altered.stdout + altered.stderr
    after = json.loads(topics.run("topics", "check", "--json").stdout)
    assert after["ok"]
    assert after["topics"][topics.names["chained"]]["configs"]["cleanup.policy"] == "delete"
    assert after["topics"][topics.names["events"]]["unchecked"] == []  # --alter set what was never described


def test_replicas_tansu_lists_thrice_count_once(topics: Topics) -> None:
    """Tansu accepts 3 replicas on its one broker and lists that broker three times: that is one replica."""
    topics.create(replicas=3)
    checked = topics.run("topics", "check", "--json", extra_env={"SEALTRAIL_KAFKA__REPLICATION_FACTOR": "3"})
    assert checked.returncode == 1
    doc = json.loads(checked.stdout)
    chained = doc["topics"][topics.names["chained"]]
    assert chained["replication_factor"] == 1
    assert ("replication.factor", "kafka.replication_factor") in {(p["key"], p["setting"]) for p in chained["problems"]}
    assert chained["unchecked"]  # created without configs: Tansu describes none


def test_topics_without_configs_do_not_stop_a_worker(topics: Topics) -> None:
    """What Tansu cannot describe is logged, never refused: the spec's partitions are all that is checked."""
    topics.create()
    checked = topics.run("topics", "check")
    assert checked.returncode == 0, checked.stdout
    assert "the broker does not describe any config" in checked.stdout
