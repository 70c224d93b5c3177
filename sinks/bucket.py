"""The audit bucket's own settings, from the retention policy; and legal holds on its objects.

`sealtrail bucket init` makes a bucket what the trail needs, or (with
``--check``) says how it falls short, item by item:

- bucket: exists, created with Object Lock enabled;
- versioning: Enabled (Object Lock requires it; it is what makes overwrites visible);
- object-lock: enabled (irreversible on S3, so init says so when it turns it on);
- default-retention: the policy's default rule, for anything written without its own lock;
- encryption: the policy's ``[bucket] encryption``. A store may accept the bucket
  setting and then fail every PUT (SeaweedFS without a KEK does exactly that), so
  init first writes one small probe object with that encryption and sets the
  bucket default only if the probe was stored; otherwise it reports the store's answer;
- lifecycle-expiry: data, digests and their noncurrent versions expire only after
  the longest period in the policy (plus a day), never earlier; delete markers
  left with nothing behind them are removed; incomplete uploads are aborted;
- lifecycle-transitions: data moves to colder classes (``[bucket] transitions``),
  only ones that verify and Athena can still read;
- lifecycle-conflicts: someone else's lifecycle rule that would expire or archive
  trail objects earlier is reported, never removed.

Every data object holds one flush of one chain and so mixes events with different
periods; lifecycle rules select objects by prefix, not by content, so they expire
the trail after the longest period of the policy. Shorter periods are minimums
the locks enforce. Public keys get no expiry rule: a key may sign for years after
it was published, so age says nothing about when it is no longer needed.

Pure functions decide (desired_*, normalize_rule, assess_*); ``init_bucket`` and
the hold functions are the thin I/O around them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from sealtrail.errors import ConfigError
from sealtrail.layout import DATA, DIGESTS, DataObject, data_prefix, parse_data_key
from sealtrail.retention import Period, Policy
from sealtrail.sinks.s3 import S3Store, StoreRefused
from sealtrail.store import sha256_b64

EXPIRY_MARGIN_DAYS = 1  # lifecycle days count from creation, rounded to midnight UTC: one more day of slack
ABORT_UPLOADS_DAYS = 7
PROBE_KEY = ".sealtrail-probe/encryption"
# Answers of a store that does not implement a request, or a part of it.
UNSUPPORTED_CODES = frozenset({
    "NotImplemented", "InvalidStorageClass", "InvalidRequest", "InvalidArgument", "MalformedXML",
    "KMS.NotFoundException", "KMSNotConfigured", "UnsupportedOperation",
})


class Status(StrEnum):
    OK = "ok"                     # as the policy wants
    CREATED = "created"           # init made it so
    CHANGED = "changed"           # init changed it
    MISSING = "missing"           # not as the policy wants (--check; or init could not get that far)
    UNSUPPORTED = "unsupported"   # init tried; the store refused
    CONFLICT = "conflict"         # needs a person: init will not undo someone else's setting


GAPS = frozenset({Status.MISSING, Status.UNSUPPORTED, Status.CONFLICT})


@dataclass(frozen=True, slots=True)
class Item:
    name: str
    status: Status
    detail: str

    @property
    def gap(self) -> bool:
        return self.status in GAPS


@dataclass
class BucketReport:
    bucket: str
    prefix: str
    policy: str
    items: list[Item] = field(default_factory=list)

    @property
    def gaps(self) -> list[Item]:
        return [i for i in self.items if i.gap]

    @property
    def changed(self) -> list[Item]:
        return [i for i in self.items if i.status in (Status.CREATED, Status.CHANGED)]

    def as_json(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "prefix": self.prefix, "policy": self.policy, "ok": not self.gaps,
                "items": [{"name": i.name, "status": i.status.value, "detail": i.detail} for i in self.items]}


@dataclass(frozen=True)
class BucketState:
    """What a bucket says about itself (read by read_state)."""

    exists: bool
    versioning: str | None = None
    object_lock: bool = False
    default_retention: dict[str, Any] | None = None
    encryption: dict[str, Any] | None = None       # ApplyServerSideEncryptionByDefault of the first rule
    encryption_error: str | None = None            # the store's answer when it cannot even say
    lifecycle: tuple[dict[str, Any], ...] = ()
    lifecycle_error: str | None = None


# ---------------------------------------------------------------------------
# Pure: what the policy wants


def rule_id(role: str, prefix: str) -> str:
    """IDs of sealtrail's own lifecycle rules: one set per trail prefix, so several trails share a bucket."""
    return f"sealtrail-{role}:{prefix}"[:255]


