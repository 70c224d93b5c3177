"""Fresh Ed25519 signing keys for tests: a new one per call, so no test trusts another's key by accident."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sealtrail.signing import Signer, key_id_of


def new_signer() -> Signer:
    """A signer with a new key, its key id derived as the workers derive it."""
    key = Ed25519PrivateKey.generate()
    return Signer(key, key_id_of(key.public_key()))


def private_pem() -> bytes:
    """A new private key as the PKCS#8 PEM an operator's key file holds."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
