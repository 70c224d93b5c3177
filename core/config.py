"""All settings in one typed, frozen place.

Precedence, highest first: command-line flags (passed as ``overrides``), then
``SEALTRAIL_*`` environment variables (nested with ``__``, for example
``SEALTRAIL_KAFKA__BOOTSTRAP``), then a TOML config file (``--config`` or
``SEALTRAIL_CONFIG``), then the state of a running embedded stack
(``$SEALTRAIL_HOME/stack.json``), then the defaults below. So the same commands
run against the embedded stack with no setup and against real Kafka and AWS S3
when pointed there. Library code receives a Settings; it never reads the
environment itself.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sealtrail.errors import ConfigError

STACK_STATE_FILE = "stack.json"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TopicNames(_Frozen):
    events: str = "audit.events"
    chained: str = "audit.chained"
    dlq: str = "audit.dlq"
    quarantine: str = "audit.quarantine"


FOREVER = -1.0
"""A retention in days that never deletes (Kafka's retention.ms=-1)."""

# What the embedded stack implies (one broker: nothing to replicate to); see stack_layer and stack.start.
EMBEDDED_KAFKA: dict[str, Any] = {"replication_factor": 1}


def _retention_days(days: float, floor: float, floor_text: str) -> float:
    if days != FOREVER and days < floor:
        raise ValueError(f"must be at least {floor_text}, or {FOREVER:g} to keep records forever")
    return days


class KafkaSettings(_Frozen):
    """Where Kafka is, and what its topics must be like (sealtrail/topics.py derives the topic spec from these)."""

    bootstrap: str = "127.0.0.1:9092"
    topics: TopicNames = TopicNames()
    partitions: int = Field(6, ge=1, description="partitions of audit.events and audit.chained when created")
    replication_factor: int = Field(3, ge=1, description="replicas of each topic; 1 on the embedded stack (one broker)")
    min_insync_replicas: int | None = Field(
        None, ge=1, description="replicas an acks=all write waits for; default 2 when replication_factor >= 3, else 1"
    )
    events_retention_days: float = Field(
        7.0, description="how long audit.events keeps input: the longest stream outage without loss (>= 1, -1 forever)"
    )
    chained_retention_days: float = Field(
        7.0, description="how long audit.chained keeps sealed records: the longest sink outage without loss (>= 1, -1 forever)"
    )
    dlq_retention_days: float = Field(
        14.0, description="how long audit.dlq keeps redacted samples of rejected input (the trail accounts for each anyway)"
    )
    quarantine_retention_days: float = Field(
        FOREVER, description="how long audit.quarantine keeps records that fork a chain (their only copy); -1 forever"
    )
    compression_type: Literal["producer", "zstd", "lz4", "snappy", "gzip", "uncompressed"] = Field(
        "producer", description="topic compression.type; producer keeps what sealtrail's producers send (zstd)"
    )
    session_timeout_ms: int = Field(6000, ge=1000, description="short on the embedded broker: group joins wait for it")
    extra: dict[str, str] = Field(default_factory=dict, description="librdkafka settings (security.protocol, sasl.*)")
    aws_iam: bool = Field(False, description=(
        "authenticate to Amazon MSK with IAM: SASL_SSL with OAUTHBEARER tokens signed by the AWS credentials "
        "in effect (the pod's role); needs the [aws] extra"))
    aws_region: str | None = Field(None, description="region of the MSK cluster; default s3.region")

    @field_validator("min_insync_replicas")
    @classmethod
    def _fits_replication(cls, value: int | None, info: ValidationInfo) -> int | None:
        factor = info.data.get("replication_factor")
        if value is None or factor is None:
            return value
        if value > factor:
            raise ValueError(f"{value} exceeds replication_factor {factor}: no acks=all write could succeed")
        if factor >= 3 and value < 2:
            raise ValueError(f"must be at least 2 with replication_factor {factor}: one broker's loss would lose "
                             "acknowledged records")
        return value

    @field_validator("events_retention_days", "chained_retention_days", "quarantine_retention_days")
    @classmethod
    def _covers_an_outage(cls, days: float) -> float:
        return _retention_days(days, 1.0, "1 day")

    @field_validator("dlq_retention_days")
    @classmethod
    def _keeps_samples(cls, days: float) -> float:
        return _retention_days(days, 1 / 24, "1 hour (1/24 day)")

    @property
    def min_insync(self) -> int:
        """min_insync_replicas, or its default: 2 of 3 (or more) replicas, else 1."""
        if self.min_insync_replicas is not None:
            return self.min_insync_replicas
        return 2 if self.replication_factor >= 3 else 1


class S3Settings(_Frozen):
    endpoint: str | None = Field(None, description="None means AWS S3 itself")
    region: str = "us-east-1"
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    bucket: str = "sealtrail-audit"
    prefix: str = "trail/"


class RetentionSettings(_Frozen):
    """Without policy_file, mode and days are the whole policy (one default rule); see core/retention.py."""

    mode: Literal["COMPLIANCE", "GOVERNANCE"] = "COMPLIANCE"
    days: int = Field(2557, ge=1, le=36500, description="7 years, as HIPAA asks; SOC 2 needs at least 1 year")
    environment: Literal["production", "non-production"] = Field(
        "production", description="for the built-in policy: GOVERNANCE mode only in non-production"
    )
    policy_file: Path | None = Field(None, description="TOML retention policy (rules per category, action, tenant)")


class StreamSettings(_Frozen):
    group: str = "sealtrail-stream"
    batch_size: int = Field(5000, ge=1)
    batch_wait_s: float = Field(0.2, gt=0)
    max_event_bytes: int = Field(1024 * 1024, ge=1024, description="larger input goes to the DLQ as oversized")
    dedupe_window: int = Field(200_000, ge=0, description="event ids remembered per chain to drop producer retries")
    metrics_port: int = Field(9465, ge=0, description="Prometheus metrics on 127.0.0.1; 0 picks a free port")


class SinkSettings(_Frozen):
    group: str = "sealtrail-sink"
    flush_records: int = Field(50_000, ge=1, description="records per row group")
    flush_interval_s: float = Field(60.0, gt=0, description="longest a record waits before its object is written")
    object_bytes: int = Field(32 << 20, ge=1, description="write an object once it holds this many Parquet bytes")
    metrics_port: int = Field(9466, ge=0, description="Prometheus metrics; 0 picks a free port")


class KeySettings(_Frozen):
    signing_key_file: Path | None = Field(None, description="Ed25519 private key (PEM); default $HOME/keys/signing.pem")
    signing_key: SecretStr | None = Field(None, description="PEM text, for keys kept in the environment")
    kms_key_id: str | None = Field(None, description="AWS KMS key (ECC_NIST_EDWARDS25519) to sign with instead")
    kms_region: str | None = Field(None, description="region of the KMS key; default s3.region")
    trusted: list[Path] = Field(default_factory=list, description=(
        "public keys (PEM files) that verify, report, export and serve trust; without them the keys are read "
        "from the bucket, which proves only that the trail agrees with whoever could write there"))
    check_publication: bool = Field(False, description=(
        "report signatures sealed before their key's file first appeared in the bucket (key_before_publication); "
        "off by default: a trail copied or restored into a bucket has every key published after it signed"))
    publication_skew_s: float = Field(300.0, ge=0, description=(
        "clock skew allowed between a worker and the object store: a signature sealed more than this before "
        "its key was first published is a finding (key_before_publication)"))


class RedactionSettings(_Frozen):
    """Rules added to the built-in ones (core/redact.py); the built-ins cannot be switched off by accident."""

    extra_keys: tuple[str, ...] = Field((), description="more sensitive key names (whole words, any case style)")
    allow_keys: tuple[str, ...] = Field((), description="exact key names never redacted by name (e.g. token_count)")
    extra_patterns: tuple[str, ...] = Field((), description="more regular expressions for secret values")
    cards: bool = Field(True, description="card numbers (pattern plus Luhn check)")

    @field_validator("extra_patterns")
    @classmethod
    def _compiles(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"not a regular expression: {pattern!r} ({e})") from e
        return patterns


class SpoolSettings(_Frozen):
    """The producer's local spool: where events wait, durably, while Kafka is down or slow."""

    enabled: bool = Field(False, description="on for services: AuditClient spools instead of failing when Kafka is away")
    path: Path | None = Field(None, description="folder of spool files (one per live client); default $HOME/spool")
    max_bytes: int = Field(256 * 1024 * 1024, ge=4096, description="bound on the spooled event bytes")
    when_full: Literal["block", "raise"] = Field("raise", description="block until there is room, or raise SpoolFullError")
    block_timeout_s: float | None = Field(None, gt=0, description="with when_full=block: raise after this long (None: wait)")
    replay_batch: int = Field(5000, ge=1, description="events per acknowledged replay round trip")
    retry_interval_s: float = Field(2.0, gt=0, description="how often a down broker is probed while events are spooled")


class ProducerSettings(_Frozen):
    source: str | None = Field(None, description="default `source` of events from the typed helpers")
    tenant: str | None = Field(None, description="default tenant when the request context has none")
    max_event_bytes: int = Field(1024 * 1024, ge=1024, description="larger events are refused, never truncated")
    delivery_timeout_s: float = Field(10.0, gt=0, description="unacknowledged after this long: spooled")
    trusted_proxies: tuple[str, ...] = Field((), description="addresses or CIDRs whose X-Forwarded-For is believed")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, proxies: tuple[str, ...]) -> tuple[str, ...]:
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError as e:
                raise ValueError(f"not an address or CIDR: {proxy!r}") from e
        return proxies