def expiry_days(policy: Policy) -> int:
    return policy.longest_days + EXPIRY_MARGIN_DAYS


def desired_default_retention(policy: Policy) -> dict[str, Any]:
    period = policy.default.period
    unit = {"Years": period.years} if period.years is not None else {"Days": period.days}
    return {"Mode": policy.default.mode, **unit}


def desired_lifecycle(policy: Policy, prefix: str, transitions: bool = True) -> list[dict[str, Any]]:
    """sealtrail's lifecycle rules for one trail prefix (boto3 shapes)."""
    days = expiry_days(policy)
    data: dict[str, Any] = {
        "ID": rule_id("data", prefix),
        "Filter": {"Prefix": f"{prefix}{DATA}"},
        "Status": "Enabled",
        "Expiration": {"Days": days},
        "NoncurrentVersionExpiration": {"NoncurrentDays": days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_UPLOADS_DAYS},
    }
    if transitions and policy.transitions:
        data["Transitions"] = [{"Days": t.days, "StorageClass": t.storage_class} for t in policy.transitions]
    digests = {
        "ID": rule_id("digests", prefix),
        "Filter": {"Prefix": f"{prefix}{DIGESTS}"},
        "Status": "Enabled",
        "Expiration": {"Days": days},
        "NoncurrentVersionExpiration": {"NoncurrentDays": days},
    }
    markers = {
        "ID": rule_id("delete-markers", prefix),
        "Filter": {"Prefix": prefix},
        "Status": "Enabled",
        "Expiration": {"ExpiredObjectDeleteMarker": True},
    }
    return [data, digests, markers]


def _filter_of(rule: dict[str, Any]) -> dict[str, Any]:
    """Prefix, tags and sizes of a rule's filter, whichever of S3's three shapes it uses."""
    if "Filter" not in rule:
        return {"prefix": rule.get("Prefix", "")}
    f = rule.get("Filter") or {}
    inner = f.get("And", f)
    tags = inner.get("Tags", []) + ([f["Tag"]] if "Tag" in f else [])
    out: dict[str, Any] = {"prefix": inner.get("Prefix", "")}
    if tags:
        out["tags"] = tuple(sorted((t["Key"], t["Value"]) for t in tags))
    for size in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        if size in inner:
            out[size] = inner[size]
    return out


