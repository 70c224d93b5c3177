"""The object store: the sink's and the verifier's only I/O seam to S3.

Every PUT carries a SHA-256 checksum (AWS requires one on every upload to an
Object Lock bucket) and, for trail objects, COMPLIANCE (or GOVERNANCE)
retention. botocore errors are mapped onto sealtrail's tree here, so nothing
above this module sees a ClientError.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from sealtrail.config import Settings
from sealtrail.errors import ConfigError, ServiceUnavailable
from sealtrail.store import ObjectHead, ObjectVersion, StoredObject, sha256_b64


def s3_client(settings: Settings):
    s3 = settings.s3
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        region_name=s3.region,
        aws_access_key_id=s3.access_key.get_secret_value() if s3.access_key else None,
        aws_secret_access_key=s3.secret_key.get_secret_value() if s3.secret_key else None,
        config=Config(
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


AUTH_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"})


class StoreRefused(ServiceUnavailable):
    """S3 answered a request with an error. Its code and HTTP status let bucket administration tell
    "not configured" or "not supported by this store" from a failure, without seeing botocore."""

    def __init__(self, what: str, code: str, status: int | None, message: str) -> None:
        self.code, self.status = code, status
        self.answer = f"{code or '?'} (HTTP {status}): {message}".rstrip(": ")
        super().__init__("s3", f"{what}: {self.answer}")


def _map(e: Exception, what: str) -> Exception:
    """botocore's errors onto sealtrail's tree: the one place that does it."""
    if isinstance(e, ClientError):
        error, meta = e.response.get("Error", {}), e.response.get("ResponseMetadata", {})
        code = str(error.get("Code", ""))
        if code == "NoSuchBucket":
            return ConfigError("s3.bucket", f"bucket does not exist ({what})")
        if code in AUTH_CODES:
            return ConfigError("s3.access_key", f"{code} ({what})")
        return StoreRefused(what, code, meta.get("HTTPStatusCode"), str(error.get("Message", "")))
    return ServiceUnavailable("s3", f"{what}: {e}")


_ERRORS = (ClientError, BotoCoreError, EndpointConnectionError)


class S3Store:
    """One bucket. Object names come from sealtrail.layout; this class only moves bytes."""

    def __init__(self, settings: Settings) -> None:
        settings.require("s3")
        self.bucket = settings.s3.bucket
        self.client = s3_client(settings)
        self._s3 = settings.s3

    def describe(self) -> str:
        return f"s3://{self.bucket}"

    def arrow_filesystem(self) -> tuple[Any, str]:
        """pyarrow's S3 filesystem for this bucket and the bucket's path in it: what DuckDB queries read
        the trail in place through (evidence/query.py), with the same endpoint and credentials."""
        import pyarrow.fs as pafs

        s3 = self._s3
        args: dict[str, Any] = {"region": s3.region}
        if s3.endpoint:
            scheme, _, rest = s3.endpoint.partition("://")
            if not rest:
                scheme, rest = "https", s3.endpoint
            args["endpoint_override"] = rest.rstrip("/")
            args["scheme"] = scheme
        if s3.access_key and s3.secret_key:
            args["access_key"] = s3.access_key.get_secret_value()
            args["secret_key"] = s3.secret_key.get_secret_value()
        return pafs.S3FileSystem(**args), self.bucket

    def call(self, what: str, operation: str, **kwargs: object) -> dict:
        """One S3 API call on this bucket (bucket administration: versioning, lock configuration,
        encryption, lifecycle), its errors mapped like every other call: StoreRefused carries the code."""
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **kwargs)
        except _ERRORS as e:
            raise _map(e, what) from e

    def legal_hold(self, key: str, version_id: str | None) -> bool:
        """Whether the version is under legal hold (a store that never set one answers 'no such hold')."""
        args = {"Key": key, **({"VersionId": version_id} if version_id else {})}
        try:
            return self.call(f"GET legal hold {key}", "get_object_legal_hold", **args)["LegalHold"]["Status"] == "ON"
        except StoreRefused as e:
            if e.code in ("NoSuchObjectLockConfiguration", "NoSuchObjectLegalHold",
                          "ObjectLockConfigurationNotFoundError"):
                return False
            raise

    def set_legal_hold(self, key: str, version_id: str | None, on: bool) -> None:
        args = {"Key": key, "LegalHold": {"Status": "ON" if on else "OFF"},
                **({"VersionId": version_id} if version_id else {})}
        self.call(f"PUT legal hold {key}", "put_object_legal_hold", **args)

    def put_locked(self, key: str, body: bytes, mode: str, retain_until: datetime) -> str | None:
        """Write a new locked object; returns its version id."""
        try:
            resp = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ChecksumSHA256=sha256_b64(body),
                ObjectLockMode=mode,
                ObjectLockRetainUntilDate=retain_until,
            )
        except _ERRORS as e:
            raise _map(e, f"PUT {key}") from e
        return resp.get("VersionId")

    def head(self, key: str) -> ObjectHead | None:
        """Version id, SHA-256 checksum and size of the current version, or None when there is none."""
        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _map(e, f"HEAD {key}") from e
        except (BotoCoreError, EndpointConnectionError) as e:
            raise _map(e, f"HEAD {key}") from e
        return ObjectHead(resp.get("VersionId"), resp.get("ChecksumSHA256"), resp.get("ContentLength", 0))

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def keys(self, prefix: str, start_after: str | None = None) -> Iterator[str]:
        args = {"Bucket": self.bucket, "Prefix": prefix, **({"StartAfter": start_after} if start_after else {})}
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(**args):
                for item in page.get("Contents", []):
                    yield item["Key"]
        except _ERRORS as e:
            raise _map(e, f"LIST {prefix}") from e

    def page(self, prefix: str, start_after: str | None = None, max_keys: int = 1000) -> tuple[list[str], bool]:
        """One listing request: up to max_keys keys after start_after, and whether more follow.

        What lets a worker find its place in a trail of any age with a few
        requests (core/index.py) instead of listing it all."""
        args = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": max_keys}
        if start_after:
            args["StartAfter"] = start_after
        try:
            resp = self.client.list_objects_v2(**args)
        except _ERRORS as e:
            raise _map(e, f"LIST {prefix}") from e
        return [item["Key"] for item in resp.get("Contents", [])], bool(resp.get("IsTruncated"))

    def folders(self, prefix: str, start_after: str | None = None) -> Iterator[str]:
        """The "folders" (common prefixes up to the next /) under prefix, after start_after, in order."""
        args = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/"}
        if start_after:
            args["StartAfter"] = start_after
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(**args):
                for item in page.get("CommonPrefixes", []):
                    yield item["Prefix"]
        except _ERRORS as e:
            raise _map(e, f"LIST {prefix}") from e

    def versions(self, prefix: str, start_after: str | None = None) -> Iterator[ObjectVersion]:
        """Every version and delete marker (of keys after start_after): what Object Lock cannot prevent,
        verify must see."""
        args = {"Bucket": self.bucket, "Prefix": prefix}
        if start_after:
            args["KeyMarker"] = start_after
        try:
            pages = self.client.get_paginator("list_object_versions").paginate(**args)
            for page in pages:
                for v in page.get("Versions", []):
                    yield ObjectVersion(
                        v["Key"], v.get("VersionId", "null"), v.get("IsLatest", False), False,
                        v.get("Size", 0), v["LastModified"],
                    )
                for d in page.get("DeleteMarkers", []):
                    yield ObjectVersion(
                        d["Key"], d.get("VersionId", "null"), d.get("IsLatest", False), True, 0, d["LastModified"]
                    )
        except _ERRORS as e:
            raise _map(e, f"LIST VERSIONS {prefix}") from e

    def get(self, key: str, version_id: str | None = None) -> StoredObject:
        args = {"Bucket": self.bucket, "Key": key, "ChecksumMode": "ENABLED"}
        if version_id and version_id != "null":
            args["VersionId"] = version_id
        try:
            resp = self.client.get_object(**args)
            body = resp["Body"].read()
        except _ERRORS as e:
            raise _map(e, f"GET {key}") from e
        return StoredObject(
            key,
            resp.get("VersionId"),
            body,
            resp.get("ChecksumSHA256"),
            resp.get("ObjectLockMode"),
            resp.get("ObjectLockRetainUntilDate"),
        )
