"""Ed25519 signatures over chain heads, checkable with public keys alone.

Signing every event would cap the stream (about 48,000 signatures/s) and the
verifier (about 15,000 checks/s); signing the head at the end of each sealed
batch covers every earlier record through the hash chain at a tiny fraction of
the cost. A key id is derived from the public key, so a record names the key
that can check it and rotation never reuses an id.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sealtrail.errors import ConfigError, KeyNotFoundError

if TYPE_CHECKING:  # verify's worker processes import this module: no settings for them
    from sealtrail.config import Settings

HEAD_DOMAIN = b"sealtrail.head.v1"


def head_message(chain: str, seq: int, sealed_at: str, head_hash: bytes) -> bytes:
    """What a head signature covers; domain-separated so it cannot be replayed elsewhere."""
    return b"|".join((HEAD_DOMAIN, chain.encode(), str(seq).encode(), sealed_at.encode(), head_hash))


def key_id_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519-" + hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class Signer:
    private: Ed25519PrivateKey
    key_id: str

    @classmethod
    def from_pem(cls, pem: bytes, origin: str = "signing key") -> Signer:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as e:
            raise ConfigError(origin, f"not a PEM private key: {e}") from e
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(origin, "the signing key must be Ed25519")
        return cls(key, key_id_of(key.public_key()))

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)

    def current(self) -> Signer:
        """A fixed key is its own KeySource."""
        return self

    @property
    def public_pem(self) -> bytes:
        return public_pem(self.private.public_key())


def signer_from_settings(settings: Settings) -> Signer:
    """The signing key: AWS KMS, or PEM from settings (e.g. the environment), else the key file."""
    if settings.keys.kms_key_id is not None:
        import boto3

        from sealtrail.kms import KmsSigner

        client = boto3.client("kms", region_name=settings.keys.kms_region or settings.s3.region)
        return KmsSigner(settings.keys.kms_key_id, client)  # type: ignore[return-value]
    if settings.keys.signing_key is not None:
        return Signer.from_pem(settings.keys.signing_key.get_secret_value().encode(), "keys.signing_key")
    return load_or_create_signer(settings.signing_key_path, settings.public_keys_dir)


def existing_signer(settings: Settings) -> Signer | None:
    """signer_from_settings, or None where that would have to create the key file first: for commands
    that only look (`keys list`, `doctor`) and must leave no key behind."""
    keys = settings.keys
    if keys.kms_key_id is None and keys.signing_key is None and not settings.signing_key_path.exists():
        return None
    return signer_from_settings(settings)


def _new_private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _key_dir(path: Path) -> None:
    """A folder of keys: created 0700, so nobody else can list or replace what is in it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _write_private(path: Path, pem: bytes, *, replace: bool) -> None:
    """Write a private key file 0600 from its first byte; without replace, the first writer wins when workers race."""
    _key_dir(path.parent)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # left by a crashed process with this pid: O_EXCL below must create it anew
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        if replace:
            tmp.replace(path)
        else:
            os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def load_or_create_signer(path: Path, public_dir: Path) -> Signer:
    """Load the key file, creating a new key (and keeping its public half) on first use."""
    if not path.exists():
        _write_private(path, _new_private_pem(), replace=False)
    signer = Signer.from_pem(path.read_bytes(), origin=str(path))
    _key_dir(public_dir)
    (public_dir / f"{signer.key_id}.pem").write_bytes(signer.public_pem)
    return signer