def normalize_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A lifecycle rule in one canonical shape, so a rule read back compares equal to the one written."""
    out: dict[str, Any] = {"id": rule.get("ID"), "status": rule.get("Status"), **_filter_of(rule)}
    expiration = rule.get("Expiration") or {}
    for src, dst in (("Days", "expire_days"), ("Date", "expire_date"),
                     ("ExpiredObjectDeleteMarker", "expired_markers")):
        if expiration.get(src) is not None:
            out[dst] = str(expiration[src]) if src == "Date" else expiration[src]
    noncurrent = rule.get("NoncurrentVersionExpiration") or {}
    if noncurrent.get("NoncurrentDays") is not None:
        out["noncurrent_days"] = noncurrent["NoncurrentDays"]
    if noncurrent.get("NewerNoncurrentVersions") is not None:
        out["newer_noncurrent"] = noncurrent["NewerNoncurrentVersions"]
    if rule.get("Transitions"):
        out["transitions"] = tuple(sorted((t.get("Days"), t.get("StorageClass")) for t in rule["Transitions"]))
    if rule.get("NoncurrentVersionTransitions"):
        out["noncurrent_transitions"] = tuple(sorted(
            (t.get("NoncurrentDays"), t.get("StorageClass")) for t in rule["NoncurrentVersionTransitions"]))
    abort = rule.get("AbortIncompleteMultipartUpload") or {}
    if abort.get("DaysAfterInitiation") is not None:
        out["abort_days"] = abort["DaysAfterInitiation"]
    return out


def _without_transitions(rule: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rule.items() if k != "transitions"}


def is_ours(rule: dict[str, Any], prefix: str) -> bool:
    return rule.get("ID") in {rule_id(role, prefix) for role in ("data", "digests", "delete-markers")}


def _overlaps(rule_prefix: str, prefix: str) -> bool:
    return prefix.startswith(rule_prefix) or rule_prefix.startswith(prefix)


def foreign_conflicts(rules: tuple[dict[str, Any], ...], policy: Policy, prefix: str) -> list[str]:
    """Other lifecycle rules that would expire or archive trail objects before the policy allows."""
    problems = []
    need = policy.longest_days
    for rule in rules:
        if is_ours(rule, prefix) or rule.get("Status") != "Enabled":
            continue
        n = normalize_rule(rule)
        if not _overlaps(n["prefix"], prefix):
            continue
        name = f"rule {n['id'] or '(no id)'} (prefix {n['prefix']!r})"
        if n.get("expire_days") is not None and n["expire_days"] < need:
            problems.append(f"{name} expires objects after {n['expire_days']} days; the policy keeps them "
                            f"{need} days")
        if "expire_date" in n:
            problems.append(f"{name} expires every object on {n['expire_date']}, however recent")
        if n.get("noncurrent_days") is not None and n["noncurrent_days"] < need:
            problems.append(f"{name} deletes noncurrent versions after {n['noncurrent_days']} days; the policy "
                            f"keeps them {need} days")
        archived = [c for _, c in n.get("transitions", ()) + n.get("noncurrent_transitions", ())
                    if c in ("GLACIER", "DEEP_ARCHIVE")]
        if archived:
            problems.append(f"{name} moves objects to {archived[0]}, which verify and Athena cannot read")
    return problems


@dataclass(frozen=True)
class LifecycleAssessment:
    expiry_ok: bool
    transitions_ok: bool
    expiry_detail: str
    transitions_detail: str
    conflicts: list[str]
    foreign: list[dict[str, Any]]


def assess_lifecycle(rules: tuple[dict[str, Any], ...], policy: Policy, prefix: str) -> LifecycleAssessment:
    ours = {r["ID"]: normalize_rule(r) for r in rules if is_ours(r, prefix)}
    want = {r["ID"]: normalize_rule(r) for r in desired_lifecycle(policy, prefix)}
    ours_bare = {k: _without_transitions(v) for k, v in ours.items()}
    want_bare = {k: _without_transitions(v) for k, v in want.items()}
    days = expiry_days(policy)
    expiry_ok = ours_bare == want_bare
    if expiry_ok:
        expiry_detail = f"data and digests (and their noncurrent versions) expire after {days} days"
    elif not ours:
        expiry_detail = f"no sealtrail rules for prefix {prefix!r} (want expiry after {days} days)"
    else:
        differing = sorted(k for k in set(ours_bare) | set(want_bare) if ours_bare.get(k) != want_bare.get(k))
        expiry_detail = f"rules {differing} differ from the policy (want expiry after {days} days)"
    wanted = [f"{t.storage_class} after {t.days} days" for t in policy.transitions]
    have = {k: v["transitions"] for k, v in ours.items() if v.get("transitions")}
    transitions_ok = have == {k: v["transitions"] for k, v in want.items() if v.get("transitions")}
    if not wanted:
        transitions_detail = "none in the policy" if transitions_ok else "the bucket has transitions the policy has not"
    elif transitions_ok:
        transitions_detail = "data moves to " + ", then ".join(wanted)
    else:
        transitions_detail = "want data moved to " + ", then ".join(wanted)
    foreign = [r for r in rules if not is_ours(r, prefix)]
    return LifecycleAssessment(expiry_ok, transitions_ok, expiry_detail, transitions_detail,
                               foreign_conflicts(rules, policy, prefix), foreign)


def assess_encryption(current: dict[str, Any] | None, policy: Policy) -> tuple[bool, str]:
    """Whether the bucket's default encryption is what the policy asks (or stronger), and why."""
    if policy.encryption == "none":
        return True, "not required by the policy"
    if current is None:
        return False, f"no default encryption (want {policy.encryption})"
    algorithm, key = current.get("SSEAlgorithm"), current.get("KMSMasterKeyID")
    if policy.encryption == "AES256" and algorithm in ("AES256", "aws:kms", "aws:kms:dsse"):
        return True, f"{algorithm}" + (" (stronger than AES256)" if algorithm != "AES256" else "")
    if policy.encryption.startswith("aws:kms") and algorithm in ("aws:kms", "aws:kms:dsse"):
        if policy.kms_key_id and key != policy.kms_key_id:
            return False, f"{algorithm} with key {key}; the policy names {policy.kms_key_id}"
        return True, f"{algorithm}" + (f" with key {key}" if key else "")
    return False, f"{algorithm}; the policy asks {policy.encryption}"


