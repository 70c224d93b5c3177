"""What the trail's guarantees need of its four Kafka topics, and applying or checking it.

The spec is a pure function of Settings (``topic_specs``); ``compare`` is a pure
function from a spec and what the broker describes to a list of problems. Each
problem names the topic, the config key and the sealtrail setting that decides
it, and is either LOSS (this configuration would lose records: ``topics check``
exits 1, the workers refuse to start) or ADVICE (it works, but not as it
should). The broker edge (``init``, ``check``, ``require_topics``) is at the
bottom; `sealtrail up`, `sealtrail topics init | check` and the workers' start
all go through it.

Why each part of the spec matters:

* partitions: chain pN is sealed from audit.events partition N onto
  audit.chained partition N, so audit.chained needs at least as many
  partitions as audit.events (fewer: LOSS; more: unused, ADVICE). Both are
  created with kafka.partitions; audit.dlq and audit.quarantine with one.
* replication factor and min.insync.replicas: an acks=all write is
  acknowledged once min.insync.replicas replicas hold it; with one replica, or
  one in-sync replica required, a broker's loss loses acknowledged records.
* unclean.leader.election.enable=false: an out-of-sync replica made leader
  drops what it had not copied.
* cleanup.policy=delete, never compact: records are keyed by chain (and by
  event), so compaction would keep only the newest record per key.
* retention.ms: audit.events must outlast a stream outage, audit.chained a
  sink outage; audit.quarantine holds the only copy of records that fork a
  chain (kept forever by default); audit.dlq holds redacted samples of
  rejected input for the operator, while the trail's rejected rows account
  for every rejection, so its retention is only advice. retention.bytes=-1:
  a size bound deletes records whatever their age.
* max.message.bytes: a sealed record the broker refuses stops the stream on
  every restart, so the topics take twice the largest accepted event.
* compression.type: `producer` keeps the zstd batches sealtrail's producers
  send, with no recompression on the broker (ADVICE only).

Measured on the embedded broker (Tansu 0.6.0): CreateTopics stores the
configs it is given, without validating them (``retention.ms=abc`` is
accepted); DescribeConfigs answers with exactly those configs and nothing for
keys never set (no broker defaults, every entry marked default), and with an
empty answer for a topic that does not exist; IncrementalAlterConfigs works;
the legacy AlterConfigs and CreatePartitions are unsupported; a replication
factor of 3 on its one broker is accepted and listed as the same broker three
times. So a key the broker does not describe is reported as not checked,
never as a problem, and the replication factor counts distinct brokers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sealtrail.config import FOREVER, Settings
from sealtrail.errors import ConfigError, ServiceUnavailable

log = logging.getLogger("sealtrail.topics")

Progress = Callable[[str], None]

DAY_MS = 86_400_000
# retention keys where -1 means unlimited, which satisfies any lower bound
_UNLIMITED_KEYS = frozenset({"retention.ms", "retention.bytes"})
_ALTER_HINT = "`sealtrail topics init --alter` sets it"


class Severity(StrEnum):
    LOSS = "loss"  # records would be lost: `topics check` exits 1, the workers refuse to start
    ADVICE = "advice"  # works, but not as the guarantees or operations want: a warning


class Role(StrEnum):
    EVENTS = "events"
    CHAINED = "chained"
    DLQ = "dlq"
    QUARANTINE = "quarantine"


ALL_ROLES = (Role.EVENTS, Role.CHAINED, Role.DLQ, Role.QUARANTINE)
STREAM_ROLES = (Role.EVENTS, Role.CHAINED, Role.DLQ)  # reads events, writes chained and dead letters
SINK_ROLES = (Role.CHAINED, Role.QUARANTINE)  # reads chained, writes what forks a chain to quarantine


class Bound(StrEnum):
    """How a described config value is held against the wanted one."""

    EQUAL = "equal"
    AT_LEAST = "at_least"  # integers; -1 (unlimited) satisfies any bound for retention keys


@dataclass(frozen=True)
class ConfigRule:
    key: str  # the topic config, as Kafka names it
    value: str  # what `topics init` sets
    bound: Bound
    severity: Severity  # when the described value does not satisfy the rule
    setting: str  # the sealtrail setting that decides the value (or picks the topic)
    why: str


@dataclass(frozen=True)
class TopicSpec:
    role: Role
    name: str
    partitions: int  # when created
    replication_factor: int
    rules: tuple[ConfigRule, ...]
    severity: Severity  # of a replication shortfall; a missing topic is always LOSS

    @property
    def setting(self) -> str:
        return f"kafka.topics.{self.role.value}"

    @property
    def configs(self) -> dict[str, str]:
        return {r.key: r.value for r in self.rules}


@dataclass(frozen=True)
class Described:
    """A topic as the broker describes it; configs None when the broker would not describe them."""

    partitions: int
    replication_factor: int  # distinct brokers holding the least-replicated partition
    configs: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Problem:
    topic: str
    key: str  # a config key, or "topic", "partitions", "replication.factor"
    severity: Severity
    setting: str
    message: str
    fix: str

    def as_json(self) -> dict[str, str]:
        return {"topic": self.topic, "key": self.key, "severity": self.severity.value, "setting": self.setting,
                "message": self.message, "fix": self.fix}

    def __str__(self) -> str:
        return f"{self.topic}: {self.message}; fix: {self.fix}"


# --- the spec: a pure function of Settings -------------------------------------------------------


def retention_ms(days: float) -> int:
    return -1 if days == FOREVER else round(days * DAY_MS)


def topic_specs(settings: Settings, roles: Collection[Role] = ALL_ROLES) -> list[TopicSpec]:
    """The topics in ``roles`` as the guarantees need them, in data-flow order."""
    from sealtrail.kafka import record_bytes_limit

    k = settings.kafka
    record_bytes = str(record_bytes_limit(settings))
    retention = {
        Role.EVENTS: (k.events_retention_days, "a stream outage longer than this loses acknowledged events "
                      "before they are sealed"),
        Role.CHAINED: (k.chained_retention_days, "a sink outage longer than this loses sealed records before they "
                       "reach the bucket"),
        Role.DLQ: (k.dlq_retention_days, "dead letters are redacted samples for the operator fixing a producer; the "
                   "trail's rejected rows account for every rejection"),
        Role.QUARANTINE: (k.quarantine_retention_days, "records that fork a chain are kept nowhere else"),
    }

    def spec(role: Role, name: str, partitions: int) -> TopicSpec:
        guard = Severity.ADVICE if role is Role.DLQ else Severity.LOSS
        topic = f"kafka.topics.{role.value}"
        days, why = retention[role]
        rules = [
            ConfigRule("cleanup.policy", "delete", Bound.EQUAL, guard, topic,
                       "compaction keeps only the newest record per key (records are keyed by chain and event)"),
            ConfigRule("retention.ms", str(retention_ms(days)), Bound.AT_LEAST, guard,
                       f"kafka.{role.value}_retention_days", why),
        ]
        if role is not Role.DLQ:  # a size bound on samples is fine
            rules.append(ConfigRule("retention.bytes", "-1", Bound.AT_LEAST, guard, topic,
                                    "a size bound deletes records whatever their age"))
        rules += [
            ConfigRule("min.insync.replicas", str(k.min_insync), Bound.AT_LEAST, guard, "kafka.min_insync_replicas",
                       "an acks=all write is acknowledged once this many replicas hold it"),
            ConfigRule("unclean.leader.election.enable", "false", Bound.EQUAL, guard, topic,
                       "an out-of-sync replica made leader drops what it had not copied"),
            ConfigRule("max.message.bytes", record_bytes, Bound.AT_LEAST, guard, "stream.max_event_bytes",
                       "a record the broker refuses stops the pipeline at it, on every restart"),
            ConfigRule("compression.type", k.compression_type, Bound.EQUAL, Severity.ADVICE, "kafka.compression_type",
                       "`producer` keeps the producers' zstd batches as sent, with no recompression on the broker"),
        ]
        return TopicSpec(role, name, partitions, k.replication_factor, tuple(rules), guard)

    names = k.topics
    every = {
        Role.EVENTS: spec(Role.EVENTS, names.events, k.partitions),
        Role.CHAINED: spec(Role.CHAINED, names.chained, k.partitions),
        Role.DLQ: spec(Role.DLQ, names.dlq, 1),
        Role.QUARANTINE: spec(Role.QUARANTINE, names.quarantine, 1),
    }
    return [every[r] for r in ALL_ROLES if r in roles]


# --- the comparison: pure ------------------------------------------------------------------------


def compare(specs: Sequence[TopicSpec], described: Mapping[str, Described | None]) -> list[Problem]:
    """Every way the described topics fall short of ``specs``; keys the broker did not describe are skipped
    (``undescribed`` lists them)."""
    problems: list[Problem] = []
    for spec in specs:
        found = described.get(spec.name)
        if found is None:
            problems.append(Problem(spec.name, "topic", Severity.LOSS, spec.setting,
                                    f"the topic does not exist ({spec.setting})", "`sealtrail topics init` creates it"))
            continue
        problems += _replication_problems(spec, found)
        if found.configs is None:
            continue
        for rule in spec.rules:
            if rule.key in found.configs:
                problem = _rule_problem(spec.name, rule, found.configs[rule.key])
                if problem is not None:
                    problems.append(problem)
        problems += _insync_problems(spec, found)
    problems += _partition_problems(specs, described)
    return problems


def undescribed(specs: Sequence[TopicSpec], described: Mapping[str, Described | None]) -> list[tuple[str, str]]:
    """(topic, config key) pairs of existing topics that the broker did not describe, so were not checked."""
    out = []
    for spec in specs:
        found = described.get(spec.name)
        if found is None:
            continue
        out += [(spec.name, r.key) for r in spec.rules if found.configs is None or r.key not in found.configs]
    return out


def satisfies(rule: ConfigRule, value: str) -> bool | None:
    """Whether a described value meets the rule; None when it is not a value the rule can read."""
    value = value.strip().lower()
    if rule.bound is Bound.EQUAL:
        return value.replace(" ", "") == rule.value
    try:
        number, wanted = int(value), int(rule.value)
    except ValueError:
        return None
    if rule.key in _UNLIMITED_KEYS and number == -1:
        return True
    if wanted == -1 and rule.key in _UNLIMITED_KEYS:
        return False
    return number >= wanted


def _rule_problem(topic: str, rule: ConfigRule, value: str) -> Problem | None:
    ok = satisfies(rule, value)
    if ok:
        return None
    shown = f"{rule.key}={value}" + _human(rule.key, value)
    if ok is None:
        what = f"{shown} is not a value Kafka understands"
    elif rule.bound is Bound.EQUAL:
        what = f"{shown}, wanted {rule.value}"
    elif rule.value == "-1":
        what = f"{shown}, wanted -1 (unlimited)"
    else:
        what = f"{shown} is below {rule.value}{_human(rule.key, rule.value)}"
    fix = _ALTER_HINT if rule.setting.startswith("kafka.topics.") else f"{_ALTER_HINT}, or change {rule.setting}"
    return Problem(topic, rule.key, rule.severity, rule.setting, f"{what} ({rule.setting}): {rule.why}", fix)


def _replication_problems(spec: TopicSpec, found: Described) -> list[Problem]:
    if found.replication_factor >= spec.replication_factor:
        return []
    return [Problem(
        spec.name, "replication.factor", spec.severity, "kafka.replication_factor",
        f"{found.replication_factor} replica(s) per partition, kafka.replication_factor asks "
        f"{spec.replication_factor}: losing a broker loses the records only it held",
        "reassign the partitions onto more brokers (kafka-reassign-partitions), or lower kafka.replication_factor "
        "where one broker is all there is",
    )]


def _insync_problems(spec: TopicSpec, found: Described) -> list[Problem]:
    """min.insync.replicas against the replicas the topic really has: too many stops writes (advice: the
    producers fail loudly, nothing is lost silently)."""
    assert found.configs is not None
    try:
        insync = int(found.configs.get("min.insync.replicas", ""))
    except ValueError:
        return []
    replicas = found.replication_factor
    if insync > replicas:
        message = (f"min.insync.replicas={insync} exceeds the topic's {replicas} replica(s): every acks=all write "
                   "is refused")
    elif insync == replicas > 1:
        message = f"min.insync.replicas={insync} equals the replication factor: one broker down stops every write"
    else:
        return []
    return [Problem(spec.name, "min.insync.replicas", Severity.ADVICE, "kafka.min_insync_replicas", message,
                    "lower the topic's min.insync.replicas (and kafka.min_insync_replicas) to the replication "
                    "factor - 1, or add replicas")]


def _partition_problems(specs: Sequence[TopicSpec], described: Mapping[str, Described | None]) -> list[Problem]:
    """audit.chained against audit.events. Existing topics keep their count whatever kafka.partitions says
    (it applies when a topic is created), so only the pair is compared."""
    by_role = {s.role: s for s in specs}
    events, chained = by_role.get(Role.EVENTS), by_role.get(Role.CHAINED)
    e = described.get(events.name) if events else None
    c = described.get(chained.name) if chained else None
    if events is None or chained is None or e is None or c is None:
        return []
    if c.partitions < e.partitions:
        return [Problem(
            chained.name, "partitions", Severity.LOSS, chained.setting,
            f"{c.partitions} partitions, fewer than {events.name} ({e.partitions}): chain pN is sealed onto "
            f"partition N, so input of partitions {c.partitions}-{e.partitions - 1} has nowhere to go",
            f"`sealtrail topics init --alter` adds partitions to {chained.name} where the broker supports it, or "
            f"point {chained.setting} at a topic with {e.partitions} partitions",
        )]
    if c.partitions > e.partitions:
        return [Problem(
            chained.name, "partitions", Severity.ADVICE, chained.setting,
            f"{c.partitions} partitions, more than {events.name} ({e.partitions}): the extra ones stay empty",
            f"nothing to do; {chained.setting} naming a topic with {e.partitions} partitions is tidier",
        )]
    return []


def _human(key: str, value: str) -> str:
    try:
        n = int(value)
    except ValueError:
        return ""
    if n < 0:
        return " (unlimited)" if key in _UNLIMITED_KEYS else ""
    if key == "retention.ms":
        return f" ({n / DAY_MS:.3g} d)" if n >= DAY_MS else f" ({n / 3_600_000:.3g} h)"
    if key.endswith(".bytes") and n >= 1 << 20:
        return f" ({n / (1 << 20):g} MiB)"
    return ""


# --- reports -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopicsReport:
    specs: tuple[TopicSpec, ...]
    described: Mapping[str, Described | None]
    problems: tuple[Problem, ...]
    unchecked: tuple[tuple[str, str], ...]
    notes: tuple[str, ...] = ()  # what could not be done or described, and why
    created: tuple[str, ...] = ()
    altered: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def losses(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.LOSS]

    @property
    def advice(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ADVICE]

    @property
    def ok(self) -> bool:
        """Nothing would lose data (advice may remain)."""
        return not self.losses

    def for_topic(self, name: str) -> tuple[list[Problem], list[str]]:
        return [p for p in self.problems if p.topic == name], [k for t, k in self.unchecked if t == name]

    def as_json(self) -> dict[str, Any]:
        topics = {}
        for spec in self.specs:
            found = self.described.get(spec.name)
            problems, unchecked = self.for_topic(spec.name)
            topics[spec.name] = {
                "role": spec.role.value,
                "exists": found is not None,
                "created": spec.name in self.created,
                "altered": list(self.altered.get(spec.name, ())),
                "partitions": found.partitions if found else None,
                "replication_factor": found.replication_factor if found else None,
                "configs": dict(found.configs) if found and found.configs is not None else None,
                "wanted": {"partitions": spec.partitions, "replication_factor": spec.replication_factor,
                           "configs": spec.configs},
                "problems": [p.as_json() for p in problems],
                "unchecked": unchecked,
            }
        return {"ok": self.ok, "losses": len(self.losses), "advice": len(self.advice), "topics": topics,
                "notes": list(self.notes)}


def _report(specs: Sequence[TopicSpec], described: Mapping[str, Described | None], notes: Sequence[str] = (),
            created: Sequence[str] = (), altered: Mapping[str, tuple[str, ...]] | None = None) -> TopicsReport:
    return TopicsReport(tuple(specs), dict(described), tuple(compare(specs, described)),
                        tuple(undescribed(specs, described)), tuple(notes), tuple(created), dict(altered or {}))


# --- the broker edge -----------------------------------------------------------------------------


def check(settings: Settings, roles: Collection[Role] = ALL_ROLES, timeout_s: float = 10.0) -> TopicsReport:
    """How the broker's topics compare with the spec; changes nothing."""
    from sealtrail.kafka import make_admin

    specs = topic_specs(settings, roles)
    described, notes = _describe(make_admin(settings), specs, timeout_s)
    return _report(specs, described, notes)


