"""`sealtrail doctor`: the live deployment, checked against what the trail's guarantees need.

Each guarantee rests on something outside sealtrail's code: topics that keep
what they acknowledged, a bucket whose locks nobody can lift, keys that sign and
are published before they do, clocks that agree, and anchors kept outside the
bucket. A deployment can get any of these wrong and still run, so the doctor
asks the real services, with the settings in effect, and says per check pass,
warn or fail and what to change. It writes one thing: a small probe object,
locked for a day, on which it tries what the trail's credentials must not be
able to do (delete a version, shorten or bypass a retention).

The checks reuse the commands that own each part (`topics check`,
`bucket init --check`), so the doctor cannot drift from them. Pure verdicts
over what was read; the reading is each area's function, and one area that
cannot be reached is a failed check, not the end of the run.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from sealtrail.config import Settings
from sealtrail.errors import ConfigError, SealtrailError, ServiceUnavailable
from sealtrail.evidence.anchor import digest_sha256, latest_anchor, latest_digests
from sealtrail.kafka import make_producer
from sealtrail.layout import public_key_key
from sealtrail.retention import policy_for
from sealtrail.signing import existing_signer
from sealtrail.sinks.bucket import Status, init_bucket
from sealtrail.sinks.s3 import S3Store, StoreRefused
from sealtrail.topics import check

PROBE = ".sealtrail-probe/doctor"
PROBE_HOURS = 24
SKEW_WARN_S = 2.0  # sealed_at and the heads' times order evidence; seconds apart are already confusing
SKEW_FAIL_S = 60.0  # a minute puts events in the wrong dt partition around midnight and misdates locks
ANCHOR_AGE = timedelta(days=2)


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Check:
    area: str
    name: str
    verdict: Verdict
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


def _passed(area: str, name: str, detail: str) -> Check:
    return Check(area, name, Verdict.PASS, detail)


# --- topics --------------------------------------------------------------------------------------


def topic_checks(settings: Settings) -> list[Check]:
    """`sealtrail topics check`, one line per topic and problem."""
    report = check(settings)
    out: list[Check] = []
    for spec in report.specs:
        found = report.described.get(spec.name)
        problems, unchecked = report.for_topic(spec.name)
        for p in problems:
            verdict = Verdict.FAIL if p.severity.value == "loss" else Verdict.WARN
            out.append(Check("topics", f"{spec.name} {p.key}", verdict, p.message, p.fix))
        if unchecked:
            out.append(Check("topics", f"{spec.name} configs", Verdict.WARN,
                             f"the broker does not describe {', '.join(unchecked)}",
                             "check them with the cluster's own tools"))
        if found is not None and not problems:
            out.append(_passed("topics", spec.name,
                               f"{found.partitions} partition(s), {found.replication_factor} replica(s)"))
    return out


# --- the bucket ----------------------------------------------------------------------------------


def bucket_checks(settings: Settings, store: S3Store) -> list[Check]:
    """`sealtrail bucket init --check`: versioning, lock, default retention, encryption, lifecycle."""

    report = init_bucket(store, policy_for(settings), settings.s3.prefix, settings.s3.region, check_only=True)
    verdicts = {Status.OK: Verdict.PASS, Status.UNSUPPORTED: Verdict.WARN}
    fixes = {Status.OK: "", Status.UNSUPPORTED: "the store refuses this setting: use one that supports it (AWS S3)",
             Status.CONFLICT: "someone else's setting: change it by hand (sealtrail bucket init will not)"}
    return [Check("bucket", item.name, verdicts.get(item.status, Verdict.FAIL), item.detail,
                  fixes.get(item.status, "sealtrail bucket init"))
            for item in report.items]


def _refused(attempt: Callable[[], object]) -> str | None:
    """None when the store refused the attempt (a 4xx answer), else what it did instead: a store that
    fails (5xx) has not shown that it would refuse, so that is no pass."""
    try:
        attempt()
    except StoreRefused as e:
        return None if e.status is not None and 400 <= e.status < 500 else f"the store failed instead of refusing: {e.answer}"
    except ConfigError as e:
        if e.setting == "s3.access_key":  # AccessDenied: what a locked version must answer
            return None
        raise
    return "the store did it"


def lock_checks(settings: Settings, store: S3Store, now: datetime | None = None) -> list[Check]:
    """Write a probe locked as the trail's objects are (but for a day), and try to undo the lock.

    Each attempt must be refused. COMPLIANCE refuses them to everyone; GOVERNANCE to anyone without
    s3:BypassGovernanceRetention, which no sealtrail role has and the bucket policy denies.
    """
    mode = policy_for(settings).default.mode
    now = now or datetime.now(timezone.utc)
    key, until = f"{settings.s3.prefix}{PROBE}", now + timedelta(hours=PROBE_HOURS)
    try:
        version = store.put_locked(key, f"sealtrail doctor probe {now.isoformat()}\n".encode(), mode, until)
    except StoreRefused as e:
        return [Check("bucket", "probe-lock", Verdict.FAIL, f"a {mode}-locked PUT was refused: {e.answer}",
                      "the bucket needs Object Lock, which only a new bucket can get: sealtrail bucket init")]
    if version is None:
        return [Check("bucket", "probe-lock", Verdict.FAIL, "the store gave the probe no version id: "
                      "versioning is off, so an overwrite would replace trail objects", "sealtrail bucket init")]
    stored = store.get(key, version)
    if stored.lock_mode != mode or stored.retain_until is None:
        return [Check("bucket", "probe-lock", Verdict.FAIL, f"the probe was stored without its {mode} lock "
                      f"(mode {stored.lock_mode}, until {stored.retain_until})", "sealtrail bucket init")]
    bypass = {"BypassGovernanceRetention": True} if mode == "GOVERNANCE" else {}
    shorter = {"Mode": mode, "RetainUntilDate": now + timedelta(hours=1)}
    attempts = {
        "cannot-delete-version": lambda: store.call(f"DELETE {key}", "delete_object", Key=key, VersionId=version,
                                                    **bypass),
        "cannot-shorten-retention": lambda: store.call(f"PUT retention {key}", "put_object_retention", Key=key,
                                                       VersionId=version, Retention=shorter, **bypass),
    }
    out = [_passed("bucket", "probe-lock", f"a probe version took a {mode} lock until {until:%Y-%m-%d %H:%M}Z")]
    for name, attempt in attempts.items():
        done = _refused(attempt)
        what = name.removeprefix("cannot-").replace("-", " ")
        if done is None:
            out.append(_passed("bucket", name, f"{what}: refused on the probe, with the credentials in use"))
        else:
            out.append(Check("bucket", name, Verdict.FAIL, f"{what}: {done}, with the credentials in use",
                             "remove s3:DeleteObjectVersion, s3:PutObjectRetention beyond the trail's own writes "
                             "and s3:BypassGovernanceRetention from these credentials; use COMPLIANCE"))
    return out


# --- keys ----------------------------------------------------------------------------------------


def key_checks(settings: Settings, store: S3Store) -> list[Check]:
    """The signing key signs and verifies, its public key is in the bucket and locked, verifiers pin keys."""
    out: list[Check] = []
    keys = settings.keys
    signer = existing_signer(settings)
    if signer is None:
        return [Check("keys", "signing-key", Verdict.FAIL, f"no signing key: {settings.signing_key_path} does "
                      "not exist and neither keys.kms_key_id nor keys.signing_key is set",
                      "set keys.kms_key_id (AWS KMS) or keys.signing_key; the embedded stack's workers create "
                      "the file on their first start")]
    message = b"sealtrail doctor: a signature that verifies"
    public = load_pem_public_key(signer.public_pem)
    try:
        assert isinstance(public, Ed25519PublicKey)
        public.verify(signer.sign(message), message)
        out.append(_passed("keys", "signing-key", f"key {signer.key_id} signs, and its public key verifies it"))
    except (InvalidSignature, AssertionError):
        out.append(Check("keys", "signing-key", Verdict.FAIL, f"key {signer.key_id} signs what its public key "
                         "does not verify", "use an Ed25519 key (KMS: ECC_NIST_EDWARDS25519)"))
    key = public_key_key(settings.s3.prefix, signer.key_id)
    if store.head(key) is None:
        out.append(Check("keys", "public-key-published", Verdict.FAIL, f"{key} is not in the bucket",
                         "start the stream or sink once with this key: each publishes its key before signing"))
    else:
        stored = store.get(key)
        if stored.body.strip() != signer.public_pem.strip():
            out.append(Check("keys", "public-key-published", Verdict.FAIL, f"{key} holds another key",
                             "investigate: the file under keys/ must be this key's public half"))
        elif stored.lock_mode is None:
            out.append(Check("keys", "public-key-published", Verdict.WARN, f"{key} is published but not locked",
                             "sealtrail bucket init (default retention), so nobody can replace it"))
        else:
            out.append(_passed("keys", "public-key-published",
                               f"{key}, {stored.lock_mode} until {stored.retain_until:%Y-%m-%d}"))
    if keys.trusted:
        out.append(_passed("keys", "trusted-keys", f"{len(keys.trusted)} public key(s) pinned for verification"))
    else:
        out.append(Check("keys", "trusted-keys", Verdict.WARN, "verify trusts the keys it finds in the bucket, "
                         "which proves only that the trail agrees with whoever could write there",
                         "give verifiers keys.trusted (the public keys' PEM files, kept apart from the bucket)"))
    return out


# --- clocks --------------------------------------------------------------------------------------


def skew_verdict(area: str, what: str, skew_s: float) -> Check:
    """How far another clock is from ours, as a check."""
    detail = f"{what} is {abs(skew_s):.1f} s {'ahead of' if skew_s > 0 else 'behind'} this host"
    if abs(skew_s) > SKEW_FAIL_S:
        return Check(area, what, Verdict.FAIL, detail, "synchronise the hosts' clocks (NTP, chrony)")
    if abs(skew_s) > SKEW_WARN_S:
        return Check(area, what, Verdict.WARN, detail, "synchronise the hosts' clocks (NTP, chrony)")
    return _passed(area, what, detail)


def clock_checks(settings: Settings, store: S3Store, clock_topic: str | None = None) -> list[Check]:
    """This host's clock against S3's (its Date header, to the second) and, given a topic whose broker
    stamps records itself (message.timestamp.type=LogAppendTime), against the broker's."""
    before = time.time()
    answer = store.call("HEAD bucket", "head_bucket")
    after = time.time()
    date = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    out: list[Check] = []
    if date is None:
        out.append(Check("clock", "s3", Verdict.WARN, "S3 answered without a Date header", ""))
    else:
        server = email.utils.parsedate_to_datetime(date).timestamp()
        skew = server - (before + after) / 2
        # the header has whole seconds: half a second of the difference is rounding
        out.append(skew_verdict("clock", "s3", skew if abs(skew) > 1.0 else 0.0))
    if clock_topic is None:
        out.append(Check("clock", "kafka", Verdict.WARN, "not measured: Kafka's protocol has no clock to ask, "
                         "only the append time a broker stamps on a LogAppendTime topic's records",
                         "create a topic with message.timestamp.type=LogAppendTime and give it as --clock-topic"))
    else:
        out.append(broker_skew(*append_time(settings, clock_topic)))
    return out


