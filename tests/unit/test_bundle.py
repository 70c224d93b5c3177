"""DirectoryStore: an exported bundle read through the store seam verify uses."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sealtrail.errors import ConfigError
from sealtrail.evidence.bundle import DirectoryStore
from sealtrail.store import sha256_b64


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "trail/data/dt=2024-01-01/chain=p000").mkdir(parents=True)
    (tmp_path / "trail/keys").mkdir(parents=True)
    (tmp_path / "trail/data/dt=2024-01-01/chain=p000/a.parquet").write_bytes(b"one")
    (tmp_path / "trail/data/dt=2024-01-01/chain=p000/a.parquet.lock.json").write_text(json.dumps({
        "mode": "COMPLIANCE", "retain_until": "2031-01-01T00:00:00Z", "last_modified": "2024-01-01T00:00:05Z",
    }))
    (tmp_path / "trail/data/dt=2024-01-01/chain=p000/b.parquet").write_bytes(b"two")
    (tmp_path / "trail/keys/k.pem").write_bytes(b"pem")
    return tmp_path


def test_keys_are_files_under_the_prefix_without_sidecars(root: Path) -> None:
    store = DirectoryStore(root)
    assert list(store.keys("trail/data/")) == [
        "trail/data/dt=2024-01-01/chain=p000/a.parquet",
        "trail/data/dt=2024-01-01/chain=p000/b.parquet",
    ]
    assert list(store.keys("trail/keys/")) == ["trail/keys/k.pem"]
    assert list(store.keys("other/")) == []


def test_each_file_is_one_latest_version(root: Path) -> None:
    [a, b] = DirectoryStore(root).versions("trail/data/")
    assert (a.version_id, a.is_latest, a.is_delete_marker, a.size) == ("1", True, False, 3)
    assert a.last_modified == datetime(2024, 1, 1, 0, 0, 5, tzinfo=timezone.utc)  # from the sidecar
    assert b.last_modified.tzinfo is not None  # from the file


def test_get_reads_lock_state_from_the_sidecar(root: Path) -> None:
    store = DirectoryStore(root)
    a = store.get("trail/data/dt=2024-01-01/chain=p000/a.parquet", "1")
    assert (a.body, a.version_id, a.lock_mode) == (b"one", "1", "COMPLIANCE")
    assert a.retain_until == datetime(2031, 1, 1, tzinfo=timezone.utc)
    assert a.checksum_sha256 == sha256_b64(b"one")
    b = store.get("trail/data/dt=2024-01-01/chain=p000/b.parquet")
    assert (b.lock_mode, b.retain_until) == (None, None)


def test_checksum_recorded_at_export_wins(root: Path) -> None:
    side = root / "trail/data/dt=2024-01-01/chain=p000/a.parquet.lock.json"
    side.write_text(json.dumps({"checksum_sha256": sha256_b64(b"original")}))
    got = DirectoryStore(root).get("trail/data/dt=2024-01-01/chain=p000/a.parquet")
    assert got.checksum_sha256 == sha256_b64(b"original") != sha256_b64(got.body)


def test_errors_are_config_errors(root: Path) -> None:
    store = DirectoryStore(root)
    with pytest.raises(ConfigError):
        store.get("../outside")
    with pytest.raises(ConfigError):
        store.get("trail/keys/k.pem", "7")
    with pytest.raises(ConfigError):
        store.get("trail/keys/missing.pem")
    with pytest.raises(ConfigError):
        DirectoryStore(root / "nope")


UNTIL = datetime(2031, 1, 1, tzinfo=timezone.utc)


def test_both_stores_implement_the_store_protocol(tmp_path: Path) -> None:
    from sealtrail.config import Settings
    from sealtrail.sinks.s3 import S3Store
    from sealtrail.store import ObjectStore, WritableStore

    s3 = S3Store(Settings())  # builds a client; no request is sent
    assert isinstance(s3, WritableStore) and s3.describe() == f"s3://{Settings().s3.bucket}"
    assert isinstance(DirectoryStore(tmp_path), ObjectStore)


def test_a_writable_folder_takes_each_key_once_with_its_lock(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path, writable=True)
    key = "trail/data/dt=2024-01-01/chain=p000/c.parquet"
    assert store.head(key) is None
    assert store.put_locked(key, b"three", "COMPLIANCE", UNTIL) == "1"
    got = store.get(key)
    assert (got.body, got.lock_mode, got.retain_until, got.checksum_sha256) == (
        b"three", "COMPLIANCE", UNTIL, sha256_b64(b"three"))
    head = store.head(key)
    assert head is not None and (head.version_id, head.size, head.checksum_sha256) == ("1", 5, sha256_b64(b"three"))
    assert [v.key for v in store.versions("trail/")] == [key]
    with pytest.raises(ConfigError, match="written once"):
        store.put_locked(key, b"forged", "COMPLIANCE", UNTIL)
    assert store.get(key).body == b"three"
    with pytest.raises(ConfigError, match="outside the bundle"):
        store.put_locked("../escape.parquet", b"x", "COMPLIANCE", UNTIL)


def test_a_bundle_is_read_only_by_default(root: Path) -> None:
    with pytest.raises(ConfigError, match="read-only"):
        DirectoryStore(root).put_locked("trail/data/new.parquet", b"x", "COMPLIANCE", UNTIL)
    assert not (root / "trail/data/new.parquet").exists()


def test_a_public_key_is_published_locked_and_once(tmp_path: Path) -> None:

    from sealtrail.config import S3Settings, Settings
    from sealtrail.layout import public_key_key
    from sealtrail.publication import publish_public_key
    from tests.support.signers import new_signer

    signer = new_signer()
    settings = Settings(s3=S3Settings(prefix="trail/"))
    store = DirectoryStore(tmp_path, writable=True)
    publish_public_key(store, settings, signer)
    publish_public_key(store, settings, signer)  # already there: left as it is, not a second write
    stored = store.get(public_key_key("trail/", signer.key_id))
    assert stored.body == signer.public_pem and stored.lock_mode == "COMPLIANCE"
    assert stored.retain_until is not None and stored.retain_until > datetime.now(timezone.utc)
    assert list(store.keys("")) == [public_key_key("trail/", signer.key_id)]
