"""sealtrail.config: one frozen Settings from five layers.

Precedence, highest first: flags (overrides) > SEALTRAIL_* environment (nested
with __) > TOML config file > the running stack's state (home/stack.json) >
defaults. Each test runs in an empty working directory with no SEALTRAIL_*
variables, so the developer's own environment cannot leak in.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sealtrail.config import STACK_STATE_FILE, Settings, load_settings
from sealtrail.errors import ConfigError

LAYERS = ("stack", "file", "env", "flag")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SEALTRAIL_"):
            monkeypatch.delenv(name)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)


def write_stack(home: Path, **changes: Any) -> None:
    state = {
        "kafka_bootstrap": "stack:1",
        "s3_endpoint": "http://127.0.0.1:8333",
        "s3_access_key": "stack-access",
        "s3_secret_key": "stack-secret",
        "bucket": "stack-bucket",
        "topics": {"events": "stack.events", "chained": "stack.chained", "dlq": "stack.dlq"},
        "database_url": "postgresql://stack/db",
        "pids": {}, "ports": {}, "home": str(home), "started_at": "2026-11-01T00:00:00Z",
    } | changes
    home.mkdir(parents=True, exist_ok=True)
    (home / STACK_STATE_FILE).write_text(json.dumps(state))


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path) -> None:
    s = load_settings()
    assert s.model_dump() == Settings().model_dump()  # (s also knows that nothing locates Kafka or S3)
    assert s.home == Path(".sealtrail")
    assert s.kafka.bootstrap == "127.0.0.1:9092"
    assert s.kafka.partitions == 6
    assert s.kafka.topics.events == "audit.events"
    assert s.s3.endpoint is None and s.s3.access_key is None
    assert s.retention.mode == "COMPLIANCE" and s.retention.days == 2557
    assert s.database_url is None
    assert s.signing_key_path == Path(".sealtrail/keys/signing.pem")
    assert s.public_keys_dir == Path(".sealtrail/keys/public")


def test_settings_frozen() -> None:
    s = load_settings()
    with pytest.raises(ValidationError):
        s.home = Path("elsewhere")  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.kafka.partitions = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "present",
    [c for n in range(len(LAYERS) + 1) for c in itertools.combinations(LAYERS, n)],
    ids=lambda c: "+".join(c) or "defaults",
)
def test_precedence(present: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    overrides: dict[str, Any] = {"home": str(home)}
    config_file = None
    if "stack" in present:
        write_stack(home)
    if "file" in present:
        config_file = write_toml(tmp_path / "sealtrail.toml", '[kafka]\nbootstrap = "file:2"\n')
    if "env" in present:
        monkeypatch.setenv("SEALTRAIL_KAFKA__BOOTSTRAP", "env:3")
    if "flag" in present:
        overrides["kafka"] = {"bootstrap": "flag:4"}
    want = {"stack": "stack:1", "file": "file:2", "env": "env:3", "flag": "flag:4"}
    top = [want[layer] for layer in LAYERS if layer in present]
    s = load_settings(overrides, config_file)
    assert s.kafka.bootstrap == (top[-1] if top else "127.0.0.1:9092")


def test_layers_merge_deeply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each layer overrides only the leaves it sets; siblings come from the layers below."""
    home = tmp_path / "home"
    write_stack(home)
    config_file = write_toml(tmp_path / "c.toml", '[s3]\nprefix = "file-prefix/"\nregion = "eu-west-1"\n[kafka]\npartitions = 9\n')
    monkeypatch.setenv("SEALTRAIL_S3__REGION", "eu-central-1")
    monkeypatch.setenv("SEALTRAIL_KAFKA__TOPICS__EVENTS", "env.events")
    s = load_settings({"home": str(home), "s3": {"bucket": "flag-bucket"}}, config_file)
    assert s.s3.endpoint == "http://127.0.0.1:8333"  # stack
    assert s.s3.access_key is not None and s.s3.access_key.get_secret_value() == "stack-access"  # stack
    assert s.s3.secret_key is not None and s.s3.secret_key.get_secret_value() == "stack-secret"
    assert s.s3.prefix == "file-prefix/"  # file
    assert s.s3.region == "eu-central-1"  # env over file
    assert s.s3.bucket == "flag-bucket"  # flag over stack
    assert s.kafka.partitions == 9  # file, as an int
    assert s.kafka.topics.events == "env.events"  # env, two levels deep
    assert s.kafka.topics.chained == "stack.chained"  # its sibling, from the stack
    assert s.kafka.bootstrap == "stack:1"
    assert s.database_url == "postgresql://stack/db"


def test_env_values_are_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALTRAIL_KAFKA__PARTITIONS", "12")
    monkeypatch.setenv("SEALTRAIL_STREAM__BATCH_WAIT_S", "0.5")
    monkeypatch.setenv("SEALTRAIL_RETENTION__MODE", "GOVERNANCE")
    monkeypatch.setenv("SEALTRAIL_S3__SECRET_KEY", "hunter2")
    s = load_settings()
    assert s.kafka.partitions == 12
    assert s.stream.batch_wait_s == 0.5
    assert s.retention.mode == "GOVERNANCE"
    assert s.s3.secret_key is not None and s.s3.secret_key.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(s)