class CdcSettings(_Frozen):
    """PostgreSQL change capture (`sealtrail cdc install | run`)."""

    schema_name: str = Field("sealtrail", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="schema of the audit table")
    relay: str = Field("default", min_length=1, max_length=64, description="name of the relay's durable position")
    batch_size: int = Field(1000, ge=1)
    poll_interval_s: float = Field(0.5, gt=0)
    tenant: str = Field("default", min_length=1, max_length=256, description="tenant when app.tenant is not set")
    source: str | None = Field(None, description="event source; default postgres:<database>")


class ServeSettings(_Frozen):
    """`sealtrail serve`: the admin query API (bearer tokens; every call recorded as an access event)."""

    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8480, ge=0, le=65535, description="0 picks a free port")
    tokens_file: Path | None = Field(None, description="TOML of token names -> role and sha256; default $HOME/serve/tokens.toml")
    max_page: int = Field(200, ge=1, le=10_000, description="largest page of GET /v1/events")
    default_page: int = Field(50, ge=1, description="page size when the request gives no limit")
    metrics: bool = Field(True, description="serve Prometheus metrics on 127.0.0.1:metrics_port, never on the API's listener")
    metrics_port: int = Field(9467, ge=0, le=65535, description="Prometheus metrics on 127.0.0.1; 0 picks a free port")
    export_dir: Path | None = Field(None, description="where POST /v1/exports writes bundles; default $HOME/exports")
    tenant: str = Field("sealtrail", min_length=1, max_length=256, description="tenant of access events")
    source: str = Field("sealtrail-serve", min_length=1, max_length=256, description="source of access events")
    audit_backlog: int = Field(10_000, ge=1, description="access events queued for the producer before calls get 503")
    max_body_bytes: int = Field(16 * 1024, ge=1024, le=16 << 20, description=(
        "largest request body; more gets 413. A body is read only once the caller's token is known"))
    max_concurrency: int = Field(64, ge=1, description="connections and calls at once (uvicorn limit_concurrency); more get 503")
    anonymous_rate_limit: str = Field("60/minute", description=(
        "calls without a valid token per client address (an IPv6 /64 counts as one), as N/second|minute|hour|day; "
        "more get 429; empty turns the limit off"))
    anonymous_rate_limit_total: str = Field("600/minute", description=(
        "calls without a valid token from all addresses together; empty turns the limit off"))
    proxy_hops: int = Field(0, ge=0, le=16, description=(
        "0: X-Forwarded-For is read right to left past producer.trusted_proxies; N: the client is the Nth address "
        "from the right, as N proxies in front of the API append it, whatever a client writes in front"))
    cursor_secret: SecretStr | None = Field(None, description=(
        "HMAC key of page cursors; default a random one per process, so cursors end with a restart"))
    tls_cert: Path | None = Field(None, description="PEM certificate (chain): serve HTTPS; needs tls_key")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert (unencrypted, readable only by the server)")


