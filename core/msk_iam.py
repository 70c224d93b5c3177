"""Amazon MSK's IAM authentication for librdkafka: its OAUTHBEARER token, made by AWS's own signer.

In the [aws] extra, so the producer SDK's base install does not carry it; kafka.base_config imports it
only when kafka.aws_iam is set.
"""

from __future__ import annotations

from collections.abc import Callable

from sealtrail.errors import ConfigError


def msk_iam_token(region: str) -> Callable[[str | None], tuple[str, float]]:
    """librdkafka's OAUTHBEARER callback for MSK IAM: a token signed (SigV4, locally) by the AWS credentials
    in effect, renewed by librdkafka before it expires. AWS's own signer library, so the signing is theirs."""
    try:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
    except ModuleNotFoundError as e:
        raise ConfigError("kafka.aws_iam", "needs aws-msk-iam-sasl-signer-python: pip install 'sealtrail[aws]'") from e

    def token(_config: str | None) -> tuple[str, float]:
        value, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        return value, expiry_ms / 1000

    return token