def test_none_flags_do_not_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flag the user did not pass arrives as None and must not mask the layers below."""
    monkeypatch.setenv("SEALTRAIL_DATABASE_URL", "postgresql://env/db")
    s = load_settings({"database_url": None, "home": None})
    assert s.database_url == "postgresql://env/db"
    assert s.home == Path(".sealtrail")


def test_stack_state_read_from_resolved_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file_home, env_home, flag_home = tmp_path / "file-home", tmp_path / "env-home", tmp_path / "flag-home"
    write_stack(file_home, kafka_bootstrap="from-file-home:1")
    write_stack(env_home, kafka_bootstrap="from-env-home:1")
    write_stack(flag_home, kafka_bootstrap="from-flag-home:1")
    config_file = write_toml(tmp_path / "c.toml", f'home = "{file_home}"\n')
    assert load_settings(None, config_file).kafka.bootstrap == "from-file-home:1"
    assert load_settings(None, config_file).home == file_home
    monkeypatch.setenv("SEALTRAIL_HOME", str(env_home))
    assert load_settings(None, config_file).kafka.bootstrap == "from-env-home:1"
    s = load_settings({"home": str(flag_home)}, config_file)
    assert s.kafka.bootstrap == "from-flag-home:1"
    assert s.home == flag_home
    assert s.signing_key_path == flag_home / "keys" / "signing.pem"


def test_default_home_is_relative_to_cwd(tmp_path: Path) -> None:
    write_stack(Path(".sealtrail"), kafka_bootstrap="cwd-stack:1")
    assert load_settings().kafka.bootstrap == "cwd-stack:1"


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    by_env = write_toml(tmp_path / "env.toml", '[sink]\nflush_records = 7\n')
    by_flag = write_toml(tmp_path / "flag.toml", '[sink]\nflush_records = 8\n')
    monkeypatch.setenv("SEALTRAIL_CONFIG", str(by_env))
    assert load_settings().sink.flush_records == 7
    assert load_settings(None, by_flag).sink.flush_records == 8  # --config wins over SEALTRAIL_CONFIG


def test_signing_key_file_setting(tmp_path: Path) -> None:
    s = load_settings({"keys": {"signing_key_file": str(tmp_path / "k.pem")}})
    assert s.signing_key_path == tmp_path / "k.pem"


# --- errors name the setting --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "setting"),
    [
        ("SEALTRAIL_KAFKA__PARTITIONS", "0", "kafka.partitions"),
        ("SEALTRAIL_KAFKA__PARTITIONS", "many", "kafka.partitions"),
        ("SEALTRAIL_RETENTION__MODE", "LOOSE", "retention.mode"),
        ("SEALTRAIL_RETENTION__DAYS", "0", "retention.days"),
        ("SEALTRAIL_STREAM__BATCH_WAIT_S", "0", "stream.batch_wait_s"),
        ("SEALTRAIL_STREAM__MAX_EVENT_BYTES", "10", "stream.max_event_bytes"),
    ],
)
def test_invalid_env_value_names_the_setting(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, setting: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert e.value.setting == setting
    assert str(e.value).startswith(f"{setting}: ")


def test_invalid_file_value_names_the_setting(tmp_path: Path) -> None:
    config_file = write_toml(tmp_path / "c.toml", "[sink]\nflush_records = 0\n")
    with pytest.raises(ConfigError) as e:
        load_settings(None, config_file)
    assert e.value.setting == "sink.flush_records"


def test_unknown_nested_key_in_file_is_an_error(tmp_path: Path) -> None:
    config_file = write_toml(tmp_path / "c.toml", "[kafka]\nbootsrap = 'typo:1'\n")
    with pytest.raises(ConfigError) as e:
        load_settings(None, config_file)
    assert e.value.setting == "kafka.bootsrap"


def test_invalid_flag_names_the_setting() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings({"kafka": {"partitions": -1}})
    assert e.value.setting == "kafka.partitions"


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(None, tmp_path / "absent.toml")
    assert e.value.setting == "--config"


def test_invalid_toml(tmp_path: Path) -> None:
    config_file = write_toml(tmp_path / "c.toml", "[kafka\n")
    with pytest.raises(ConfigError) as e:
        load_settings(None, config_file)
    assert e.value.setting == str(config_file)


def test_a_misspelt_section_in_a_file_is_refused(tmp_path: Path) -> None:
    """[strem] would otherwise leave every stream default on without a word."""
    config_file = write_toml(tmp_path / "c.toml", "[strem]\ndedupe_window = 10\n")
    with pytest.raises(ConfigError) as e:
        load_settings(None, config_file)
    assert e.value.setting == "strem" and "stream" in e.value.problem


def test_unrelated_environment_variables_still_do_not_stop_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALTRAIL_SOMETHING_ELSE", "1")
    assert load_settings().stream.dedupe_window > 0


def test_unreadable_stack_state(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / STACK_STATE_FILE).write_text('{"kafka_bootstrap": ')
    with pytest.raises(ConfigError) as e:
        load_settings({"home": str(home)})
    assert e.value.setting == str(home / STACK_STATE_FILE)


def test_nothing_configured_is_refused_before_any_service_is_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No stack state and no setting that locates Kafka or S3: require() names what to set (config.Settings.require)."""
    for name in [n for n in os.environ if n.startswith("SEALTRAIL_")]:
        monkeypatch.delenv(name)
    s = load_settings({"home": str(tmp_path)})
    for service, setting in (("kafka", "kafka.bootstrap"), ("s3", "s3.bucket")):
        with pytest.raises(ConfigError) as e:
            s.require(service)  # type: ignore[arg-type]
        assert e.value.setting == setting and "sealtrail up" in e.value.problem
    monkeypatch.setenv("SEALTRAIL_KAFKA__BOOTSTRAP", "127.0.0.1:9092")  # the default, but said on purpose
    load_settings({"home": str(tmp_path)}).require("kafka")
    load_settings({"home": str(tmp_path), "s3": {"region": "eu-west-1"}}).require("s3")
    Settings().require("kafka")  # built in code, not loaded: whoever built it chose