class Settings(BaseSettings):
    """Everything a command needs, resolved once at the edge and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="SEALTRAIL_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    home: Path = Path(".sealtrail")
    kafka: KafkaSettings = KafkaSettings()
    s3: S3Settings = S3Settings()
    retention: RetentionSettings = RetentionSettings()
    stream: StreamSettings = StreamSettings()
    sink: SinkSettings = SinkSettings()
    keys: KeySettings = KeySettings()
    redaction: RedactionSettings = RedactionSettings()
    producer: ProducerSettings = ProducerSettings()
    spool: SpoolSettings = SpoolSettings()
    cdc: CdcSettings = CdcSettings()
    serve: ServeSettings = ServeSettings()
    database_url: str | None = None
    metrics_host: str = Field(
        "127.0.0.1", description="where the workers' /metrics, /healthz and /ready listen; 0.0.0.0 in a container"
    )
    # services that neither a running embedded stack nor any setting points at (load_settings fills it)
    _unconfigured: frozenset[str] = PrivateAttr(default=frozenset())

    def require(self, service: Literal["kafka", "s3"]) -> None:
        """Refuse to reach a service nobody configured, in one line that says what to do.

        Without a stack and without settings, the defaults name localhost ports where nothing
        listens and an AWS bucket nobody has credentials for: the answer would be librdkafka's
        connection log or botocore's "Unable to locate credentials", not the cause.
        """
        section = getattr(self, service)
        located = {key: getattr(section, key) for key in _LOCATING[service]}
        if service in self._unconfigured and located == _DEFAULT_LOCATION[service]:
            setting, flag = _WHERE[service]
            raise ConfigError(setting, f"no embedded stack in {self.home} and no {service} settings: run "
                                       f"`sealtrail up` (or give --home of a running stack), or point sealtrail at "
                                       f"yours with {flag}, SEALTRAIL_{setting.upper().replace('.', '__')} or --config")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    @property
    def signing_key_path(self) -> Path:
        return self.keys.signing_key_file or self.home / "keys" / "signing.pem"

    @property
    def public_keys_dir(self) -> Path:
        return self.home / "keys" / "public"

    @property
    def spool_dir(self) -> Path:
        return self.spool.path or self.home / "spool"

    @property
    def serve_tokens_file(self) -> Path:
        return self.serve.tokens_file or self.home / "serve" / "tokens.toml"

    @property
    def serve_export_dir(self) -> Path:
        return self.serve.export_dir or self.home / "exports"


_WHERE = {"kafka": ("kafka.bootstrap", "--bootstrap"), "s3": ("s3.bucket", "--bucket")}
# the settings that say where a service is: set explicitly, or changed after loading (model_copy), the
# service is somebody's choice
_LOCATING = {"kafka": ("bootstrap",), "s3": ("endpoint", "bucket", "region", "access_key")}
_DEFAULT_LOCATION = {service: {key: getattr(section, key) for key in _LOCATING[service]}
                     for service, section in (("kafka", KafkaSettings()), ("s3", S3Settings()))}


def _unconfigured(stack: dict[str, Any], explicit: dict[str, Any]) -> frozenset[str]:
    """The services that only defaults point at: no stack, and none of the settings that locate them."""
    if stack:
        return frozenset()
    return frozenset(s for s, keys in _LOCATING.items() if not set(keys) & set(explicit.get(s) or {}))


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict):
            below = out.get(key)
            out[key] = _deep_merge(below if isinstance(below, dict) else {}, value)
        elif value is not None:
            out[key] = value
    return out


def stack_layer(home: Path) -> dict[str, Any]:
    """The settings a running embedded stack implies (lowest precedence but defaults)."""
    path = home / STACK_STATE_FILE
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_text())
        return _stack_settings(state)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(str(path), f"unreadable stack state: {e!r}") from e


def _stack_settings(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "kafka": {"bootstrap": state["kafka_bootstrap"], "topics": state["topics"], **EMBEDDED_KAFKA},
        "s3": {
            "endpoint": state["s3_endpoint"],
            "access_key": state["s3_access_key"],
            "secret_key": state["s3_secret_key"],
            "bucket": state["bucket"],
        },
        "database_url": state.get("database_url"),
    }


def file_layer(path: Path | None) -> dict[str, Any]:
    """A config file's settings. Its sections refuse unknown keys (extra="forbid"), and so does its top
    level here: Settings itself ignores unknown names so that unrelated SEALTRAIL_* variables do not
    stop a worker, but a misspelt section in a file ([strem]) must not leave the defaults quietly on."""
    if path is None:
        return {}
    try:
        loaded = tomllib.loads(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError("--config", f"no such file: {path}") from e
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(str(path), f"not valid TOML: {e}") from e
    unknown = sorted(set(loaded) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(unknown[0], f"not a setting ({path}); known: {', '.join(sorted(Settings.model_fields))}")
    return loaded


class _EnvLayer(Settings):
    """Reads only SEALTRAIL_* variables, so they can be layered between flags and files."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, **rest):
        return (env_settings,)


def load_settings(overrides: dict[str, Any] | None = None, config_file: Path | None = None) -> Settings:
    """Build Settings from flags, environment, config file and stack state, in that order."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        env_layer = _EnvLayer().model_dump(exclude_unset=True)
        if config_file is None and os.environ.get("SEALTRAIL_CONFIG"):
            config_file = Path(os.environ["SEALTRAIL_CONFIG"])
        files = file_layer(config_file)
        home = Path(overrides.get("home") or env_layer.get("home") or files.get("home") or ".sealtrail")
        stack = stack_layer(home)
        explicit = _deep_merge(_deep_merge(files, env_layer), overrides)
        merged = _deep_merge(stack, explicit)
        merged["home"] = home
        settings = Settings(**merged)
        settings._unconfigured = _unconfigured(stack, explicit)
        return settings
    except ValidationError as e:
        first = e.errors()[0]
        setting = ".".join(str(p) for p in first["loc"])
        raise ConfigError(setting, first["msg"]) from e