def rotate_key(path: Path, public_dir: Path) -> tuple[str | None, Signer]:
    """Replace the signing key with a new one; returns the old key id and the new signer.

    The old private key is not kept: what it signed stays verifiable through its
    public key (kept in public_dir and in the bucket), and nobody can sign
    anything new with it. Its last signature is the rotation statement naming
    the new key (public_dir/rotations/), which tells verify the change of key
    along the chains was this rotation and not a key planted in the bucket.
    Running workers pick the new key up at their next batch (KeySource).
    """
    old = Signer.from_pem(path.read_bytes(), origin=str(path)) if path.exists() else None
    if old is not None:
        _key_dir(public_dir)
        (public_dir / f"{old.key_id}.pem").write_bytes(old.public_pem)
    _write_private(path, _new_private_pem(), replace=True)
    new = load_or_create_signer(path, public_dir)
    if old is not None:  # the old key's last signature, kept next to the public keys until it is published
        _key_dir(public_dir / "rotations")
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        rotation_file(public_dir, old.key_id, new.key_id).write_bytes(rotation_statement(old, new.key_id, at))
    return (old.key_id if old is not None else None), new


def rotation_file(public_dir: Path, old: str, new: str) -> Path:
    return public_dir / "rotations" / f"{old}-{new}.json"


class KeySource:
    """The current signer, re-read when the key file changes, so rotation needs no restart.

    A stat per call, at most once a second: workers call it once per batch.
    """

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._signer = signer_from_settings(settings)
        self._stamp = self._file_stamp()
        self._checked = clock()

    def _file_stamp(self) -> tuple[int, int] | None:
        if self._settings.keys.signing_key is not None or self._settings.keys.kms_key_id is not None:
            return None
        try:
            st = self._settings.signing_key_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_ino)

    def current(self) -> Signer:
        now = self._clock()
        if now - self._checked >= 1.0:
            self._checked = now
            stamp = self._file_stamp()
            if stamp is not None and stamp != self._stamp:
                self._stamp = stamp
                self._signer = signer_from_settings(self._settings)
        return self._signer


ROTATION_FORMAT = "sealtrail.key-rotation/1"


def rotation_message(old: str, new: str, at: str) -> bytes:
    return f"{ROTATION_FORMAT}\n{old}\n{new}\n{at}".encode()


def rotation_statement(old: Signer, new_key_id: str, at: str) -> bytes:
    """The old key's signature that the new key follows it: what tells a rotation from a key planted in the
    bucket (only the holder of the old private key can write it, and `keys rotate` does so before the old
    key is destroyed)."""
    doc = {"format": ROTATION_FORMAT, "old": old.key_id, "new": new_key_id, "at": at}
    doc["signature"] = old.sign(rotation_message(old.key_id, new_key_id, at)).hex()
    return orjson.dumps(doc)


def read_rotation(body: bytes, keys: PublicKeys) -> tuple[str, str]:
    """(old, new) of a rotation statement whose signature verifies with the old key; ValueError otherwise."""
    try:
        doc = orjson.loads(body)
        if not isinstance(doc, dict) or doc.get("format") != ROTATION_FORMAT:
            raise ValueError("not a key rotation statement")
        old, new, at, sig = doc["old"], doc["new"], doc["at"], bytes.fromhex(doc["signature"])
        if not all(isinstance(v, str) for v in (old, new, at)):
            raise ValueError("old, new and at must be strings")
        if not keys.verify(old, sig, rotation_message(old, new, at)):
            raise ValueError(f"its signature does not verify with {old}")
    except KeyNotFoundError as e:
        raise ValueError(f"signed with unknown key {e.key_id}") from e
    except (KeyError, TypeError, orjson.JSONDecodeError) as e:
        raise ValueError(f"malformed: {e}") from e
    return old, new


class PublicKeys:
    """Key id -> public key; what a verifier needs, and nothing secret."""

    def __init__(self, keys: dict[str, Ed25519PublicKey] | None = None) -> None:
        self._keys = dict(keys or {})

    def add_pem(self, pem: bytes) -> str:
        key = serialization.load_pem_public_key(pem)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        kid = key_id_of(key)
        self._keys[kid] = key
        return kid

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def verify(self, key_id: str, signature: bytes, message: bytes) -> bool:
        key = self._keys.get(key_id)
        if key is None:
            raise KeyNotFoundError(key_id)
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False
        return True
