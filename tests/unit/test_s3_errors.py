"""botocore's errors mapped once, in sinks/s3.py: what each S3 answer becomes in sealtrail's tree."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from sealtrail.errors import ConfigError, ServiceUnavailable, Transient
from sealtrail.sinks.s3 import StoreRefused, _map


def client_error(code: str, status: int, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "PutObject")


@pytest.mark.parametrize(("code", "setting"), [("NoSuchBucket", "s3.bucket"), ("AccessDenied", "s3.access_key"),
                                               ("SignatureDoesNotMatch", "s3.access_key")])
def test_configuration_errors_name_the_setting(code: str, setting: str) -> None:
    mapped = _map(client_error(code, 403), "PUT k")
    assert isinstance(mapped, ConfigError) and mapped.setting == setting and "PUT k" in str(mapped)


def test_a_refusal_keeps_its_code_and_status_for_bucket_administration() -> None:
    mapped = _map(client_error("NotImplemented", 501, "lifecycle transitions"), "PUT lifecycle")
    assert isinstance(mapped, StoreRefused) and isinstance(mapped, ServiceUnavailable)
    assert (mapped.code, mapped.status) == ("NotImplemented", 501)
    assert mapped.answer == "NotImplemented (HTTP 501): lifecycle transitions"
    assert str(mapped) == "s3 unavailable: PUT lifecycle: NotImplemented (HTTP 501): lifecycle transitions"


def test_an_unreachable_endpoint_is_transient() -> None:
    mapped = _map(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "LIST trail/")
    assert isinstance(mapped, ServiceUnavailable) and isinstance(mapped, Transient)
    assert not isinstance(mapped, StoreRefused) and "LIST trail/" in str(mapped)