def init(settings: Settings, *, alter: bool = False, roles: Collection[Role] = ALL_ROLES,
         progress: Progress | None = None, timeout_s: float = 30.0) -> TopicsReport:
    """Create the missing topics as the spec wants; with ``alter``, also set the configs of existing topics that
    fall short (never weakening one that does better) and add partitions to audit.chained when it has fewer than
    audit.events. Returns the topics as they are afterwards."""
    from sealtrail.kafka import make_admin

    say = progress or (lambda _m: None)
    admin = make_admin(settings)
    specs = topic_specs(settings, roles)
    described, notes = _describe(admin, specs, timeout_s)
    missing = [s for s in specs if described.get(s.name) is None]
    if missing:
        say(f"creating topics {', '.join(s.name for s in missing)}")
        _create(admin, missing, timeout_s)
    altered: dict[str, tuple[str, ...]] = {}
    if alter:
        existing = [s for s in specs if s not in missing]
        problems, gaps = compare(existing, described), undescribed(existing, described)
        for spec in existing:
            keys = sorted({p.key for p in problems if p.topic == spec.name and p.key in spec.configs}
                          | {k for t, k in gaps if t == spec.name})
            if keys:
                note = _alter_configs(admin, spec, keys, timeout_s)
                if note:
                    notes.append(note)
                else:
                    altered[spec.name] = tuple(keys)
        notes += _grow_chained(admin, existing, problems, described, timeout_s, say)
    if missing:
        _wait_listed(admin, [s.name for s in missing], timeout_s)
    described, more = _describe(admin, specs, timeout_s)
    return _report(specs, described, notes + more, [s.name for s in missing], altered)