def assess_retention(current: dict[str, Any] | None, policy: Policy) -> tuple[bool, str]:
    want = desired_default_retention(policy)
    text = f"{want['Mode']} {policy.default.period}"
    if current == want:
        return True, text
    return False, f"{_retention_text(current)}; want {text}"


def _retention_text(rule: dict[str, Any] | None) -> str:
    if not rule:
        return "none"
    return f"{rule.get('Mode')} {Period(days=rule.get('Days'), years=rule.get('Years'))}"


# ---------------------------------------------------------------------------
# I/O: reading and changing the bucket


def _unsupported(e: StoreRefused) -> bool:
    return e.code in UNSUPPORTED_CODES or e.status == 501


def read_state(store: S3Store) -> BucketState:
    try:
        store.call(f"HEAD bucket {store.bucket}", "head_bucket")
    except StoreRefused as e:
        if e.code in ("404", "NoSuchBucket", "NotFound"):
            return BucketState(exists=False)
        raise
    except ConfigError as e:
        if e.setting == "s3.bucket":  # NoSuchBucket
            return BucketState(exists=False)
        raise
    versioning = store.call("GET versioning", "get_bucket_versioning").get("Status")
    lock, retention = False, None
    try:
        config = store.call("GET object lock configuration", "get_object_lock_configuration").get(
            "ObjectLockConfiguration", {})
        lock = config.get("ObjectLockEnabled") == "Enabled"
        retention = (config.get("Rule") or {}).get("DefaultRetention")
    except StoreRefused as e:
        if e.code != "ObjectLockConfigurationNotFoundError":
            raise
    encryption, encryption_error = None, None
    try:
        rules = store.call("GET encryption", "get_bucket_encryption")["ServerSideEncryptionConfiguration"]["Rules"]
        encryption = rules[0].get("ApplyServerSideEncryptionByDefault") if rules else None
    except StoreRefused as e:
        if e.code != "ServerSideEncryptionConfigurationNotFoundError":
            encryption_error = e.answer
    lifecycle: tuple[dict[str, Any], ...] = ()
    lifecycle_error = None
    try:
        lifecycle = tuple(store.call("GET lifecycle", "get_bucket_lifecycle_configuration").get("Rules", []))
    except StoreRefused as e:
        if e.code != "NoSuchLifecycleConfiguration":
            lifecycle_error = e.answer
    return BucketState(True, versioning, lock, retention, encryption, encryption_error, lifecycle, lifecycle_error)