def append_time(settings: Settings, topic: str) -> tuple[int, int, float, float]:
    """(timestamp type, timestamp in ms, before, after) of one record written to ``topic`` now."""
    producer = make_producer(settings, **{"linger.ms": 0, "message.timeout.ms": 15_000})
    delivered: dict[str, Any] = {}

    def report(error: Any, message: Any) -> None:
        delivered.update(error=error, timestamp=message.timestamp())

    before = time.time()
    producer.produce(topic, b"sealtrail doctor clock probe", timestamp=1, on_delivery=report)
    producer.flush(20)
    after = time.time()
    if delivered.get("error") is not None or "timestamp" not in delivered:
        raise ServiceUnavailable("kafka", f"the clock probe on {topic} was not acknowledged: "
                                          f"{delivered.get('error', 'no delivery report in 20 s')}")
    kind, ms = delivered["timestamp"]
    return kind, ms, before, after


def broker_skew(kind: int, ms: int, before: float, after: float) -> Check:
    """The broker's clock from a record's append time; a producer's time (type 1) says nothing."""
    if kind != TIMESTAMP_LOG_APPEND_TIME:
        return Check("clock", "kafka", Verdict.WARN, "not measured: the broker kept the producer's timestamp, so "
                     "the clock topic is not LogAppendTime (or the broker ignores the setting)",
                     "set message.timestamp.type=LogAppendTime on the clock topic")
    stamped = ms / 1000
    skew = 0.0 if before - 0.001 <= stamped <= after + 0.001 else stamped - (before + after) / 2
    return skew_verdict("clock", "kafka", skew)