def require_topics(settings: Settings, roles: Collection[Role], worker: str) -> TopicsReport | None:
    """At a worker's start: refuse (ConfigError naming the setting) a configuration that would lose data; warn
    about the rest; log what the broker could not describe. An unreachable broker is left to the worker's own
    retries, and a broker that cannot describe configs never causes a refusal."""
    try:
        report = check(settings, roles)
    except ServiceUnavailable as e:
        log.warning("%s: topics not checked (%s); going on", worker, e.detail)
        return None
    for problem in report.advice:
        log.warning("%s: topic advice: %s", worker, problem)
    for note in report.notes:
        log.info("%s: %s", worker, note)
    for topic in sorted({t for t, _ in report.unchecked}):
        keys = [k for t, k in report.unchecked if t == topic]
        log.info("%s: the broker does not describe %s of %s; not checked", worker, ", ".join(keys), topic)
    losses = report.losses
    if losses:
        detail = "; ".join(str(p) for p in losses)
        raise ConfigError(losses[0].setting, f"{worker} refuses to start, the topics would lose data: {detail} "
                                             "(`sealtrail topics check` reports every topic)")
    return report


def _describe(admin: Any, specs: Sequence[TopicSpec], timeout_s: float) -> tuple[dict[str, Described | None], list[str]]:
    """Partitions and replicas from metadata (every broker answers), configs from DescribeConfigs (when it can)."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import ConfigResource, ResourceType

    try:
        # all topics, not one by name: a metadata request naming a missing topic may auto-create it
        listed = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as e:
        raise ServiceUnavailable("kafka", f"cannot list topics: {e.args[0].str() if e.args else e}") from e
    shapes: dict[str, tuple[int, int]] = {}
    for spec in specs:
        meta = listed.get(spec.name)
        unknown = meta is not None and meta.error is not None and meta.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        if meta is None or unknown or not meta.partitions:
            continue
        replicas = min(len(set(p.replicas)) for p in meta.partitions.values())
        shapes[spec.name] = (len(meta.partitions), replicas)
    notes: list[str] = []
    configs: dict[str, dict[str, str] | None] = dict.fromkeys(shapes)
    if shapes:
        try:
            futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in shapes],
                                             request_timeout=timeout_s)
        except KafkaException as e:
            futures = {}
            notes.append(f"the broker does not describe topic configs ({e}); checked partitions and replicas only")
        for resource, future in futures.items():
            try:
                entries = future.result(timeout_s)
            except KafkaException as e:
                notes.append(f"the broker does not describe the configs of {resource.name} "
                             f"({e.args[0].str() if e.args else e}); checked partitions and replicas only")
                continue
            configs[resource.name] = {k: v.value for k, v in entries.items() if v.value is not None}
    described: dict[str, Described | None] = {s.name: None for s in specs}
    for name, (partitions, replicas) in shapes.items():
        described[name] = Described(partitions, replicas, configs.get(name))
    return described, notes


def _create(admin: Any, specs: Sequence[TopicSpec], timeout_s: float) -> None:
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic

    new = [NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication_factor, config=s.configs)
           for s in specs]
    by_name = {s.name: s for s in specs}
    for name, future in admin.create_topics(new, request_timeout=timeout_s).items():
        try:
            future.result(timeout_s)
        except KafkaException as e:
            err = e.args[0]
            if err.code() == KafkaError.TOPIC_ALREADY_EXISTS:  # someone else was quicker: checked like any other
                continue
            if err.code() == KafkaError.INVALID_REPLICATION_FACTOR:
                raise ConfigError("kafka.replication_factor", f"cannot create {name} with "
                                  f"{by_name[name].replication_factor} replicas: {err.str()}") from e
            if err.code() in (KafkaError.INVALID_CONFIG, KafkaError.POLICY_VIOLATION, KafkaError.INVALID_PARTITIONS):
                raise ConfigError(by_name[name].setting, f"the broker refused to create {name}: {err.str()}") from e
            raise ServiceUnavailable("kafka", f"cannot create {name}: {err.str()}") from e


def _alter_configs(admin: Any, spec: TopicSpec, keys: Sequence[str], timeout_s: float) -> str | None:
    """Set ``keys`` to the spec's values (IncrementalAlterConfigs); a note when the broker refuses."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    wanted = spec.configs
    entries = [ConfigEntry(k, wanted[k], incremental_operation=AlterConfigOpType.SET) for k in keys]
    resource = ConfigResource(ResourceType.TOPIC, spec.name, incremental_configs=entries)
    try:
        for future in admin.incremental_alter_configs([resource], request_timeout=timeout_s).values():
            future.result(timeout_s)
    except KafkaException as e:
        return f"could not set {', '.join(keys)} on {spec.name}: {e.args[0].str() if e.args else e}"
    return None


