"""The few exceptions sealtrail raises, under one base.

Third-party errors (confluent-kafka, botocore, psycopg, OS errors) are mapped
onto this tree at the edge that calls them, so the CLI can turn any of them into
a message and an exit code in one place::

    SealtrailError (exit_code, diagnostics())        Transient (mixin: retry with backoff)
    ├── ConfigError            bad flag, file or environment; names the setting
    ├── StackError             the embedded stack: already running, not running, port taken
    ├── ServiceUnavailable     Kafka / S3 / PostgreSQL unreachable (+Transient)
    ├── InvalidEventError      carries the reason and the field
    ├── SpoolFullError         the producer's local spool is at its bound (configurable: block or raise)
    ├── SpoolError             the spool file is unusable (locked by another process, corrupt, unwritable)
    ├── CaptureError           PostgreSQL change capture: not installed, table missing, relay already running
    ├── ChainForkError         the bucket's head and audit.chained disagree: the stream seals nothing on that chain
    ├── KeyNotFoundError       no public key for a key id
    ├── NotProvableError       no inclusion proof for an event: not in the trail, or no digest lists a root (exit 1)
    └── ApiError               an expected failure of a `sealtrail serve` call: a problem document with its status

Tampering found by verify is not an exception: it is a Finding value
(see sealtrail.evidence.findings), because a verifier must keep going and
report everything it found.
"""

from __future__ import annotations

from sealtrail.reasons import RejectReason


class Transient:
    """Marker: the operation may succeed if retried later."""


class SealtrailError(Exception):
    """Base of every error sealtrail raises on purpose."""

    exit_code = 2

    def diagnostics(self) -> str:
        return str(self)


class ConfigError(SealtrailError):
    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class StackError(SealtrailError):
    """The embedded stack cannot do what was asked (already up, not up, port in use)."""


class ServiceUnavailable(SealtrailError, Transient):
    def __init__(self, service: str, detail: str) -> None:
        super().__init__(f"{service} unavailable: {detail}")
        self.service = service
        self.detail = detail


class InvalidEventError(SealtrailError):
    """Why an event is not one, in the stream's vocabulary (sealtrail.reasons): the SDK and the trail's
    rejected rows name the same bad event alike. An unknown reason is a programming error (ValueError)."""

    def __init__(self, reason: str, field: str | None = None, detail: str = "") -> None:
        reason = RejectReason(reason)
        where = f" at {field}" if field else ""
        super().__init__(f"{reason}{where}: {detail}" if detail else f"{reason}{where}")
        self.reason: RejectReason = reason
        self.field = field
        self.detail = detail


class ChainForkError(SealtrailError):
    """The bucket and audit.chained disagree about a chain: sealing on it would fork it."""

    def __init__(self, chain: str, bucket: str, chained: str) -> None:
        super().__init__(f"chain {chain} forks: the bucket's head is {bucket}, audit.chained holds {chained}; "
                         "nothing is sealed on it until an operator has looked")
        self.chain, self.bucket, self.chained = chain, bucket, chained


class KeyNotFoundError(SealtrailError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"no public key for key id {key_id!r}")
        self.key_id = key_id


class NotProvableError(SealtrailError):
    """`sealtrail prove` found nothing to prove: an answer about the trail (exit 1), not a usage error."""

    exit_code = 1


class SpoolFullError(SealtrailError):
    """Raised instead of ever dropping an event: the spool holds ``max_bytes`` and Kafka is still away."""

    def __init__(self, path: str, used_bytes: int, max_bytes: int, waited_s: float | None = None) -> None:
        waited = f" after waiting {waited_s:.1f}s" if waited_s is not None else ""
        super().__init__(
            f"spool {path} is full ({used_bytes} of {max_bytes} bytes){waited}: Kafka has been unreachable; "
            "raise spool.max_bytes or restore the broker"
        )
        self.path, self.used_bytes, self.max_bytes = path, used_bytes, max_bytes


class SpoolError(SealtrailError):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"spool {path}: {problem}")
        self.path, self.problem = path, problem


class CaptureError(SealtrailError):
    """PostgreSQL change capture cannot do what was asked; names the table, schema or relay."""
