"""The provider's environment, as Lambda would set it, pointed at the rig's local parts."""

from __future__ import annotations

from rig.constants import (
    IAM_PROPAGATION_TIMEOUT_SECONDS,
    LOG_GROUP,
    LOG_STREAM,
    PROVIDER_ACCESS_KEY_ID,
    PROVIDER_SECRET_ACCESS_KEY,
    PROVIDER_SESSION_TOKEN,
    REGION,
)


def provider_env(
    endpoint: str, dynamodb_endpoint: str, response_host: str, **overrides: str | None
) -> dict[str, str]:
    """What the function needs to run against local parts: every AWS call to ``endpoint``
    (moto, or the fault proxy in front of it) but DynamoDB's, which go to
    ``dynamodb_endpoint`` (the fault proxy, which passes them on one at a time), ResponseURLs
    on ``response_host`` allowed, the distinctive fake credentials (never to be logged), the
    log group and stream Lambda names (every FAILED Reason quotes them) and a short
    IAM-propagation retry. ``overrides`` win; one set to None is left out."""
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": PROVIDER_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": PROVIDER_SECRET_ACCESS_KEY,
        "AWS_SESSION_TOKEN": PROVIDER_SESSION_TOKEN,
        "AWS_LAMBDA_LOG_GROUP_NAME": LOG_GROUP,
        "AWS_LAMBDA_LOG_STREAM_NAME": LOG_STREAM,
        "RESPONSE_URL_ALLOWED_HOSTS": response_host,
        "IAM_PROPAGATION_TIMEOUT_SECONDS": str(IAM_PROPAGATION_TIMEOUT_SECONDS),
        "RUST_LOG": "info",
    }
    env.update(overrides)
    return {name: value for name, value in env.items() if value is not None}