def _grow_chained(admin: Any, specs: Sequence[TopicSpec], problems: Sequence[Problem],
                  described: Mapping[str, Described | None], timeout_s: float, say: Progress) -> list[str]:
    """Add partitions to audit.chained up to audit.events' count: new chained partitions start empty, which is
    safe (never to audit.events: that would move keys between partitions)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewPartitions

    by_role = {s.role: s for s in specs}
    chained, events = by_role.get(Role.CHAINED), by_role.get(Role.EVENTS)
    short = [p for p in problems if chained and p.topic == chained.name and p.key == "partitions"
             and p.severity is Severity.LOSS]
    if not short or chained is None or events is None:
        return []
    want = described[events.name].partitions  # type: ignore[union-attr]
    try:
        for future in admin.create_partitions([NewPartitions(chained.name, want)], request_timeout=timeout_s).values():
            future.result(timeout_s)
    except KafkaException as e:
        return [f"could not add partitions to {chained.name}: {e.args[0].str() if e.args else e}"]
    say(f"{chained.name} now has {want} partitions")
    return []


def _wait_listed(admin: Any, names: Sequence[str], timeout_s: float) -> None:
    """Created topics can take a moment to reach every broker's metadata."""
    deadline = time.monotonic() + timeout_s
    while True:
        listed = admin.list_topics(timeout=timeout_s).topics
        absent = [n for n in names if n not in listed]
        if not absent:
            return
        if time.monotonic() > deadline:
            raise ServiceUnavailable("kafka", f"topics {absent} were created but are not listed")
        time.sleep(0.2)
