"""sealtrail.signing: head signatures a verifier checks with public keys alone."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sealtrail.errors import ConfigError, KeyNotFoundError
from sealtrail.signing import (
    HEAD_DOMAIN,
    PublicKeys,
    Signer,
    head_message,
    key_id_of,
    load_or_create_signer,
    public_pem,
)


def pem_of(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def signer_from_seed(seed: int) -> Signer:
    return Signer.from_pem(pem_of(Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)))


MESSAGE = head_message("p003", 41, "2026-11-01T12:00:00.250000Z", bytes(range(32)))


def test_sign_and_verify() -> None:
    signer = signer_from_seed(1)
    keys = PublicKeys()
    assert keys.add_pem(signer.public_pem) == signer.key_id
    assert signer.key_id in keys and len(keys) == 1
    sig = signer.sign(MESSAGE)
    assert len(sig) == 64
    assert keys.verify(signer.key_id, sig, MESSAGE) is True


@pytest.mark.parametrize(
    "tampered",
    [
        pytest.param(head_message("p004", 41, "2026-11-01T12:00:00.250000Z", bytes(range(32))), id="other-chain"),
        pytest.param(head_message("p003", 42, "2026-11-01T12:00:00.250000Z", bytes(range(32))), id="other-seq"),
        pytest.param(head_message("p003", 41, "2026-11-01T12:00:00.250001Z", bytes(range(32))), id="other-sealed_at"),
        pytest.param(head_message("p003", 41, "2026-11-01T12:00:00.250000Z", bytes(32)), id="other-head-hash"),
    ],
)
def test_signature_covers_each_part_of_the_head(tampered: bytes) -> None:
    signer = signer_from_seed(1)
    keys = PublicKeys()
    keys.add_pem(signer.public_pem)
    assert keys.verify(signer.key_id, signer.sign(MESSAGE), tampered) is False


def test_head_message_is_domain_separated() -> None:
    assert MESSAGE.startswith(HEAD_DOMAIN + b"|p003|41|")
    assert MESSAGE.endswith(bytes(range(32)))


def test_signature_by_another_key_fails() -> None:
    alice, mallory = signer_from_seed(1), signer_from_seed(2)
    keys = PublicKeys()
    keys.add_pem(alice.public_pem)
    keys.add_pem(mallory.public_pem)
    forged = mallory.sign(MESSAGE)
    assert keys.verify(alice.key_id, forged, MESSAGE) is False
    assert keys.verify(mallory.key_id, forged, MESSAGE) is True


def test_flipped_signature_bit_fails() -> None:
    signer = signer_from_seed(1)
    keys = PublicKeys()
    keys.add_pem(signer.public_pem)
    sig = bytearray(signer.sign(MESSAGE))
    sig[10] ^= 0x01
    assert keys.verify(signer.key_id, bytes(sig), MESSAGE) is False


def test_unknown_key_id_raises() -> None:
    signer = signer_from_seed(1)
    keys = PublicKeys()
    keys.add_pem(signer_from_seed(2).public_pem)
    with pytest.raises(KeyNotFoundError) as e:
        keys.verify(signer.key_id, signer.sign(MESSAGE), MESSAGE)
    assert e.value.key_id == signer.key_id


def test_key_id_derived_from_public_key() -> None:
    signer = signer_from_seed(1)
    public = signer.private.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert signer.key_id == "ed25519-" + hashlib.sha256(raw).hexdigest()[:16]
    assert key_id_of(public) == signer.key_id
    # stable: the same key always has the same id, a different key a different one
    assert signer_from_seed(1).key_id == signer.key_id
    assert signer_from_seed(2).key_id != signer.key_id
    assert PublicKeys().add_pem(public_pem(public)) == signer.key_id


def test_load_or_create_creates_once_then_reloads(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "signing.pem"
    public_dir = tmp_path / "keys" / "public"
    first = load_or_create_signer(key_file, public_dir)
    assert key_file.exists()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert not key_file.with_suffix(".tmp").exists()
    published = public_dir / f"{first.key_id}.pem"
    assert published.read_bytes() == first.public_pem
    pem_before = key_file.read_bytes()

    second = load_or_create_signer(key_file, public_dir)
    assert second.key_id == first.key_id
    assert key_file.read_bytes() == pem_before
    keys = PublicKeys()
    keys.add_pem(published.read_bytes())
    assert keys.verify(first.key_id, second.sign(MESSAGE), MESSAGE)
    assert sorted(p.name for p in public_dir.iterdir()) == [published.name]


def test_load_existing_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(pem_of(Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32)))
    signer = load_or_create_signer(key_file, tmp_path / "public")
    assert signer.key_id == signer_from_seed(7).key_id
    assert (tmp_path / "public" / f"{signer.key_id}.pem").exists()


@pytest.mark.parametrize(
    "pem",
    [
        pytest.param(pem_of(ec.generate_private_key(ec.SECP256R1())), id="ecdsa-p256"),
        pytest.param(pem_of(rsa.generate_private_key(public_exponent=65537, key_size=1024)), id="rsa"),
        pytest.param(b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n", id="garbage-pem"),
        pytest.param(b"", id="empty"),
        pytest.param(
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
            ),
            id="encrypted",
        ),
    ],
)
def test_non_ed25519_key_file_is_config_error(tmp_path: Path, pem: bytes) -> None:
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(pem)
    with pytest.raises(ConfigError) as e:
        load_or_create_signer(key_file, tmp_path / "public")
    assert e.value.setting == str(key_file)
    with pytest.raises(ConfigError):
        Signer.from_pem(pem)


def test_rotate_key_replaces_the_key_and_keeps_the_old_public_half(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sealtrail.signing import load_or_create_signer, rotate_key

    path, public = tmp_path / "signing.pem", tmp_path / "public"
    before = load_or_create_signer(path, public)
    old, after = rotate_key(path, public)
    assert old == before.key_id and after.key_id != before.key_id
    assert load_or_create_signer(path, public).key_id == after.key_id
    assert {p.stem for p in public.glob("*.pem")} == {before.key_id, after.key_id}
    assert (path.stat().st_mode & 0o777) == 0o600
    # the old key's last signature names the new one; nobody else can write it
    from sealtrail.signing import PublicKeys, read_rotation, rotation_file

    statement = rotation_file(public, before.key_id, after.key_id).read_bytes()
    keys = PublicKeys()
    keys.add_pem(before.public_pem)
    assert read_rotation(statement, keys) == (before.key_id, after.key_id)
    forged = statement.replace(after.key_id.encode(), load_or_create_signer(tmp_path / "m.pem", tmp_path / "m").key_id.encode())
    with pytest.raises(ValueError, match="does not verify"):
        read_rotation(forged, keys)


def test_key_source_follows_the_key_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sealtrail.config import load_settings
    from sealtrail.signing import KeySource, rotate_key

    settings = load_settings({"home": str(tmp_path)})
    now = [0.0]
    source = KeySource(settings, clock=lambda: now[0])
    first = source.current().key_id
    _, new = rotate_key(settings.signing_key_path, settings.public_keys_dir)
    assert source.current().key_id == first  # checked at most once a second
    now[0] = 1.5
    assert source.current().key_id == new.key_id


def test_a_private_key_is_never_readable_by_others_not_even_before_its_rename(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """L6: the key was written under the umask (0644) and only then chmod'ed; its folder was 0755."""
    import sealtrail.signing as signing

    modes: list[int] = []
    link, replace = os.link, Path.replace

    def watch_link(src, dst):  # type: ignore[no-untyped-def]
        modes.append(stat.S_IMODE(os.stat(src).st_mode))
        return link(src, dst)

    def watch_replace(self, target):  # type: ignore[no-untyped-def]
        modes.append(stat.S_IMODE(os.stat(self).st_mode))
        return replace(self, target)

    monkeypatch.setattr(signing.os, "link", watch_link)
    monkeypatch.setattr(Path, "replace", watch_replace)
    old = os.umask(0o022)
    try:
        key_file, public = tmp_path / "home" / "keys" / "signing.pem", tmp_path / "home" / "keys" / "public"
        signing.load_or_create_signer(key_file, public)
        signing.rotate_key(key_file, public)
    finally:
        os.umask(old)
    assert modes == [0o600, 0o600]  # the temporary file, at creation and at rotation
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(public.stat().st_mode) == 0o700
