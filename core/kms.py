"""Signing with an Ed25519 key held in AWS KMS: the private key never leaves the HSM.

KMS keys of spec ECC_NIST_EDWARDS25519 sign with ED25519_SHA_512 (pure
Ed25519), so their signatures verify with the same public-key code as a local
key. Only signed heads and digests are signed (two calls per flush, per chain),
never each event, and both messages are well under KMS's 4 KiB limit.
The key id is derived from the public key, as for a local key, so records name
a key that any verifier can look up without AWS access.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sealtrail.errors import ConfigError, ServiceUnavailable
from sealtrail.signing import key_id_of, public_pem

SIGNING_ALGORITHM = "ED25519_SHA_512"


class KmsSigner:
    def __init__(self, key: str, client: Any) -> None:
        self.kms_key = key
        self._client = client
        try:
            der = client.get_public_key(KeyId=key)["PublicKey"]
        except (ClientError, BotoCoreError) as e:
            raise ServiceUnavailable("kms", f"GetPublicKey {key}: {e}") from e
        public = serialization.load_der_public_key(der)
        if not isinstance(public, Ed25519PublicKey):
            raise ConfigError("keys.kms_key_id", f"{key} is not an ECC_NIST_EDWARDS25519 key")
        self.key_id = key_id_of(public)
        self.public_pem = public_pem(public)

    def sign(self, message: bytes) -> bytes:
        try:
            response = self._client.sign(
                KeyId=self.kms_key, Message=message, MessageType="RAW", SigningAlgorithm=SIGNING_ALGORITHM
            )
        except (ClientError, BotoCoreError) as e:
            raise ServiceUnavailable("kms", f"Sign with {self.kms_key}: {e}") from e
        return response["Signature"]

    def current(self) -> KmsSigner:
        return self