# --- anchors -------------------------------------------------------------------------------------


def anchor_checks(settings: Settings, store: S3Store, now: datetime | None = None) -> list[Check]:
    """The newest anchor outside the bucket still matches the bucket, and is recent."""

    if not settings.database_url:
        return [Check("anchors", "anchor", Verdict.WARN, "no anchors: without one outside the bucket, a chain's "
                      "newest objects removed together with their digests look like a trail that ended earlier",
                      "run `sealtrail anchor save --to-postgres` daily (database_url), or keep `anchor save` files")]
    try:
        anchor = latest_anchor(settings.database_url, store.bucket, settings.s3.prefix)
    except ConfigError as e:
        return [Check("anchors", "anchor", Verdict.WARN, e.problem, "sealtrail anchor save --to-postgres")]
    saved = datetime.fromisoformat(anchor["created_at"].replace("Z", "+00:00"))
    out: list[Check] = []
    bad = [chain for chain, a in sorted(anchor["chains"].items()) if digest_sha256(store, a["digest"]) != a["sha256"]]
    if bad:
        out.append(Check("anchors", "anchor-matches", Verdict.FAIL, f"chain(s) {', '.join(bad)}: the digest "
                         f"anchored at {anchor['created_at']} is gone or has other bytes",
                         "sealtrail anchor latest --out a.json; sealtrail verify --anchor a.json names what changed"))
    else:
        out.append(_passed("anchors", "anchor-matches",
                           f"{len(anchor['chains'])} chain(s) anchored at {anchor['created_at']} match the bucket"))
    unanchored = sorted(set(latest_digests(store, settings.s3.prefix)) - set(anchor["chains"]))
    age = (now or datetime.now(timezone.utc)) - saved
    if age > ANCHOR_AGE or unanchored:
        why = f"the newest anchor is {age.days} day(s) old" if age > ANCHOR_AGE else \
            f"chain(s) {', '.join(unanchored)} have no anchor yet"
        out.append(Check("anchors", "anchor-recent", Verdict.WARN, why, "sealtrail anchor save --to-postgres"))
    else:
        out.append(_passed("anchors", "anchor-recent", f"saved {int(age.total_seconds() // 3600)} h ago"))
    return out