def _probe_encryption(store: S3Store, prefix: str, policy: Policy, locked: bool) -> str | None:
    """Write one small object with the policy's encryption; None if the store kept it, else its answer.

    The probe gets a GOVERNANCE lock of two seconds (overriding any default
    retention) so it can be removed again, with a governance bypass if allowed,
    or else once those seconds are over.
    """
    key, body = f"{prefix}{PROBE_KEY}", b"sealtrail encryption probe\n"
    args: dict[str, Any] = {"Key": key, "Body": body, "ChecksumSHA256": sha256_b64(body),
                            "ServerSideEncryption": policy.encryption}
    if policy.kms_key_id:
        args["SSEKMSKeyId"] = policy.kms_key_id
    until = datetime.now(timezone.utc) + timedelta(seconds=2)
    if locked:
        args.update(ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
    try:
        version = store.call(f"PUT {key}", "put_object", **args).get("VersionId")
    except StoreRefused as e:
        return e.answer
    except ConfigError as e:
        if e.setting != "s3.access_key":  # refused the encryption's key (KMS): the answer, as any refusal
            raise
        return e.problem
    delete = {"Key": key, **({"VersionId": version} if version else {})}
    try:
        store.call(f"DELETE {key}", "delete_object", **delete, BypassGovernanceRetention=True)
    except (StoreRefused, ConfigError):
        time.sleep(max(0.0, (until - datetime.now(timezone.utc)).total_seconds()) + 1)
        try:
            store.call(f"DELETE {key}", "delete_object", **delete)
        except (StoreRefused, ConfigError):
            pass  # a two-second lock that outlived its seconds; harmless, and outside the trail's prefixes
    return None


def init_bucket(store: S3Store, policy: Policy, prefix: str, region: str, check_only: bool = False) -> BucketReport:
    """Create or complete the bucket as the policy wants (check_only: report, change nothing)."""
    bucket = store.bucket
    report = BucketReport(bucket, prefix, policy.source)
    add = report.items.append
    state = read_state(store)

    if state.exists:
        add(Item("bucket", Status.OK, "exists"))
    elif check_only:
        add(Item("bucket", Status.MISSING, "does not exist; `sealtrail bucket init` creates it"))
        return report
    else:
        args: dict[str, Any] = {"ObjectLockEnabledForBucket": True}
        if region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        store.call(f"create bucket {bucket}", "create_bucket", **args)
        add(Item("bucket", Status.CREATED, f"created with Object Lock in {region}"))
        state = read_state(store)

    # versioning and Object Lock: the trail's immutability
    if state.versioning == "Enabled":
        add(Item("versioning", Status.OK, "Enabled"))
    elif check_only:
        add(Item("versioning", Status.MISSING, f"{state.versioning or 'never enabled'}; want Enabled"))
    else:
        store.call("PUT versioning", "put_bucket_versioning", VersioningConfiguration={"Status": "Enabled"})
        add(Item("versioning", Status.CHANGED, f"{state.versioning or 'never enabled'} -> Enabled"))

    want_retention = desired_default_retention(policy)
    lock_config = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": want_retention}}
    retention_ok, retention_detail = assess_retention(state.default_retention, policy)
    retention_set = False
    if state.object_lock:
        add(Item("object-lock", Status.OK, "enabled"))
    elif check_only:
        add(Item("object-lock", Status.MISSING, "not enabled; init enables it (irreversible)"))
    else:
        try:
            store.call("PUT object lock configuration", "put_object_lock_configuration",
                       ObjectLockConfiguration=lock_config)
        except StoreRefused as e:
            add(Item("object-lock", Status.UNSUPPORTED if _unsupported(e) else Status.CONFLICT,
                     f"cannot enable Object Lock on the existing bucket: {e.answer}"))
        else:
            add(Item("object-lock", Status.CHANGED, "enabled on the existing bucket (this cannot be undone)"))
            state = replace(state, object_lock=True, default_retention=want_retention)
            retention_set = True

    if not state.object_lock:
        add(Item("default-retention", Status.MISSING, "needs Object Lock; " + retention_detail))
    elif retention_set:
        add(Item("default-retention", Status.CHANGED, retention_detail.replace("; want", " ->")))
    elif retention_ok:
        add(Item("default-retention", Status.OK, retention_detail))
    elif check_only:
        add(Item("default-retention", Status.MISSING, retention_detail))
    else:
        store.call("PUT object lock configuration", "put_object_lock_configuration",
                   ObjectLockConfiguration=lock_config)
        add(Item("default-retention", Status.CHANGED, retention_detail.replace("; want", " ->")))

    _encryption(store, prefix, policy, state, check_only, add)
    _lifecycle(store, prefix, policy, state, check_only, add)
    return report


def _encryption(store: S3Store, prefix: str, policy: Policy, state: BucketState, check_only: bool,
                add: Callable[[Item], None]) -> None:
    ok, detail = assess_encryption(state.encryption, policy)
    if ok:
        add(Item("encryption", Status.OK, detail))
        return
    if state.encryption_error and state.encryption is None:
        add(Item("encryption", Status.UNSUPPORTED, f"the store cannot report encryption: {state.encryption_error}"))
        return
    if check_only:
        add(Item("encryption", Status.MISSING, detail))
        return
    refused = _probe_encryption(store, prefix, policy, state.object_lock)
    if refused is not None:
        add(Item("encryption", Status.UNSUPPORTED,
                 f"the store failed a test write with {policy.encryption} ({refused}); the bucket default is "
                 "left unset, since it would make every PUT fail the same way; set [bucket] encryption = "
                 '"none" in the policy to accept that'))
        return
    config: dict[str, Any] = {"SSEAlgorithm": policy.encryption}
    if policy.kms_key_id:
        config["KMSMasterKeyID"] = policy.kms_key_id
    try:
        store.call("PUT bucket encryption", "put_bucket_encryption", ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": config, "BucketKeyEnabled": True}]})
    except StoreRefused as e:
        if not _unsupported(e):
            raise
        add(Item("encryption", Status.UNSUPPORTED, f"bucket default encryption refused: {e.answer}"))
        return
    add(Item("encryption", Status.CHANGED, f"{detail.split(' (want')[0]} -> {policy.encryption}"))


def _lifecycle(store: S3Store, prefix: str, policy: Policy, state: BucketState, check_only: bool,
               add: Callable[[Item], None]) -> None:
    if state.lifecycle_error:
        add(Item("lifecycle-expiry", Status.UNSUPPORTED, f"the store cannot report lifecycle: {state.lifecycle_error}"))
        return
    a = assess_lifecycle(state.lifecycle, policy, prefix)
    for problem in a.conflicts:
        add(Item("lifecycle-conflict", Status.CONFLICT, problem + "; remove or narrow it (init leaves it alone)"))
    if a.expiry_ok and a.transitions_ok:
        add(Item("lifecycle-expiry", Status.OK, a.expiry_detail))
        add(Item("lifecycle-transitions", Status.OK, a.transitions_detail))
        return
    if check_only:
        add(Item("lifecycle-expiry", Status.OK if a.expiry_ok else Status.MISSING, a.expiry_detail))
        add(Item("lifecycle-transitions", Status.OK if a.transitions_ok else Status.MISSING, a.transitions_detail))
        return

    def put(rules: list[dict[str, Any]]) -> None:
        store.call("PUT lifecycle", "put_bucket_lifecycle_configuration", LifecycleConfiguration={"Rules": rules})

    full = desired_lifecycle(policy, prefix, transitions=True)
    try:
        put(a.foreign + full)
    except StoreRefused as e:
        if not _unsupported(e):
            raise
        if not policy.transitions:
            add(Item("lifecycle-expiry", Status.UNSUPPORTED, f"lifecycle refused: {e.answer}"))
            return
        refused = e.answer
    else:
        done = BucketState(True, lifecycle=tuple(a.foreign + full))
        after = assess_lifecycle(done.lifecycle, policy, prefix)
        add(Item("lifecycle-expiry", Status.OK if a.expiry_ok else Status.CHANGED, after.expiry_detail))
        add(Item("lifecycle-transitions", Status.OK if a.transitions_ok else Status.CHANGED,
                 after.transitions_detail))
        return
    # The store refused the transitions: keep (or set) everything else.
    bare = desired_lifecycle(policy, prefix, transitions=False)
    bare_ok = {r["ID"]: normalize_rule(r) for r in state.lifecycle if is_ours(r, prefix)} == {
        r["ID"]: normalize_rule(r) for r in bare}
    if bare_ok:
        add(Item("lifecycle-expiry", Status.OK, a.expiry_detail))
    else:
        try:
            put(a.foreign + bare)
        except StoreRefused as e:
            if not _unsupported(e):
                raise
            add(Item("lifecycle-expiry", Status.UNSUPPORTED, f"lifecycle refused: {e.answer}"))
            add(Item("lifecycle-transitions", Status.UNSUPPORTED, f"refused: {refused}"))
            return
        after = assess_lifecycle(tuple(a.foreign + bare), policy, prefix)
        add(Item("lifecycle-expiry", Status.CHANGED, after.expiry_detail))
    add(Item("lifecycle-transitions", Status.UNSUPPORTED,
             f"{a.transitions_detail}; the store refused storage-class transitions ({refused}); "
             "set [bucket] transitions = [] in the policy to accept that"))


# ---------------------------------------------------------------------------
# Legal hold


@dataclass(frozen=True, slots=True)
class HoldResult:
    key: str
    version_id: str | None
    before: bool
    after: bool

    @property
    def changed(self) -> bool:
        return self.before != self.after


def data_objects_between(store: S3Store, prefix: str, first: date, last: date) -> Iterator[DataObject]:
    """Current data objects whose dt= partition is within first..last (inclusive), in key order."""
    if first > last:
        raise ConfigError("--from", f"{first} is after --to {last}")
    base = data_prefix(prefix)
    # Before this day's keys and after every earlier day's. (Not "dt=<first>" without the slash: SeaweedFS
    # 4.48 then skips the whole dt=<first>/ folder, where S3 lists it.)
    for key in store.keys(base, start_after=f"{base}dt={first.isoformat()}/"):
        obj = parse_data_key(key)
        if obj is None:
            continue
        if obj.dt > last.isoformat():
            return
        if obj.dt >= first.isoformat():
            yield obj


def holds_tenant(body: bytes, tenant: str) -> bool:
    """Whether a Parquet data object holds an event of the tenant (reads the tenant column only)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    column = pq.read_table(pa.BufferReader(body), columns=["tenant"]).column("tenant")
    return bool(pc.any(pc.equal(column, tenant)).as_py())


def set_hold(store: S3Store, obj: DataObject, on: bool, tenant: str | None) -> HoldResult | None:
    """Put (or lift) the legal hold on the object's current version; None if it holds no event of the tenant."""
    body: bytes | None = None
    head = store.head(obj.key)
    if head is None:
        return None  # deleted (a delete marker) since it was listed
    version = head.version_id
    if tenant is not None:
        body = store.get(obj.key, version).body
        if not holds_tenant(body, tenant):
            return None
    before = store.legal_hold(obj.key, version)
    if before != on:
        store.set_legal_hold(obj.key, version, on)
    return HoldResult(obj.key, version, before, on)
