"""Publishing what verification needs and nothing secret: public keys and key rotation statements.

Both are written into the trail's store under Object Lock, as long as the retention policy's longest
period, before anything they vouch for: a worker publishes its public key before it signs (verify
flags a signature older than its key's publication, evidence/key_history.py), and `keys rotate`
publishes the old key's statement naming the new one. Each key is written once; a second run finds it
there and leaves it as it is.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sealtrail.config import Settings
from sealtrail.layout import public_key_key, rotation_key
from sealtrail.retention import policy_for
from sealtrail.signing import Signer, rotation_file
from sealtrail.store import WritableStore


def _put_once(store: WritableStore, settings: Settings, key: str, body: bytes) -> None:
    if store.head(key) is None:
        lock = policy_for(settings).longest_lock(datetime.now(timezone.utc))
        store.put_locked(key, body, lock.mode, lock.retain_until)


def publish_public_key(store: WritableStore, settings: Settings, signer: Signer) -> None:
    """Put the signer's public key in the store, locked, unless it is there already."""
    _put_once(store, settings, public_key_key(settings.s3.prefix, signer.key_id), signer.public_pem)


def publish_rotation(store: WritableStore, settings: Settings, old: str, new: str) -> None:
    """Put the old key's signed statement that the new key follows it in the store, locked as the keys are."""
    body = rotation_file(settings.public_keys_dir, old, new).read_bytes()
    _put_once(store, settings, rotation_key(settings.s3.prefix, old, new), body)
