"""Open the official `BetaAnalyticsDataClient` over gRPC, as in production.

Credentials come from a service-account file whose path the caller passes (read from an
environment variable by the Dagster resource); the path and the key are never logged.
`endpoint` is for a local fake server only: plaintext gRPC, accepted on loopback alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.services.beta_analytics_data.transports import (
    BetaAnalyticsDataGrpcTransport,
)

READ_ONLY_SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
# A 250,000-row page is far above gRPC's 4 MB default: lift the cap as Google's transport does.
CHANNEL_OPTIONS = (("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1))


class Ga4ConfigError(ValueError):
    """The client cannot be opened as configured (no credentials, non-loopback endpoint)."""


def is_loopback(endpoint: str) -> bool:
    host = endpoint.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def open_client(
    *, credentials_file: str | None, endpoint: str | None = None
) -> Iterator[BetaAnalyticsDataClient]:
    """A client for the run; its channel is closed on exit."""
    if endpoint is not None:
        if not is_loopback(endpoint):
            raise Ga4ConfigError("a plaintext GA4 endpoint must be on loopback (a local fake)")
        channel = grpc.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
        client = BetaAnalyticsDataClient(transport=BetaAnalyticsDataGrpcTransport(channel=channel))
    else:
        if not credentials_file:
            raise Ga4ConfigError(
                "no GA4 credentials: set the environment variable the plan names "
                "(credentials_env_var) to a service-account JSON file"
            )
        from google.oauth2 import service_account

        try:
            credentials = service_account.Credentials.from_service_account_file(
                credentials_file, scopes=[READ_ONLY_SCOPE]
            )
        except (OSError, ValueError) as exc:
            # The message names neither the path nor the key, only what went wrong.
            raise Ga4ConfigError(
                f"cannot read the GA4 service-account file: {type(exc).__name__}"
            ) from None
        client = BetaAnalyticsDataClient(credentials=credentials)
    try:
        yield client
    finally:
        client.transport.close()