# --- the run -------------------------------------------------------------------------------------


def run(settings: Settings, progress: Callable[[str], None] | None = None,
        clock_topic: str | None = None) -> Iterator[Check]:
    """Every check, area by area; an area that cannot be reached is one failed check."""
    store = S3Store(settings)
    steps: dict[str, Callable[[], list[Check]]] = {
        "topics": lambda: topic_checks(settings),
        "bucket": lambda: bucket_checks(settings, store) + lock_checks(settings, store),
        "keys": lambda: key_checks(settings, store),
        "clock": lambda: clock_checks(settings, store, clock_topic),
        "anchors": lambda: anchor_checks(settings, store),
    }
    for area, checks in steps.items():  # in this order: the table reads top to bottom like the data flow
        if progress is not None:
            progress(f"checking {area}")
        try:
            yield from checks()
        except SealtrailError as e:
            yield Check(area, "reachable", Verdict.FAIL, str(e), _reach_fix(area, settings))


def _reach_fix(area: str, settings: Settings) -> str:
    if area == "topics":
        return f"check kafka.bootstrap ({settings.kafka.bootstrap}) and kafka.extra, or run `sealtrail up`"
    if area == "anchors":
        return "check database_url"
    return f"check s3.endpoint, s3.bucket ({settings.s3.bucket}) and the credentials, or run `sealtrail up`"


def summary(checks: list[Check]) -> dict[str, Any]:
    counts = {v.value: sum(c.verdict is v for c in checks) for v in Verdict}
    return {"ok": counts["fail"] == 0, **counts}
